"""``X-Vault-Index`` with meaning: which of the active's writes a standby has followed, so a client
that sends back the index of its last write reads that write on a standby (read-your-writes)
without the request going to the active (docs/ha.md, standby reads).

The active numbers the answers to its writes: ``sr1.<epoch>.<n>``, the epoch random per process (a
new active starts a new one). After numbering, it announces the highest number so far on the store's
change feed (PostgreSQL: a NOTIFY on the same channel as the keys, ``!index <epoch> <n>``); the
announcement is sent after the write's transaction committed, and the store delivers notifications
in commit order, so a standby that has received ``n`` has applied every write answered before it.
A standby keeps the highest number received per epoch (the last few epochs) and answers a read
carrying an index it covers; an index it does not cover within a short wait, of another epoch, or of
a form it does not know, goes to the active (http/app.py).

A store that numbers its commits itself needs no announcement (:class:`RevisionIndex`, etcd): the
index is ``sr1.<cluster id>.<revision>`` of the active's latest write, and the store's feed reports
the revision the standby's watch has delivered up to, in the same ``PREFIX`` form. The revision is
the cluster's, so an index stays meaningful when another node becomes active.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable

from strongroom.storage import INDEX_PREFIX

log = logging.getLogger(__name__)

PREFIX = INDEX_PREFIX  # a feed payload that is not a storage key (keys never start with "!")
_EPOCHS = 4  # epochs remembered by a standby


class WriteIndex:
    def __init__(self, announce: Callable[[str], Awaitable[None]] | None) -> None:
        self._announce = announce
        self.epoch = secrets.token_hex(8)
        self._next = 0  # the active's last number given
        self._sent = 0  # the highest number announced
        self._sending: asyncio.Task[None] | None = None
        self._seen: dict[str, int] = {}  # a standby's highest number received, per epoch
        self._moved = asyncio.Event()

    # -- the active -----------------------------------------------------------------------------
    def mark(self) -> str | None:
        """The index of a write just answered (its changes committed), announced soon; None when
        the store has no way to announce it (the index then means nothing to a standby)."""
        if self._announce is None:
            return None
        self._next += 1
        if self._sending is None or self._sending.done():
            self._sending = asyncio.get_running_loop().create_task(self._send(), name="write-index")
        return f"sr1.{self.epoch}.{self._next}"

    async def _send(self) -> None:
        """Announce the highest number given, until every number given is announced (one
        notification covers every write numbered before it)."""
        assert self._announce is not None
        while self._sent < self._next:
            n = self._next
            try:
                await self._announce(f"{PREFIX}{self.epoch} {n}")
            except Exception as e:  # noqa: BLE001 - the reads carrying these indexes go to the active
                log.warning("HA: announcing the write index failed: %s", e)
                return
            self._sent = n

    # -- a standby ------------------------------------------------------------------------------
    def seen(self, payload: str) -> None:
        """A feed announcement (``PREFIX`` epoch n), every change notified before it applied."""
        try:
            epoch, number = payload[len(PREFIX):].split(" ")
            n = int(number)
        except ValueError:
            return
        if n > self._seen.get(epoch, 0):
            self._seen.pop(epoch, None)
            self._seen[epoch] = n  # most recent last
            while len(self._seen) > _EPOCHS:
                del self._seen[next(iter(self._seen))]
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()

    async def covers(self, index: str, wait: float) -> bool:
        """Whether this standby has followed every write answered up to ``index`` (waiting up to
        ``wait`` seconds for it)."""
        parts = index.split(".")
        if len(parts) != 3 or parts[0] != "sr1":
            return False
        epoch = parts[1]
        try:
            n = int(parts[2])
        except ValueError:
            return False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while self._seen.get(epoch, 0) < n:
            left = deadline - loop.time()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(self._moved.wait(), left)
            except TimeoutError:
                return False
        return True


class RevisionIndex(WriteIndex):
    """The write index of a store whose commits carry a cluster-wide revision (etcd): nothing to
    announce; a standby learns what it covers from its feed (``seen``, storage/etcd_watch.py)."""

    def __init__(self, revision: Callable[[], tuple[str, int] | None]) -> None:
        super().__init__(None)
        self._revision = revision

    def mark(self) -> str | None:
        """``sr1.<cluster>.<revision>`` of the store's latest write (at or past this answer's own
        writes, all committed); None before this node wrote anything."""
        written = self._revision()
        return None if written is None else f"sr1.{written[0]}.{written[1]}"
