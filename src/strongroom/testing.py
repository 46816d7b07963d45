"""Test fixtures shipped with the package: an unsealed in-memory core and an in-process HTTP client.

    async with unsealed_core() as (core, root_token): ...
    async with app_client(core) as client: await client.get("/v1/sys/health")
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import unquote

import httpx

from strongroom.core import Core, CoreConfig
from strongroom.http import wire
from strongroom.http.app import App, too_large
from strongroom.http.logical import Peer
from strongroom.storage.inmem import InmemStorage


@asynccontextmanager
async def unsealed_core(root_token: str = "root", config: CoreConfig | None = None) -> AsyncIterator[tuple[Core, str]]:
    """A dev-mode core: in-memory storage, one unseal key, kv-v2 at secret/, the given root token."""
    core = Core(InmemStorage(), config)
    _, token = await core.dev_bootstrap(root_token)
    try:
        yield core, token
    finally:
        await core.seal()


class AppTransport(httpx.AsyncBaseTransport):
    """httpx → ``App.handle`` in-process (no sockets): what http/server.py hands the app, minus the wire.

    The body limit is applied to the whole body here; the socket server applies it while reading."""

    def __init__(self, app: App, peer: Peer | None = None) -> None:
        self.app = app
        self.peer = peer or Peer("127.0.0.1", 123)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        limit = self.app.max_request_size
        if 0 <= limit < len(body):
            status, out = too_large()
        else:
            raw_path, _, query = request.url.raw_path.partition(b"?")
            path = raw_path.decode("utf-8", "replace")
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.headers.raw}
            status, out = await self.app.handle(request.method, unquote(path) if "%" in path else path,
                                                query.decode("latin-1"), headers, body, self.peer)
        headers = {"content-type": "application/json"}
        if isinstance(out, wire.Body):
            headers = {"content-type": out.content_type, **out.headers}
        if request.method == "HEAD":
            out = b""
        return httpx.Response(status, headers=headers, content=bytes(out))


@asynccontextmanager
async def app_client(core: Core, token: str | None = None, **app_options: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client speaking to the app in-process (no sockets)."""
    headers = {"X-Vault-Token": token} if token else {}
    async with httpx.AsyncClient(transport=AppTransport(App(core, **app_options)), base_url="http://strongroom",
                                 headers=headers) as client:
        yield client


# The name from when the app was an ASGI app; tests across the tree still use it.
asgi_client = app_client
