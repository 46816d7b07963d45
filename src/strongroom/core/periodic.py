"""The one scheduler of routine work: every ``interval`` seconds on the active node, each part's
``periodic(now)`` in turn (the mount table passes it on to every backend: tidy, key rotation, CRL
rebuild, rollback of unfinished external work). One task for the whole server, never one per object;
a slow or failing part delays the next tick but stops nothing else."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from strongroom.framework.tasks import stop_task
from strongroom.lifecycle import Lifecycle, Part

log = logging.getLogger(__name__)

#: Vault's rollback manager ticks once a minute.
DEFAULT_INTERVAL = 60.0


class Periodic(Part):
    def __init__(self, parts: Callable[[], Sequence[Lifecycle]], interval: float = DEFAULT_INTERVAL,
                 clock: Callable[[], float] = time.time) -> None:
        self._parts = parts
        self.interval = interval
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    async def activate(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name="strongroom-periodic")

    async def deactivate(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)

    async def tick(self) -> None:
        """One round: every part's periodic function, in order."""
        now = self._clock()
        for part in self._parts():
            if part is self:
                continue
            try:
                await part.periodic(now)
            except Exception:
                log.exception("periodic function of %s failed", type(part).__name__)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.tick()
