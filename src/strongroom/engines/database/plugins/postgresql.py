"""``postgresql-database-plugin``: PostgreSQL roles, through psycopg 3 (async).

Creation statements run in one transaction: a statement the server refuses leaves nothing behind.
Revocation drops the role, then (beyond Vault) ends the sessions it still has open
(``pg_terminate_backend``): a revoked credential stops working at once, not when its holder
disconnects. Renewal moves ``VALID UNTIL`` (or runs ``renew_statements``).
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql

from strongroom.engines.database.plugins import scram
from strongroom.engines.database.plugins.base import DEFAULT_MAX_OPEN, Plugin, Pool, StatementError, Statements
from strongroom.engines.database.templates import render_statement, split_statements
from strongroom.errors import InvalidRequest

DEFAULT_USERNAME_TEMPLATE = ('{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 8) (.RoleName | truncate 8) '
                             '(random 20) (unix_time) | truncate 63 }}')


#: SQLSTATEs of a transaction aborted by a concurrent one (serialization failure, deadlock); and
#: "tuple concurrently updated" (XX000) is retried too.
RETRYABLE = ("40001", "40P01")
RETRIES = 20
#: ``password_authentication``: how a generated password goes to PostgreSQL (OpenBao's option).
PASSWORD_AUTHENTICATIONS = ("password", "scram-sha-256")


def expiration_text(when: float) -> str:
    """Vault's format for ``{{expiration}}``: ``2006-01-02 15:04:05-0700``, in UTC."""
    return time.strftime("%Y-%m-%d %H:%M:%S+0000", time.gmtime(when))


def connection_string(details: dict[str, Any]) -> str:
    url = str(details.get("connection_url") or "")
    if not url:
        raise InvalidRequest("connection_url cannot be empty")
    user, password = str(details.get("username") or ""), str(details.get("password") or "")
    if "://" in url:  # a URL: escape what is put into it
        user, password = quote(user, safe=""), quote(password, safe="")
    else:  # key=value: single-quote values
        user = "'" + user.replace("\\", "\\\\").replace("'", "\\'") + "'"
        password = "'" + password.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return render_statement(url, {"username": user, "password": password})


class PostgreSQL(Plugin):
    default_username_template = DEFAULT_USERNAME_TEMPLATE

    def __init__(self, db_name: str, details: dict[str, Any], deadline: float = 10.0) -> None:
        super().__init__(db_name, details, deadline)
        self.dsn = connection_string(details)
        auth = str(details.get("password_authentication") or "password")
        if auth not in PASSWORD_AUTHENTICATIONS:
            raise InvalidRequest(f"'{auth}' is not a valid password authentication type")
        # "scram-sha-256": {{password}} in statements is the SCRAM verifier, hashed here (off the
        # event loop) instead of by PostgreSQL; the client still gets the password.
        self.hash_passwords = auth == "scram-sha-256"
        try:
            psycopg.conninfo.conninfo_to_dict(self.dsn)
        except psycopg.ProgrammingError as e:
            raise InvalidRequest(f"invalid connection_url: {self.redact(str(e))}") from None
        self.pool: Pool[psycopg.AsyncConnection[Any]] = Pool(
            self._connect, self._close_conn, int(details.get("max_open_connections") or DEFAULT_MAX_OPEN))
        # Creation statements after the first (see _create_user) run one credential at a time.
        self._tails = asyncio.Lock()

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(self.dsn, autocommit=True,
                                                     connect_timeout=max(1, int(self.deadline)))

    @staticmethod
    async def _close_conn(conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.close()

    async def close(self) -> None:
        await self.pool.close()

    async def _execute(self, queries: list[str | sql.Composable], *, transaction: bool = True,
                       params: tuple[Any, ...] | None = None, tail_lock: asyncio.Lock | None = None
                       ) -> tuple[Any, ...] | None:
        """Run ``queries`` (several: as one transaction) on one pooled connection. A transaction
        PostgreSQL aborted because of a concurrent one is run again on the same connection (so it
        does not queue for the pool again): concurrent GRANTs or DROP OWNEDs on one object update
        the same catalog row and all but one fail with "tuple concurrently updated"; the aborted
        transaction was rolled back whole. ``tail_lock``: see :meth:`_execute_split`."""
        async with self.pool.connection() as conn:
            for attempt in range(RETRIES):
                try:
                    if tail_lock is not None and len(queries) > 1:
                        await self._execute_split(conn, queries, tail_lock)
                        return None
                    return await self._execute_on(conn, queries, transaction=transaction, params=params)
                except StatementError as e:
                    text = str(e.args[0])
                    if not (text.startswith(RETRYABLE) or "concurrently updated" in text) or attempt == RETRIES - 1:
                        raise
                await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))  # noqa: S311 - jitter only
        return None  # not reached: the last attempt returns or raises

    @staticmethod
    async def _execute_on(conn: psycopg.AsyncConnection[Any], queries: list[str | sql.Composable], *,
                          transaction: bool, params: tuple[Any, ...] | None) -> tuple[Any, ...] | None:
        try:
            if transaction and len(queries) > 1 and params is None:
                # One Query message: PostgreSQL runs its statements as one transaction, in one round
                # trip; the cursor is left on the first statement's result.
                cur = await conn.execute("; ".join(q if isinstance(q, str) else q.as_string(conn) for q in queries))
                return await cur.fetchone() if cur.description else None
            first: tuple[Any, ...] | None = None
            if transaction and len(queries) > 1:
                async with conn.transaction():
                    for i, q in enumerate(queries):
                        cur = await conn.execute(q, params)  # type: ignore[arg-type]
                        if i == 0 and cur.description:
                            first = await cur.fetchone()
            else:
                for i, q in enumerate(queries):
                    cur = await conn.execute(q, params)  # type: ignore[arg-type]
                    if i == 0 and cur.description:
                        first = await cur.fetchone()
            return first
        except psycopg.errors.DatabaseError as e:
            if isinstance(e, psycopg.OperationalError) and conn.broken:
                raise
            # The connection itself is fine: it goes back to the pool.
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                await conn.rollback()
            raise StatementError(_message(e)) from None

    @staticmethod
    async def _execute_split(conn: psycopg.AsyncConnection[Any], queries: list[str | sql.Composable],
                             tail_lock: asyncio.Lock) -> None:
        """One transaction in two messages: ``BEGIN`` and the first statement, concurrently with
        other credentials; then the rest and ``COMMIT`` under ``tail_lock``, one credential at a
        time. The first statement (CREATE ROLE) is where PostgreSQL spends its time (hashing the
        password, ~5 ms); the rest usually GRANTs on shared objects, whose catalog rows concurrent
        transactions cannot both update ("tuple concurrently updated": the loser is rolled back and
        run again, hash and all). Queued here, our own credentials never collide."""
        texts = [q if isinstance(q, str) else q.as_string(conn) for q in queries]
        # Each message through _execute_on: a refused statement rolls the transaction back there.
        await PostgreSQL._execute_on(conn, ["BEGIN; " + texts[0]], transaction=False, params=None)
        async with tail_lock:
            await PostgreSQL._execute_on(conn, ["; ".join(texts[1:]) + "; COMMIT"], transaction=False, params=None)

    async def verify(self) -> None:
        await self._execute(["SELECT 1"])

    async def _sent(self, password: str) -> str:
        """What ``{{password}}`` becomes in a statement (see ``password_authentication``)."""
        if not self.hash_passwords:
            return password
        return await asyncio.to_thread(scram.verifier, password)

    async def _create_user(self, statements: Statements, username: str, password: str, expiration: float) -> None:
        values = {"name": username, "username": username, "password": await self._sent(password),
                  "expiration": expiration_text(expiration)}
        queries: list[str | sql.Composable] = [render_statement(q, values)
                                               for q in split_statements(statements.creation)]
        await self._execute(queries, tail_lock=self._tails)

    async def _delete_user(self, statements: list[str], username: str) -> None:
        ident, name = sql.Identifier(username), sql.Literal(username)
        find = sql.SQL("SELECT oid FROM pg_roles WHERE rolname = {}").format(name)
        if statements:
            found = await self._execute([find])
            if found is None:
                return
            values = {"name": username, "username": username}
            await self._execute([render_statement(q, values) for q in split_statements(statements)])
        else:
            # One round trip, one commit: the role's oid (for the sessions below), then the drop.
            try:
                found = await self._execute([find, sql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(ident),
                                             sql.SQL("DROP OWNED BY {}").format(ident),
                                             sql.SQL("DROP ROLE IF EXISTS {}").format(ident)])
            except StatementError as e:
                if str(e.args[0]).startswith("42704:"):  # undefined_object: gone already
                    return
                raise
            if found is None:
                return
        # Beyond Vault: the sessions it still has open end now (found by the role's oid, which they
        # keep after the drop). No new one can start: the role is gone (or the statements ended it).
        await self._execute(["SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE usesysid = %s AND pid <> pg_backend_pid()"], params=(found[0],))

    async def _renew_user(self, statements: list[str], username: str, expiration: float) -> None:
        if statements:
            values = {"name": username, "username": username, "expiration": expiration_text(expiration)}
            await self._execute([render_statement(q, values) for q in split_statements(statements)])
            return
        async with self.pool.connection() as conn:
            found = await (await conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (username,))).fetchone()
        if found is not None:
            await self._execute([sql.SQL("ALTER ROLE {} VALID UNTIL {}").format(
                sql.Identifier(username), sql.Literal(expiration_text(expiration)))])

    async def _set_password(self, statements: list[str], username: str, password: str) -> None:
        password = await self._sent(password)
        if statements:
            values = {"name": username, "username": username, "password": password}
            await self._execute([render_statement(q, values) for q in split_statements(statements)])
            return
        await self._execute([sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(
            sql.Identifier(username), sql.Literal(password))])


def _message(e: psycopg.Error) -> str:
    diag = e.diag
    text = diag.message_primary or str(e).strip().splitlines()[0]
    return f"{diag.sqlstate}: {text}" if diag.sqlstate else text


__all__ = ["PostgreSQL", "connection_string", "expiration_text"]
