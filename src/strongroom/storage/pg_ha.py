"""The PostgreSQL HA lock (``storage "postgresql" { ha_enabled, ha_table, ha_lock_ttl }``): Vault's
``ha_table`` layout; see docs/ha.md. Opened by ``open_postgresql`` (storage/postgresql.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg import sql

from strongroom.errors import Internal

if TYPE_CHECKING:
    from strongroom.storage.postgresql import _Pool

T = TypeVar("T")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# -- HA lock -----------------------------------------------------------------------------------

DEFAULT_HA_TABLE = "vault_ha_locks"
DEFAULT_HA_TTL = 15.0  # seconds, Vault's PostgreSQL lock TTL
HA_KEY = "core/lock"  # Vault's lock key
NODE_KEY = "core/node/"  # + identity: each node's echo (sys/ha-status), rows beside the lock's


async def _create_ha_table(conn: psycopg.AsyncConnection[Any], table: sql.Composable, bare: str) -> None:
    """Vault's ``ha_table`` layout, created if missing (serialised as _create_table is)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ("strongroom:" + bare,))
        await conn.execute(sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (ha_key TEXT COLLATE \"C\" NOT NULL, ha_identity TEXT COLLATE \"C\" NOT NULL, "
            "ha_value TEXT COLLATE \"C\", valid_until TIMESTAMP WITH TIME ZONE NOT NULL, "
            "CONSTRAINT {} PRIMARY KEY (ha_key))").format(table, sql.Identifier(bare + "_pkey")))


class PostgresqlHALock:
    """The HA lock: one row of ``ha_table`` (Vault's layout), held by ``ha_identity`` until
    ``valid_until`` (the database's clock decides). Taking it and renewing it are the same
    statement: it succeeds when the row is free, expired, or already ours. ``ha_value`` is the
    holder's api_addr (the leader address standbys redirect to)."""

    def __init__(self, pool: _Pool, table: sql.Composable, where: str, ttl: float) -> None:
        self.ttl = ttl
        self._pool = pool
        self._where = where
        self._acquire = sql.SQL(
            "INSERT INTO {t} AS l (ha_key, ha_identity, ha_value, valid_until) "
            "VALUES (%(k)s, %(i)s, %(v)s, NOW() + %(ttl)s * INTERVAL '1 second') "
            "ON CONFLICT (ha_key) DO UPDATE SET ha_identity = excluded.ha_identity, ha_value = excluded.ha_value, "
            "valid_until = excluded.valid_until WHERE l.valid_until < NOW() OR l.ha_identity = %(i)s").format(t=table)
        self._release = sql.SQL("DELETE FROM {} WHERE ha_key = %s AND ha_identity = %s").format(table)
        self._echo = sql.SQL(
            "INSERT INTO {t} AS l (ha_key, ha_identity, ha_value, valid_until) "
            "VALUES (%(k)s, %(i)s, %(v)s, NOW() + %(ttl)s * INTERVAL '1 second') "
            "ON CONFLICT (ha_key) DO UPDATE SET ha_value = excluded.ha_value, valid_until = excluded.valid_until"
        ).format(t=table)
        self._nodes = sql.SQL(
            "SELECT ha_identity, ha_value, %s - EXTRACT(EPOCH FROM valid_until - NOW())::float8 FROM {} "
            "WHERE ha_key LIKE %s AND valid_until > NOW() ORDER BY ha_key").format(table)
        self._holder = sql.SQL(
            "SELECT ha_identity, ha_value, EXTRACT(EPOCH FROM valid_until - NOW())::float8 FROM {} "
            "WHERE ha_key = %s AND valid_until > NOW()").format(table)

    async def _run(self, what: str, op: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
        try:
            async with asyncio.timeout(self.ttl):
                async with self._pool.connection() as (conn, _reused):
                    return await op(conn)
        except TimeoutError:
            raise Internal(f"postgresql HA lock at {self._where}: {what} timed out") from None
        except psycopg.Error as e:
            raise Internal(f"postgresql HA lock at {self._where}: {what} failed: {_first_line(e)}") from None

    async def acquire(self, identity: str, value: str) -> bool:
        """Take or renew the lock for ``ttl`` seconds; False when another node holds it."""
        params = {"k": HA_KEY, "i": identity, "v": value, "ttl": self.ttl}

        async def op(conn: psycopg.AsyncConnection[Any]) -> bool:
            cur = await conn.execute(self._acquire, params)
            return cur.rowcount == 1

        return await self._run("acquire", op)

    async def release(self, identity: str) -> None:
        async def op(conn: psycopg.AsyncConnection[Any]) -> None:
            await conn.execute(self._release, (HA_KEY, identity))

        await self._run("release", op)

    async def holder(self) -> tuple[str, str, float] | None:
        """(identity, value, seconds left) of the current holder, None when nobody holds it."""
        async def op(conn: psycopg.AsyncConnection[Any]) -> tuple[str, str, float] | None:
            row = await (await conn.execute(self._holder, (HA_KEY,))).fetchone()
            return None if row is None else (str(row[0]), str(row[1] or ""), float(row[2]))

        return await self._run("holder", op)

    async def echo(self, identity: str, value: str) -> None:
        """Announce this node (``value``: its description) for 3 TTLs, for sys/ha-status."""
        params = {"k": NODE_KEY + identity, "i": identity, "v": value, "ttl": 3 * self.ttl}

        async def op(conn: psycopg.AsyncConnection[Any]) -> None:
            await conn.execute(self._echo, params)

        await self._run("echo", op)

    async def forget(self, identity: str) -> None:
        """Remove this node's echo (it sealed or stopped)."""
        async def op(conn: psycopg.AsyncConnection[Any]) -> None:
            await conn.execute(self._release, (NODE_KEY + identity, identity))

        await self._run("forget", op)

    async def nodes(self) -> list[tuple[str, str, float]]:
        """(identity, value, seconds since its last echo) of every node heard from lately."""
        async def op(conn: psycopg.AsyncConnection[Any]) -> list[tuple[str, str, float]]:
            rows = await (await conn.execute(self._nodes, (3 * self.ttl, NODE_KEY + "%"))).fetchall()
            return [(str(r[0]), str(r[1] or ""), float(r[2])) for r in rows]

        return await self._run("nodes", op)

    async def close(self) -> None:
        await self._pool.close()


__all__ = ["DEFAULT_HA_TABLE", "DEFAULT_HA_TTL", "HA_KEY", "NODE_KEY", "PostgresqlHALock"]
