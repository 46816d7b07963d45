"""Fixtures shared by the storage tests: every physical backend, opened fresh per test.

postgresql runs against the local server (127.0.0.1:5432, user postgres) in a fresh table per
test, dropped afterwards; etcd against an etcd the session starts on free ports in a tmp dir.
Either is skipped, with the reason, when its server is not there.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from strongroom.storage import PhysicalStorage, open_storage
from strongroom.storage.cache import CachedStorage
from strongroom.storage.inmem import InmemStorage
from tests.storage.services import EtcdServer, drop_pg_table, pg_url_or_skip, start_etcd_or_skip

BACKENDS = ["inmem", "sqlite", "file", "cache", "postgresql", "etcd", "postgresql-notify"]


@pytest.fixture(scope="session")
def etcd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    server = start_etcd_or_skip(tmp_path_factory.mktemp("etcd"))
    try:
        yield server
    finally:
        server.stop()


async def open_backend(kind: str, tmp_path: Path, request: pytest.FixtureRequest | None = None) -> PhysicalStorage:
    if kind == "inmem":
        return await open_storage("inmem", {})
    if kind == "sqlite":
        return await open_storage("sqlite", {"path": str(tmp_path / "db" / "strongroom.db")})
    if kind == "file":
        return await open_storage("file", {"path": str(tmp_path / "data")})
    if kind == "cache":
        # A small cache so eviction happens during the suite too.
        return CachedStorage(InmemStorage(), size=4)
    if kind == "postgresql":
        return await open_storage("postgresql", {"connection_url": pg_url_or_skip(),
                                                 "table": f"sr_test_{uuid.uuid4().hex[:12]}", "max_parallel": "4"})
    if kind == "postgresql-notify":  # as under HA: every write also NOTIFYs its key (storage/pg_changes.py)
        store = await open_backend("postgresql", tmp_path, request)
        getattr(store, "publish_changes")()
        return store
    if kind == "etcd":
        assert request is not None
        etcd: EtcdServer = request.getfixturevalue("etcd_server")
        return await open_storage("etcd", {"address": etcd.address, "path": f"/sr-test-{uuid.uuid4().hex[:12]}/"})
    raise AssertionError(kind)


@pytest.fixture(params=BACKENDS)
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PhysicalStorage]:
    backend = await open_backend(request.param, tmp_path, request)
    try:
        yield backend
    finally:
        await backend.close()
        table = getattr(backend, "table_name", None)
        if request.param.startswith("postgresql") and table:
            await drop_pg_table(table)
