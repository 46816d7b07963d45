"""CachedStorage: read-through LRU, negative caching, invalidation, no stale reads under races."""

from __future__ import annotations

import asyncio

import pytest

from strongroom.storage.cache import ENTRY_OVERHEAD, CachedStorage
from strongroom.storage.inmem import InmemStorage


class CountingStorage(InmemStorage):
    """Inmem storage that counts reads and can be made to pause inside get/put."""

    __slots__ = ("get_gate", "gets", "put_gate")

    def __init__(self) -> None:
        super().__init__()
        self.gets = 0
        self.get_gate: asyncio.Event | None = None
        self.put_gate: asyncio.Event | None = None

    async def get(self, key: str) -> bytes | None:
        self.gets += 1
        value = await super().get(key)
        if self.get_gate is not None:
            await self.get_gate.wait()
        return value

    async def put(self, key: str, value: bytes) -> None:
        if self.put_gate is not None:
            await self.put_gate.wait()
        await super().put(key, value)


async def test_hits_do_not_reach_inner() -> None:
    inner = CountingStorage()
    cache = CachedStorage(inner, size=10)
    await cache.put("k", b"v")
    assert await cache.get("k") == b"v"
    assert await cache.get("k") == b"v"
    assert inner.gets == 1
    assert (cache.hits, cache.misses) == (1, 1)


async def test_negative_results_are_cached() -> None:
    inner = CountingStorage()
    cache = CachedStorage(inner)
    assert await cache.get("absent") is None
    assert await cache.get("absent") is None
    assert inner.gets == 1
    await cache.put("absent", b"now here")
    assert await cache.get("absent") == b"now here"


async def test_put_and_delete_invalidate() -> None:
    inner = CountingStorage()
    cache = CachedStorage(inner)
    await cache.put("k", b"1")
    assert await cache.get("k") == b"1"
    await cache.put("k", b"2")
    assert await cache.get("k") == b"2"
    await cache.delete("k")
    assert await cache.get("k") is None
    assert inner.gets == 3


async def test_lru_eviction() -> None:
    inner = CountingStorage()
    cache = CachedStorage(inner, size=2)
    for key in ("a", "b"):
        await cache.put(key, key.encode())
        await cache.get(key)
    await cache.get("a")  # "a" is now most recently used
    await cache.get("c")  # evicts "b"
    assert len(cache) == 2
    gets = inner.gets
    await cache.get("a")
    assert inner.gets == gets  # still cached
    await cache.get("b")
    assert inner.gets == gets + 1  # was evicted


async def test_byte_budget_bounds_the_cache() -> None:
    inner = CountingStorage()
    one = len("k0") + 100 + ENTRY_OVERHEAD
    cache = CachedStorage(inner, max_bytes=8 * one)
    for i in range(10):
        await cache.put(f"k{i}", bytes(100))
        await cache.get(f"k{i}")
    assert len(cache) == 8 and cache.used == 8 * one  # the two least recently used went
    gets = inner.gets
    await cache.get("k9")
    await cache.get("k2")
    assert inner.gets == gets
    await cache.get("k0")
    assert inner.gets == gets + 1
    # Writes and purge give their bytes back.
    await cache.delete("k9")
    assert len(cache) == 7 and cache.used == 7 * one
    cache.purge()
    assert cache.used == 0


async def test_a_value_too_large_for_the_budget_is_not_cached() -> None:
    inner = CountingStorage()
    cache = CachedStorage(inner, max_bytes=8 * 1024)
    await cache.put("small", b"s")
    await cache.get("small")
    await cache.put("big", bytes(2048))  # over an eighth of the budget
    assert await cache.get("big") == bytes(2048)
    assert await cache.get("big") == bytes(2048)
    assert inner.gets == 3 and len(cache) == 1  # read through each time; "small" stays


async def test_list_passes_through() -> None:
    inner = CountingStorage()
    cache = CachedStorage(inner)
    await cache.put("a/b", b"1")
    await inner.put("a/c", b"2")  # behind the cache's back: list still sees it
    assert await cache.list("a/") == ["b", "c"]


async def test_read_racing_a_write_never_caches_the_old_value() -> None:
    inner = CountingStorage()
    cache = CachedStorage(inner)
    await cache.put("k", b"old")
    inner.get_gate = asyncio.Event()
    reader = asyncio.ensure_future(cache.get("k"))
    await asyncio.sleep(0)  # the read has fetched b"old" and is parked
    await cache.put("k", b"new")
    inner.get_gate.set()
    assert await reader == b"old"  # it began before the write: fine to return
    inner.get_gate = None
    assert await cache.get("k") == b"new"  # but it must not have been cached


async def test_read_during_slow_write_is_not_cached() -> None:
    inner = CountingStorage()
    cache = CachedStorage(inner)
    await cache.put("k", b"old")
    inner.put_gate = asyncio.Event()
    writer = asyncio.ensure_future(cache.put("k", b"new"))
    await asyncio.sleep(0)  # the write is in flight, not yet applied
    assert await cache.get("k") == b"old"
    inner.put_gate.set()
    await writer
    assert await cache.get("k") == b"new"


async def test_close_closes_inner_and_rejects_bad_size() -> None:
    closed: list[bool] = []

    class Closable(InmemStorage):
        async def close(self) -> None:
            closed.append(True)

    cache = CachedStorage(Closable())
    await cache.put("k", b"v")
    await cache.get("k")
    await cache.close()
    assert closed == [True]
    assert len(cache) == 0
    with pytest.raises(ValueError):
        CachedStorage(InmemStorage(), size=0)


# -- write_batch ----------------------------------------------------------------------------------
class HalfFailingStorage(InmemStorage):
    """A store whose batches apply their first write and then fail (a non-atomic store crashing)."""

    async def write_batch(self, ops: list[tuple[str, bytes | None]]) -> None:
        key, value = ops[0]
        await (self.delete(key) if value is None else self.put(key, value))
        raise OSError("disk on fire")


async def test_write_batch_invalidates_every_key() -> None:
    inner = CountingStorage()
    cache = CachedStorage(inner)
    await cache.put("a", b"1")
    await cache.put("b", b"1")
    assert (await cache.get("a"), await cache.get("b"), await cache.get("c")) == (b"1", b"1", None)
    await cache.write_batch([("a", b"2"), ("b", None), ("c", b"3")])
    assert (await cache.get("a"), await cache.get("b"), await cache.get("c")) == (b"2", None, b"3")


async def test_failed_write_batch_leaves_no_stale_entry() -> None:
    inner = HalfFailingStorage()
    cache = CachedStorage(inner)
    await cache.put("a", b"old")
    await cache.put("b", b"old")
    assert await cache.get("a") == b"old" and await cache.get("b") == b"old"  # both cached
    with pytest.raises(OSError, match="fire"):
        await cache.write_batch([("a", b"new"), ("b", b"new")])
    # The store holds a's new value; the cache must not keep serving the old one.
    assert await cache.get("a") == b"new"
    assert await cache.get("b") == b"old"


async def test_write_batch_racing_a_miss_does_not_cache_the_old_value() -> None:
    inner = CountingStorage()
    cache = CachedStorage(inner)
    await inner.put("k", b"old")
    inner.get_gate = asyncio.Event()
    reader = asyncio.ensure_future(cache.get("k"))
    await asyncio.sleep(0)  # the miss has read "old" and waits
    await cache.write_batch([("k", b"new")])
    inner.get_gate.set()
    assert await reader == b"old"  # read before the write: fine to return, not to cache
    inner.get_gate = None
    assert await cache.get("k") == b"new"


async def test_read_during_write_batch_is_not_cached_past_it() -> None:
    inner = CountingStorage()
    cache = CachedStorage(inner)
    await cache.put("k", b"old")
    inner.put_gate = asyncio.Event()
    writer = asyncio.ensure_future(cache.write_batch([("j", b"x"), ("k", b"new")]))
    await asyncio.sleep(0)  # the batch is parked before it reaches the store
    assert await cache.get("k") == b"old"  # a read in the meantime sees (and caches) the old value
    inner.put_gate.set()
    await writer
    assert await cache.get("k") == b"new"
