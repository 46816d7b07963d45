"""Fixtures for auth method tests: an unsealed core with userpass and approle enabled, spoken to
over the in-process HTTP client (logins need core to mint their tokens)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import bcrypt
import httpx
import pytest

from strongroom.testing import asgi_client, unsealed_core


class Vault:
    """An HTTP client to an in-process server, with a few helpers for status assertions."""

    def __init__(self, core: Any, client: httpx.AsyncClient) -> None:
        self.core = core
        self.client = client

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None, token: str | None = "root",
                   headers: dict[str, str] | None = None) -> httpx.Response:
        h = dict(headers or {})
        if token is not None:
            h["X-Vault-Token"] = token
        return await self.client.request(method, f"/v1/{path}", json=body, headers=h)

    async def ok(self, method: str, path: str, body: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        r = await self.call(method, path, body, **kw)
        assert r.status_code == 200, (r.status_code, r.text)
        return dict(r.json())

    async def done(self, method: str, path: str, body: dict[str, Any] | None = None, **kw: Any) -> None:
        r = await self.call(method, path, body, **kw)
        assert r.status_code == 204, (r.status_code, r.text)

    async def fails(self, status: int, method: str, path: str, body: dict[str, Any] | None = None,
                    **kw: Any) -> list[str]:
        r = await self.call(method, path, body, **kw)
        assert r.status_code == status, (r.status_code, r.text)
        return list(r.json()["errors"])


@pytest.fixture
async def vault() -> AsyncIterator[Vault]:
    async with unsealed_core() as (core, _), asgi_client(core) as client:
        v = Vault(core, client)
        await v.done("POST", "sys/auth/userpass", {"type": "userpass"})
        await v.done("POST", "sys/auth/approle", {"type": "approle"})
        yield v


@pytest.fixture
def bcrypt_calls(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The hashes bcrypt.checkpw is asked to check, in order (it still checks them)."""
    calls: list[bytes] = []
    real = bcrypt.checkpw

    def spy(pw: bytes, hashed: bytes) -> bool:
        calls.append(hashed)
        return real(pw, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", spy)
    return calls
