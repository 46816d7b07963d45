"""Automatic rotation of the barrier encryption key (sys/rotate/config).

Two triggers, as OpenBao documents them:

* the active key's encryption count reaching ``max_operations``: the barrier calls us back from
  ``put`` (:meth:`Barrier.watch_encryptions`), so a write costs one integer compare;
* the active key's age reaching ``interval``: one background task checks it every
  ``check_every`` seconds, started on unseal and stopped on seal.

``enabled = false`` stops both (encryptions are still counted). The configuration is stored through
the barrier at ``core/rotation-config``. The clock and the check period are injectable for tests.

The count is the barrier's (kept in memory, so a write costs nothing more). So that the limit also
holds across restarts, it is persisted through the barrier at ``core/encryption-count`` by the
background check (when it changed) and on seal, and added back on unseal; a crash loses at most the
encryptions of one check period.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from strongroom.framework.tasks import stop_task
from strongroom.barrier import Barrier
from strongroom.durations import go_duration
from strongroom.errors import Internal, InvalidRequest, StrongroomError

log = logging.getLogger("strongroom.core.rotation")

CONFIG_KEY = "core/rotation-config"
COUNT_KEY = "core/encryption-count"
#: NIST SP 800-38D bound for AES-GCM with random nonces, as OpenBao applies it.
MAX_OPERATIONS = 3_865_470_566
MIN_OPERATIONS = 1_000_000
MIN_INTERVAL = 24 * 3600


@dataclass(frozen=True, slots=True)
class RotationConfig:
    max_operations: int = MAX_OPERATIONS
    interval: int = 0  # seconds; 0: no time-based rotation
    enabled: bool = True

    def validate(self) -> RotationConfig:
        """The API's bounds (the core itself accepts any positive values, which tests use)."""
        if not MIN_OPERATIONS <= self.max_operations <= MAX_OPERATIONS:
            raise InvalidRequest(f"max_operations must be in the range [{MIN_OPERATIONS},{MAX_OPERATIONS}]")
        if self.interval and self.interval < MIN_INTERVAL:
            raise InvalidRequest("interval must be greater or equal to 24h0m0s")
        return self

    def to_json(self) -> bytes:
        return orjson.dumps({"max_operations": self.max_operations, "interval": self.interval,
                             "enabled": self.enabled})

    @classmethod
    def from_json(cls, data: bytes) -> RotationConfig:
        try:
            raw: Any = orjson.loads(data)
            cfg = cls(max_operations=int(raw["max_operations"]), interval=int(raw["interval"]),
                      enabled=bool(raw["enabled"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise Internal(f"rotation configuration is corrupt ({type(exc).__name__})") from None
        return cfg

    def wire(self) -> dict[str, Any]:
        """The sys/rotate/config read body: interval as a Go duration string, or 0 when unset."""
        return {"enabled": self.enabled, "interval": go_duration(self.interval) if self.interval else 0,
                "max_operations": self.max_operations}


def _parse_install_time(text: str) -> float:
    try:
        return datetime.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
    except ValueError:
        return time.time()  # unparseable: treat the key as new rather than rotate on garbage


class AutoRotation:
    def __init__(self, barrier: Barrier, *, clock: Callable[[], float] = time.time,
                 check_every: float = 60.0) -> None:
        self._barrier = barrier
        self._clock = clock
        self.check_every = check_every
        self.config = RotationConfig()
        self._task: asyncio.Task[None] | None = None
        self._pending: asyncio.Task[None] | None = None
        self.rotations = 0  # automatic rotations performed (for tests and logs)
        self._persisted: tuple[int, int] | None = None  # (term, encryptions) last written

    # -- lifecycle ---------------------------------------------------------------------------
    async def setup(self) -> None:
        """On unseal: load the configuration, arm the count trigger, start the interval check."""
        raw = await self._barrier.get(CONFIG_KEY)
        self.config = RotationConfig() if raw is None else RotationConfig.from_json(raw)
        await self._restore_count()
        self._arm()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """On seal: stop the background check and any rotation in flight, then persist the count."""
        self._barrier.watch_encryptions(None, None)
        for task in (self._task, self._pending):
            await stop_task(task)
        self._task = self._pending = None
        await self.persist_count()
        self._persisted = None

    # -- the persisted encryption count ------------------------------------------------------
    async def _restore_count(self) -> None:
        raw = await self._barrier.get(COUNT_KEY)
        if raw is None:
            return
        try:
            stored: Any = orjson.loads(raw)
            term, count = stored["term"], stored["encryptions"]
            if not (isinstance(term, int) and isinstance(count, int)):
                raise TypeError
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("stored encryption count is corrupt; counting from zero")
            return
        self._barrier.add_encryptions(term, count)
        self._persisted = (term, count)

    async def persist_count(self) -> None:
        """Write the active term's encryption count if it changed since the last write."""
        if self._barrier.sealed:
            return
        status = self._barrier.key_status()
        current = (status.term, status.encryptions)
        if current == self._persisted:
            return
        written = (current[0], current[1] + 1)  # this write is one more encryption under the term
        try:
            await self._barrier.put(COUNT_KEY, orjson.dumps({"term": written[0], "encryptions": written[1]}))
        except (StrongroomError, OSError) as e:
            log.warning("could not persist the encryption count: %s", e)
            return
        self._persisted = written

    async def set_config(self, config: RotationConfig) -> None:
        await self._barrier.put(CONFIG_KEY, config.to_json())
        self.config = config
        self._arm()

    # -- triggers ----------------------------------------------------------------------------
    def _arm(self) -> None:
        if self.config.enabled:
            self._barrier.watch_encryptions(self.config.max_operations, self._count_reached)
        else:
            self._barrier.watch_encryptions(None, None)

    def _count_reached(self) -> None:
        # Called from Barrier.put: schedule at most one rotation at a time and return at once.
        if self._pending is None or self._pending.done():
            self._pending = asyncio.get_running_loop().create_task(self._rotate("encryption count"))

    async def check(self) -> bool:
        """The interval trigger: rotate if the active key is older than ``interval``."""
        cfg = self.config
        if not cfg.enabled or not cfg.interval or self._barrier.sealed:
            return False
        installed = _parse_install_time(self._barrier.key_status().install_time)
        if self._clock() - installed < cfg.interval:
            return False
        await self._rotate("key age")
        return True

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.check_every)
            try:
                await self.check()
            except (StrongroomError, OSError) as e:
                log.warning("automatic key rotation check failed: %s", e)
            await self.persist_count()

    async def _rotate(self, reason: str) -> None:
        try:
            key = await self._barrier.rotate()
        except (StrongroomError, OSError) as e:  # e.g. storage down: retried at the next trigger
            log.warning("automatic key rotation (%s) failed: %s", reason, e)
            return
        self.rotations += 1
        log.info("barrier key rotated automatically (%s); new term %d", reason, key.term)


__all__ = ["AutoRotation", "RotationConfig"]
