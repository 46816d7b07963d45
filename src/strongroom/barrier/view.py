"""StorageView: a prefix "chroot" over a Storage, handed to each mount and subsystem.

A backend mounted at ``secret/`` gets a view rooted at e.g. ``logical/<mount uuid>/`` and sees
only keys relative to it. Because keys are joined to the prefix by plain concatenation and every
backend we ship treats keys as opaque strings, a view cannot reach outside its prefix; the ``..``
check below is defence in depth for path-based physical stores such as the file backend.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from strongroom.errors import InvalidRequest
from strongroom.logical import Storage, WriteOp, apply_writes

# How many deletes clear() keeps in flight at once: enough to fill a group commit, bounded so a
# huge mount does not create one task per key.
_CLEAR_BATCH = 64


class StorageView:
    """Storage rooted at ``prefix`` inside ``storage``. Implements :class:`strongroom.logical.Storage`."""

    __slots__ = ("_prefix", "_storage")

    def __init__(self, storage: Storage, prefix: str) -> None:
        _check_key(prefix)
        self._storage = storage
        self._prefix = prefix

    @property
    def prefix(self) -> str:
        return self._prefix

    @property
    def storage(self) -> Storage:
        return self._storage

    def sub(self, prefix: str) -> StorageView:
        """A nested view: ``view.sub("b/")`` is rooted at ``view.prefix + "b/"`` in the same storage."""
        _check_key(prefix)
        return StorageView(self._storage, self._prefix + prefix)

    async def get(self, key: str) -> bytes | None:
        return await self._storage.get(self._expand(key))

    async def put(self, key: str, value: bytes) -> None:
        await self._storage.put(self._expand(key), value)

    async def delete(self, key: str) -> None:
        await self._storage.delete(self._expand(key))

    async def write_batch(self, ops: Sequence[WriteOp]) -> None:
        """The batch with every key prefixed, passed down as one batch."""
        await apply_writes(self._storage, [(self._expand(key), value) for key, value in ops])

    def chroot_target(self, key: str) -> tuple[Storage, str]:
        """(the storage under this view, ``key`` as it is named there): lets a
        :class:`~strongroom.logical.WriteBatch` merge writes of several views into one batch."""
        return self._storage, self._expand(key)

    async def list(self, prefix: str) -> list[str]:
        # Children are relative to the listed prefix, so they need no translation back.
        return await self._storage.list(self._expand(prefix))

    async def clear(self) -> None:
        """Delete every key under this view's prefix (e.g. when a mount is removed)."""
        pending: list[str] = [""]
        while pending:
            folder = pending.pop()
            leaves: list[str] = []
            for child in await self.list(folder):
                if child.endswith("/"):
                    pending.append(folder + child)
                else:
                    leaves.append(folder + child)
            for start in range(0, len(leaves), _CLEAR_BATCH):
                batch = leaves[start : start + _CLEAR_BATCH]
                await asyncio.gather(*(self.delete(key) for key in batch))

    def _expand(self, key: str) -> str:
        _check_key(key)
        return self._prefix + key


def _check_key(key: str) -> None:
    # SECURITY: refuse relative segments so no key handed to a view can ever name a path outside
    # the view on a backend that interprets keys as file paths.
    if ".." in key and ".." in key.split("/"):
        raise InvalidRequest("key cannot contain a '..' path segment")
    if key.startswith("/"):
        raise InvalidRequest("key cannot start with '/'")


__all__ = ["StorageView"]

