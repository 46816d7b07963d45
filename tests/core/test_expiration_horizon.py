"""The scheduler's memory horizon: only leases due within about two bucket widths are in memory,
the width is the store's own (recorded at first setup; hour-bucketed stores from before the
record keep their hour), and leases beyond the horizon still expire on time, across restarts,
renewals that move them in or out of it, revocation and retries (lease.py, "Bucket width")."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
import pytest
from tests.core.leasing_backend import Ledger
from tests.core.test_expiration import eventually

from strongroom.barrier.view import StorageView
from strongroom.core import Core, CoreConfig
from strongroom.core.expiration import ExpirationManager, SchedulerConfig
from strongroom.core.expiration.lease import digest, due_key
from strongroom.core.router import Router
from strongroom.core.tokens.entry import TokenEntry
from strongroom.engines import SECRETS_ENGINES
from strongroom.errors import Internal
from strongroom.logical import Storage
from strongroom.storage.inmem import InmemStorage
from strongroom.testing import asgi_client

HOUR_MS = 3_600_000


@pytest.fixture
def ledger(monkeypatch: pytest.MonkeyPatch) -> Ledger:
    led = Ledger()
    monkeypatch.setitem(SECRETS_ENGINES, "leasing", led.factory)
    return led


class Clock:
    """Wall time plus an offset the test moves forward (real time still flows, so retry delays
    and timers behave as in production between jumps)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class Tokens:
    """The token store as the manager uses it when a token's lease expires: ``revoke`` records the
    token id, failing the first ``failing`` calls."""

    revoked: list[str] = field(default_factory=list)
    failing: int = 0

    async def revoke(self, entry: TokenEntry) -> None:
        if self.failing:
            self.failing -= 1
            raise RuntimeError("token store unavailable")
        self.revoked.append(entry.id)


class Leases:
    """An ExpirationManager over real in-memory storage with a movable clock, tracking token leases."""

    def __init__(self, view: Storage, clock: Clock, tokens: Tokens, config: SchedulerConfig) -> None:
        self.clock, self.tokens = clock, tokens
        self.manager = ExpirationManager(view, router=Router(), mount_ttls=lambda _: (0, 0),
                                         tokens=lambda: cast(Any, tokens), config=config, clock=clock)

    async def register(self, token_id: str, ttl: float) -> str:
        now = self.clock()
        entry = TokenEntry(id=token_id, accessor="", path="auth/token/create", issue_time=now,
                           expire_time=now + ttl, ttl=int(ttl))
        await self.manager.register_token(entry)
        return self.manager.token_lease_id(entry)

    async def renew(self, token_id: str, ttl: float) -> None:
        now = self.clock()
        await self.manager.token_renewed(TokenEntry(id=token_id, accessor="", path="auth/token/create",
                                                    expire_time=now + ttl, last_renewal=now))

    def in_memory(self, lease_id: str) -> bool:
        """Is the lease live in the scheduler (its _entries, hence a heap entry it will fire from)?"""
        return digest(lease_id) in self.manager.scheduler._entries

    async def jump(self, seconds: float) -> None:
        """Move the clock forward and wake the timer (as a long sleep would once it ends)."""
        self.clock.offset += seconds
        self.manager.scheduler._wake.set()


async def new_leases(view: Storage, clock: Clock, tokens: Tokens,
                     config: SchedulerConfig | None = None) -> Leases:
    leases = Leases(view, clock, tokens, config or SchedulerConfig(retry_base=0.05, retry_max=0.2))
    await leases.manager.setup()
    return leases


def expire_view() -> Storage:
    return StorageView(InmemStorage(), "sys/expire/")


async def due_entries(storage: Storage, prefix: str = "due/") -> list[str]:
    """Every due/ key (without ``prefix``'s parent), e.g. ["472222/1700000000000-ab12..."]."""
    return [f"{bucket}{name}" for bucket in await storage.list(prefix)
            for name in await storage.list(prefix + bucket)]


# -- the recorded width ---------------------------------------------------------------------------
async def test_a_new_store_records_the_short_width_and_keeps_it() -> None:
    physical = InmemStorage()
    core = Core(physical)
    key, _ = await core.dev_bootstrap("root")
    raw = await core.barrier.get("sys/expire/layout")
    assert raw is not None and orjson.loads(raw) == {"bucket_seconds": 300}
    assert core.expiration.scheduler.bucket_ms == 300_000
    await core.seal()
    # A later configured width applies to new stores only: this one keeps what its keys use.
    core = Core(physical, CoreConfig(expiration=SchedulerConfig(bucket_seconds=60)))
    await core.unseal(key)
    try:
        assert core.expiration.scheduler.bucket_ms == 300_000
    finally:
        await core.seal()


async def test_an_unreadable_width_record_stops_setup() -> None:
    view = expire_view()
    await view.put("layout", b'{"bucket_seconds": "soon"}')
    with pytest.raises(Internal, match="layout"):
        await new_leases(view, Clock(), Tokens())


async def test_a_legacy_store_keeps_hour_buckets(ledger: Ledger) -> None:
    """A store written before the width was recorded (due/ keys of hour buckets, no record) keeps
    its hour after a restart with a shorter configured width: expiry, renew and revoke all find
    the keys it wrote, and the keys they write are hour-bucketed too."""
    physical = InmemStorage()
    core = Core(physical, CoreConfig(expiration=SchedulerConfig(bucket_seconds=3600)))
    key, root = await core.dev_bootstrap("root")
    async with asgi_client(core, root) as c:
        await c.post("/v1/sys/mounts/db", json={"type": "leasing", "config": {"max_lease_ttl": "3h"}})
        short = (await c.get("/v1/db/creds/ro?ttl=5s")).json()["lease_id"]
        long = (await c.get("/v1/db/creds/ro?ttl=1h")).json()["lease_id"]
        gone = (await c.get("/v1/db/creds/ro?ttl=1h")).json()["lease_id"]
    await core.barrier.delete("sys/expire/layout")  # as the store was before the record existed
    legacy = await due_entries(core.barrier, "sys/expire/due/")
    assert len(legacy) == 3 and all(int(k.split("/")[0]) == int(k.split("/")[1][:13]) // HOUR_MS for k in legacy)
    await core.seal()
    assert ledger.revoked == []

    core = Core(physical, CoreConfig(expiration=SchedulerConfig(bucket_seconds=300)))
    await core.unseal(key)
    try:
        raw = await core.barrier.get("sys/expire/layout")
        assert raw is not None and orjson.loads(raw) == {"bucket_seconds": 3600}
        async with asgi_client(core, root) as c:
            # Expiry: the short lease is revoked on time from its hour-bucketed key.
            await eventually(lambda: ledger.revoked == ["ro-0"], timeout=10)
            await core.expiration.wait_idle()
            assert (await c.post("/v1/sys/leases/lookup", json={"lease_id": short})).status_code == 400
            # Renew moves the long lease's key, within hour buckets.
            r = await c.put("/v1/sys/leases/renew", json={"lease_id": long, "increment": "2h"})
            assert r.status_code == 200, r.text
            lease = await core.expiration._store.load(long)
            assert lease is not None
            mine = [k for k in await due_entries(core.barrier, "sys/expire/due/") if k.endswith(digest(long))]
            assert mine == [due_key(lease.expire_ms, digest(long), HOUR_MS).removeprefix("due/")]
            # Revoke finds and deletes the key the old process wrote.
            assert (await c.put("/v1/sys/leases/revoke", json={"lease_id": gone})).status_code == 204
            await core.expiration.wait_idle()
            left = await due_entries(core.barrier, "sys/expire/due/")
            assert [k.rsplit("-", 1)[1] for k in left] == [digest(long)]
            assert sorted(ledger.revoked) == ["ro-0", "ro-2"]
    finally:
        await core.seal()


# -- the horizon ----------------------------------------------------------------------------------
async def test_far_leases_stay_out_of_memory_yet_expire_on_time_across_a_restart() -> None:
    view, clock, tokens = expire_view(), Clock(), Tokens()
    leases = await new_leases(view, clock, tokens)
    near = [await leases.register(f"near{i}", 60) for i in range(3)]
    far = [await leases.register(f"far{i}", 3600) for i in range(200)]
    try:
        # Registered into buckets not loaded yet: only their bucket numbers are held.
        assert all(leases.in_memory(i) for i in near)
        assert not any(leases.in_memory(i) for i in far)
        assert len(leases.manager.scheduler._heap) == 3
        await leases.jump(61)
        await eventually(lambda: sorted(tokens.revoked) == ["near0", "near1", "near2"])
    finally:
        await leases.manager.stop()

    # A restart restores them the same way: noted, not loaded.
    leases = await new_leases(view, clock, tokens)
    try:
        assert leases.manager.scheduler.stats()["scheduled"] == 0
        assert leases.manager.scheduler.stats()["pending_buckets"] >= 1
        # Within a bucket width of their expiry they are loaded, and fire when the clock gets there.
        await leases.jump(3600 - 61 - 10)
        await eventually(lambda: leases.manager.scheduler.stats()["scheduled"] == 200)
        assert len(tokens.revoked) == 3
        await leases.jump(11)
        await eventually(lambda: len(tokens.revoked) == 203)
        await leases.manager.wait_idle()
        assert await view.list("id/") == [] and await due_entries(view) == []
        assert leases.manager.scheduler.stats()["scheduled"] == 0
    finally:
        await leases.manager.stop()


async def test_renewal_moves_a_lease_in_and_out_of_memory_and_revoke_reaches_an_unloaded_one() -> None:
    view, clock, tokens = expire_view(), Clock(), Tokens()
    leases = await new_leases(view, clock, tokens)
    try:
        out = await leases.register("out", 60)
        back = await leases.register("back", 3600)
        unloaded = await leases.register("unloaded", 3600)
        assert leases.in_memory(out) and not leases.in_memory(back)
        await leases.renew("out", 3600)  # loaded -> a bucket not loaded yet
        await leases.renew("back", 90)  # not loaded -> due soon
        assert not leases.in_memory(out) and leases.in_memory(back)
        await leases.manager.revoke(unloaded)  # never loaded: revoked now, from storage
        assert tokens.revoked == ["unloaded"]

        await leases.jump(91)
        await eventually(lambda: tokens.revoked == ["unloaded", "back"])
        await leases.jump(3600)
        await eventually(lambda: tokens.revoked == ["unloaded", "back", "out"])
        await leases.manager.wait_idle()
        assert tokens.revoked == ["unloaded", "back", "out"]  # each once
        assert await view.list("id/") == [] and await due_entries(view) == []
    finally:
        await leases.manager.stop()


async def test_a_retry_fires_for_the_lease_expiry_and_leaves_nothing_behind() -> None:
    """While a retry waits, its fire-at time differs from the lease's expiry: the expiry is kept
    apart (the worker needs it to find the lease's due/ key) and dropped once the retry fires."""
    view, clock, tokens = expire_view(), Clock(), Tokens(failing=2)
    leases = await new_leases(view, clock, tokens, SchedulerConfig(retry_base=0.3, retry_max=0.3))
    try:
        lease_id = await leases.register("flaky", 1)
        await leases.jump(2)
        scheduler = leases.manager.scheduler
        await eventually(lambda: digest(lease_id) in scheduler._retrying)
        await eventually(lambda: tokens.revoked == ["flaky"])
        await leases.manager.wait_idle()
        assert scheduler.stats()["scheduled"] == 0 and scheduler.stats()["retrying"] == 0
        assert await view.list("id/") == [] and await due_entries(view) == []
    finally:
        await leases.manager.stop()
