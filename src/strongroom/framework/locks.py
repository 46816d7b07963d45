"""Striped locks: a fixed set of asyncio locks shared out by key.

Why: any read-modify-write of a stored record (a token's use count, a lease's expiry, a kv key's
version, an AppRole secret id's uses) must not interleave with another on the same record, yet a
lock per key grows without bound. A fixed number of stripes keeps memory constant; two keys that
land on one stripe merely wait for each other. Everything runs on one event loop.

    locks = StripedLocks()
    async with locks.lock_for(key):
        entry = await load(key); entry.uses -= 1; await store(key, entry)

The stripe is chosen with the builtin ``hash()``: randomised per process for strings, so a caller
cannot choose keys that all fall on one stripe (a predictable hash such as CRC-32 would let one).
A lock is not re-entrant: never take the lock of a second key while holding one (the two may share
a stripe).
"""

from __future__ import annotations

import asyncio

#: Enough stripes that unrelated keys rarely wait on each other, few enough to cost nothing.
DEFAULT_STRIPES = 64


class StripedLocks:
    __slots__ = ("_locks",)

    def __init__(self, stripes: int = DEFAULT_STRIPES) -> None:
        if stripes <= 0:
            raise ValueError("stripes must be positive")
        self._locks = tuple(asyncio.Lock() for _ in range(stripes))

    def __len__(self) -> int:
        return len(self._locks)

    def lock_for(self, key: str) -> asyncio.Lock:
        """The lock guarding ``key`` (the same lock for the same key, always)."""
        return self._locks[hash(key) % len(self._locks)]


__all__ = ["DEFAULT_STRIPES", "StripedLocks"]
