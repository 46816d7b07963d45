"""The fleet monitor and seal drills (core/fleet.py, core/drills.py) against an in-memory HA lock:
alarm transitions, the stored alarm state across a change of active node, drill bookkeeping.
The same behaviour on three real server processes and PostgreSQL: tests/ha/test_fleet.py."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any, cast

import orjson
import pytest

from strongroom.core.audit import AuditBroker
from strongroom.core.drills import Drills
from strongroom.core.fleet import BELOW_MINIMUM, RECOVERED, FleetMonitor
from strongroom.core.ha import HA
from strongroom.core.security import SecurityConfig, SecurityEvents
from strongroom.errors import Internal, InvalidRequest, NotFound
from strongroom.storage.inmem import InmemStorage
from strongroom.testing import asgi_client, unsealed_core

ACTIVE, B, C = "http://a:8200", "http://b:8200", "http://c:8200"


class FakeLock:
    """The HA lock's echo rows: address -> seconds since its last echo."""

    ttl = 1.0

    def __init__(self, *addresses: str) -> None:
        self.rows = {a: 0.0 for a in addresses}

    async def nodes(self) -> list[tuple[str, str, float]]:
        return [(f"id-{a}", orjson.dumps({"api_address": a}).decode(), age) for a, age in self.rows.items()]

    async def acquire(self, identity: str, value: str) -> bool:
        return True

    async def release(self, identity: str) -> None: ...

    async def holder(self) -> tuple[str, str, float] | None:
        return None

    async def echo(self, identity: str, value: str) -> None: ...

    async def forget(self, identity: str) -> None: ...


class FakeAudit:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    async def log_event(self, kind: str, data: dict[str, Any]) -> None:
        self.events.append((kind, data))


def fleet(lock: FakeLock, storage: InmemStorage | None = None, minimum: int = 3,
          clock: Callable[[], float] = time.time) -> tuple[FleetMonitor, FakeAudit]:
    ha = HA(lock, ACTIVE)
    ha.active = True
    ha._valid_until = time.monotonic() + 3600  # noqa: SLF001 - holds the lock, fenced, for the test
    audit = FakeAudit()
    security = SecurityEvents(InmemStorage(), lambda: cast(AuditBroker, audit), SecurityConfig())
    return FleetMonitor(InmemStorage() if storage is None else storage, lambda: ha, security, minimum, clock), audit


def kinds(audit: FakeAudit) -> list[str]:
    return [k for k, _ in audit.events]


async def test_alarm_once_per_transition_and_recovery() -> None:
    lock = FakeLock(ACTIVE, B, C)
    monitor, audit = fleet(lock)
    assert await monitor.poll() == 3 and kinds(audit) == []
    del lock.rows[C]
    assert await monitor.poll() == 2
    assert await monitor.poll() == 2  # still below: no second alarm
    assert kinds(audit) == [BELOW_MINIMUM]
    details = audit.events[0][1]
    assert details["unsealed_nodes"] == 2 and details["min_unsealed_nodes"] == 3 and details["nodes"] == [ACTIVE, B]
    assert monitor.metrics()["below_minimum"] == 1.0 and monitor.metrics()["unsealed_nodes"] == 2.0
    lock.rows[C] = 0.0
    await monitor.poll()
    await monitor.poll()
    assert kinds(audit) == [BELOW_MINIMUM, RECOVERED]
    del lock.rows[B]
    await monitor.poll()
    assert kinds(audit) == [BELOW_MINIMUM, RECOVERED, BELOW_MINIMUM]
    # The events took the security event path: stored with their counts.
    assert (await monitor._security.counts()) == {BELOW_MINIMUM: 2, RECOVERED: 1}  # noqa: SLF001


async def test_the_active_counts_itself_and_a_restarted_node_once() -> None:
    lock = FakeLock(B)  # this node's own echo not written yet
    lock.rows["http://d:8200"] = 0.0
    monitor, _ = fleet(lock)
    assert await monitor.poll() == 3
    lock.rows = {ACTIVE: 0.0, B: 0.0}
    rows = await lock.nodes()
    rows.append(("id-b-restarted", orjson.dumps({"api_address": B + "/"}).decode(), 0.1))
    lock.nodes = lambda: _const(rows)  # type: ignore[method-assign]
    assert await monitor.poll() == 2


async def _const(rows: list[tuple[str, str, float]]) -> list[tuple[str, str, float]]:
    return rows


async def test_a_new_active_does_not_raise_the_same_alarm_again() -> None:
    storage = InmemStorage()
    lock = FakeLock(ACTIVE, B)
    first, audit1 = fleet(lock, storage)
    await first.poll()
    assert kinds(audit1) == [BELOW_MINIMUM]
    second, audit2 = fleet(lock, storage)
    await second.activate()
    try:
        await second.poll()
        assert kinds(audit2) == []  # the stored state says the alarm is already raised
        lock.rows[C] = 0.0
        await second.poll()
        assert kinds(audit2) == [RECOVERED]
    finally:
        await second.deactivate()


async def test_a_node_past_its_fence_does_not_count() -> None:
    lock = FakeLock(ACTIVE)
    monitor, audit = fleet(lock)
    ha = monitor._ha()  # noqa: SLF001
    assert ha is not None
    ha._valid_until = 0.0  # noqa: SLF001 - the lock may be another node's now
    await monitor.poll()
    assert kinds(audit) == [] and "unsealed_nodes" not in monitor.metrics()


async def test_without_a_minimum_no_alarm() -> None:
    monitor, audit = fleet(FakeLock(ACTIVE), minimum=0)
    assert await monitor.poll() == 1 and kinds(audit) == []


async def test_drill_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    lock = FakeLock(ACTIVE, B, C)
    monitor, _ = fleet(lock)
    drills: Drills = monitor.drills
    for node, force, message in ((ACTIVE, True, "refusing to seal the active node"),
                                 ("http://x:8200", True, "is not an unsealed node"),
                                 ("", True, "missing node"),
                                 (B, False, "would leave 2 unsealed nodes, fewer than min_unsealed_nodes (3)")):
        with pytest.raises(InvalidRequest, match=re.escape(message)):
            await drills.start(node, "tok", "acc", force)
    assert await drills.list() == []

    async def refuse(node: str, token: str) -> None:
        raise InvalidRequest(f"node {node} refused to seal (status 403): permission denied")

    monkeypatch.setattr("strongroom.core.drills._seal", refuse)
    with pytest.raises(InvalidRequest, match="refused to seal"):
        await drills.start(B, "tok", "acc", True)

    async def broken(node: str, token: str) -> None:
        raise ValueError("boom")

    monkeypatch.setattr("strongroom.core.drills._seal", broken)
    with pytest.raises(Internal, match="sealing node http://c:8200 failed: ValueError"):
        await drills.start(C, "tok", "acc", True)
    assert [d["state"] for d in await drills.list()] == ["failed", "failed"]
    with pytest.raises(NotFound):
        await drills.get("../x")


async def test_drill_completes_when_the_node_echoes_after_its_seal(monkeypatch: pytest.MonkeyPatch) -> None:
    lock = FakeLock(ACTIVE, B, C)
    now = [1000.0]
    monitor, audit = fleet(lock, minimum=2, clock=lambda: now[0])
    sealed_with: list[tuple[str, str]] = []

    async def seal(node: str, token: str) -> None:
        sealed_with.append((node, token))
        lock.rows[node] = 5.0  # a stale echo row (say its withdrawal failed): not an unseal

    monkeypatch.setattr("strongroom.core.drills._seal", seal)
    started = await monitor.drills.start(B, "the-token", "accessor-1", False)
    assert sealed_with == [(B, "the-token")] and started["state"] == "sealed"
    assert "the-token" not in orjson.dumps(await monitor.drills.list()).decode()
    assert kinds(audit) == ["seal-drill-started"]
    assert audit.events[0][1]["drill_id"] == started["id"] and audit.events[0][1]["node"] == B
    with pytest.raises(InvalidRequest, match="already running"):
        await monitor.drills.start(B, "t", "a", True)
    now[0] = 1001.0
    await monitor.poll()  # its last echo is from before the seal (1001 - 5 < 1000)
    assert (await monitor.drills.get(started["id"]))["state"] == "sealed"
    assert monitor.metrics()["drills_pending"] == 1.0
    now[0] = 1003.5
    lock.rows[B] = 0.5  # echoed at 1003.0: unsealed again
    await monitor.poll()
    done = await monitor.drills.get(started["id"])
    assert done["state"] == "unsealed" and done["duration_s"] == 3.0
    assert done["started"] == "1970-01-01T00:16:40Z" and done["unsealed_at"] == "1970-01-01T00:16:43Z"
    assert kinds(audit)[-1] == "seal-drill-completed"
    metrics = monitor.metrics()
    assert metrics["drills_total"] == 1.0 and metrics["drills_pending"] == 0.0
    assert metrics["last_drill_duration_seconds"] == done["duration_s"]
    # A new active loads the history: completed drills count, running ones are waited for.
    again, _ = fleet(lock, cast(InmemStorage, monitor._view))  # noqa: SLF001
    await again.drills.load()
    assert again.metrics()["drills_total"] == 1.0


async def test_abandon(monkeypatch: pytest.MonkeyPatch) -> None:
    lock = FakeLock(ACTIVE, B, C)
    monitor, _ = fleet(lock, minimum=0)

    async def seal(node: str, token: str) -> None:
        del lock.rows[node]

    monkeypatch.setattr("strongroom.core.drills._seal", seal)
    d = await monitor.drills.start(C, "t", "a", False)
    await monitor.drills.abandon(d["id"])
    assert (await monitor.drills.get(d["id"]))["state"] == "abandoned"
    with pytest.raises(InvalidRequest, match="not running"):
        await monitor.drills.abandon(d["id"])
    lock.rows[C] = 0.0
    await monitor.poll()
    assert (await monitor.drills.get(d["id"]))["state"] == "abandoned"


async def test_sys_drill_without_ha() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        r = await c.put("/v1/sys/drill", json={"node": "http://b:8200"})
        assert r.status_code == 400 and "need high availability" in r.json()["errors"][0]
        listed = (await c.get("/v1/sys/drills")).json()["data"]
        assert listed["drills"] == [] and listed["min_unsealed_nodes"] == 0
        assert (await c.get("/v1/sys/drills/abc")).status_code == 404
