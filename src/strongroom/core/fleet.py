"""Fleet monitoring (beyond Vault): the active node counts the unsealed nodes of its HA cluster and
raises an alarm when fewer than ``min_unsealed_nodes`` are unsealed; it also follows seal drills
(core/drills.py) until the drilled node is unsealed again. See docs/ha.md, "Fleet monitoring".

Who counts as unsealed: every node whose HA echo (core/ha.py, one row per node in the HA table,
renewed every round, valid 3 lock TTLs) is current, plus this node. A node that seals withdraws its
echo at once (``HA.forget``); a node that dies or loses the store stops echoing and drops out after
3 TTLs. Nodes are told apart by their advertised ``api_address`` (a restarted node gets a new HA
identity but keeps its address).

The alarm is raised once per transition: below the minimum -> a ``unsealed-nodes-below-minimum``
security event; back at or above it -> ``unsealed-nodes-recovered``. Each goes the way of every
security event (core/security.py): stored (``sys/security/events``), written to every audit device
as its own entry, POSTed to the ``security { webhook_urls }``. The state is stored through the
barrier, so a new active after a failover does not raise the same alarm again.

Runs only on the active node and only with HA (without it a single node is always the fleet).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from strongroom.core.drills import Drills
from strongroom.lifecycle import Part

if TYPE_CHECKING:
    from strongroom.core.ha import HA
    from strongroom.core.security import SecurityEvents
    from strongroom.logical import Storage

log = logging.getLogger(__name__)

# Security event kinds raised here.
BELOW_MINIMUM = "unsealed-nodes-below-minimum"
RECOVERED = "unsealed-nodes-recovered"

# Storage layout inside the view handed to FleetMonitor (barrier prefix core/fleet/):
# alarm: {"below": bool, "changed": RFC 3339, "unsealed_nodes": n}; drills/...: see core/drills.py.
ALARM_KEY = "alarm"


async def unsealed_nodes(ha: HA, now: float) -> dict[str, float]:
    """Every node that is unsealed, by api_address -> Unix time (``now``'s clock) of its last echo
    (this node: ``now``)."""
    out: dict[str, float] = {}
    for identity, value, age in await ha.lock.nodes():
        try:
            address = str(orjson.loads(value).get("api_address", "")) or identity
        except (orjson.JSONDecodeError, AttributeError):
            continue
        seen = now - max(0.0, age)
        out[address.rstrip("/")] = max(seen, out.get(address.rstrip("/"), 0.0))
    out[ha.api_addr.rstrip("/") or ha.identity] = now
    return out


class FleetMonitor(Part):
    """A part (strongroom/lifecycle.py): on the active node, one task polls the HA echoes every HA
    round (TTL/3), raises/clears the alarm and completes drills whose node is back."""

    def __init__(self, view: Storage, ha: Callable[[], HA | None], security: SecurityEvents, minimum: int,
                 clock: Callable[[], float] = time.time) -> None:
        self._view = view
        self._ha = ha
        self._security = security
        self.minimum = minimum
        self._clock = clock
        self.drills = Drills(view, ha, security, lambda ha: unsealed_nodes(ha, clock()), minimum, clock)
        self._below = False
        self._unsealed: int | None = None  # last count seen (None: not counted yet on this node)
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    # -- lifecycle --------------------------------------------------------------------------------
    async def activate(self) -> None:
        ha = self._ha()
        if ha is None or not ha.active:  # sys/init activates the parts once, outside the HA loop
            return
        raw = await self._view.get(ALARM_KEY)
        self._below = bool(orjson.loads(raw).get("below")) if raw is not None else False
        await self.drills.load()
        self._task = asyncio.get_running_loop().create_task(self._run(ha.interval), name="fleet-monitor")

    async def deactivate(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # our caller is being cancelled too (a seal during a step-down): not ours to swallow
            except Exception:  # noqa: BLE001 - stopping regardless
                pass
        self._unsealed = None
        self.drills.forget()

    async def _run(self, interval: float) -> None:
        while True:
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - the store may be away for a while: try again next round
                log.warning("fleet monitor: counting the unsealed nodes failed: %s", e)
            await asyncio.sleep(interval)

    # -- one round ----------------------------------------------------------------------------------
    async def poll(self) -> int:
        """Count the unsealed nodes, raise or clear the alarm, complete drills; the count."""
        ha = self._ha()
        if ha is None:
            return 1
        if not ha.fenced_active:  # past the fence another node may be active: it counts, not us
            return self._unsealed or 0
        async with self._lock:
            nodes = await unsealed_nodes(ha, self._clock())
            self._unsealed = len(nodes)
            await self.drills.observe(nodes)
            if self.minimum > 0:
                await self._check(nodes)
            return len(nodes)

    async def _check(self, nodes: dict[str, float]) -> None:
        below = len(nodes) < self.minimum
        if below == self._below:
            return
        self._below = below
        now = self._clock()
        await self._view.put(ALARM_KEY, orjson.dumps({"below": below, "changed": now, "unsealed_nodes": len(nodes)}))
        ha = self._ha()
        details = {"unsealed_nodes": len(nodes), "min_unsealed_nodes": self.minimum, "nodes": sorted(nodes),
                   "reported_by": ha.api_addr if ha is not None else ""}
        await self._security.record(BELOW_MINIMUM if below else RECOVERED, details)

    # -- exposure -------------------------------------------------------------------------------------
    def metrics(self) -> dict[str, float]:
        """For sys/metrics (synchronous, from memory; no storage read). Gauges:

        - ``unsealed_nodes``: the last count (absent until this active node has counted once);
        - ``min_unsealed_nodes``: the configured minimum (0: no alarm);
        - ``below_minimum``: 1 while the alarm is raised, else 0;
        - ``drills_total``, ``drills_pending``, ``last_drill_duration_seconds`` (absent before the
          first completed drill): see :meth:`Drills.metrics`.
        """
        out: dict[str, float] = {"min_unsealed_nodes": float(self.minimum), "below_minimum": float(self._below)}
        if self._unsealed is not None:
            out["unsealed_nodes"] = float(self._unsealed)
        out.update(self.drills.metrics())
        return out

    def status(self) -> dict[str, Any]:
        """sys/drills' header: the fleet as last counted."""
        return {"unsealed_nodes": self._unsealed, "min_unsealed_nodes": self.minimum, "below_minimum": self._below}


__all__ = ["BELOW_MINIMUM", "RECOVERED", "FleetMonitor", "unsealed_nodes"]
