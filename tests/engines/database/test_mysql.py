"""The database engine against the real MariaDB of this machine (mysql-database-plugin and its variants)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest
from tests.engines.database.conftest import DB, MYSQL_URL, unique

from strongroom.framework import wal

pytestmark = pytest.mark.usefixtures("mysql_up")

CREATE = ["CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}'; GRANT SELECT ON mysql.db TO '{{name}}'@'%';"]


def admin() -> Any:
    return pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)


def hosts_of(user: str) -> list[str]:
    with admin() as conn, conn.cursor() as cur:
        cur.execute("SELECT Host FROM mysql.user WHERE User = %s", (user,))
        return [r[0] for r in cur.fetchall()]


def users_like(pattern: str) -> list[str]:
    with admin() as conn, conn.cursor() as cur:
        cur.execute("SELECT User FROM mysql.user WHERE User LIKE %s", (pattern,))
        return [r[0] for r in cur.fetchall()]


def login(user: str, password: str) -> Any:
    return pymysql.connect(host="127.0.0.1", port=3306, user=user, password=password, connect_timeout=5)


async def setup_role(db: DB, conn: str, role: str, plugin: str = "mysql-database-plugin", **fields: Any) -> None:
    await db.write(f"config/{conn}", plugin_name=plugin, connection_url=MYSQL_URL, username="root", password="",
                   allowed_roles=[role])
    await db.write(f"roles/{role}", db_name=conn, creation_statements=CREATE, default_ttl="1h", **fields)


async def test_creds_log_in_and_revocation_drops_the_user_and_kills_its_connection(db: DB) -> None:
    role = unique("app")
    await setup_role(db, unique("my"), role)
    body = await db.read(f"creds/{role}")
    user, password = body["data"]["username"], body["data"]["password"]
    assert len(user) <= 32 and user.startswith("v-")
    session = login(user, password)
    with session.cursor() as cur:
        cur.execute("SELECT CURRENT_USER()")
        assert cur.fetchone()[0] == f"{user}@%"
    with pytest.raises(pymysql.err.OperationalError):
        login(user, password + "x")  # the password is checked, and it is this one
    resp = await db.client.put("/v1/sys/leases/revoke", json={"lease_id": body["lease_id"]})
    assert resp.status_code == 204, resp.text
    assert hosts_of(user) == []
    with pytest.raises(pymysql.err.OperationalError), session.cursor() as cur:  # killed
        cur.execute("SELECT 1")
    with pytest.raises(pymysql.err.OperationalError):
        login(user, password)


async def test_legacy_variants_make_short_names(db: DB) -> None:
    for plugin in ("mysql-legacy-database-plugin", "mysql-rds-database-plugin", "mysql-aurora-database-plugin"):
        role = unique("l")
        await setup_role(db, unique("my"), role, plugin=plugin)
        body = await db.read(f"creds/{role}")
        user = body["data"]["username"]
        assert len(user) <= 16 and hosts_of(user) == ["%"]
        login(user, body["data"]["password"]).close()
        await db.client.put("/v1/sys/leases/revoke", json={"lease_id": body["lease_id"]})
        assert hosts_of(user) == []


async def test_a_statement_failing_after_create_user_leaves_no_user(db: DB) -> None:
    role = unique("bad")
    conn = unique("my")
    await setup_role(db, conn, role)
    await db.write(f"roles/{role}", db_name=conn, creation_statements=[
        "CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}'; GRANT SELECT ON nodb.notable TO '{{name}}'@'%'"])
    resp = await db.client.get(f"/v1/database/creds/{role}")
    assert resp.status_code == 400, resp.text
    assert "Error 1" in resp.json()["errors"][0]
    assert users_like(f"v-root-{role[:7]}%") == [] and users_like(f"v-token-{role[:7]}%") == []
    assert await wal.list_wal(db.backend.system.storage) == []


async def test_renew_runs_renew_statements_and_unreachable_is_clear(db: DB) -> None:
    role = unique("r")
    await setup_role(db, unique("my"), role,
                     renew_statements=["GRANT SELECT ON mysql.user TO '{{name}}'@'%'"])
    body = await db.read(f"creds/{role}")
    user = body["data"]["username"]
    resp = await db.client.put("/v1/sys/leases/renew", json={"lease_id": body["lease_id"]})
    assert resp.status_code == 200, resp.text
    with admin() as conn, conn.cursor() as cur:
        cur.execute(f"SHOW GRANTS FOR '{user}'@'%'")
        assert any("`mysql`.`user`" in r[0] for r in cur.fetchall())
    await db.client.put("/v1/sys/leases/revoke", json={"lease_id": body["lease_id"]})
    started = time.monotonic()
    resp = await db.client.post("/v1/database/config/down", json={
        "plugin_name": "mysql-database-plugin", "connection_url": "root:pw@tcp(127.0.0.1:1)/",
        "allowed_roles": "*"})
    assert resp.status_code == 400 and "error verifying connection" in resp.text
    assert time.monotonic() - started < 5
    resp = await db.client.post("/v1/database/config/x", json={"plugin_name": "mysql-database-plugin",
                                                               "connection_url": "mysql://nope"})
    assert resp.status_code == 400 and "invalid connection_url" in resp.text


@pytest.fixture
def throwaway_root() -> Iterator[tuple[str, str]]:
    name, password = unique("srroot"), "Initial-pw-1"
    with admin() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE USER '{name}'@'%' IDENTIFIED BY '{password}'")
        cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{name}'@'%' WITH GRANT OPTION")
    try:
        yield name, password
    finally:
        with admin() as conn, conn.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{name}'@'%'")


async def test_rotate_root_and_static_roles(db: DB, throwaway_root: tuple[str, str]) -> None:
    root, password = throwaway_root
    conn, static = unique("my"), unique("st")
    await db.write(f"config/{conn}", plugin_name="mysql-database-plugin", connection_url=MYSQL_URL, username=root,
                   password=password, allowed_roles="*")
    await db.write(f"rotate-root/{conn}")
    with pytest.raises(pymysql.err.OperationalError):
        login(root, password)
    account = unique("svc")
    with admin() as a, a.cursor() as cur:
        cur.execute(f"CREATE USER '{account}'@'%' IDENTIFIED BY 'before'")
    try:
        await db.write(f"static-roles/{static}", db_name=conn, username=account, rotation_period="1h")
        creds = (await db.read(f"static-creds/{static}"))["data"]
        login(account, creds["password"]).close()
        await db.write(f"rotate-role/{static}")
        again = (await db.read(f"static-creds/{static}"))["data"]
        login(account, again["password"]).close()
        with pytest.raises(pymysql.err.OperationalError):
            login(account, creds["password"])
    finally:
        with admin() as a, a.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{account}'@'%'")


async def test_custom_revocation_statements_and_a_creation_refused_at_once(db: DB) -> None:
    role, conn = unique("cu"), unique("my")
    await setup_role(db, conn, role, revocation_statements=["DROP USER '{{name}}'@'%'"])
    body = await db.read(f"creds/{role}")
    user = body["data"]["username"]
    assert hosts_of(user) == ["%"]
    await db.client.put("/v1/sys/leases/revoke", json={"lease_id": body["lease_id"]})
    assert hosts_of(user) == []
    # CREATE USER itself refused: nothing to undo, and the undo (the role's DROP USER, which would
    # fail on a user that does not exist) is not run, so no entry is left for later.
    await db.write(f"roles/{role}", db_name=conn, creation_statements=["CREATE USER '{{name}}'@'%' IDENTIFIED BY"])
    resp = await db.client.get(f"/v1/database/creds/{role}")
    assert resp.status_code == 400 and "Error 1064" in resp.text
    assert await wal.list_wal(db.backend.system.storage) == []
