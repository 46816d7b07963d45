"""Leases survive a restart: persisted through the barrier, restored after unseal, and revoked on
time afterwards; restore is complete across many expiry buckets."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.core.leasing_backend import CREDS, Ledger
from tests.core.test_expiration import eventually

from strongroom.core import Core, CoreConfig
from strongroom.core.expiration import SchedulerConfig
from strongroom.engines import SECRETS_ENGINES
from strongroom.logical import Operation, Request
from strongroom.storage.inmem import InmemStorage
from strongroom.storage.sqlite import open_sqlite
from strongroom.testing import asgi_client


@pytest.fixture
def ledger(monkeypatch: pytest.MonkeyPatch) -> Ledger:
    led = Ledger()
    monkeypatch.setitem(SECRETS_ENGINES, "leasing", led.factory)
    return led


async def test_leases_survive_a_restart_on_sqlite_and_expire_on_time(ledger: Ledger, tmp_path: Path) -> None:
    db = {"path": str(tmp_path / "strongroom.db")}
    storage = await open_sqlite(db)
    core = Core(storage)
    init = await core.initialize(1, 1)
    await core.unseal(init.keys[0])
    async with asgi_client(core, init.root_token) as c:
        await c.post("/v1/sys/mounts/db", json={"type": "leasing"})
        short = (await c.get("/v1/db/creds/ro?ttl=6s")).json()["lease_id"]  # outlives a slow restart
        long = (await c.get("/v1/db/creds/ro?ttl=1h")).json()["lease_id"]
        token = (await c.post("/v1/auth/token/create", json={"ttl": "1h"})).json()["auth"]["client_token"]
    await core.seal()
    await storage.close()  # type: ignore[attr-defined]
    assert ledger.revoked == []

    # A new process: a new Core on the same file.
    storage = await open_sqlite(db)
    core = Core(storage)
    await core.unseal(init.keys[0])
    try:
        async with asgi_client(core, init.root_token) as c:
            for lease_id in (short, long):
                r = await c.post("/v1/sys/leases/lookup", json={"lease_id": lease_id})
                assert r.status_code == 200, r.text
            keys = (await c.request("LIST", "/v1/sys/leases/lookup/auth/token/create/")).json()["data"]["keys"]
            assert len(keys) == 1
            # The short lease expires on schedule with no request touching it; the long one stays.
            await eventually(lambda: ledger.revoked == ["ro-0"])
            # The backend's revoke runs first, then the lease's records go: give that a moment.
            for _ in range(100):
                if (await c.post("/v1/sys/leases/lookup", json={"lease_id": short})).status_code == 400:
                    break
                await asyncio.sleep(0.02)
            assert (await c.post("/v1/sys/leases/lookup", json={"lease_id": short})).status_code == 400
            assert (await c.post("/v1/sys/leases/lookup", json={"lease_id": long})).status_code == 200
            assert await core.tokens.lookup(token) is not None
    finally:
        await core.seal()
        await storage.close()  # type: ignore[attr-defined]


async def test_restore_is_complete_across_many_buckets(ledger: Ledger) -> None:
    """A few thousand leases over several one-second buckets: after a restart every one of them
    is revoked exactly once, including those in buckets loaded only as time advances."""
    config = CoreConfig(expiration=SchedulerConfig(bucket_seconds=1))
    physical = InmemStorage()
    core = Core(physical, config)
    key, root = await core.dev_bootstrap("root")
    entry = core.mounts.new_entry("mounts", "db/", "leasing")
    await core.mounts.mount(entry)
    token = await core.tokens.lookup(root)
    assert token is not None
    n = 3000
    for i in range(n):
        req = Request(Operation.READ, "creds/ro", full_path="db/creds/ro", mount_point="db/",
                      token_id=token.id)
        # TTLs from 2s to ~5s: leases fall into four or five buckets.
        await core.expiration.register_secret(req, CREDS.response(None, {"username": f"u{i}"}, ttl=2 + i % 4))
    await core.seal()

    core = Core(physical, config)
    await core.unseal(key)
    try:
        await eventually(lambda: len(ledger.revoked) == n, timeout=60)
        await core.expiration.wait_idle()
        await asyncio.sleep(0.2)
        assert sorted(ledger.revoked) == sorted(f"u{i}" for i in range(n))
    finally:
        await core.seal()


async def _restart_over(n: int) -> tuple[int, int, int]:
    """Restart a core over ``n`` token leases due within two minutes, which restore loads into the
    scheduler's heap (the most it ever holds). Returns (leases scheduled, tasks, live timers)."""
    physical = InmemStorage()
    core = Core(physical)
    key, _ = await core.dev_bootstrap("root")
    for _ in range(n):
        await core.tokens.create(policies=["default"], path="auth/token/create", ttl=120)
    await core.seal()

    core = Core(physical)
    await core.unseal(key)
    try:
        loop = asyncio.get_running_loop()
        timers = sum(1 for h in getattr(loop, "_scheduled", []) if not h.cancelled())
        return core.expiration.scheduler.stats()["scheduled"], len(asyncio.all_tasks()), timers
    finally:
        await core.seal()


async def test_restore_starts_no_task_or_timer_per_lease() -> None:
    """Restoring 2,000 leases starts exactly the tasks and timers that restoring 2 does: one timer
    over a heap, not one per lease (issue #4: 100k leases restore without a task or timer each)."""
    few_scheduled, few_tasks, few_timers = await _restart_over(2)
    many_scheduled, many_tasks, many_timers = await _restart_over(2000)
    assert (few_scheduled, many_scheduled) == (2, 2000)  # all restored into the heap
    assert many_tasks == few_tasks
    assert many_timers == few_timers
