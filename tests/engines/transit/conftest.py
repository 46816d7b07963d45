"""A transit mount over in-memory storage, driven through the backend's path table."""

from __future__ import annotations

import json
from typing import Any

import pytest

from strongroom.errors import StrongroomError
from strongroom.framework import Op

from ..conftest import Mount, mount


class Transit(Mount):
    async def write(self, path: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.ok(Op.UPDATE, path, data)

    async def read(self, path: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.ok(Op.READ, path, data)

    async def error(self, op: Op, path: str, data: dict[str, Any] | None = None) -> StrongroomError:
        """The error a call raises (it must raise one)."""
        with pytest.raises(StrongroomError) as info:
            await self.call(op, path, data)
        return info.value

    async def stored(self, name: str) -> dict[str, Any]:
        """The key as stored (Vault's keysutil Policy JSON)."""
        raw = await self.storage.get("policy/" + name)
        assert raw is not None
        value: dict[str, Any] = json.loads(raw)
        return value

    async def fails(self, path: str, data: dict[str, Any] | None = None, status: int = 400) -> str:
        err = await self.error(Op.UPDATE, path, data)
        assert err.status_code == status, err
        return err.message


@pytest.fixture
async def transit() -> Transit:
    m = await mount("transit")
    return Transit(m.backend, m.storage)
