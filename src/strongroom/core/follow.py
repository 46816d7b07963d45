"""A standby follows the active's writes, so its caches never serve what the active has replaced.

The data store reports every key another node writes (:class:`ChangeFeed`: PostgreSQL LISTEN/NOTIFY,
storage/pg_changes.py; etcd watch, storage/etcd_watch.py). For each, while this node is not the
active one, :class:`Follower` invalidates it through the Lifecycle's one path (``Core.invalidate``:
the physical cache, the read cache, the policy, token, identity and mount-table caches, each mount's
backend), and re-reads the barrier keyring when the active rotated it. While sealed only the physical
cache is told (nothing above it is loaded; unsealing reads afresh).

Subscribing, and re-subscribing after the feed broke (connection lost, watch cancelled), may have
missed changes: the follower then drops every cache and sets the standby's parts up again from the
store. The active ignores the feed: it is the only writer, and on becoming active a node drops and
reloads everything anyway (core/sealing.py ``_ha_activate``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

from strongroom.barrier import KEYRING_PATH
from strongroom.core.write_index import PREFIX as INDEX_PREFIX
from strongroom.core.write_index import RevisionIndex, WriteIndex
from strongroom.framework.tasks import stop_task

if TYPE_CHECKING:
    from strongroom.core import Core

log = logging.getLogger(__name__)

ChangeFeed = Callable[[], AsyncIterator[str | None]]  # keys as they change; None: "drop everything"


class Follower:
    def __init__(self, core: Core, feed: ChangeFeed, retry: float = 0.5,
                 announce: Callable[[str], Awaitable[None]] | None = None,
                 revision: Callable[[], tuple[str, int] | None] | None = None) -> None:
        self._core = core
        self._feed = feed
        # X-Vault-Index: what the active numbers and announces, what a standby has followed
        # (core/write_index.py); ``announce`` sends on the feed (PostgreSQL: NOTIFY), if it can;
        # ``revision``: the store numbers its writes itself (etcd), the feed reports how far it is.
        self.index = RevisionIndex(revision) if revision is not None else WriteIndex(announce)
        self._retry = retry
        self._task: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()  # set while the feed is live (tests wait for it)
        self.applied = 0  # changes applied to this node's caches
        self.resets = 0  # times every cache was dropped (subscribed or re-subscribed)

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="ha-follow")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)

    def _following(self) -> bool:
        ha = self._core.ha
        return ha is None or not ha.active

    async def _run(self) -> None:
        failures = 0  # subscriptions failed in a row (the back-off grows with them)
        while True:
            try:
                async for key in self._feed():
                    if key is None:
                        await self._reset()
                        self.subscribed.set()
                        failures = 0
                    elif key.startswith(INDEX_PREFIX):
                        self.index.seen(key)  # every change before it is applied: the loop is in order
                    else:
                        await self._changed(key)
                raise RuntimeError("the change feed ended")
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - keep following: drop everything, subscribe again
                was_subscribed = self.subscribed.is_set()
                self.subscribed.clear()
                log.warning("HA: following the active's writes failed (%s); dropping caches, re-subscribing", e)
            try:
                await self._reset()
            except Exception:  # noqa: BLE001 - the next subscription resets again
                log.exception("HA: dropping caches failed")
            failures = 0 if was_subscribed else failures + 1
            await asyncio.sleep(min(self._retry * 2 ** min(failures, 4), 5.0))  # 0.5 s, doubling up to 5 s

    async def _changed(self, key: str) -> None:
        if not self._following():
            return
        core = self._core
        invalidate = getattr(core.physical, "invalidate", None)  # the physical cache, even while sealed
        if invalidate is not None:
            await invalidate(key)
        async with core.ha_switch:  # never interleaved with becoming active (or a reload)
            if core.sealed or not self._following():
                return
            if key == KEYRING_PATH:
                await core.barrier.reload_keyring()
            await core.invalidate(key)
            self.applied += 1

    async def _reset(self) -> None:
        if not self._following():
            return
        self.resets += 1
        await self._core.reload_standby()


__all__ = ["ChangeFeed", "Follower"]
