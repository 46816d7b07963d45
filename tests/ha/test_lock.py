"""The PostgreSQL HA lock (Vault's ha_table layout) and the HA loop's fencing, on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import time


import psycopg
from psycopg import sql

from strongroom.core.ha import HA
from strongroom.storage import open_storage
from strongroom.storage.postgresql import PostgresqlHALock, PostgresqlStorage
from tests.ha.stalling import Stalling
from tests.storage.services import PG_URL


async def _open(tables: tuple[str, str], ttl: str = "1s", **extra: str) -> PostgresqlStorage:
    storage = await open_storage("postgresql", {"connection_url": PG_URL, "table": tables[0], "ha_enabled": "true",
                                                "ha_table": tables[1], "ha_lock_ttl": ttl, **extra})
    assert isinstance(storage, PostgresqlStorage)
    return storage


async def test_ha_table_has_vaults_layout(tables: tuple[str, str]) -> None:
    s = await _open(tables)
    try:
        async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
            cur = await conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                                     "ORDER BY ordinal_position", (tables[1],))
            assert [r[0] for r in await cur.fetchall()] == ["ha_key", "ha_identity", "ha_value", "valid_until"]
    finally:
        await s.close()


async def test_without_ha_enabled_there_is_no_lock(tables: tuple[str, str]) -> None:
    s = await open_storage("postgresql", {"connection_url": PG_URL, "table": tables[0]})
    try:
        assert isinstance(s, PostgresqlStorage) and s.ha is None
    finally:
        await s.close()


async def test_acquire_renew_release_expire(tables: tuple[str, str]) -> None:
    s1, s2 = await _open(tables), await _open(tables)
    try:
        l1, l2 = s1.ha, s2.ha
        assert l1 is not None and l2 is not None
        assert await l1.acquire("one", "http://one:8200")
        assert not await l2.acquire("two", "http://two:8200")  # held
        assert await l1.acquire("one", "http://one:8200")  # renewed
        held = await l2.holder()
        assert held is not None and held[:2] == ("one", "http://one:8200") and 0 < held[2] <= 1.0
        await l1.release("one")
        assert await l2.holder() is None
        assert await l2.acquire("two", "http://two:8200")  # free after release
        await asyncio.sleep(1.1)  # not renewed: expired
        assert await l2.holder() is None
        assert await l1.acquire("one", "http://one:8200")
        await l2.release("two")  # releasing a lock one does not hold changes nothing
        assert (await l1.holder() or ("",))[0] == "one"
    finally:
        await s1.close()
        await s2.close()


async def test_fencing_stops_acting_before_the_lock_can_expire(tables: tuple[str, str]) -> None:
    """A node whose renewals hang counts itself inactive before the row's valid_until: another node
    can take the lock only after that."""
    s1, s2 = await _open(tables), await _open(tables)
    try:
        assert s1.ha is not None and s2.ha is not None
        stalling = Stalling(s1.ha)
        ha = HA(stalling, "http://one:8200")
        events: list[str] = []

        async def activate() -> None:
            events.append("active")

        async def deactivate() -> None:
            events.append("standby")

        ha.start(activate, deactivate)
        deadline = time.monotonic() + 3
        while not ha.fenced_active and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert ha.fenced_active and events == ["active"]
        assert ha.leader() == (True, "http://one:8200")
        stalling.stall = True
        stalled_at = time.monotonic()
        while ha.fenced_active:
            await asyncio.sleep(0.005)
        fenced_after = time.monotonic() - stalled_at
        # The other node cannot take the lock yet: the row is still valid in the database.
        assert not await s2.ha.acquire("two", "http://two:8200")
        assert fenced_after < 1.0
        while not await s2.ha.acquire("two", "http://two:8200"):
            await asyncio.sleep(0.02)
        took_after = time.monotonic() - stalled_at
        assert took_after > fenced_after
        while "standby" not in events:
            await asyncio.sleep(0.01)
        assert ha.leader() == (False, "")  # this node's knowledge of the old leader is dropped
        await ha.stop()
    finally:
        await s1.close()
        await s2.close()


async def test_lost_lock_is_noticed_at_the_next_renewal(tables: tuple[str, str]) -> None:
    s1, s2 = await _open(tables), await _open(tables)
    try:
        assert s1.ha is not None and s2.ha is not None
        ha = HA(s1.ha, "http://one:8200")
        events: list[str] = []

        async def note(what: str) -> None:
            events.append(what)

        ha.start(lambda: note("active"), lambda: note("standby"))
        while not ha.fenced_active:
            await asyncio.sleep(0.01)
        # Someone else takes the row (an operator, or a clock gone wrong): the next renewal fails.
        async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
            await conn.execute(sql.SQL("UPDATE {} SET ha_identity = 'intruder'").format(sql.Identifier(tables[1])))
        deadline = time.monotonic() + 2
        while "standby" not in events and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert events == ["active", "standby"] and not ha.fenced_active
        await ha.stop()
    finally:
        await s1.close()
        await s2.close()


