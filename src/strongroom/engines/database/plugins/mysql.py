"""``mysql-database-plugin`` and its ``mysql-aurora-``/``mysql-rds-``/``mysql-legacy-`` variants:
MySQL and MariaDB accounts, through aiomysql.

``connection_url`` is Go's MySQL DSN, as in Vault: ``{{username}}:{{password}}@tcp(host:3306)/db``.
MySQL commits each account statement by itself, so a creation that fails half way is undone at
once (the role's rollback statements, else every ``user@host`` of that name is dropped). Revocation
drops the account, then (beyond Vault) kills the connections it still has open.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

import aiomysql

from strongroom.engines.database.plugins.base import DEFAULT_MAX_OPEN, Plugin, Pool, StatementError, Statements
from strongroom.engines.database.templates import render_statement, split_statements
from strongroom.errors import InvalidRequest

DEFAULT_USERNAME_TEMPLATE = ('{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 10) (.RoleName | truncate 10) '
                             '(random 20) (unix_time) | truncate 32 }}')
LEGACY_USERNAME_TEMPLATE = '{{ printf "v-%s-%s" (.RoleName | truncate 4) (random 20) | truncate 16 }}'

_DSN = re.compile(r"^(?:(?P<user>[^:@/]*)(?::(?P<password>.*))?@)?(?:(?P<net>[a-z0-9]+)(?:\((?P<addr>[^)]*)\))?)?"
                  r"/(?P<db>[^?]*)(?:\?(?P<params>.*))?$", re.S)


def parse_dsn(details: dict[str, Any]) -> dict[str, Any]:
    """aiomysql's connect arguments from a Go MySQL DSN with ``{{username}}``/``{{password}}``."""
    url = str(details.get("connection_url") or "")
    if not url:
        raise InvalidRequest("connection_url cannot be empty")
    m = _DSN.match(url)
    if m is None:
        raise InvalidRequest("invalid connection_url: not a MySQL DSN (user:password@tcp(host:port)/dbname)")
    user = render_statement(m.group("user") or "", {"username": str(details.get("username") or "")})
    password = render_statement(m.group("password") or "", {"password": str(details.get("password") or "")})
    args: dict[str, Any] = {"user": unquote(user), "password": password, "db": m.group("db") or None,
                            "autocommit": True}
    net, addr = m.group("net") or "tcp", m.group("addr") or "127.0.0.1:3306"
    if net == "unix":
        args["unix_socket"] = addr
    elif net in ("tcp", "tcp4", "tcp6"):
        host, _, port = addr.rpartition(":") if ":" in addr.strip("[]") or addr.startswith("[") else (addr, "", "")
        try:
            args.update(host=host.strip("[]") or "127.0.0.1", port=int(port or 3306))
        except ValueError:
            raise InvalidRequest(f"invalid connection_url: bad port {port!r}") from None
    else:
        raise InvalidRequest(f'invalid connection_url: unknown network "{net}"')
    return args


class MySQL(Plugin):
    default_username_template = DEFAULT_USERNAME_TEMPLATE

    def __init__(self, db_name: str, details: dict[str, Any], deadline: float = 10.0, *, legacy: bool = False) -> None:
        super().__init__(db_name, details, deadline)
        if legacy:
            self.default_username_template = LEGACY_USERNAME_TEMPLATE
        self.connect_args = parse_dsn(details)
        if self.connect_args["password"]:
            self._secrets.add(self.connect_args["password"])
        self.pool: Pool[aiomysql.Connection] = Pool(self._connect, self._close_conn,
                                                   int(details.get("max_open_connections") or DEFAULT_MAX_OPEN))

    async def _connect(self) -> aiomysql.Connection:
        return await aiomysql.connect(connect_timeout=self.deadline, **self.connect_args)

    @staticmethod
    async def _close_conn(conn: aiomysql.Connection) -> None:
        conn.close()

    async def close(self) -> None:
        await self.pool.close()

    async def _query(self, queries: list[str], params: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
        """Run ``queries`` in order; the rows of the last."""
        rows: list[tuple[Any, ...]] = []
        async with self.pool.connection() as conn:
            async with conn.cursor() as cur:
                for q in queries:
                    try:
                        await cur.execute(q, params)
                    except aiomysql.OperationalError as e:
                        if e.args and isinstance(e.args[0], int) and e.args[0] >= 2000:  # client side: link lost
                            raise
                        raise StatementError(_message(e)) from None
                    except aiomysql.MySQLError as e:
                        raise StatementError(_message(e)) from None
                    rows = list(await cur.fetchall())
        return rows

    async def verify(self) -> None:
        await self._query(["SELECT 1"])

    async def hosts_of(self, username: str) -> list[str]:
        return [str(r[0]) for r in await self._query(["SELECT Host FROM mysql.user WHERE User = %s"], (username,))]

    async def _create_user(self, statements: Statements, username: str, password: str, expiration: float) -> None:
        values = {"name": username, "username": username, "password": password}
        await self._query([render_statement(q, values) for q in split_statements(statements.creation)])

    async def _delete_user(self, statements: list[str], username: str) -> None:
        hosts = await self.hosts_of(username)
        if not hosts:
            return  # gone already (or never made: a rollback of a creation that failed first)
        if statements:
            values = {"name": username, "username": username}
            await self._query([render_statement(q, values) for q in split_statements(statements)])
        else:
            for host in hosts:
                await self._query(["DROP USER IF EXISTS %s@%s"], (username, host))
        # Beyond Vault: the account is gone, its open connections go too.
        rows = await self._query(["SELECT ID FROM information_schema.PROCESSLIST WHERE USER = %s"], (username,))
        for (conn_id,) in rows:
            try:
                await self._query([f"KILL CONNECTION {int(conn_id)}"])
            except StatementError:  # ended meanwhile
                pass

    async def _renew_user(self, statements: list[str], username: str, expiration: float) -> None:
        if statements:  # MySQL accounts do not expire: only what the role asks for
            await self._query([render_statement(q, {"name": username, "username": username})
                               for q in split_statements(statements)])

    async def _set_password(self, statements: list[str], username: str, password: str) -> None:
        if statements:
            values = {"name": username, "username": username, "password": password}
            await self._query([render_statement(q, values) for q in split_statements(statements)])
            return
        hosts = await self.hosts_of(username)
        if not hosts:
            raise StatementError(f'user "{username}" does not exist')
        for host in hosts:
            await self._query(["ALTER USER %s@%s IDENTIFIED BY %s"], (username, host, password))


def _message(e: Exception) -> str:
    if len(e.args) >= 2:
        return f"Error {e.args[0]}: {e.args[1]}"
    return str(e)


__all__ = ["MySQL", "parse_dsn"]
