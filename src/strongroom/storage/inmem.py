"""In-memory physical storage: for tests and ``server -dev``. Nothing survives the process.

Values live in a dict; a sorted list of keys (kept with :mod:`bisect`) lets ``list(prefix)`` jump
straight to the prefix and skip over whole sub-folders instead of scanning every key.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Sequence
from typing import Any

from strongroom.logical import WriteOp
from strongroom.storage import PhysicalStorage

# '/' + 1: every key below folder "x/" sorts before "x0", so bisecting to it skips the folder.
_AFTER_SLASH = chr(ord("/") + 1)


class InmemStorage:
    """Dict-backed Storage. Single event loop only (no locking needed: no method awaits midway)."""

    __slots__ = ("_data", "_keys")

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}
        self._keys: list[str] = []  # sorted; the same set as self._data's keys

    def __len__(self) -> int:
        return len(self._data)

    async def get(self, key: str) -> bytes | None:
        return self._data.get(key)

    async def put(self, key: str, value: bytes) -> None:
        if key not in self._data:
            insort(self._keys, key)
        # bytes() copies a bytearray/memoryview so a caller mutating its buffer cannot change us.
        self._data[key] = bytes(value)

    async def delete(self, key: str) -> None:
        if self._data.pop(key, None) is not None:
            del self._keys[bisect_left(self._keys, key)]

    async def write_batch(self, ops: Sequence[WriteOp]) -> None:
        """All of ``ops``, atomically: nothing here awaits, so no other task sees a partial batch.

        Through ``put``/``delete`` so that test subclasses which observe or slow down writes see
        batched writes too (a subclass that awaits inside them gives up the atomicity).
        """
        checked = [(key, None if value is None else bytes(value)) for key, value in ops]  # fail before any write
        for key, value in checked:
            if value is None:
                await self.delete(key)
            else:
                await self.put(key, value)

    async def list(self, prefix: str) -> list[str]:
        keys = self._keys
        n = len(prefix)
        out: list[str] = []
        i = bisect_left(keys, prefix)
        # Walking the sorted keys yields children already in sorted order (a folder "a/" sorts
        # exactly where its first descendant does), so no final sort is needed.
        while i < len(keys):
            key = keys[i]
            if not key.startswith(prefix):
                break
            slash = key.find("/", n)
            if slash < 0:
                if len(key) > n:
                    out.append(key[n:])
                i += 1
            else:
                out.append(key[n : slash + 1])
                i = bisect_left(keys, key[:slash] + _AFTER_SLASH, i + 1)
        return out

    async def close(self) -> None:
        """Nothing to release; the data stays readable so a test can inspect it after shutdown."""


async def open_inmem(options: dict[str, Any]) -> PhysicalStorage:
    """Factory for ``storage "inmem" {}``; takes no options."""
    return InmemStorage()


__all__ = ["InmemStorage", "open_inmem"]
