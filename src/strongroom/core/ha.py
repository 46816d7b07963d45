"""High availability: every unsealed node competes for one lock in the storage backend; the holder is
the active node (every part activated), the others are standbys (parts set up, not activated) that
forward requests to the active (http/forwarding.py) or redirect clients to it (http/app.py). Only
the PostgreSQL backend has a lock so far (storage/postgresql.py ``PostgresqlHALock``); see docs/ha.md.

Fencing: the lock is valid in the database until ``valid_until`` (database clock, ``ttl`` after the
statement ran). The active takes the time just BEFORE sending each renewal; it counts itself active
only until that time + ``ttl`` minus a margin, so it stops serving before the row can expire and
another node can take it, even if a renewal hangs or the loop is starved (:attr:`HA.fenced_active`
is checked on every request).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson

from strongroom import __version__
from strongroom.framework.tasks import stop_task

log = logging.getLogger(__name__)


class HALock(Protocol):
    ttl: float

    async def acquire(self, identity: str, value: str) -> bool: ...

    async def release(self, identity: str) -> None: ...

    async def holder(self) -> tuple[str, str, float] | None: ...

    async def echo(self, identity: str, value: str) -> None: ...

    async def forget(self, identity: str) -> None: ...

    async def nodes(self) -> list[tuple[str, str, float]]: ...


class HA:
    """The competition loop of one node. ``activate``/``deactivate`` switch the core between active
    and standby (core/sealing.py); they are called from this loop only."""

    def __init__(self, lock: HALock, api_addr: str, cluster_addr: str = "") -> None:
        self.lock = lock
        self.identity = str(uuid.uuid4())
        self.api_addr = api_addr
        self.cluster_addr = cluster_addr
        ttl = lock.ttl
        self.interval = max(0.05, ttl / 3)  # renewal and retry period
        self.margin = min(ttl / 4, 2.0)  # fencing: stop serving this much before the lock may expire
        self.active = False  # holds the lock and has activated (subject to the fence, below)
        self.active_time = ""  # RFC 3339, when this node last became active
        self._valid_until = 0.0  # monotonic: the end of this node's right to act as active
        self._leader: tuple[str, str] | None = None  # (identity, api_addr) of the holder, as last seen
        self._leader_until = 0.0  # monotonic: when that knowledge stops being trusted
        self._hold_off_until = 0.0  # after a step-down: let another node take the lock first
        self._task: asyncio.Task[None] | None = None
        self._activate: Callable[[], Awaitable[None]] | None = None
        self._deactivate: Callable[[], Awaitable[None]] | None = None
        self._wake = asyncio.Event()

    # -- state asked by requests ---------------------------------------------------------------
    @property
    def fenced_active(self) -> bool:
        """Active AND the lock still certainly ours (checked on every request)."""
        return self.active and time.monotonic() < self._valid_until

    def leader(self) -> tuple[bool, str]:
        """(is_self, the active's api_addr or "" when no node is known to be active)."""
        if self.fenced_active:
            return True, self.api_addr
        if self._leader is not None and time.monotonic() < self._leader_until and self._leader[0] != self.identity:
            return False, self._leader[1]
        return False, ""

    async def leader_cluster_address(self) -> str:
        """The active's cluster_addr: ours, or from the active's echo row ("" when unknown)."""
        if self.fenced_active:
            return self.cluster_addr
        leader = self._leader
        if leader is None or not self.leader()[1]:
            return ""
        try:
            for identity, value, _age in await self.lock.nodes():
                if identity == leader[0]:
                    return str(orjson.loads(value).get("cluster_address", ""))
        except Exception:  # noqa: BLE001 - unknown, as while no echo was seen
            return ""
        return ""

    # -- the loop -------------------------------------------------------------------------------
    def start(self, activate: Callable[[], Awaitable[None]], deactivate: Callable[[], Awaitable[None]]) -> None:
        self._activate, self._deactivate = activate, deactivate
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="ha")

    async def stop(self) -> bool:
        """On seal or shutdown: stop competing; whether this node was active. The caller deactivates
        the parts, then calls :meth:`release` (so no other node activates while ours still run)."""
        task, self._task = self._task, None
        was_active, self.active = self.active, False
        self._valid_until = 0.0
        await stop_task(task)
        return was_active

    async def release(self) -> None:
        await self._release()

    async def forget(self) -> None:
        """Withdraw this node's echo (sealed or stopping): it leaves sys/ha-status."""
        try:
            await self.lock.forget(self.identity)
        except Exception as e:  # noqa: BLE001 - the echo expires by itself
            log.warning("HA: withdrawing this node's echo failed: %s", e)

    def _description(self) -> str:
        return orjson.dumps({"api_address": self.api_addr, "cluster_address": self.cluster_addr,
                             "hostname": socket.gethostname(), "version": __version__}).decode()

    async def nodes(self) -> list[dict[str, Any]]:
        """sys/ha-status: every node heard from lately (each echoes every round), the active first."""
        is_self, leader = self.leader()
        out: list[dict[str, Any]] = []
        for identity, value, age in await self.lock.nodes():
            try:
                info = orjson.loads(value)
            except orjson.JSONDecodeError:
                continue
            echo = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - max(0.0, age)))
            active = (identity == self.identity and is_self) or (identity != self.identity and
                                                                 info.get("api_address") == leader and not is_self)
            out.append({"hostname": str(info.get("hostname", "")), "api_address": str(info.get("api_address", "")),
                        "cluster_address": str(info.get("cluster_address", "")), "active_node": active,
                        "last_echo": None if active else echo, "version": str(info.get("version", ""))})
        out.sort(key=lambda n: (not n["active_node"], n["api_address"]))
        return out

    async def step_down(self) -> None:
        """sys/step-down: give the lock up and wait a while before competing again."""
        if not self.active:
            return
        self._hold_off_until = time.monotonic() + max(self.lock.ttl, 2 * self.interval)
        await self._lose("stepped down")
        await self._release()

    async def _release(self) -> None:
        try:
            await self.lock.release(self.identity)
        except Exception as e:  # noqa: BLE001 - the lock expires by itself
            log.warning("HA: releasing the lock failed (it expires after its TTL): %s", e)

    async def _lose(self, why: str) -> None:
        if not self.active:
            return
        log.warning("HA: no longer active (%s)", why)
        self.active = False
        self._valid_until = 0.0
        self._leader = None
        assert self._deactivate is not None
        await self._deactivate()

    async def _run(self) -> None:
        while True:
            try:
                await self._round()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the loop must survive anything and keep competing
                log.exception("HA: unexpected error")
            await self._echo()
            await self._pause()

    async def _pause(self) -> None:
        """Until the next round: the interval; on a standby, sooner if the lock's store can say the
        lock changed (etcd's watch: ``changed``), so a dead holder's successor is found, and its
        name learnt, as soon as the store knows it."""
        changed = getattr(self.lock, "changed", None)
        if changed is None or self.active:
            await asyncio.sleep(self.interval)
        else:
            await changed(self.interval)

    async def _echo(self) -> None:
        """After each round (never delaying a renewal), bounded by the round's period."""
        try:
            async with asyncio.timeout(self.interval):
                await self.lock.echo(self.identity, self._description())
        except Exception as e:  # noqa: BLE001 - only sys/ha-status misses this node
            log.warning("HA: echo failed: %s", e)

    async def _round(self) -> None:
        now = time.monotonic()
        if self.active:
            if now >= self._valid_until:  # frozen or starved past the fence: the lock may be another's
                await self._lose("the lock's renewal is overdue")
                return
            sent = now
            try:
                async with asyncio.timeout(max(0.01, self._valid_until - now)):
                    renewed = await self.lock.acquire(self.identity, self.api_addr)
            except (TimeoutError, Exception) as e:  # noqa: BLE001 - any failure to renew loses the lock
                await self._lose(f"renewing the lock failed: {e or type(e).__name__}")
                return
            if not renewed:
                await self._lose("the lock is held by another node")
                return
            self._valid_until = sent + self.lock.ttl - self.margin
            return
        if now >= self._hold_off_until:
            sent = now
            try:
                won = await self.lock.acquire(self.identity, self.api_addr)
            except Exception as e:  # noqa: BLE001 - the store is unreachable: stay standby, retry
                log.warning("HA: acquiring the lock failed: %s", e)
                won = False
            if won:
                self._valid_until = sent + self.lock.ttl - self.margin
                self.active = True
                self.active_time = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                log.info("HA: acquired the lock, becoming active")
                try:
                    assert self._activate is not None
                    await self._activate()
                except Exception:
                    log.exception("HA: activation failed, giving the lock up")
                    await self._lose("activation failed")
                    await self._release()
                return
        await self.refresh_leader()

    async def refresh_leader(self) -> tuple[bool, str]:
        """Read who holds the lock now (each standby round, and after a forward to the active
        failed: http/forwarding.py); then :meth:`leader`. Bounded by the lock's TTL; never raises."""
        if not self.fenced_active:
            try:
                held = await self.lock.holder()
            except Exception:  # noqa: BLE001 - unknown leader: answer 503, not a redirect
                held = None
            if held is None:
                self._leader = None
            else:
                self._leader = (held[0], held[1])
                self._leader_until = time.monotonic() + min(held[2], self.lock.ttl)
        return self.leader()


__all__ = ["HA", "HALock"]
