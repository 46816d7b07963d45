"""The async HTTP client: one ``request()`` over Vault's ``/v1`` wire format.

Every method returns the parsed JSON body (a dict, or a list for the rare endpoints that answer
with one) or ``None`` for an empty answer (204). Any status >= 400 raises ``APIError``; a failure
to reach the server raises ``TransportError``. Both derive from ``ClientError``::

    ClientError
     ├── APIError        the server answered >= 400; carries status, errors, warnings, raw body
     └── TransportError  no HTTP answer: refused connection, TLS failure, timeout
"""

from __future__ import annotations

import json as jsonlib
import ssl
from collections.abc import Mapping
from typing import Any, Self

import httpx

from strongroom import __version__
from strongroom.api.errors import JSON, APIError, ClientError, TransportError


class Client:
    """An async Vault-protocol client. Use as ``async with Client(...) as c:``.

    ``LIST`` is sent as ``GET ...?list=true`` as Vault's own client does, so it passes
    proxies that reject unknown methods; servers accept both forms.
    """

    def __init__(
        self,
        address: str,
        token: str | None = None,
        *,
        cacert: str | None = None,
        capath: str | None = None,
        client_cert: str | None = None,
        client_key: str | None = None,
        tls_skip_verify: bool = False,
        namespace: str | None = None,
        wrap_ttl: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.address = address.rstrip("/")
        self.token = token or None
        self.namespace = namespace or None
        self.wrap_ttl = wrap_ttl or None
        self._extra_headers = dict(headers or {})
        verify: ssl.SSLContext | bool = True
        if tls_skip_verify and not client_cert:
            verify = False
        elif cacert or capath or client_cert:
            try:
                verify = (ssl.create_default_context() if tls_skip_verify
                          else ssl.create_default_context(cafile=cacert, capath=capath))
            except (OSError, ssl.SSLError) as e:
                raise ClientError(f"Error loading CA File: {_file_error(e, cacert or capath or '')}") from e
            if tls_skip_verify:  # the server is not checked, but the client certificate is still presented
                verify.check_hostname = False
                verify.verify_mode = ssl.CERT_NONE
            if client_cert:
                try:
                    verify.load_cert_chain(client_cert, client_key)
                except (OSError, ssl.SSLError) as e:
                    raise ClientError(f"Error loading client certificate: {_file_error(e, client_cert)}") from e
        self.verify = verify  # what a connection outside httpx (api/events.py) verifies the server with
        # A standby node answers 307 to the active one; 307/308 keep the method and body.
        self._http = httpx.AsyncClient(verify=verify, timeout=timeout, transport=transport, follow_redirects=True)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def url(self, path: str) -> str:
        return f"{self.address}/v1/{path.lstrip('/')}"

    def _headers(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        h = {"X-Vault-Request": "true", "User-Agent": f"strongroom/{__version__}"}
        if self.token:
            h["X-Vault-Token"] = self.token
        if self.namespace:
            h["X-Vault-Namespace"] = self.namespace
        if self.wrap_ttl:
            h["X-Vault-Wrap-TTL"] = self.wrap_ttl
        h.update(self._extra_headers)
        if extra:
            h.update(extra)
        return h

    async def request(
        self,
        method: str,
        path: str,
        json: JSON = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> JSON:
        """Send one request; the decoded body, ``None`` for an empty one, or raise."""
        method = method.upper()
        query: dict[str, Any] = dict(params or {})
        if method == "LIST":
            method = "GET"
            query["list"] = "true"
        url = self.url(path)
        shown = url + ("?" + str(httpx.QueryParams(query)) if query else "")
        content = None
        hdrs = self._headers(headers)
        if json is not None:
            content = jsonlib.dumps(json).encode()
            hdrs.setdefault("Content-Type", "application/json")
        try:
            resp = await self._http.request(method, url, params=query or None, content=content, headers=hdrs)
        except httpx.TimeoutException as e:
            raise TransportError(method, shown, f"timeout: {e or 'request timed out'}") from e
        except httpx.HTTPError as e:
            raise TransportError(method, shown, _reason(e)) from e
        text = resp.text
        body: JSON = None
        if text.strip():
            try:
                body = jsonlib.loads(text)
            except ValueError:
                body = None
        if resp.status_code >= 400:
            errors = body.get("errors") if isinstance(body, dict) else None
            raise APIError(
                resp.status_code,
                [str(e) for e in errors] if isinstance(errors, list) else [],
                method=method,
                url=shown,
                raw=text,
                body=body,
            )
        return body

    async def raw(self, method: str, path: str, content: bytes | None = None) -> bytes:
        """A request whose bodies are bytes, not JSON (a snapshot): the answer's body, or raise."""
        url = self.url(path)
        try:
            resp = await self._http.request(method.upper(), url, content=content, headers=self._headers(None))
        except httpx.HTTPError as e:
            raise TransportError(method.upper(), url, _reason(e)) from e
        if resp.status_code >= 400:
            try:
                errors = jsonlib.loads(resp.text).get("errors")
            except (ValueError, AttributeError):
                errors = None
            raise APIError(resp.status_code, [str(e) for e in errors] if isinstance(errors, list) else [],
                           method=method.upper(), url=url, raw=resp.text)
        return resp.content

    # Thin conveniences with Vault's CLI verbs; each is one request.

    async def read(self, path: str, params: Mapping[str, Any] | None = None) -> JSON:
        return await self.request("GET", path, params=params)

    async def read_secret(self, path: str, params: Mapping[str, Any] | None = None) -> JSON:
        """GET with Vault's read semantics: a 404 is "nothing there" (``None``) unless its body
        still carries data or warnings (a KV v2 read of a deleted version does)."""
        try:
            return await self.read(path, params)
        except APIError as e:
            if e.status != 404:
                raise
            if isinstance(e.body, dict) and (e.body.get("data") is not None or e.warnings):
                return e.body
            return None

    async def list_secret(self, path: str) -> JSON:
        """LIST with Vault's semantics: a 404 is an empty result, ``None``."""
        try:
            return await self.list(path)
        except APIError as e:
            if e.status == 404:
                return None
            raise

    async def list(self, path: str) -> JSON:
        return await self.request("LIST", path)

    async def write(self, path: str, data: JSON = None, method: str = "PUT") -> JSON:
        return await self.request(method, path, json=data if data is not None else {})

    async def delete(self, path: str, params: Mapping[str, Any] | None = None) -> JSON:
        return await self.request("DELETE", path, params=params)


def _file_error(e: OSError | ssl.SSLError, path: str) -> str:
    if isinstance(e, ssl.SSLError):
        return str(e)
    return f"open {path}: {(e.strerror or str(e)).lower()}"


def _reason(e: httpx.HTTPError) -> str:
    """The innermost cause of a transport failure, e.g. "connection refused"."""
    text = str(e)
    cause: BaseException | None = e.__cause__ or e.__context__
    while cause is not None:
        if str(cause):
            text = str(cause)
        cause = cause.__cause__ or cause.__context__
    if "Connection refused" in text or "Errno 111" in text:
        return "connect: connection refused"
    return text or type(e).__name__
