"""framework/wal.py and the Backend's rollback hooks; SecretType.response."""

from __future__ import annotations

import orjson
import pytest
from tests.framework.external_backend import USER, ExternalBackend, World

from strongroom.errors import Internal, InvalidRequest
from strongroom.framework import Backend, BackendConfig, SecretType, wal
from strongroom.framework.system import StaticSystemView
from strongroom.logical import LeaseInfo, Operation, Request, WriteBatch
from strongroom.storage.inmem import InmemStorage

NOW = 1_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def fresh_process() -> None:
    wal.forget_in_flight()


def backend(world: World, storage: InmemStorage | None = None, clock: Clock | None = None) -> ExternalBackend:
    system = StaticSystemView(InmemStorage() if storage is None else storage, ttls=(300, 3600),
                              clock=clock or Clock())
    return ExternalBackend(BackendConfig(mount_path="db/", system=system), world)


# -- the log itself ----------------------------------------------------------------------------
async def test_put_get_list_delete() -> None:
    storage = InmemStorage()
    wal_id = await wal.put_wal(storage, "user", {"name": "u1"}, now=NOW)
    assert await wal.list_wal(storage) == [wal_id]
    assert orjson.loads(await storage.get("wal/" + wal_id) or b"") == {"type": "user", "data": {"name": "u1"},
                                                                       "created_at": NOW}
    assert await wal.get_wal(storage, wal_id) == wal.WALEntry(wal_id, "user", {"name": "u1"}, NOW)
    assert wal.in_flight(wal_id)
    await wal.delete_wal(storage, wal_id)
    assert await wal.get_wal(storage, wal_id) is None and await wal.list_wal(storage) == []
    assert not wal.in_flight(wal_id)


async def test_ids_cannot_leave_the_prefix() -> None:
    for bad in ("", "../salt", "a/b", ".."):
        with pytest.raises(Internal):
            await wal.get_wal(InmemStorage(), bad)


async def test_malformed_entry_is_reported_and_kept() -> None:
    storage, world = InmemStorage(), World()
    await storage.put("wal/broken", b"{not json")
    b = backend(world, storage)
    assert await b.rollback_wal(orphans=True) == wal.RollbackRound(0, 1)
    assert await storage.get("wal/broken") is not None


async def test_staged_deletes_commit_with_the_batch() -> None:
    storage = InmemStorage()
    ids = [await wal.put_wal(storage, "user", {"name": n}) for n in ("a", "b")]
    batch = WriteBatch()
    batch.put(storage, "lease", b"x")
    wal.stage_wal_deletes(batch, storage, ids)
    assert sorted(await wal.list_wal(storage)) == sorted(ids)
    await batch.commit()
    assert await wal.list_wal(storage) == [] and await storage.get("lease") == b"x"
    assert not any(wal.in_flight(i) for i in ids)


# -- rollback through the Backend's lifecycle ----------------------------------------------------
async def test_activate_rolls_back_every_orphan_whatever_its_age() -> None:
    world, storage = World(), InmemStorage()
    first = backend(world, storage)
    names = [(await first.create_user("u"))[0] for _ in range(3)]
    wal.forget_in_flight()  # the process that made them died
    second = backend(world, storage)  # a fresh entry is still an orphan: nobody will commit it
    await second.activate()
    await second.rollback_settled()
    assert sorted(world.rolled_back) == sorted(names) and world.users == set()
    assert await wal.list_wal(storage) == []


async def test_activate_leaves_entries_of_running_requests_of_this_process() -> None:
    # A backend rebuilt in this process (tune, remount) while a request of the old one is between
    # its external create and the lease commit.
    world, storage = World(), InmemStorage()
    name, _ = await backend(world, storage).create_user("u")
    rebuilt = backend(world, storage)
    await rebuilt.activate()
    await rebuilt.rollback_settled()
    assert world.users == {name} and len(await wal.list_wal(storage)) == 1


async def test_periodic_rolls_back_only_entries_older_than_the_minimum_age() -> None:
    world, storage, clock = World(), InmemStorage(), Clock()
    b = backend(world, storage, clock)
    old, _ = await b.create_user("old")
    clock.now += 500
    young, _ = await b.create_user("young")
    await b.periodic(NOW + 601)  # old is 601s old, young 101s
    assert world.rolled_back == [old] and world.users == {young}
    b.wal_rollback_min_age = 60
    await b.periodic(NOW + 601)
    assert world.users == set()


async def test_failed_rollback_keeps_its_entry_for_the_next_round() -> None:
    world, storage = World(failing=1, busy=1), InmemStorage()
    b = backend(world, storage)
    name, _ = await b.create_user("u")
    assert await b.rollback_wal(now=NOW + 3600) == wal.RollbackRound(0, 1)  # raised
    assert await b.rollback_wal(now=NOW + 3600) == wal.RollbackRound(0, 1)  # answered False
    assert name in world.users and len(await wal.list_wal(storage)) == 1
    assert await b.rollback_wal(now=NOW + 3600) == wal.RollbackRound(1, 0)
    assert world.users == set() and await wal.list_wal(storage) == []


async def test_backend_without_rollback_pays_nothing() -> None:
    class Counting(InmemStorage):
        lists = 0

        async def list(self, prefix: str) -> list[str]:
            Counting.lists += 1
            return await super().list(prefix)

    storage = Counting()
    await storage.put("wal/orphan", orjson.dumps({"type": "x", "data": None, "created_at": 0}))
    plain = Backend(BackendConfig(system=StaticSystemView(storage)), [])
    assert not plain.rolls_back and backend(World()).rolls_back
    await plain.activate()
    await plain.rollback_settled()
    await plain.periodic(NOW)
    await plain.deactivate()
    assert Counting.lists == 0 and await storage.get("wal/orphan") is not None


async def test_deactivate_stops_a_running_rollback() -> None:
    import asyncio

    started = asyncio.Event()

    class Slow(ExternalBackend):
        async def rollback(self, kind: str, data: object) -> bool | None:
            started.set()
            await asyncio.sleep(3600)
            return True

    storage = InmemStorage()
    await wal.put_wal(storage, "user", {"name": "x"})
    wal.forget_in_flight()
    b = Slow(BackendConfig(system=StaticSystemView(storage)), World())
    await b.activate()
    await asyncio.wait_for(started.wait(), 5)
    await asyncio.wait_for(b.deactivate(), 5)
    assert len(await wal.list_wal(storage)) == 1  # kept for the next activation


# -- SecretType.response ------------------------------------------------------------------------
async def test_response_records_the_secret_type_and_routes_revoke_by_it() -> None:
    world = World()
    b = backend(world)
    resp = USER.response({"username": "u"}, {"username": "u"}, wal_ids=["w1"])
    assert resp.secret is not None and resp.secret.internal_data == {"username": "u", "secret_type": "user"}
    assert resp.data == {"username": "u"} and resp.wal_ids == ["w1"]
    world.users.add("u")
    await b.handle(Request(Operation.REVOKE, "creds/x", secret=resp.secret))
    assert world.users == set()
    with pytest.raises(InvalidRequest, match='unknown secret type ""'):
        await b.handle(Request(Operation.REVOKE, "creds/x", secret=LeaseInfo(internal_data={"username": "u"})))


def test_response_ttl_defaults() -> None:
    system = StaticSystemView(InmemStorage(), ttls=(300, 3600))
    plain: SecretType[Backend] = SecretType("p")
    with_default: SecretType[Backend] = SecretType("d", default_ttl=60)
    assert plain.response(None).secret.ttl == 0  # type: ignore[union-attr]  # core applies the mount's
    assert plain.response(None, system=system).secret.ttl == 300  # type: ignore[union-attr]
    assert with_default.response(None, system=system).secret.ttl == 60  # type: ignore[union-attr]
    assert with_default.response(None, ttl=5, max_ttl=9, renewable=False, system=system).secret == LeaseInfo(
        ttl=5, max_ttl=9, renewable=False, internal_data={"secret_type": "d"})
