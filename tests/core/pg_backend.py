"""A tests-only secrets engine that creates real PostgreSQL roles, with the write-ahead log
(framework/wal.py), and a launcher that runs a real server process able to mount it.

``creds/<name>`` creates role ``srwal_<name>_<random>`` and returns it with a lease (revoking the
lease drops the role). For a name starting with ``pause`` the handler stops right after the
CREATE ROLE, before it returns (so before core writes the lease): it writes the role's name to the
file named by the mount option ``pause`` and waits until ``<pause>.go`` exists. A test kills the
process there.

Launcher (no production hook needed: the mount-type registry is a plain dict that the server
consults when it builds a mount, so a process that adds to it before running the CLI can mount
this type)::

    PYTHONPATH=<repo> python -c "from tests.core.pg_backend import serve; serve()" server -config=...
"""

from __future__ import annotations

import asyncio
import secrets
import sys
from pathlib import Path as FsPath
from typing import Any

import psycopg
from psycopg import sql

from strongroom.framework import Backend, BackendConfig, Field, FieldData, FieldType, Op, Path, SecretType
from strongroom.logical import Request, Response

TYPE = "pg-wal-test"
ROLE_PREFIX = "srwal_"


class PgBackend(Backend):
    help = "Test engine: PostgreSQL roles created with a write-ahead log."

    def __init__(self, config: BackendConfig) -> None:
        super().__init__(config, paths(), [ROLE])
        self.dsn = config.options.get("dsn", "")
        self.pause = config.options.get("pause", "")

    async def execute(self, statement: sql.Composable) -> None:
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            await conn.execute(statement)

    async def drop(self, username: str) -> None:
        await self.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(username)))

    async def rollback(self, kind: str, data: Any) -> bool | None:
        if kind != "role":
            return False
        await self.drop(str(data["username"]))
        return True


def paths() -> list[Path[PgBackend]]:
    return [Path(r"creds/(?P<name>[a-z0-9_]+)", fields={"name": Field(FieldType.STRING)},
                 operations={Op.READ: issue})]


async def issue(b: PgBackend, req: Request, d: FieldData) -> Response:
    name = str(d.get("name"))
    username = f"{ROLE_PREFIX}{name}_{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(16)
    wal_id = await b.put_wal("role", {"username": username})  # 1: durable before the role exists
    await b.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(  # 2: the external create
        sql.Identifier(username), sql.Literal(password)))
    if name.startswith("pause") and b.pause:
        flag = FsPath(b.pause)
        flag.write_text(username)
        go = flag.with_name(flag.name + ".go")
        while not go.exists():
            await asyncio.sleep(0.02)
    # 3: core writes the lease and deletes the WAL entry in one commit.
    return ROLE.response({"username": username, "password": password}, {"username": username},
                         wal_ids=[wal_id], system=b.system)


async def revoke_role(b: PgBackend, req: Request, d: FieldData) -> None:
    await b.drop(str(d.raw["username"]))


ROLE: SecretType[PgBackend] = SecretType("role", revoke=revoke_role)


def serve() -> None:
    """Run the strongroom CLI with this engine registered as ``pg-wal-test``."""
    from strongroom.cli import main
    from strongroom.engines import SECRETS_ENGINES

    SECRETS_ENGINES[TYPE] = "tests.core.pg_backend:PgBackend"
    raise SystemExit(main(sys.argv[1:]))
