"""How templates get secrets: the Fetcher protocols and their HTTP implementations.

A fetcher reads, lists and writes by path and returns the server's response JSON as a dict (numbers kept as
``JSONNumber``, as Vault's Go client decodes them), or None when there is nothing there (a 404 without data,
a 204). Any other failure raises FetchError. ``HTTPFetcher`` (blocking) and ``AsyncHTTPFetcher`` talk to a
Vault-compatible server with httpx and ``X-Vault-Token``; one connection pool per fetcher.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, Self

import httpx

from strongroom.agent.template.errors import FetchError
from strongroom.agent.template.values import JSONNumber

JSONDict = dict[str, Any]
Params = Mapping[str, Sequence[str]]


class Fetcher(Protocol):
    def read(self, path: str, params: Params | None = None) -> JSONDict | None: ...

    def list(self, path: str) -> JSONDict | None: ...

    def write(self, path: str, data: Mapping[str, Any]) -> JSONDict | None: ...


class AsyncFetcher(Protocol):
    async def read(self, path: str, params: Params | None = None) -> JSONDict | None: ...

    async def list(self, path: str) -> JSONDict | None: ...

    async def write(self, path: str, data: Mapping[str, Any]) -> JSONDict | None: ...


def parse_json(text: str | bytes) -> Any:
    """JSON with numbers kept as their text (Go's json.Decoder.UseNumber)."""
    return json.loads(text, parse_int=JSONNumber, parse_float=JSONNumber, parse_constant=_bad_constant)


def _bad_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


def _headers(token: str | None, namespace: str | None) -> dict[str, str]:
    h = {"X-Vault-Request": "true"}
    if token:
        h["X-Vault-Token"] = token
    if namespace:
        h["X-Vault-Namespace"] = namespace
    return h


def _query(params: Params | None) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for k in sorted(params or {}):
        for v in (params or {})[k]:
            out.append((k, v))
    return tuple(out)


def _handle(method: str, url: str, resp: httpx.Response, allow_404_data: bool) -> JSONDict | None:
    status = resp.status_code
    body = resp.content
    if status == 404:
        if not body.strip():
            return None
        try:
            parsed = parse_json(body)
        except ValueError:
            return None
        if isinstance(parsed, dict) and allow_404_data and (parsed.get("warnings") or parsed.get("data")):
            return parsed
        return None
    if status >= 400:
        errors: list[str] = []
        try:
            parsed = parse_json(body)
            if isinstance(parsed, dict) and isinstance(parsed.get("errors"), list):
                errors = [str(e) for e in parsed["errors"]]
        except ValueError:
            errors = [body.decode("utf-8", "replace")]
        detail = "\n".join(f"* {e}" for e in errors)
        raise FetchError(f"Error making API request.\n\nURL: {method} {url}\nCode: {status}. Errors:\n\n{detail}")
    if not body.strip():
        return None
    try:
        parsed = parse_json(body)
    except ValueError as e:
        raise FetchError(f"{method} {url}: the server's answer is not JSON: {e}") from None
    if not isinstance(parsed, dict):
        raise FetchError(f"{method} {url}: unexpected answer")
    return parsed


class HTTPFetcher:
    """A blocking fetcher over HTTP(S)."""

    def __init__(self, address: str, token: str | None, *, namespace: str | None = None,
                 verify: ssl.SSLContext | bool = True, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.address = address.rstrip("/")
        self.token = token
        self.namespace = namespace
        self._http = httpx.Client(verify=verify, timeout=timeout, transport=transport, follow_redirects=True)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _url(self, path: str) -> str:
        return f"{self.address}/v1/{path.lstrip('/')}"

    def _send(self, method: str, path: str, params: tuple[tuple[str, str], ...], body: Mapping[str, Any] | None,
              allow_404_data: bool) -> JSONDict | None:
        url = self._url(path)
        try:
            resp = self._http.request(method, url, params=params or None,
                                      headers=_headers(self.token, self.namespace),
                                      content=None if body is None else json.dumps(body).encode())
        except httpx.HTTPError as e:
            raise FetchError(f"{method} {url}: {e}") from None
        return _handle(method, url, resp, allow_404_data)

    def read(self, path: str, params: Params | None = None) -> JSONDict | None:
        return self._send("GET", path, _query(params), None, True)

    def list(self, path: str) -> JSONDict | None:
        return self._send("GET", path, (("list", "true"),), None, False)

    def write(self, path: str, data: Mapping[str, Any]) -> JSONDict | None:
        return self._send("PUT", path, (), data, True)


class AsyncHTTPFetcher:
    """The same over httpx.AsyncClient, for the agent's event loop."""

    def __init__(self, address: str, token: str | None, *, namespace: str | None = None,
                 verify: ssl.SSLContext | bool = True, timeout: float = 30.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.address = address.rstrip("/")
        self.token = token
        self.namespace = namespace
        self._http = httpx.AsyncClient(verify=verify, timeout=timeout, transport=transport, follow_redirects=True)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _send(self, method: str, path: str, params: tuple[tuple[str, str], ...], body: Mapping[str, Any] | None,
                    allow_404_data: bool) -> JSONDict | None:
        url = f"{self.address}/v1/{path.lstrip('/')}"
        try:
            resp = await self._http.request(method, url, params=params or None,
                                            headers=_headers(self.token, self.namespace),
                                            content=None if body is None else json.dumps(body).encode())
        except httpx.HTTPError as e:
            raise FetchError(f"{method} {url}: {e}") from None
        return _handle(method, url, resp, allow_404_data)

    async def read(self, path: str, params: Params | None = None) -> JSONDict | None:
        return await self._send("GET", path, _query(params), None, True)

    async def list(self, path: str) -> JSONDict | None:
        return await self._send("GET", path, (("list", "true"),), None, False)

    async def write(self, path: str, data: Mapping[str, Any]) -> JSONDict | None:
        return await self._send("PUT", path, (), data, True)
