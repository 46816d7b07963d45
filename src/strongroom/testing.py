"""Test fixtures shipped with the package: an unsealed in-memory core and an in-process HTTP client.

    async with unsealed_core() as (core, root_token): ...
    async with asgi_client(core) as client: await client.get("/v1/sys/health")
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from strongroom.core import Core, CoreConfig
from strongroom.http.app import App
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


@asynccontextmanager
async def asgi_client(core: Core, token: str | None = None, **app_options: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client speaking to the ASGI app in-process (no sockets)."""
    transport = httpx.ASGITransport(app=App(core, **app_options))
    headers = {"X-Vault-Token": token} if token else {}
    async with httpx.AsyncClient(transport=transport, base_url="http://strongroom", headers=headers) as client:
        yield client
