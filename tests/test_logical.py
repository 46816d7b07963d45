"""WriteBatch and apply_writes: writes of several views merged into one batch of the store beneath."""

from __future__ import annotations

from pathlib import Path

import pytest

from strongroom.barrier import Barrier
from strongroom.barrier.seal import SealConfig
from strongroom.barrier.view import StorageView
from strongroom.logical import WriteBatch, apply_writes
from strongroom.storage.cache import CachedStorage
from strongroom.storage.inmem import InmemStorage
from strongroom.storage.sqlite import SqliteStorage, open_sqlite


class PlainStorage:
    """Storage with no write_batch: the fallback path. Records the order of writes."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.log: list[tuple[str, bytes | None]] = []

    async def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    async def put(self, key: str, value: bytes) -> None:
        self.log.append((key, value))
        self.data[key] = value

    async def delete(self, key: str) -> None:
        self.log.append((key, None))
        self.data.pop(key, None)

    async def list(self, prefix: str) -> list[str]:
        return sorted(k[len(prefix):] for k in self.data if k.startswith(prefix))


async def test_apply_writes_falls_back_to_ordered_writes() -> None:
    store = PlainStorage()
    await apply_writes(store, [("a", b"1"), ("a", None), ("b", b"2")])
    assert store.log == [("a", b"1"), ("a", None), ("b", b"2")]
    assert store.data == {"b": b"2"}


async def test_views_of_one_barrier_commit_as_one_sqlite_transaction(tmp_path: Path) -> None:
    physical = await open_sqlite({"path": str(tmp_path / "db")})
    assert isinstance(physical, SqliteStorage)
    try:
        barrier = Barrier(CachedStorage(physical))
        await barrier.unseal(await barrier.initialize(SealConfig(1, 1)))
        tokens, leases = StorageView(barrier, "sys/token/"), StorageView(barrier, "sys/expire/").sub("id/")
        batch = WriteBatch()
        batch.put(tokens, "accessor/x", b"index")
        batch.put(tokens, "id/x", b"entry")
        batch.put(leases, "lease", b"lease")
        batch.delete(tokens, "stale")
        done: list[str] = []
        batch.on_commit(lambda: done.append("commit"))
        batch.on_settled(lambda: done.append("settled"))
        assert len(batch) == 4
        before = physical.commits
        await batch.commit()
        assert physical.commits - before == 1
        assert done == ["commit", "settled"]
        assert await tokens.get("id/x") == b"entry"
        assert await barrier.get("sys/expire/id/lease") == b"lease"
        raw = await physical.get("sys/token/accessor/x") or b""
        assert b"index" not in raw  # encrypted on the way down
    finally:
        await physical.close()


async def test_failed_commit_runs_only_settled_callbacks() -> None:
    barrier = Barrier(InmemStorage())
    await barrier.unseal(await barrier.initialize(SealConfig(1, 1)))
    view = StorageView(barrier, "v/")
    batch = WriteBatch()
    batch.put(view, "ok", b"1")
    batch.put(barrier, "core/keyring", b"reserved")  # refused by the barrier: the whole batch fails
    done: list[str] = []
    batch.on_commit(lambda: done.append("commit"))
    batch.on_settled(lambda: done.append("settled"))
    with pytest.raises(Exception, match="reserved"):
        await batch.commit()
    assert done == ["settled"]
    assert await view.get("ok") is None


async def test_writes_to_different_stores_go_store_by_store_in_order() -> None:
    a, b = PlainStorage(), PlainStorage()
    batch = WriteBatch()
    batch.put(StorageView(a, "x/"), "1", b"1")
    batch.put(b, "2", b"2")
    batch.delete(StorageView(a, "x/"), "1")
    await batch.commit()
    assert a.log == [("x/1", b"1"), ("x/1", None)]
    assert b.log == [("2", b"2")]
    await WriteBatch().commit()  # empty: nothing to do
