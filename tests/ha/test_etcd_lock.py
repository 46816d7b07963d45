"""The etcd HA lock (lease + create-if-absent transaction, keep-alive renewals) on a real etcd."""

from __future__ import annotations

import asyncio
import base64
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from strongroom.core.ha import HA, HALock
from strongroom.errors import InvalidRequest
from strongroom.storage import open_storage
from strongroom.storage.etcd import EtcdStorage
from strongroom.storage.etcd_ha import EtcdHALock
from tests.ha.stalling import Stalling
from tests.storage.services import EtcdServer, start_etcd_or_skip


async def _open(etcd: EtcdServer, path: str, ttl: str = "1s") -> EtcdStorage:
    s = await open_storage("etcd", {"address": etcd.address, "path": path, "ha_enabled": "true", "session_ttl": ttl})
    assert isinstance(s, EtcdStorage)
    return s


Stores = tuple[EtcdStorage, EtcdStorage]


@pytest.fixture
async def stores(etcd_fast: EtcdServer) -> AsyncIterator[Stores]:
    """Two nodes' stores with HA on one fresh path of the shared etcd, closed after the test."""
    path = f"/sr-{uuid.uuid4().hex[:8]}/"
    s1, s2 = await _open(etcd_fast, path), await _open(etcd_fast, path)
    try:
        yield s1, s2
    finally:
        await s1.close()
        await s2.close()


async def _active(lock: HALock) -> tuple[HA, list[str]]:
    """An HA loop on ``lock`` for node "one", once it is active (within 3 s), and the list of its
    "active"/"standby" transitions so far."""
    ha = HA(lock, "http://one:8200")
    events: list[str] = []

    async def note(what: str) -> None:
        events.append(what)

    ha.start(lambda: note("active"), lambda: note("standby"))
    deadline = time.monotonic() + 3
    while not ha.fenced_active and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert ha.fenced_active
    return ha, events


def _lock(s: EtcdStorage) -> EtcdHALock:
    assert s.ha is not None
    return s.ha


async def test_without_ha_enabled_there_is_no_lock(etcd_fast: EtcdServer) -> None:
    s = await open_storage("etcd", {"address": etcd_fast.address, "path": f"/sr-{uuid.uuid4().hex[:8]}/"})
    try:
        assert isinstance(s, EtcdStorage) and s.ha is None
    finally:
        await s.close()


@pytest.mark.parametrize("ttl", ["0s", "500ms", "soon"])
async def test_bad_ttl_is_refused(etcd_fast: EtcdServer, ttl: str) -> None:
    with pytest.raises(InvalidRequest, match="session_ttl"):
        await _open(etcd_fast, "/sr-bad/", ttl)


async def test_acquire_renew_release_expire(etcd_fast: EtcdServer) -> None:
    path = f"/sr-{uuid.uuid4().hex[:8]}/"
    s1, s2 = await _open(etcd_fast, path), await _open(etcd_fast, path)
    try:
        l1, l2 = _lock(s1), _lock(s2)
        assert l1.ttl == 1.0
        assert await l1.acquire("one", "http://one:8200")
        assert not await l2.acquire("two", "http://two:8200")  # held
        for _ in range(4):  # renewed by keep-alives past the TTL
            await asyncio.sleep(0.4)
            assert await l1.acquire("one", "http://one:8200")
        assert not await l2.acquire("two", "http://two:8200")
        held = await l2.holder()
        assert held is not None and held[:2] == ("one", "http://one:8200") and 0 < held[2] <= 1.0
        # The key lives beside the data, not under it: listing data never shows it.
        assert await s1.list("") == []
        raw = httpx.post(f"{etcd_fast.address}/v3/kv/range",
                         json={"key": base64.b64encode(f"{path.rstrip('/')}.ha/lock".encode()).decode()}).json()
        assert raw["kvs"][0]["lease"] != "0"  # attached to a lease: etcd deletes it on expiry
        await l1.release("one")
        assert await l2.holder() is None  # released: the lease revoked, the key gone at once
        assert await l2.acquire("two", "http://two:8200")
        # l2 stops renewing (as a killed node): etcd expires the lease and deletes the key.
        l2._lease = None  # noqa: SLF001 - forget it without revoking, like a process that died
        await asyncio.sleep(1.8)
        assert await l1.holder() is None
        assert await l1.acquire("one", "http://one:8200")
    finally:
        await s1.close()
        await s2.close()


async def test_a_standby_hears_of_every_change_of_the_lock_at_once(stores: Stores) -> None:
    """``changed`` (the HA loop's pause on a standby) returns as soon as the lock key is taken,
    released or expires, not at the end of its timeout; echoes do not wake it."""
    s1, s2 = stores
    l1, l2 = _lock(s1), _lock(s2)
    await l2.changed(0.5)  # starts the watch (nothing changes: the timeout)

    async def woken_by(change: Any) -> float:
        waiter = asyncio.create_task(l2.changed(10))
        await asyncio.sleep(0.3)  # waiting, with nothing changed yet
        assert not waiter.done()
        start = time.monotonic()
        await change
        await asyncio.wait_for(waiter, 5)
        return time.monotonic() - start

    assert await woken_by(l1.acquire("one", "http://one:8200")) < 1.0
    waiter = asyncio.create_task(l2.changed(0.6))
    await l1.echo("one", '{"api_address": "http://one"}')  # another key of the HA prefix
    start = time.monotonic()
    await waiter
    assert time.monotonic() - start > 0.4  # the echo did not wake it: the timeout did

    async def renew_then_release() -> None:
        assert await l1.acquire("one", "http://one:8200")  # a renewal changes nothing in the key
        await l1.release("one")

    assert await woken_by(renew_then_release()) < 1.0


async def test_echoes_list_nodes_and_forget(stores: Stores) -> None:
    s1, s2 = stores
    l1, l2 = _lock(s1), _lock(s2)
    await l1.echo("one", '{"api_address": "http://one"}')
    await l2.echo("two", '{"api_address": "http://two"}')
    nodes = await l1.nodes()
    assert [(n[0], n[1]) for n in nodes] == [("one", '{"api_address": "http://one"}'),
                                             ("two", '{"api_address": "http://two"}')]
    assert all(0.0 <= n[2] <= 3.0 for n in nodes)
    await l2.forget("two")
    assert [n[0] for n in await l1.nodes()] == ["one"]


async def test_a_holder_that_stalled_past_its_lease_does_not_get_the_lock_back(stores: Stores) -> None:
    s1, s2 = stores
    l1, l2 = _lock(s1), _lock(s2)
    assert await l1.acquire("one", "http://one:8200")
    await asyncio.sleep(1.8)  # l1 frozen: no keep-alive; etcd expires its lease and drops the key
    assert await l2.acquire("two", "http://two:8200")
    assert not await l1.acquire("one", "http://one:8200")  # its renewal finds the lock taken
    held = await l1.holder()
    assert held is not None and held[0] == "two"
    assert await l2.acquire("two", "http://two:8200")  # and the new holder keeps renewing


async def test_fencing_stops_acting_before_the_lease_can_expire(stores: Stores) -> None:
    """core/ha.py's fence on the etcd lock: a node whose renewals hang counts itself inactive before
    etcd can expire its lease; another node takes the lock only after that."""
    s1, s2 = stores
    stalling = Stalling(_lock(s1))
    ha, events = await _active(stalling)
    assert events == ["active"]
    stalling.stall = True
    stalled_at = time.monotonic()
    while ha.fenced_active:
        await asyncio.sleep(0.005)
    fenced_after = time.monotonic() - stalled_at
    assert fenced_after < 1.0
    assert not await _lock(s2).acquire("two", "http://two:8200")  # the lease still lives in etcd
    while not await _lock(s2).acquire("two", "http://two:8200"):
        await asyncio.sleep(0.02)
    assert time.monotonic() - stalled_at > fenced_after
    while "standby" not in events:
        await asyncio.sleep(0.01)
    await ha.stop()


async def test_the_active_stops_acting_when_etcd_is_lost(tmp_path: Path) -> None:
    """etcd itself goes away under the active: its renewals fail and it counts itself inactive
    (and deactivates) within the TTL, as it must before a recovered etcd could expire its lease."""
    shm = Path("/dev/shm")
    work = Path(tempfile.mkdtemp(prefix="sr-etcd-lost-", dir=shm if shm.is_dir() else tmp_path))
    etcd = start_etcd_or_skip(work, fast=True)
    try:
        s1 = await _open(etcd, "/sr-lost/")
        ha, events = await _active(_lock(s1))
        etcd.proc.kill()
        etcd.proc.wait(5)
        lost_at = time.monotonic()
        while ha.fenced_active:
            await asyncio.sleep(0.005)
        assert time.monotonic() - lost_at < 1.0
        while "standby" not in events and time.monotonic() - lost_at < 3:
            await asyncio.sleep(0.01)
        assert events == ["active", "standby"]
        await ha.stop()
        await s1.close()
    finally:
        if etcd.proc.poll() is None:
            etcd.stop()
        shutil.rmtree(work, ignore_errors=True)
