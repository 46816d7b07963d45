"""PostgreSQL storage beyond the shared contract: Vault's rows, the pool bound, deadlines, faults.

Runs against the local PostgreSQL (127.0.0.1:5432, user postgres), one fresh table per test.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest

from strongroom.errors import Internal, InvalidRequest
from strongroom.storage import PhysicalStorage, open_storage
from strongroom.storage.postgresql import split_key
from tests.storage.services import PG_URL, drop_pg_table, pg_url_or_skip


@pytest.fixture
def table() -> Iterator[str]:
    pg_url_or_skip()
    name = f"sr_test_{uuid.uuid4().hex[:12]}"
    yield name
    asyncio.run(drop_pg_table(name))


async def _open(table: str, url: str = PG_URL, **options: str) -> PhysicalStorage:
    return await open_storage("postgresql", {"connection_url": url, "table": table, **options})


@pytest.fixture
async def store(table: str) -> AsyncIterator[PhysicalStorage]:
    s = await _open(table, max_parallel="2")
    yield s
    await s.close()


async def _settled_count(app: str, expected: int) -> int:
    """Connections of ``app`` the server still lists; a closed connection's backend exits a moment
    after the client closed it, so wait (bounded) for ``expected``."""
    deadline = time.monotonic() + 5
    while True:
        count = int((await _rows("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", app))[0][0])
        if count == expected or time.monotonic() > deadline:
            return count
        await asyncio.sleep(0.05)


async def _rows(sql: str, *args: Any) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
        cur = await conn.execute(sql, args)
        return list(await cur.fetchall())


def test_split_key_is_vaults_layout() -> None:
    assert split_key("a") == ("", "/", "a")
    assert split_key("a/b") == ("/", "/a/", "b")
    assert split_key("a/b/c") == ("/a/", "/a/b/", "c")
    assert split_key("core/keyring/x/y") == ("/core/keyring/", "/core/keyring/x/", "y")


async def test_rows_and_table_are_vaults(store: PhysicalStorage, table: str) -> None:
    await store.put("top", b"\x00\x01")
    await store.put("sys/token/id/abc", b"v")
    rows = await _rows(f"SELECT parent_path, path, key, value FROM {table} ORDER BY path, key")
    assert rows == [("", "/", "top", b"\x00\x01"), ("/sys/token/", "/sys/token/id/", "abc", b"v")]
    columns = await _rows("SELECT column_name, data_type, collation_name FROM information_schema.columns "
                          "WHERE table_name = %s ORDER BY ordinal_position", table)
    assert columns == [("parent_path", "text", "C"), ("path", "text", "C"), ("key", "text", "C"), ("value", "bytea", None)]
    pk = await _rows("SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                     "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary "
                     "ORDER BY array_position(i.indkey, a.attnum)", table)
    assert pk == [("path",), ("key",)]


async def test_reads_a_table_written_in_vaults_layout(table: str) -> None:
    """Rows inserted as Vault writes them (an existing vault_kv_store) are read and listed."""
    s = await _open(table)
    try:
        async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
            await conn.execute(f"INSERT INTO {table} VALUES ('/logical/', '/logical/abc/', 'k', 'x'::bytea), "
                               "('', '/', 'solo', 'y'::bytea)")
        assert await s.get("logical/abc/k") == b"x"
        assert await s.list("") == ["logical/", "solo"]
        assert await s.list("logical/") == ["abc/"]
    finally:
        await s.close()


async def test_reopen_keeps_data(table: str) -> None:
    s = await _open(table)
    await s.put("a/b", b"1")
    await s.close()
    s = await _open(table)
    try:
        assert await s.get("a/b") == b"1"
    finally:
        await s.close()


async def test_schema_qualified_table(table: str) -> None:
    schema = table + "_s"
    async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
        await conn.execute(f"CREATE SCHEMA {schema}")
    try:
        s = await _open(f"{schema}.kv")
        await s.put("x/y", b"z")
        assert await s.list("x/") == ["y"]
        await s.close()
        assert await _rows(f"SELECT key FROM {schema}.kv") == [("y",)]
    finally:
        async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
            await conn.execute(f"DROP SCHEMA {schema} CASCADE")


async def test_pool_is_bounded_by_max_parallel(table: str) -> None:
    app = f"sr-pool-{uuid.uuid4().hex[:8]}"
    s = await _open(table, f"{PG_URL}&application_name={app}", max_parallel="3")
    try:
        seen = 0

        async def slow_put(i: int) -> None:
            nonlocal seen
            await s.put(f"p/{i}", b"v")
            rows = await _rows("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", app)
            seen = max(seen, rows[0][0])

        await asyncio.gather(*(slow_put(i) for i in range(40)))
        assert len(await s.list("p/")) == 40
        assert 1 <= seen <= 3
    finally:
        await s.close()
    assert await _settled_count(app, 0) == 0


async def test_max_idle_connections_closes_the_surplus(table: str) -> None:
    app = f"sr-idle-{uuid.uuid4().hex[:8]}"
    s = await _open(table, f"{PG_URL}&application_name={app}", max_parallel="6", max_idle_connections="1")
    try:
        await asyncio.gather(*(s.put(f"i/{i}", b"v") for i in range(30)))
        assert await _settled_count(app, 1) == 1
    finally:
        await s.close()


async def test_skip_create_table(table: str) -> None:
    with pytest.raises(InvalidRequest, match=f'table "{table}" does not exist \\(skip_create_table is set'):
        await _open(table, skip_create_table="true")
    assert await _rows("SELECT to_regclass(%s)", table) == [(None,)]
    async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
        await conn.execute(f'CREATE TABLE {table} (parent_path TEXT COLLATE "C" NOT NULL, path TEXT COLLATE "C", '
                           'key TEXT COLLATE "C", value BYTEA, PRIMARY KEY (path, key))')
    s = await _open(table, skip_create_table="true")
    try:
        await s.put("a/b", b"1")
        assert await s.list("a/") == ["b"]
        # Nothing was added to the operator's table: no index of ours.
        assert await _rows("SELECT count(*) FROM pg_indexes WHERE tablename = %s", table) == [(1,)]
    finally:
        await s.close()


async def test_connection_url_from_openbaos_environment_variable(table: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VAULT_PG_CONNECTION_URL", raising=False)
    monkeypatch.setenv("BAO_PG_CONNECTION_URL", PG_URL)
    s = await open_storage("postgresql", {"table": table})
    try:
        await s.put("k", b"v")
        assert await s.get("k") == b"v"
    finally:
        await s.close()


async def test_failed_batch_writes_nothing(store: PhysicalStorage) -> None:
    await store.put("keep", b"old")
    batch = getattr(store, "write_batch")  # noqa: B009
    # PostgreSQL text cannot hold NUL: the last write fails, so the whole transaction must.
    with pytest.raises(Internal, match="postgresql storage at 127.0.0.1:5432/postgres: write batch failed"):
        await batch([("keep", b"new"), ("other", b"x"), ("bad\x00key", b"y")])
    assert await store.get("keep") == b"old"
    assert await store.get("other") is None
    await store.put("after", b"ok")  # the pool still works
    assert await store.get("after") == b"ok"


async def test_server_side_disconnect_is_retried(store: PhysicalStorage, table: str) -> None:
    await store.put("k", b"v")
    await _rows("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                "AND query LIKE %s", f"%{table}%")
    assert await store.get("k") == b"v"


async def test_blocked_database_gives_a_clear_error_within_the_deadline(table: str) -> None:
    s = await _open(table, request_timeout="1s")
    try:
        await s.put("k", b"v")
        async with await psycopg.AsyncConnection.connect(PG_URL) as locker:
            await locker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            start = time.monotonic()
            with pytest.raises(Internal, match=r"postgresql storage at .*: get timed out after 1s"):
                await s.get("k")
            assert time.monotonic() - start < 3
            await locker.rollback()
        assert await s.get("k") == b"v"  # recovers once the database answers again
    finally:
        await s.close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word (a hung database)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield sock.getsockname()[1]
    sock.close()


async def test_database_that_does_not_answer_fails_the_open_within_the_deadline(silent_port: int) -> None:
    start = time.monotonic()
    with pytest.raises(Internal, match=rf"could not connect to 127.0.0.1:{silent_port}/postgres"):
        await _open("t", f"postgresql://postgres:hunter2@127.0.0.1:{silent_port}/postgres?connect_timeout=1")
    assert time.monotonic() - start < 4


async def test_refused_connection_is_a_clear_error_without_the_password() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(Internal) as info:
        await _open("t", f"postgresql://postgres:hunter2@127.0.0.1:{port}/postgres?connect_timeout=2")
    assert f"could not connect to 127.0.0.1:{port}/postgres" in str(info.value)
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(("options", "message"), [
    ({}, 'requires "connection_url"'),
    ({"connection_url": PG_URL, "ha_enabled": "true", "ha_lock_ttl": "0"}, '"ha_lock_ttl" must be positive'),
    ({"connection_url": PG_URL, "max_parallel": "many"}, '"max_parallel" must be an integer'),
    ({"connection_url": PG_URL, "max_parallel": "0"}, '"max_parallel" must be at least 1'),
    ({"connection_url": PG_URL, "max_idle_connections": "-1"}, '"max_idle_connections" must be at least 0'),
    ({"connection_url": PG_URL, "skip_create_table": "perhaps"}, '"skip_create_table" must be true or false'),
    ({"connection_url": PG_URL, "table": "a.b.c"}, 'invalid "table"'),
    ({"connection_url": "postgresql://x/?bogus_option=1"}, 'invalid "connection_url"'),
    ({"connection_url": PG_URL, "request_timeout": "soon"}, 'invalid "request_timeout"'),
])
async def test_bad_options_are_rejected(options: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VAULT_PG_CONNECTION_URL", raising=False)
    monkeypatch.delenv("BAO_PG_CONNECTION_URL", raising=False)
    with pytest.raises(InvalidRequest, match=message):
        await open_storage("postgresql", options)
