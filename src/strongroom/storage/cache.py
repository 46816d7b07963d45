"""CachedStorage: a read-through LRU cache of ``get`` results in front of another Storage.

It wraps physical storage (below the barrier), so it caches ciphertext, like Vault's physical
cache. Misses are cached too (a ``None`` result), because backends probe for absent keys often.
``put``, ``delete`` and ``write_batch`` through the wrapper invalidate the keys they write (before
and after, also when the write fails: then the stored state is unknown); ``list`` is not cached.

Bounds: ``size`` entries (Vault's physical cache counts 128k) and ``max_bytes`` (keys, values and a
fixed overhead per entry), least recently used first out. The byte bound is Strongroom's: values
can be large, and hot reads are answered above the barrier from core's decoded caches and the
cache of repeated reads (core/readcache.py), so this layer mostly saves point selects (~5 us each
on sqlite) for what those miss.

Correctness assumes every write to ``inner`` goes through this wrapper (one process, one store).

Staleness guard: a ``get`` that misses awaits ``inner.get``; a write to the same key may complete
meanwhile. To never cache the value that write replaced, every write bumps an epoch before AND
after it reaches ``inner``, and a miss stores its result only if the epoch did not move while it
waited (conservative: any concurrent write skips caching that read).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Final

from strongroom.lifecycle import Part
from strongroom.logical import Storage, WriteOp, apply_writes

DEFAULT_SIZE = 131072  # entries; Vault's physical cache defaults to 128k entries too
DEFAULT_BYTES = 4 * 1024 * 1024
# Per entry beyond its key's and value's lengths: str and bytes headers, the OrderedDict node.
ENTRY_OVERHEAD = 220


class _Missing:
    __slots__ = ()


_MISSING: Final = _Missing()  # "not in the cache", distinct from a cached None ("not in storage")


class CachedStorage(Part):
    """LRU of up to ``size`` ``get`` results, invalidated by writes made through it."""

    __slots__ = ("_entries", "_epoch", "_inner", "_max_bytes", "_size", "hits", "misses", "used")

    def __init__(self, inner: Storage, size: int = DEFAULT_SIZE, max_bytes: int = DEFAULT_BYTES) -> None:
        if size < 1 or max_bytes < 1:
            raise ValueError("cache size must be at least 1")
        self._inner = inner
        self._size = size
        self._max_bytes = max_bytes
        self.used = 0  # bytes counted against max_bytes
        self._entries: OrderedDict[str, bytes | None] = OrderedDict()
        self._epoch = 0
        self.hits = 0
        self.misses = 0

    @property
    def inner(self) -> Storage:
        return self._inner

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        cached = self._entries.get(key, _MISSING)
        if not isinstance(cached, _Missing):
            self.hits += 1
            self._entries.move_to_end(key)
            return cached
        self.misses += 1
        epoch = self._epoch
        value = await self._inner.get(key)
        if epoch == self._epoch:
            cost = _cost(key, value)
            if cost > self._max_bytes // 8:
                return value  # one large value must not empty the cache
            self._forget(key)  # another get of the same key may have kept it meanwhile
            entries = self._entries
            entries[key] = value
            self.used += cost
            while len(entries) > self._size or self.used > self._max_bytes:
                k, v = entries.popitem(last=False)
                self.used -= _cost(k, v)
        return value

    async def put(self, key: str, value: bytes) -> None:
        self._invalidate(key)
        try:
            await self._inner.put(key, value)
        finally:
            # Also after: a read that slipped in while the write was in flight may have cached the
            # old value (see the module docstring); and on failure the stored state is unknown.
            self._invalidate(key)

    async def delete(self, key: str) -> None:
        self._invalidate(key)
        try:
            await self._inner.delete(key)
        finally:
            self._invalidate(key)

    async def write_batch(self, ops: Sequence[WriteOp]) -> None:
        """The inner store's atomic batch (or its in-order fallback), invalidating every key written."""
        keys = [key for key, _ in ops]
        self._invalidate_all(keys)
        try:
            await apply_writes(self._inner, ops)
        finally:
            self._invalidate_all(keys)

    async def list(self, prefix: str) -> list[str]:
        return await self._inner.list(prefix)

    def purge(self) -> None:
        """Forget everything (e.g. after another node changed the store)."""
        self._epoch += 1
        self._entries.clear()
        self.used = 0

    async def close(self) -> None:
        """Close the wrapped storage if it owns resources."""
        self.purge()
        close = getattr(self._inner, "close", None)
        if close is not None:
            await close()

    async def invalidate(self, key: str) -> None:
        """``key`` changed in the store behind this cache (another node's write): drop it."""
        self._invalidate(key)

    def _invalidate(self, key: str) -> None:
        self._epoch += 1
        self._forget(key)

    def _invalidate_all(self, keys: Sequence[str]) -> None:
        self._epoch += 1
        for key in keys:
            self._forget(key)

    def _forget(self, key: str) -> None:
        """Drop ``key``'s entry, if any, and the bytes it counted."""
        old = self._entries.pop(key, _MISSING)
        if not isinstance(old, _Missing):
            self.used -= _cost(key, old)


def _cost(key: str, value: bytes | None) -> int:
    return len(key) + (len(value) if value is not None else 0) + ENTRY_OVERHEAD


__all__ = ["DEFAULT_BYTES", "DEFAULT_SIZE", "CachedStorage"]
