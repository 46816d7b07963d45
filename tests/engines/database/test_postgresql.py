"""The database engine against the real PostgreSQL of this machine (postgresql-database-plugin).

PostgreSQL here trusts 127.0.0.1 (no password check at login), so a test proves the password by
checking it against the SCRAM verifier the server stored (what a password login would check),
and that the user exists and may log in by logging in."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest
from tests.engines.database.conftest import DB, PG_URL, closed_port, unique

from strongroom.core import Core
from strongroom.engines.database import DatabaseBackend
from strongroom.framework import wal

pytestmark = pytest.mark.usefixtures("pg_up")

CREATE = ["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"
          " GRANT CONNECT ON DATABASE postgres TO \"{{name}}\";"]


async def admin() -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True)


async def role_row(name: str) -> tuple[Any, ...] | None:
    async with await admin() as conn:
        cur = await conn.execute("SELECT rolname, rolvaliduntil, rolcanlogin FROM pg_roles WHERE rolname = %s",
                                 (name,))
        return await cur.fetchone()


async def roles_like(pattern: str) -> list[str]:
    async with await admin() as conn:
        cur = await conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE %s", (pattern,))
        return [r[0] for r in await cur.fetchall()]


async def password_matches(name: str, password: str) -> bool:
    """Whether ``password`` is the one PostgreSQL stored for ``name`` (its SCRAM-SHA-256 verifier)."""
    async with await admin() as conn:
        cur = await conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (name,))
        row = await cur.fetchone()
    assert row is not None and str(row[0]).startswith("SCRAM-SHA-256$"), row
    _, rest = str(row[0]).split("$", 1)
    params, keys = rest.split("$")
    iterations, salt = params.split(":")
    stored_key, _ = keys.split(":")
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    return hmac.compare_digest(hashlib.sha256(client_key).digest(), base64.b64decode(stored_key))


async def login(name: str, password: str) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(host="127.0.0.1", user=name, password=password, dbname="postgres",
                                                 autocommit=True, connect_timeout=5)


async def setup_role(db: DB, conn: str, role: str, **role_fields: Any) -> None:
    await db.write(f"config/{conn}", plugin_name="postgresql-database-plugin", connection_url=PG_URL,
                   username="postgres", password="unused-with-trust", allowed_roles=[role])
    await db.write(f"roles/{role}", db_name=conn, creation_statements=CREATE, default_ttl="1h", max_ttl="2h",
                   **role_fields)


async def test_creds_log_in_and_revocation_drops_the_user_and_kills_its_session(db: DB) -> None:
    role = unique("app")
    await setup_role(db, unique("pg"), role)
    body = await db.read(f"creds/{role}")
    user, password = body["data"]["username"], body["data"]["password"]
    assert body["lease_id"].startswith(f"database/creds/{role}/") and body["lease_duration"] == 3600
    assert body["renewable"] is True and user.startswith("v-")
    assert await password_matches(user, password)
    session = await login(user, password)
    assert (await (await session.execute("SELECT current_user")).fetchone()) == (user,)
    row = await role_row(user)
    assert row is not None and row[2] is True and abs(row[1].timestamp() - (time.time() + 3600)) < 60
    assert await wal.list_wal(db.backend.system.storage) == []

    resp = await db.client.put("/v1/sys/leases/revoke", json={"lease_id": body["lease_id"]})
    assert resp.status_code == 204, resp.text
    assert await role_row(user) is None
    with pytest.raises(psycopg.OperationalError):  # its open session was terminated
        await session.execute("SELECT 1")
    await session.close()
    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        await login(user, password)


async def test_renew_moves_valid_until_capped_by_max_ttl(db: DB) -> None:
    role = unique("renew")
    await setup_role(db, unique("pg"), role)
    body = await db.read(f"creds/{role}")
    user = body["data"]["username"]
    before = (await role_row(user))[1]  # type: ignore[index]
    resp = await db.client.put("/v1/sys/leases/renew", json={"lease_id": body["lease_id"], "increment": "90m"})
    assert resp.status_code == 200, resp.text
    after = (await role_row(user))[1]  # type: ignore[index]
    assert after > before and abs(after.timestamp() - (time.time() + 5400)) < 60
    # Past max_ttl (2h from issue): capped, in the lease and in the database.
    resp = await db.client.put("/v1/sys/leases/renew", json={"lease_id": body["lease_id"], "increment": "10h"})
    assert resp.status_code == 200 and resp.json()["lease_duration"] <= 7200
    capped = (await role_row(user))[1]  # type: ignore[index]
    assert abs(capped.timestamp() - (time.time() + 7200)) < 60
    await db.client.put("/v1/sys/leases/revoke", json={"lease_id": body["lease_id"]})
    assert await role_row(user) is None


async def test_lease_expiry_drops_the_user(db: DB) -> None:
    role = unique("short")
    await setup_role(db, unique("pg"), role)
    await db.write(f"roles/{role}", db_name=(await db.read(f"roles/{role}"))["data"]["db_name"], default_ttl="1s")
    body = await db.read(f"creds/{role}")
    user = body["data"]["username"]
    assert await role_row(user) is not None
    deadline = time.monotonic() + 10
    while await role_row(user) is not None and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert await role_row(user) is None


async def test_revoke_prefix_and_mount_disable_drop_every_user(db: DB) -> None:
    role, other = unique("many"), unique("other")
    conn = unique("pg")
    await setup_role(db, conn, role)
    await db.write(f"config/{conn}", allowed_roles=[role, other])
    await db.write(f"roles/{other}", db_name=conn, creation_statements=CREATE)
    users = [(await db.read(f"creds/{role}"))["data"]["username"] for _ in range(5)]
    kept = [(await db.read(f"creds/{other}"))["data"]["username"] for _ in range(2)]
    resp = await db.client.put(f"/v1/sys/leases/revoke-prefix/database/creds/{role}")
    assert resp.status_code == 204, resp.text
    assert [u for u in users if await role_row(u)] == []
    assert all([await role_row(u) for u in kept])
    assert (await db.client.delete("/v1/sys/mounts/database")).status_code == 204
    assert [u for u in kept if await role_row(u)] == []


async def test_bad_statements_are_a_400_and_leave_no_user(db: DB) -> None:
    role = unique("bad")
    conn = unique("pg")
    await setup_role(db, conn, role)
    # The role is created, then the GRANT fails: the transaction takes both back.
    await db.write(f"roles/{role}", db_name=conn, creation_statements=[
        "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}'; GRANT SELECT ON no_such_table TO \"{{name}}\""])
    resp = await db.client.get(f"/v1/database/creds/{role}")
    assert resp.status_code == 400, resp.text
    [error] = resp.json()["errors"]
    assert "no_such_table" in error and "does not exist" in error
    assert await roles_like(f"v-root-{role[:8]}%") == [] and await roles_like(f"v-token-{role[:8]}%") == []
    assert await wal.list_wal(db.backend.system.storage) == []
    # Undoing a user that is not there (never made, or dropped already) is done, not an error.
    assert await db.backend.rollback("creds", {"db_name": conn, "username": "sr-no-such-user", "statements": []})
    # A syntax error whose text would quote the password never shows it.
    await db.write(f"roles/{role}", db_name=conn, creation_statements=["CREATE ROLE \"{{name}}\" PASSWORD '{{password}}' nonsense"])
    resp = await db.client.get(f"/v1/database/creds/{role}")
    assert resp.status_code == 400 and "42601" in resp.text
    assert await wal.list_wal(db.backend.system.storage) == []


async def test_statements_that_commit_before_failing_are_rolled_back(db: DB) -> None:
    """A failing statement after a committed one (a $$ block runs whole; here the plain statement is
    committed by itself in autocommit mode): the undo drops what was made."""
    role, conn = unique("half"), unique("pg")
    await setup_role(db, conn, role, rollback_statements=['DROP ROLE IF EXISTS "{{name}}"'])
    await db.write(f"roles/{role}", db_name=conn, creation_statements=[
        "CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}'",
        "DO $$ BEGIN RAISE EXCEPTION 'refused'; END $$"])
    resp = await db.client.get(f"/v1/database/creds/{role}")
    assert resp.status_code == 400 and "refused" in resp.text
    assert await roles_like("v-%" + role[:8] + "%") == []
    assert await wal.list_wal(db.backend.system.storage) == []


async def test_an_unreachable_database_is_a_clear_error_and_creates_nothing(db: DB) -> None:
    port = closed_port()
    url = f"postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{port}/postgres"
    resp = await db.client.post("/v1/database/config/down", json={
        "plugin_name": "postgresql-database-plugin", "connection_url": url, "username": "postgres",
        "password": "sekrit-root-pw", "allowed_roles": "*"})
    assert resp.status_code == 400 and "error verifying connection" in resp.text and "sekrit" not in resp.text
    await db.write("config/down", plugin_name="postgresql-database-plugin", connection_url=url,
                   username="postgres", password="sekrit-root-pw", allowed_roles="*", verify_connection=False)
    await db.write("roles/r", db_name="down", creation_statements=CREATE)
    started = time.monotonic()
    resp = await db.client.get("/v1/database/creds/r")
    assert resp.status_code == 500 and "could not connect" in resp.text and "sekrit" not in resp.text
    assert time.monotonic() - started < db.backend.deadline
    assert await wal.list_wal(db.backend.system.storage) == []


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung database)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield int(sock.getsockname()[1])
    stop.set()
    t.join()
    for s in held:
        s.close()
    sock.close()


async def test_a_database_that_never_answers_fails_within_the_deadline(db: DB, silent_server: int) -> None:
    db.backend.deadline = 1.0
    url = f"postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{silent_server}/postgres"
    started = time.monotonic()
    resp = await db.client.post("/v1/database/config/hung", json={
        "plugin_name": "postgresql-database-plugin", "connection_url": url, "username": "u", "password": "p"})
    assert resp.status_code == 400 and "did not answer within 1s" in resp.text
    assert time.monotonic() - started < 3
    await db.write("config/hung", plugin_name="postgresql-database-plugin", connection_url=url, username="u",
                   password="p", allowed_roles="*", verify_connection=False)
    await db.write("roles/r", db_name="hung", creation_statements=CREATE)
    started = time.monotonic()
    resp = await db.client.get("/v1/database/creds/r")
    assert resp.status_code == 500 and "did not answer within 1s" in resp.text
    assert time.monotonic() - started < 3


async def test_a_lease_that_never_became_durable_is_rolled_back_after_restart(db: DB,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The crash window: the user exists, its lease was never written. After the next unseal (a new
    process: nothing in flight) the write-ahead entry drops it."""
    role = unique("crash")
    await setup_role(db, unique("pg"), role)

    async def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(db.core.expiration._store, "create", broken)
    assert (await db.client.get(f"/v1/database/creds/{role}")).status_code == 500
    [entry] = await wal.list_wal(db.backend.system.storage)
    created = await wal.get_wal(db.backend.system.storage, entry)
    assert created is not None
    user = created.data["username"]
    assert await role_row(user) is not None  # the orphan
    monkeypatch.undo()
    await db.core.seal()  # the process is gone; a new one on the same storage unseals
    wal.forget_in_flight()
    core = Core(db.physical)
    await core.unseal(db.unseal_key)
    try:
        hit = core.router.match("database/creds/x")
        assert hit is not None and isinstance(hit[0].backend, DatabaseBackend)
        await hit[0].backend.rollback_settled()
        assert await role_row(user) is None
        assert await wal.list_wal(hit[0].backend.system.storage) == []
    finally:
        await core.seal()


async def test_config_read_list_and_the_password_is_never_returned(db: DB) -> None:
    conn, role = unique("pg"), unique("r")
    await setup_role(db, conn, role)
    data = (await db.read(f"config/{conn}"))["data"]
    assert data["plugin_name"] == "postgresql-database-plugin" and data["allowed_roles"] == [role]
    assert data["connection_details"]["connection_url"] == PG_URL and data["connection_details"]["username"] == "postgres"
    assert "password" not in data["connection_details"] and "unused-with-trust" not in str(data)
    assert data["root_credentials_rotate_statements"] == [] and data["password_policy"] == ""
    # As in OpenBao: a role may name a connection that does not exist yet, and need no statements
    # until credentials are asked for.
    await db.write("roles/early", db_name="not-yet")
    await db.write(f"config/{conn}", allowed_roles=[role, "early"])
    await db.write("roles/early", db_name=conn)
    resp = await db.client.get("/v1/database/creds/early")
    assert resp.status_code == 400 and resp.json()["errors"] == ["empty creation statements"]
    await db.client.delete("/v1/database/roles/early")
    assert conn in (await db.client.request("LIST", "/v1/database/config")).json()["data"]["keys"]
    role_data = (await db.read(f"roles/{role}"))["data"]
    assert role_data == {"db_name": conn, "creation_statements": CREATE, "revocation_statements": [],
                         "rollback_statements": [], "renew_statements": [], "default_ttl": 3600, "max_ttl": 7200,
                         "credential_type": "password"}
    assert (await db.client.request("LIST", "/v1/database/roles")).json()["data"]["keys"] == [role]
    # Not allowed, unknown role, unknown plugin, bad connection URL: 400s.
    await db.write(f"roles/{role}x", db_name=conn, creation_statements=CREATE)
    resp = await db.client.get(f"/v1/database/creds/{role}x")
    assert resp.status_code == 400 and resp.json()["errors"] == [f'"{role}x" is not an allowed role']
    resp = await db.client.get("/v1/database/creds/nope")
    assert resp.status_code == 400 and resp.json()["errors"] == ["unknown role: nope"]
    resp = await db.client.post("/v1/database/config/x", json={"plugin_name": "oracle-database-plugin"})
    assert resp.status_code == 400 and "oracle-database-plugin" in resp.text
    resp = await db.client.post("/v1/database/config/x", json={"plugin_name": "postgresql-database-plugin",
                                                               "connection_url": "host='unterminated"})
    assert resp.status_code == 400 and "invalid connection_url" in resp.text
    # A named password policy the server does not have: a 400 before anything is created.
    await db.write(f"config/{conn}", password_policy="no-such-policy")
    resp = await db.client.get(f"/v1/database/creds/{role}")
    assert resp.status_code == 400 and "no-such-policy" in resp.text
    assert await wal.list_wal(db.backend.system.storage) == []
    # Delete: the connection goes, its pool is closed.
    assert (await db.client.delete(f"/v1/database/config/{conn}")).status_code == 204
    assert (await db.client.get(f"/v1/database/config/{conn}")).status_code == 404
    assert conn not in db.backend._plugins


@pytest.fixture
async def throwaway_superuser() -> AsyncIterator[tuple[str, str]]:
    name, password = unique("srroot_"), "initial-Pw-1"
    async with await admin() as conn:
        await conn.execute(f"CREATE ROLE {name} SUPERUSER LOGIN PASSWORD '{password}'")
    try:
        yield name, password
    finally:
        async with await admin() as conn:
            await conn.execute(f"DROP ROLE IF EXISTS {name}")


async def test_rotate_root_and_static_roles(db: DB, throwaway_superuser: tuple[str, str]) -> None:
    root, password = throwaway_superuser
    conn, static = unique("pg"), unique("static")
    await db.write(f"config/{conn}", plugin_name="postgresql-database-plugin", connection_url=PG_URL,
                   username=root, password=password, allowed_roles="*")
    await db.write(f"rotate-root/{conn}")
    assert not await password_matches(root, password)  # nobody knows it now but the engine
    assert "password" not in (await db.read(f"config/{conn}"))["data"]["connection_details"]
    await db.write(f"reset/{conn}")

    account = unique("svc_")
    async with await admin() as a:
        await a.execute(f"CREATE ROLE {account} LOGIN PASSWORD 'before'")
    try:
        await db.write(f"static-roles/{static}", db_name=conn, username=account, rotation_period="1h")
        creds = (await db.read(f"static-creds/{static}"))["data"]
        assert creds["username"] == account and 3590 <= creds["ttl"] <= 3600 and creds["rotation_period"] == 3600
        assert await password_matches(account, creds["password"])
        await db.write(f"rotate-role/{static}")
        again = (await db.read(f"static-creds/{static}"))["data"]
        assert again["password"] != creds["password"] and await password_matches(account, again["password"])
        info = (await db.read(f"static-roles/{static}"))["data"]
        assert info["username"] == account and info["db_name"] == conn and "password" not in info
        assert (await db.client.request("LIST", "/v1/database/static-roles")).json()["data"]["keys"] == [static]
        resp = await db.client.post(f"/v1/database/static-roles/{static}", json={"username": "other"})
        assert resp.status_code == 400
        resp = await db.client.post("/v1/database/static-roles/x", json={"db_name": conn, "username": account,
                                                                          "rotation_period": "1s"})
        assert resp.status_code == 400 and "5 seconds" in resp.text
        # A static role for a user that does not exist: refused, and not stored.
        resp = await db.client.post("/v1/database/static-roles/ghost", json={
            "db_name": conn, "username": "no_such_user_here", "rotation_period": "1h"})
        assert resp.status_code == 400 and "does not exist" in resp.text
        assert (await db.client.get("/v1/database/static-roles/ghost")).status_code == 404
        # Due rotation from the periodic function.
        await db.backend.periodic(time.time() + 7200)
        third = (await db.read(f"static-creds/{static}"))["data"]
        assert third["password"] != again["password"] and await password_matches(account, third["password"])
    finally:
        async with await admin() as a:
            await a.execute(f"DROP ROLE IF EXISTS {account}")


async def test_username_template(db: DB) -> None:
    conn, role = unique("pg"), unique("tpl")
    await setup_role(db, conn, role)
    await db.write(f"config/{conn}", username_template='{{ printf "sr_%s_%s" (.RoleName | truncate 6) (random 8) '
                                                        '| lowercase }}')
    body = await db.read(f"creds/{role}")
    user = body["data"]["username"]
    assert user.startswith(f"sr_{role[:6]}_") and len(user) == len(f"sr_{role[:6]}_") + 8 and user == user.lower()
    await db.client.put("/v1/sys/leases/revoke", json={"lease_id": body["lease_id"]})
    resp = await db.client.post(f"/v1/database/config/{conn}", json={"username_template": "{{ nosuchfn 3 }}"})
    assert resp.status_code == 400 and resp.json()["errors"] == [
        'error creating database object: unable to initialize username template: function "nosuchfn" not defined']
    resp = await db.client.post(f"/v1/database/config/{conn}", json={"username_template": "{{ .Bogus }}"})
    assert resp.status_code == 400 and resp.json()["errors"] == [
        "error creating database object: invalid username template: can't evaluate field Bogus"]


async def backends_named(app: str) -> int:
    async with await admin() as conn:
        cur = await conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (app,))
        row = await cur.fetchone()
        return int(row[0]) if row else 0


async def settles_at(app: str, want: int) -> int:
    """The backends PostgreSQL still lists for ``app`` once it has caught up: a closed connection's
    backend leaves pg_stat_activity a moment after the client closed it."""
    for _ in range(100):
        n = await backends_named(app)
        if n == want:
            return n
        await asyncio.sleep(0.05)
    return n


async def test_one_bounded_pool_per_connection_closed_on_reset_and_unmount(db: DB) -> None:
    app, role, conn = unique("srpool_"), unique("pool"), unique("pg")
    await db.write(f"config/{conn}", plugin_name="postgresql-database-plugin", max_open_connections=2,
                   connection_url=PG_URL + f"?application_name={app}", username="postgres", password="x",
                   allowed_roles="*")
    await db.write(f"roles/{role}", db_name=conn, creation_statements=CREATE)
    peak = 0

    async def watch() -> None:
        nonlocal peak
        async with await admin() as a:
            while True:
                cur = await a.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (app,))
                peak = max(peak, int((await cur.fetchone() or (0,))[0]))
                await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    bodies = await asyncio.gather(*(db.read(f"creds/{role}") for _ in range(12)))
    watcher.cancel()
    assert len({b["data"]["username"] for b in bodies}) == 12
    assert 1 <= peak <= 2 and 1 <= await backends_named(app) <= 2  # bounded; idle ones kept for reuse
    await db.write(f"reset/{conn}")
    assert await settles_at(app, 0) == 0  # the old pool is closed; the new one connects on use
    await db.read(f"creds/{role}")
    assert await settles_at(app, 1) == 1
    assert (await db.client.delete("/v1/sys/mounts/database")).status_code == 204  # revokes 13 leases
    assert await settles_at(app, 0) == 0


async def test_password_authentication_scram_sends_a_verifier_never_the_password(db: DB) -> None:
    """OpenBao's ``password_authentication = "scram-sha-256"``: {{password}} becomes the SCRAM
    verifier (hashed by Strongroom), which PostgreSQL stores as it is; the client still gets the
    password, and it is the one the stored verifier checks."""
    conn, role = unique("pg"), unique("app")
    await db.write(f"config/{conn}", plugin_name="postgresql-database-plugin", connection_url=PG_URL,
                   username="postgres", password="unused-with-trust", allowed_roles=[role],
                   password_authentication="scram-sha-256")
    assert (await db.read(f"config/{conn}"))["data"]["connection_details"]["password_authentication"] == "scram-sha-256"
    # What {{password}} expanded to, kept where the test can read it.
    statements = [CREATE[0] + " COMMENT ON ROLE \"{{name}}\" IS '{{password}}';"]
    await db.write(f"roles/{role}", db_name=conn, creation_statements=statements, default_ttl="1h", max_ttl="2h")
    body = await db.read(f"creds/{role}")
    name, password = body["data"]["username"], body["data"]["password"]
    async with await admin() as c:
        cur = await c.execute("SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = %s", (name,))
        row = await cur.fetchone()
    assert row is not None and str(row[0]).startswith("SCRAM-SHA-256$4096:") and password not in str(row[0])
    assert await password_matches(name, password)  # PostgreSQL took it as a verifier, not as a password
    await (await login(name, password)).close()

    await db.write(f"config/{unique('pg')}", expect=400, plugin_name="postgresql-database-plugin",
                   connection_url=PG_URL, username="postgres", password="x", password_authentication="md5")


async def test_concurrent_creds_never_collide_on_a_shared_grant(db: DB, monkeypatch: pytest.MonkeyPatch) -> None:
    """The role GRANTs on one database: PostgreSQL cannot update its catalog row for two transactions
    at once ("tuple concurrently updated"). The statements after CREATE ROLE run one credential at a
    time, so 24 concurrent credentials over the pool's connections all succeed at the first try."""
    from strongroom.engines.database.plugins import postgresql

    failures: list[str] = []
    real = postgresql.PostgreSQL._execute_split

    async def counting(conn: Any, queries: Any, lock: asyncio.Lock) -> None:
        try:
            await real(conn, queries, lock)
        except Exception as e:
            failures.append(str(e))
            raise

    monkeypatch.setattr(postgresql.PostgreSQL, "_execute_split", staticmethod(counting))
    role = unique("many")
    await setup_role(db, unique("pg"), role)
    bodies = await asyncio.gather(*(db.read(f"creds/{role}") for _ in range(24)))
    users = {b["data"]["username"] for b in bodies}
    assert len(users) == 24 and failures == []
    for body in bodies[:3]:
        assert await password_matches(body["data"]["username"], body["data"]["password"])
    resp = await db.client.put(f"/v1/sys/leases/revoke-prefix/database/creds/{role}")
    assert resp.status_code == 204, resp.text
    assert all([await role_row(u) is None for u in users])
