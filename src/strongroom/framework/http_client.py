"""One pooled HTTP client per mount, for backends that call an outside API (github, okta, aws): made
on first use, closed when the mount stops. Never follows redirects (the configured endpoint is the
only target) and ignores proxy settings from the environment.

Also the pieces such backends share: :class:`APIBackend` (a backend owning one pool),
:func:`call_json` (one call, transport failures turned into the caller's own "unavailable" error,
the answer parsed as JSON) and :func:`check_http_url` (a configured endpoint's validation).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Self
from urllib.parse import urlsplit

import httpx
import orjson

from strongroom.errors import InvalidRequest
from strongroom.framework.backend import Backend, BackendConfig
from strongroom.framework.path import Path

#: The most of an answer body that is read (a larger one is cut, and then is not JSON).
MAX_BODY = 4 << 20


class PooledClient:
    def __init__(self, max_connections: int, max_keepalive_connections: int | None = None) -> None:
        self._limits = httpx.Limits(max_connections=max_connections,
                                    max_keepalive_connections=max_keepalive_connections)
        self._client: httpx.AsyncClient | None = None

    def get(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False, limits=self._limits)
        return self._client

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


class APIBackend(Backend):
    """A backend whose handlers call one outside API, over a pool of its own closed on deactivate."""

    #: Seconds one call to the API may take.
    api_timeout: float = 10.0

    def __init__(self, cfg: BackendConfig, paths: Sequence[Path[Self]]) -> None:
        super().__init__(cfg, paths)
        self._http = PooledClient(max_connections=64, max_keepalive_connections=16)

    def client(self) -> httpx.AsyncClient:
        return self._http.get()

    async def deactivate(self) -> None:
        await self._http.close()
        await super().deactivate()


async def call_json(client: httpx.AsyncClient, method: str, url: str, *, shown: str, api: str,
                    timeout: float, unavailable: type[Exception], headers: dict[str, str],
                    params: dict[str, str] | None = None,
                    content: bytes | None = None) -> tuple[httpx.Response, Any]:
    """One call and its answer, parsed (None when empty or not JSON; the caller judges the status).
    A call that gets no answer raises ``unavailable`` naming ``method shown`` and ``api``, never the
    request headers (they carry the credential)."""
    try:
        async with asyncio.timeout(timeout):
            resp = await client.request(method, url, params=params, content=content, headers=headers,
                                        timeout=timeout)
    except (TimeoutError, httpx.TimeoutException):
        raise unavailable(f"{method} {shown}: {api} did not answer within {timeout:g}s") from None
    except httpx.ConnectError as e:
        raise unavailable(f"{method} {shown}: {type(e).__name__}: {e}") from None
    except httpx.HTTPError as e:  # its text may quote request headers: never shown
        raise unavailable(f"{method} {shown}: {type(e).__name__}") from None
    body = resp.content[:MAX_BODY]
    try:
        doc: Any = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        doc = None
    return resp, doc


def check_http_url(name: str, value: str) -> str:
    """``value`` (already stripped, not empty) if it is an http(s) URL with a host and a valid port,
    without its trailing "/"; 400 naming the field ``name`` otherwise."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest(f"invalid {name} {value!r}: must be an http(s) URL")
    try:
        _ = parts.port
    except ValueError:
        raise InvalidRequest(f"invalid {name} {value!r}: bad port") from None
    return value.rstrip("/")
