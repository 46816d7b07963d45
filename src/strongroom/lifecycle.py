"""One lifecycle for every part of the server and every mount (Vault's setup/teardown of a core's
subsystems, its backends' Initialize/Clean/Invalidate/PeriodicFunc, made one contract).

Core drives it, in this order:

    unseal (active node)     setup() on every part, then activate() on every part
    unseal (standby node)    setup() only: state loaded, nothing that writes or expires runs
    seal / step-down         deactivate() on every part, in reverse order
    a storage key changed    invalidate(key) on every part: the one path by which a write made
                             elsewhere (another node, a restore) reaches every cache
    once a period (active)   periodic(now) on every part and mount, from core's one scheduler

``deactivate`` must be safe to call twice and on a part whose ``setup`` failed or never ran: a
failed unseal stops whatever it had started. ``invalidate`` keys are barrier keys (the full path
under the barrier, e.g. ``sys/token/id/h...``); each part ignores keys outside its own prefix.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol, runtime_checkable


@runtime_checkable
class Lifecycle(Protocol):
    """What core calls on every part and mount. :class:`Part` gives no-op defaults."""

    async def setup(self) -> None:
        """Load state from storage (both on the active node and on a standby)."""

    async def activate(self) -> None:
        """Start the work only the active node does: timers, expiry, rollbacks of unfinished work."""

    async def deactivate(self) -> None:
        """Stop everything ``setup``/``activate`` started; drop what is cached."""

    async def invalidate(self, key: str) -> None:
        """Barrier key ``key`` changed behind this part's back: forget what was cached of it."""

    async def periodic(self, now: float) -> None:
        """Routine work (tidy, rotation, CRL rebuild), called by core's one scheduler."""


class Part:
    """A :class:`Lifecycle` whose steps do nothing: subclass and override the ones that matter."""

    async def setup(self) -> None:
        return None

    async def activate(self) -> None:
        return None

    async def deactivate(self) -> None:
        return None

    async def invalidate(self, key: str) -> None:
        return None

    async def periodic(self, now: float) -> None:
        return None


async def deactivate_all(parts: Iterable[Lifecycle]) -> None:
    """Deactivate each part in the order given, every one even if another fails; then raise the
    first failure, if any (a part that failed to stop must not keep the others running)."""
    failed: Exception | None = None
    for part in parts:
        try:
            await part.deactivate()
        except Exception as exc:  # noqa: BLE001 - the others must stop too; the first failure is raised
            failed = failed or exc
    if failed is not None:
        raise failed


Step = Callable[[], "Awaitable[None] | None"]


class Steps(Part):
    """A :class:`Lifecycle` made of the given callables (sync or async; each optional), for a part
    whose own methods carry older names (``stop``, ``teardown``, ``clear``)."""

    __slots__ = ("_activate", "_deactivate", "_invalidate", "_setup")

    def __init__(self, *, setup: Step | None = None, activate: Step | None = None,
                 deactivate: Step | None = None, invalidate: Step | None = None) -> None:
        self._setup, self._activate, self._deactivate, self._invalidate = setup, activate, deactivate, invalidate

    @staticmethod
    async def _run(step: Step | None) -> None:
        if step is not None:
            result = step()
            if inspect.isawaitable(result):
                await result

    async def setup(self) -> None:
        await self._run(self._setup)

    async def activate(self) -> None:
        await self._run(self._activate)

    async def deactivate(self) -> None:
        await self._run(self._deactivate)

    async def invalidate(self, key: str) -> None:
        await self._run(self._invalidate)


__all__ = ["Lifecycle", "Part", "Steps", "deactivate_all"]
