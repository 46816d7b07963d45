"""CachedStorage: a read-through LRU cache of ``get`` results in front of another Storage.

It wraps physical storage (below the barrier), so it caches ciphertext, like Vault's physical
cache. Misses are cached too (a ``None`` result), because backends probe for absent keys often.
``put``, ``delete`` and ``write_batch`` through the wrapper invalidate the keys they write (before
and after, also when the write fails: then the stored state is unknown); ``list`` is not cached.

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

from strongroom.logical import Storage, WriteOp, apply_writes

DEFAULT_SIZE = 131072  # entries; Vault's physical cache defaults to 128k entries too


class _Missing:
    __slots__ = ()


_MISSING: Final = _Missing()  # "not in the cache", distinct from a cached None ("not in storage")


class CachedStorage:
    """LRU of up to ``size`` ``get`` results, invalidated by writes made through it."""

    __slots__ = ("_entries", "_epoch", "_inner", "_size", "hits", "misses")

    def __init__(self, inner: Storage, size: int = DEFAULT_SIZE) -> None:
        if size < 1:
            raise ValueError("cache size must be at least 1")
        self._inner = inner
        self._size = size
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
            self._entries[key] = value
            self._entries.move_to_end(key)
            if len(self._entries) > self._size:
                self._entries.popitem(last=False)
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

    async def close(self) -> None:
        """Close the wrapped storage if it owns resources."""
        self.purge()
        close = getattr(self._inner, "close", None)
        if close is not None:
            await close()

    def _invalidate(self, key: str) -> None:
        self._epoch += 1
        self._entries.pop(key, None)

    def _invalidate_all(self, keys: Sequence[str]) -> None:
        self._epoch += 1
        entries = self._entries
        for key in keys:
            entries.pop(key, None)


__all__ = ["DEFAULT_SIZE", "CachedStorage"]
