"""Core's side of the write-ahead log (framework/wal.py): the register step deletes a response's
WAL entries in the very commit that makes its lease durable, and only then."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest
from tests.framework.external_backend import ExternalBackend, World

from strongroom.core import Core
from strongroom.engines import SECRETS_ENGINES
from strongroom.framework import wal
from strongroom.logical import WriteOp
from strongroom.storage.inmem import InmemStorage
from strongroom.testing import app_client


class Recording(InmemStorage):
    """Physical storage that remembers each batch it was handed."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []

    async def write_batch(self, ops: Sequence[WriteOp]) -> None:
        self.batches.append([key for key, _ in ops])
        await super().write_batch(ops)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    w = World()
    monkeypatch.setitem(SECRETS_ENGINES, "external", w.factory)
    wal.forget_in_flight()
    return w


@pytest.fixture
async def core(world: World) -> AsyncIterator[tuple[Core, Recording, str]]:
    physical = Recording()
    c = Core(physical)
    _, root = await c.dev_bootstrap("root")
    async with app_client(c, "root") as client:
        assert (await client.post("/v1/sys/mounts/db", json={"type": "external"})).status_code == 204
    try:
        yield c, physical, root
    finally:
        await c.seal()


def backend_of(c: Core) -> ExternalBackend:
    hit = c.router.match("db/creds/x")
    assert hit is not None and isinstance(hit[0].backend, ExternalBackend)
    return hit[0].backend


async def test_lease_commit_deletes_the_entry_in_the_same_batch(core: tuple[Core, Recording, str], world: World) -> None:
    c, physical, _ = core
    async with app_client(c, "root") as client:
        body = (await client.get("/v1/db/creds/app")).json()
    assert body["lease_id"].startswith("db/creds/app/") and "wal_ids" not in body
    b = backend_of(c)
    assert await wal.list_wal(b.system.storage) == []
    [together] = [keys for keys in physical.batches if any("/wal/" in k for k in keys)]
    lease_record = [i for i, k in enumerate(together) if k.startswith("sys/expire/id/")]
    wal_delete = [i for i, k in enumerate(together) if "/wal/" in k]
    assert lease_record and wal_delete and max(lease_record) < min(wal_delete)  # lease first, then the entry
    # The lease is what undoes it from now on: no rollback touches the user.
    await b.periodic(c.expiration._clock() + 7200)
    assert world.users == {body["data"]["username"]} and world.rolled_back == []


async def test_failed_lease_write_leaves_the_entry_for_rollback(core: tuple[Core, Recording, str], world: World,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    c, _, _ = core

    async def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(c.expiration._store, "create", broken)
    async with app_client(c, "root") as client:
        assert (await client.get("/v1/db/creds/app")).status_code == 500
    b = backend_of(c)
    assert len(await wal.list_wal(b.system.storage)) == 1
    [user] = world.users
    await b.periodic(c.expiration._clock() + 60)  # too young: the request might still be running
    assert world.users == {user}
    await b.periodic(c.expiration._clock() + b.wal_rollback_min_age + 1)
    assert world.users == set() and world.rolled_back == [user] and await wal.list_wal(b.system.storage) == []


async def test_entries_of_a_response_without_lease_go_once_it_is_handled(core: tuple[Core, Recording, str],
                                                                        world: World) -> None:
    c, _, _ = core
    async with app_client(c, "root") as client:
        resp = await client.post("/v1/db/plain/app", json={})
    assert resp.status_code == 200 and not resp.json().get("lease_id")
    assert await wal.list_wal(backend_of(c).system.storage) == [] and len(world.users) == 1


async def test_unseal_rolls_back_what_a_dead_process_left(world: World) -> None:
    physical = InmemStorage()
    c = Core(physical)
    key, _ = await c.dev_bootstrap("root")
    async with app_client(c, "root") as client:
        await client.post("/v1/sys/mounts/db", json={"type": "external"})
    name, _ = await backend_of(c).create_user("orphan")  # external create; the process dies here
    await c.seal()
    wal.forget_in_flight()
    c = Core(physical)
    await c.unseal(key)
    try:
        await backend_of(c).rollback_settled()
        assert world.rolled_back == [name] and world.users == set()
    finally:
        await c.seal()


async def test_unmount_rolls_back_everything_before_deleting_the_log(core: tuple[Core, Recording, str],
                                                                      world: World) -> None:
    c, _, _ = core
    name, _ = await backend_of(c).create_user("pending")  # young, and owned by a running request
    async with app_client(c, "root") as client:
        assert (await client.delete("/v1/sys/mounts/db")).status_code == 204
    assert world.rolled_back == [name] and world.users == set()
