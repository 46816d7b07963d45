"""Fixtures for identity tests: an in-process core with userpass enabled, over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from tests.auth.conftest import Vault

from strongroom.testing import asgi_client, unsealed_core


@pytest.fixture
async def vault() -> AsyncIterator[Vault]:
    async with unsealed_core() as (core, _), asgi_client(core) as client:
        v = Vault(core, client)
        await v.done("POST", "sys/auth/userpass", {"type": "userpass"})
        await v.done("POST", "sys/auth/approle", {"type": "approle"})
        yield v


async def accessor(v: Vault, mount: str = "userpass/") -> str:
    return str((await v.ok("GET", "sys/auth"))["data"][mount]["accessor"])
