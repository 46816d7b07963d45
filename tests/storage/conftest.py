"""Fixtures shared by the storage tests: every physical backend, opened fresh per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from strongroom.storage import PhysicalStorage, open_storage
from strongroom.storage.cache import CachedStorage
from strongroom.storage.inmem import InmemStorage

BACKENDS = ["inmem", "sqlite", "file", "cache"]


async def open_backend(kind: str, tmp_path: Path) -> PhysicalStorage:
    if kind == "inmem":
        return await open_storage("inmem", {})
    if kind == "sqlite":
        return await open_storage("sqlite", {"path": str(tmp_path / "db" / "strongroom.db")})
    if kind == "file":
        return await open_storage("file", {"path": str(tmp_path / "data")})
    if kind == "cache":
        # A small cache so eviction happens during the suite too.
        return CachedStorage(InmemStorage(), size=4)
    raise AssertionError(kind)


@pytest.fixture(params=BACKENDS)
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PhysicalStorage]:
    backend = await open_backend(request.param, tmp_path)
    try:
        yield backend
    finally:
        await backend.close()
