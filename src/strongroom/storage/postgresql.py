"""PostgreSQL physical storage, with Vault's table layout (``storage "postgresql" {...}``).

Vault's ``physical/postgresql`` keeps one row per key in ``vault_kv_store``::

    parent_path TEXT COLLATE "C" NOT NULL,  -- "/" + the folders above the key's folder, "" at the top
    path        TEXT COLLATE "C",           -- "/" + the key's folder (with a trailing "/")
    key         TEXT COLLATE "C",           -- the last segment of the key
    value       BYTEA,
    PRIMARY KEY (path, key)

so ``a/b/c`` is the row ``("/a/", "/a/b/", "c")``, ``a/b`` is ``("/", "/a/", "b")`` and ``a`` is
``("", "/", "a")``. We write the same rows, so a table can move between Vault/OpenBao and
Strongroom (values are barrier ciphertext either way; only the barrier's format decides whether
the other product can read them).

Listing does not use Vault's ``parent_path LIKE 'prefix%'`` scan, whose cost grows with every key
below the folder. It is one round trip: the leaves are ``WHERE path = folder``; the sub-folders come
from a recursive CTE that skips through the primary key's ``path`` order one sub-folder at a time
(an index probe per child: everything in ``folder/x/`` sorts between ``folder/x/`` and
``folder/x0``, as "0" follows "/"), which needs the ``"C"`` (byte order) collation of Vault's DDL.

Connections: a bounded pool (``max_parallel``, Vault's default 128), opened on demand and kept.
A connection that failed is closed, never reused; an operation on a kept connection that the
server has since dropped is retried once on a new one (every operation here is idempotent). Every
operation has a deadline (``request_timeout``), connecting too (``connect_timeout`` in the
connection URL, else ``_CONNECT_TIMEOUT``): a database that does not answer is a clear error, not
a hang. ``write_batch`` is one transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from strongroom.errors import Internal, InvalidRequest, StoreUnreachable
from strongroom.logical import WriteOp
from strongroom.storage import PhysicalStorage
from strongroom.storage.options import StorageOptions
from strongroom.storage.pg_changes import change_channel, notify_payload
from strongroom.storage.pg_ha import DEFAULT_HA_TABLE, DEFAULT_HA_TTL, PostgresqlHALock, _create_ha_table

DEFAULT_TABLE = "vault_kv_store"
DEFAULT_MAX_PARALLEL = 128  # Vault's default
_CONNECT_TIMEOUT = 10  # seconds, unless the connection URL sets connect_timeout
_REQUEST_TIMEOUT = 30  # seconds for one operation (a query or a transaction), including waiting for a connection

T = TypeVar("T")


def split_key(key: str) -> tuple[str, str, str]:
    """Vault's (parent_path, path, key) for a storage key."""
    pieces = key.split("/")
    last = pieces[-1]
    if len(pieces) == 1:
        return "", "/", last
    folders = pieces[:-1]
    return "/" + "/".join(folders[:-1]) + "/" if len(folders) > 1 else "/", "/" + "/".join(folders) + "/", last


class _Pool:
    """At most ``size`` connections, opened when needed; idle ones are kept for the next caller."""

    def __init__(self, conninfo: str, size: int, connect_timeout: float, max_idle: int | None = None) -> None:
        self._conninfo = conninfo
        self.conninfo = conninfo
        self._max_idle = size if max_idle is None else max_idle
        self._connect_timeout = connect_timeout
        self._slots = asyncio.Semaphore(size)
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._closed = False

    async def connect(self) -> psycopg.AsyncConnection[Any]:
        # psycopg honours connect_timeout itself; the outer bound also covers DNS and TLS stalls.
        async with asyncio.timeout(self._connect_timeout + 1):
            return await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True,
                                                         connect_timeout=max(1, int(self._connect_timeout)))

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[tuple[psycopg.AsyncConnection[Any], bool]]:
        """A connection and whether it was kept from before (then the server may have dropped it)."""
        async with self._slots:
            if self._closed:
                raise Internal("postgresql storage is closed")
            reused = bool(self._idle)
            conn = self._idle.pop() if reused else await self.connect()
            try:
                yield conn, reused
            except BaseException:
                # Failed or cancelled mid-query: its state is unknown, never hand it out again.
                await _close_quietly(conn)
                raise
            if (self._closed or conn.closed or len(self._idle) >= self._max_idle
                    or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE):
                await _close_quietly(conn)
            else:
                self._idle.append(conn)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await _close_quietly(conn)


async def _close_quietly(conn: psycopg.AsyncConnection[Any]) -> None:
    try:
        await conn.close()
    except Exception:  # noqa: BLE001, S110 - closing a broken connection may fail; nothing to do
        pass


class PostgresqlStorage:
    """Storage in one PostgreSQL table. Create with :func:`open_postgresql`; always ``await close()``."""

    def __init__(self, pool: _Pool, table: sql.Composable, where: str, request_timeout: float,
                 table_name: str = DEFAULT_TABLE) -> None:
        self.table_name = table_name  # as configured: TABLE or SCHEMA.TABLE
        self.ha: PostgresqlHALock | None = None  # set when the stanza has ha_enabled
        # HA: every write also NOTIFYs this channel with its key, in its transaction (storage/pg_changes.py).
        self.channel = change_channel(table_name)
        self.publishing = False
        self._pool = pool
        self._where = where  # host:port/dbname, for error messages (never the password)
        self._timeout = request_timeout
        t = table
        self._get = sql.SQL("SELECT value FROM {} WHERE path = %s AND key = %s").format(t)
        self._put = sql.SQL(
            "INSERT INTO {} (parent_path, path, key, value) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (path, key) DO UPDATE SET value = excluded.value").format(t)
        self._delete = sql.SQL("DELETE FROM {} WHERE path = %s AND key = %s").format(t)
        self._put_notify = sql.SQL(
            "WITH w AS (INSERT INTO {} (parent_path, path, key, value) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (path, key) DO UPDATE SET value = excluded.value RETURNING 1) "
            "SELECT pg_notify(%s, %s)").format(t)
        self._delete_notify = sql.SQL(
            "WITH w AS (DELETE FROM {} WHERE path = %s AND key = %s RETURNING 1) SELECT pg_notify(%s, %s)").format(t)
        self._put_many = sql.SQL(
            "INSERT INTO {} (parent_path, path, key, value) "
            "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::bytea[]) "
            "ON CONFLICT (path, key) DO UPDATE SET value = excluded.value").format(t)
        self._delete_many = sql.SQL(
            "DELETE FROM {} AS t USING unnest(%s::text[], %s::text[]) AS d(path, key) "
            "WHERE t.path = d.path AND t.key = d.key").format(t)
        # Leaves (kind 0) and sub-folders (kind 1) of %(f)s in one round trip; %(end)s bounds the
        # folder's subtree (its trailing "/" replaced by "0"). See the module docstring.
        self._list = sql.SQL(
            "WITH RECURSIVE sub(p) AS ("
            " (SELECT path FROM {t} WHERE path > %(f)s COLLATE \"C\" AND path < %(end)s COLLATE \"C\""
            "  ORDER BY path COLLATE \"C\" LIMIT 1)"
            " UNION ALL"
            " SELECT (SELECT n.path FROM {t} n"
            "  WHERE n.path >= (%(f)s || split_part(substr(sub.p, length(%(f)s) + 1), '/', 1) || '0') COLLATE \"C\""
            "  AND n.path < %(end)s COLLATE \"C\" ORDER BY n.path COLLATE \"C\" LIMIT 1)"
            " FROM sub WHERE sub.p IS NOT NULL)"
            " SELECT 0, key FROM {t} WHERE path = %(f)s"
            " UNION ALL"
            " SELECT 1, split_part(substr(p, length(%(f)s) + 1), '/', 1) FROM sub WHERE p IS NOT NULL"
        ).format(t=t)

    async def _run(self, what: str, op: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
        """``op`` on a pooled connection within the deadline; once more on a new connection if a kept
        one turned out dead. Every error becomes an Internal naming the database, not the password."""
        try:
            async with asyncio.timeout(self._timeout):
                for attempt in (1, 2):
                    try:
                        async with self._pool.connection() as (conn, reused):
                            return await op(conn)
                    except psycopg.OperationalError:
                        if attempt == 2 or not reused:
                            raise
                raise AssertionError("unreachable")  # pragma: no cover
        except TimeoutError:
            raise Internal(f"postgresql storage at {self._where}: {what} timed out after {self._timeout:g}s") from None
        except psycopg.Error as e:
            raise Internal(f"postgresql storage at {self._where}: {what} failed: {_first_line(e)}") from None

    async def get(self, key: str) -> bytes | None:
        _parent, path, last = split_key(key)

        async def op(conn: psycopg.AsyncConnection[Any]) -> bytes | None:
            cur = await conn.execute(self._get, (path, last), prepare=True)
            row = await cur.fetchone()
            return None if row is None else bytes(row[0])

        return await self._run("get", op)

    async def put(self, key: str, value: bytes) -> None:
        parent, path, last = split_key(key)

        async def op(conn: psycopg.AsyncConnection[Any]) -> None:
            if self.publishing:  # one statement, so the notification commits with the write
                await conn.execute(self._put_notify, (parent, path, last, bytes(value), self.channel,
                                                      notify_payload(key)), prepare=True)
            else:
                await conn.execute(self._put, (parent, path, last, bytes(value)), prepare=True)

        await self._run("put", op)

    async def delete(self, key: str) -> None:
        _parent, path, last = split_key(key)

        async def op(conn: psycopg.AsyncConnection[Any]) -> None:
            if self.publishing:
                await conn.execute(self._delete_notify, (path, last, self.channel, notify_payload(key)), prepare=True)
            else:
                await conn.execute(self._delete, (path, last), prepare=True)

        await self._run("delete", op)

    async def list(self, prefix: str) -> list[str]:
        folder = "/" + prefix if prefix.endswith("/") or not prefix else "/" + prefix + "/"
        params = {"f": folder, "end": folder[:-1] + "0"}

        async def op(conn: psycopg.AsyncConnection[Any]) -> list[str]:
            cur = await conn.execute(self._list, params, prepare=True)
            rows = await cur.fetchall()
            return sorted({name + "/" if kind else name for kind, name in rows if name or kind})

        return await self._run("list", op)

    async def write_batch(self, ops: Sequence[WriteOp]) -> None:
        """Every write in ``ops`` in one transaction: all committed when this returns, or none."""
        if not ops:
            return
        final: dict[str, bytes | None] = {}
        for key, value in ops:
            final[key] = None if value is None else bytes(value)
        puts = [(split_key(k), v) for k, v in final.items() if v is not None]
        deletes = [split_key(k) for k, v in final.items() if v is None]

        async def op(conn: psycopg.AsyncConnection[Any]) -> None:
            async with conn.transaction():
                if puts:
                    await conn.execute(self._put_many, ([p[0] for p, _ in puts], [p[1] for p, _ in puts],
                                                        [p[2] for p, _ in puts], [v for _, v in puts]))
                if deletes:
                    await conn.execute(self._delete_many, ([d[1] for d in deletes], [d[2] for d in deletes]))
                if self.publishing:  # delivered at commit, with the writes
                    await conn.execute("SELECT pg_notify(%s, k) FROM unnest(%s::text[]) AS k",
                                       (self.channel, sorted({notify_payload(k) for k in final})))

        await self._run("write batch", op)

    def publish_changes(self) -> None:
        """HA: from now on every write notifies :attr:`channel` (the standbys follow it)."""
        self.publishing = True

    async def announce(self, payload: str) -> None:
        """Send ``payload`` on :attr:`channel` in a transaction of its own, after every write already
        committed (core/write_index.py: the active's write index)."""
        async def op(conn: psycopg.AsyncConnection[Any]) -> None:
            await conn.execute("SELECT pg_notify(%s, %s)", (self.channel, payload))  # autocommit

        await self._run("announce", op)

    def changes(self) -> AsyncIterator[str | None]:
        """The keys other nodes write, as they commit (LISTEN on :attr:`channel`); None first, once
        subscribed, and for a change too large to name. Raises when the connection is lost."""
        from strongroom.storage.pg_changes import listen

        return listen(self._pool.conninfo, self.channel, self._where)

    async def close(self) -> None:
        if self.ha is not None:
            await self.ha.close()
        await self._pool.close()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _table_identifier(name: str) -> tuple[sql.Composable, str]:
    """``table`` or ``schema.table`` as a quoted identifier, and the bare table name."""
    parts = name.split(".")
    if not 1 <= len(parts) <= 2 or not all(parts):
        raise InvalidRequest(f'postgresql storage: invalid "table" {name!r} (expected TABLE or SCHEMA.TABLE)')
    return sql.Identifier(*parts), parts[-1]


async def _create_table(conn: psycopg.AsyncConnection[Any], table: sql.Composable, bare: str) -> None:
    # Serialised by an advisory lock: two servers creating the same table at once would otherwise
    # race on the catalog (CREATE ... IF NOT EXISTS is not concurrency-safe in PostgreSQL).
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ("strongroom:" + bare,))
        await conn.execute(sql.SQL(
            'CREATE TABLE IF NOT EXISTS {} (parent_path TEXT COLLATE "C" NOT NULL, path TEXT COLLATE "C", '
            'key TEXT COLLATE "C", value BYTEA, CONSTRAINT {} PRIMARY KEY (path, key))'
        ).format(table, sql.Identifier(bare + "_pkey")))
        # Vault's list query filters on parent_path; keep its index so the table stays usable there.
        await conn.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (parent_path)").format(
            sql.Identifier(bare + "_parent_path_idx"), table))








async def open_postgresql(options: dict[str, Any]) -> PhysicalStorage:
    """Factory for ``storage "postgresql" { connection_url, table, max_parallel, max_idle_connections,
    skip_create_table }``.

    ``connection_url`` may also come from the environment, as in Vault and OpenBao
    (VAULT_PG_CONNECTION_URL, BAO_PG_CONNECTION_URL).
    Connects once (creating the table if missing) so a wrong URL or an unreachable database fails
    the start with a clear message, within the connect deadline.
    """
    import os

    opts = StorageOptions("postgresql", options)
    url = str(options.get("connection_url") or os.environ.get("VAULT_PG_CONNECTION_URL")
              or os.environ.get("BAO_PG_CONNECTION_URL") or "")
    if not url:
        raise InvalidRequest('postgresql storage requires "connection_url" (e.g. postgres://user@host:5432/db)')
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error as e:
        raise InvalidRequest(f'postgresql storage: invalid "connection_url": {_first_line(e)}') from None
    where = f"{params.get('host') or 'localhost'}:{params.get('port') or 5432}/{params.get('dbname') or ''}"
    max_parallel = opts.count("max_parallel", DEFAULT_MAX_PARALLEL, minimum=1)
    table_name = str(options.get("table") or DEFAULT_TABLE)
    table, bare = _table_identifier(table_name)
    try:
        connect_timeout = float(params.get("connect_timeout") or _CONNECT_TIMEOUT)
    except ValueError:
        raise InvalidRequest('postgresql storage: "connect_timeout" in connection_url must be a number') from None
    request_timeout = opts.seconds("request_timeout", _REQUEST_TIMEOUT)
    max_idle = opts.count("max_idle_connections", max_parallel, minimum=0)
    skip_create = opts.flag("skip_create_table")

    pool = _Pool(url, max_parallel, connect_timeout, min(max_idle, max_parallel))
    try:
        conn = await pool.connect()
    except TimeoutError:
        raise StoreUnreachable(f"postgresql storage: could not connect to {where} within {connect_timeout:g}s") from None
    except psycopg.Error as e:
        raise StoreUnreachable(f"postgresql storage: could not connect to {where}: {_first_line(e)}") from None
    try:
        async with asyncio.timeout(request_timeout):
            if not skip_create:
                await _create_table(conn, table, bare)
            elif (await (await conn.execute("SELECT to_regclass(%s)", (table.as_string(conn),))).fetchone() or [None])[0] is None:
                await _close_quietly(conn)
                raise InvalidRequest(f'postgresql storage at {where}: table "{table_name}" does not exist '
                                     "(skip_create_table is set: create it first)")
    except TimeoutError:
        await _close_quietly(conn)
        raise Internal(f"postgresql storage at {where}: creating the table timed out") from None
    except psycopg.Error as e:
        await _close_quietly(conn)
        raise Internal(f"postgresql storage at {where}: creating the table failed: {_first_line(e)}") from None
    ha: PostgresqlHALock | None = None
    if opts.flag("ha_enabled"):
        ha_name = str(options.get("ha_table") or DEFAULT_HA_TABLE)
        ha_table, ha_bare = _table_identifier(ha_name)
        ttl = opts.seconds("ha_lock_ttl", DEFAULT_HA_TTL)
        if ttl <= 0:
            await _close_quietly(conn)
            raise InvalidRequest('postgresql storage: "ha_lock_ttl" must be positive')
        try:
            async with asyncio.timeout(request_timeout):
                await _create_ha_table(conn, ha_table, ha_bare)
        except (TimeoutError, psycopg.Error) as e:
            await _close_quietly(conn)
            raise Internal(f"postgresql storage at {where}: creating the HA table failed: "
                           f"{_first_line(e)}") from None
        ha = PostgresqlHALock(_Pool(url, 2, connect_timeout, 1), ha_table, where, ttl)
    pool._idle.append(conn)  # noqa: SLF001 - the first connection joins the pool
    storage = PostgresqlStorage(pool, table, where, request_timeout, table_name)
    storage.ha = ha
    return storage


__all__ = ["DEFAULT_HA_TABLE", "DEFAULT_TABLE", "PostgresqlHALock", "PostgresqlStorage", "open_postgresql", "split_key"]
