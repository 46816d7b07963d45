"""Seal drills (beyond Vault): practise the unseal ceremony on a live cluster and time it.

``sys/drill`` (sudo) on the active node seals one chosen standby by calling that node's own
``sys/seal`` with the caller's token (so the standby checks and audits the seal itself, exactly as
if an operator had sealed it), then tells the key holders: a ``seal-drill-started`` security event
(stored, audited, POSTed to the ``security { webhook_urls }``) carrying the drill id and the node.
The fleet monitor (core/fleet.py) watches the HA echoes; once the node echoes again (the key holders
unsealed it with their shares through its ``sys/unseal``) the drill is complete: ``unsealed_at``,
``duration_s`` (from the start of the drill), and a ``seal-drill-completed`` event.

Refused: without HA; the active node itself; a node that is not unsealed (not echoing); a node
already in a running drill; a drill that would leave fewer than ``min_unsealed_nodes`` unsealed,
unless ``force``. SECURITY: the caller's token goes only to the address the caller named, and only
when that address is an unsealed node of this cluster; it is never stored.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from strongroom.durations import rfc3339
from strongroom.errors import Internal, InvalidRequest, NotFound, StrongroomError

if TYPE_CHECKING:
    from strongroom.core.ha import HA
    from strongroom.core.security import SecurityEvents
    from strongroom.logical import Storage

log = logging.getLogger(__name__)

# Security event kinds raised here.
DRILL_STARTED = "seal-drill-started"
DRILL_COMPLETED = "seal-drill-completed"

# drills/<id>: one drill as JSON. Fields starting with "t_" are Unix times kept for the arithmetic
# and left out of every answer.
DRILL_PREFIX = "drills/"
MAX_DRILLS = 100
SEAL_TIMEOUT = 10.0  # seconds for the drilled node to answer its sys/seal

# States of a drill.
SEALING, SEALED, UNSEALED, FAILED, ABANDONED = "sealing", "sealed", "unsealed", "failed", "abandoned"


def public(drill: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in drill.items() if not k.startswith("t_")}


class Drills:
    def __init__(self, view: Storage, ha: Callable[[], HA | None], security: SecurityEvents,
                 nodes: Callable[[HA], Awaitable[dict[str, float]]], minimum: int,
                 clock: Callable[[], float] = time.time) -> None:
        self._view = view
        self._ha = ha
        self._security = security
        self._nodes = nodes  # core/fleet.py unsealed_nodes
        self.minimum = minimum
        self._clock = clock
        self._pending: dict[str, dict[str, Any]] = {}  # id -> drill waiting for its node to be unsealed
        self._completed = 0
        self._last_duration: float | None = None
        self._lock = asyncio.Lock()

    # -- state ----------------------------------------------------------------------------------------
    async def _all(self) -> list[dict[str, Any]]:
        out = []
        for key in await self._view.list(DRILL_PREFIX):
            raw = await self._view.get(DRILL_PREFIX + key)
            if raw is not None:
                out.append(orjson.loads(raw))
        out.sort(key=lambda d: float(d.get("t_started", 0.0)))
        return out

    async def _put(self, drill: dict[str, Any]) -> None:
        await self._view.put(DRILL_PREFIX + drill["id"], orjson.dumps(drill))

    async def load(self) -> None:
        """On activation: pick up the drills a previous active left running."""
        self.forget()
        for drill in await self._all():
            if drill["state"] == SEALED:
                self._pending[drill["id"]] = drill
            elif drill["state"] == SEALING:  # that active stopped mid-request: the outcome is unknown
                drill.update(state=FAILED, error="interrupted: the active node changed while sealing")
                await self._put(drill)
            elif drill["state"] == UNSEALED:
                self._completed += 1
                self._last_duration = float(drill["duration_s"])

    def forget(self) -> None:
        self._pending.clear()
        self._completed = 0
        self._last_duration = None

    async def list(self) -> list[dict[str, Any]]:
        """Every drill kept (the newest MAX_DRILLS), oldest first."""
        return [public(d) for d in await self._all()]

    async def get(self, drill_id: str) -> dict[str, Any]:
        raw = await self._view.get(DRILL_PREFIX + drill_id) if _plausible(drill_id) else None
        if raw is None:
            raise NotFound()
        return public(orjson.loads(raw))

    def metrics(self) -> dict[str, float]:
        """``drills_total`` (completed), ``drills_pending``, ``last_drill_duration_seconds``."""
        out = {"drills_total": float(self._completed), "drills_pending": float(len(self._pending))}
        if self._last_duration is not None:
            out["last_drill_duration_seconds"] = self._last_duration
        return out

    # -- start, abandon -----------------------------------------------------------------------------
    async def start(self, node: str, token: str, requested_by: str, force: bool) -> dict[str, Any]:
        ha = self._ha()
        if ha is None:
            raise InvalidRequest("seal drills need high availability (a storage backend with ha_enabled)")
        node = node.strip().rstrip("/")
        if not node:
            raise InvalidRequest("missing node: the api_address of the standby to seal (see sys/ha-status)")
        async with self._lock:
            if node == ha.api_addr.rstrip("/"):
                raise InvalidRequest(f"refusing to seal the active node {node}: a drill seals a standby")
            nodes = await self._nodes(ha)
            if node not in nodes:
                raise InvalidRequest(f"node {node} is not an unsealed node of this cluster (see sys/ha-status)")
            running = [d["id"] for d in self._pending.values() if d["node"] == node]
            if running:
                raise InvalidRequest(f"a drill of node {node} is already running (id {running[0]})")
            unsealed, minimum = len(nodes), self.minimum
            if minimum > 0 and unsealed - 1 < minimum and not force:
                raise InvalidRequest(f"sealing {node} would leave {unsealed - 1} unsealed nodes, fewer than "
                                     f"min_unsealed_nodes ({minimum}); set force to drill anyway")
            now = self._clock()
            drill: dict[str, Any] = {
                "id": secrets.token_hex(8), "node": node, "state": SEALING, "started": rfc3339(now),
                "sealed_at": None, "unsealed_at": None, "duration_s": None, "forced": force,
                "requested_by": requested_by, "t_started": now,
            }
            await self._prune()
            await self._put(drill)
            try:
                await _seal(node, token)
            except Exception as e:
                failure = e if isinstance(e, StrongroomError) else Internal(f"seal drill: sealing node {node} "
                                                                            f"failed: {type(e).__name__}")
                drill.update(state=FAILED, error=str(failure))
                await self._put(drill)
                raise failure from None
            sealed = self._clock()
            drill.update(state=SEALED, sealed_at=rfc3339(sealed), t_sealed=sealed)
            await self._put(drill)
            self._pending[drill["id"]] = drill
        await self._security.record(DRILL_STARTED, {"drill_id": drill["id"], "node": node, "started": drill["started"],
                                                    "requested_by": requested_by, "forced": force})
        return public(drill)

    async def abandon(self, drill_id: str) -> None:
        """Stop waiting for a drill's node (it is no longer part of the cluster, say)."""
        async with self._lock:
            raw = await self._view.get(DRILL_PREFIX + drill_id) if _plausible(drill_id) else None
            if raw is None:
                raise NotFound()
            drill = orjson.loads(raw)
            if drill["state"] != SEALED:
                raise InvalidRequest(f"drill {drill_id} is not running (state {drill['state']})")
            drill["state"] = ABANDONED
            await self._put(drill)
            self._pending.pop(drill_id, None)

    async def _prune(self) -> None:
        done = [d for d in await self._all() if d["state"] != SEALED]
        for d in done[: max(0, len(done) - MAX_DRILLS + 1)]:
            await self._view.delete(DRILL_PREFIX + d["id"])

    # -- completion (from the fleet monitor's round) -------------------------------------------------
    async def observe(self, nodes: dict[str, float]) -> None:
        """``nodes``: api_address -> Unix time of its last echo. A drilled node that echoed after it
        was sealed has been unsealed again."""
        for drill in list(self._pending.values()):
            seen = nodes.get(drill["node"])
            if seen is None or seen <= float(drill["t_sealed"]):
                continue
            async with self._lock:
                if self._pending.pop(drill["id"], None) is None:
                    continue  # abandoned meanwhile
                duration = round(max(0.0, seen - float(drill["t_started"])), 3)
                drill.update(state=UNSEALED, unsealed_at=rfc3339(seen), duration_s=duration, t_unsealed=seen)
                await self._put(drill)
                self._completed += 1
                self._last_duration = duration
            log.info("seal drill %s: node %s unsealed again after %.3f s", drill["id"], drill["node"], duration)
            await self._security.record(DRILL_COMPLETED, {
                "drill_id": drill["id"], "node": drill["node"], "started": drill["started"],
                "unsealed_at": drill["unsealed_at"], "duration_s": duration})


def _plausible(drill_id: str) -> bool:
    return 0 < len(drill_id) <= 64 and all(c in "0123456789abcdef" for c in drill_id)


async def _seal(node: str, token: str) -> None:
    """PUT <node>/v1/sys/seal with the caller's token; the node checks sudo and audits it itself."""
    import httpx  # only when a drill runs (server start-up time)

    try:
        async with httpx.AsyncClient(timeout=SEAL_TIMEOUT) as client:
            r = await client.put(f"{node}/v1/sys/seal", headers={"X-Vault-Token": token})
    except httpx.HTTPError as e:
        raise Internal(f"seal drill: could not reach node {node}: {type(e).__name__}") from None
    if r.status_code in (200, 204):
        return
    try:
        errors = orjson.loads(r.content).get("errors") or []
    except (orjson.JSONDecodeError, AttributeError):
        errors = []
    reason = "; ".join(str(e) for e in errors) or f"status {r.status_code}"
    raise InvalidRequest(f"node {node} refused to seal (status {r.status_code}): {reason}")


__all__ = ["DRILL_COMPLETED", "DRILL_STARTED", "Drills"]
