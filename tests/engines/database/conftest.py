"""Fixtures for the database engine: an in-process core with ``database/`` mounted, and the real
PostgreSQL, MariaDB and Redis of this machine (each test skips with a reason when one is absent).

Every test uses its own connection names and the users the engine makes; what a test creates by
hand (a throwaway root user) it drops itself."""

from __future__ import annotations

import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from strongroom.core import Core
from strongroom.engines.database import DatabaseBackend
from strongroom.framework import wal
from strongroom.storage.inmem import InmemStorage
from strongroom.testing import app_client

PG_URL = "postgresql://{{username}}:{{password}}@127.0.0.1:5432/postgres"
MYSQL_URL = "{{username}}:{{password}}@tcp(127.0.0.1:3306)/"


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def need(port: int, what: str) -> None:
    if not listening(port):
        pytest.skip(f"{what} is not running on 127.0.0.1:{port}")


@pytest.fixture
def pg_up() -> None:
    need(5432, "PostgreSQL")


@pytest.fixture
def mysql_up() -> None:
    need(3306, "MariaDB/MySQL")


@pytest.fixture
def redis_up() -> None:
    need(6379, "Redis")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens there once the socket is closed


@dataclass
class DB:
    core: Core
    client: httpx.AsyncClient
    physical: InmemStorage
    unseal_key: Any = None

    @property
    def backend(self) -> DatabaseBackend:
        hit = self.core.router.match("database/creds/x")
        assert hit is not None and isinstance(hit[0].backend, DatabaseBackend)
        return hit[0].backend

    async def write(self, path: str, expect: int = 204, **body: Any) -> dict[str, Any]:
        resp = await self.client.post(f"/v1/database/{path}", json=body)
        assert resp.status_code == expect, resp.text
        return resp.json() if resp.content else {}

    async def read(self, path: str, expect: int = 200) -> dict[str, Any]:
        resp = await self.client.get(f"/v1/database/{path}")
        assert resp.status_code == expect, resp.text
        return resp.json() if resp.content else {}


@pytest.fixture
async def db() -> AsyncIterator[DB]:
    wal.forget_in_flight()
    physical = InmemStorage()
    core = Core(physical)
    key, _ = await core.dev_bootstrap("root")
    try:
        async with app_client(core, "root") as client:
            resp = await client.post("/v1/sys/mounts/database", json={"type": "database"})
            assert resp.status_code == 204, resp.text
            yield DB(core, client, physical, key)
            if not core.sealed:  # a test that failed half way leaves no user behind
                await client.put("/v1/sys/leases/revoke-prefix/database", json={"sync": True})
    finally:
        await core.seal()


def unique(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(4)}"
