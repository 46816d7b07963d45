"""Fixtures for identity tests: an in-process core with userpass enabled, over HTTP; and, for the
client tests, a real server initialised and unsealed through hvac."""

from __future__ import annotations

from collections.abc import AsyncIterator

import hvac
import pytest
from tests.auth.conftest import Vault
from tests.compat.conftest import RunningServer

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


def hvac_unsealed(server: RunningServer) -> hvac.Client:
    """An hvac client of ``server``, which it initialises (1 share) and unseals; root token set."""
    client = hvac.Client(url=server.addr)
    init = client.sys.initialize(secret_shares=1, secret_threshold=1)
    server.root_token = init["root_token"]
    client.sys.submit_unseal_key(init["keys_base64"][0])
    client.token = server.root_token
    return client
