"""The database engine against the real Redis of this machine (redis-database-plugin, valkey alias)."""

from __future__ import annotations

import socket
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from tests.engines.database.conftest import DB, closed_port, unique

pytestmark = pytest.mark.usefixtures("redis_up")


def client(**kw: Any) -> redis.Redis:
    """A client that fails at once (redis-py retries failed connections, authentication included)."""
    return redis.Redis(host="127.0.0.1", port=6379, retry=Retry(NoBackoff(), 0), **kw)


def admin() -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=6379)


def acl_users() -> set[str]:
    return {u.decode() if isinstance(u, bytes) else str(u) for u in admin().acl_users()}


@pytest.mark.parametrize("plugin", ["redis-database-plugin", "valkey-database-plugin"])
async def test_acl_user_logs_in_with_its_rules_and_revocation_disconnects_it(db: DB, plugin: str) -> None:
    conn, role = unique("rd"), unique("ro")
    await db.write(f"config/{conn}", plugin_name=plugin, host="127.0.0.1", port=6379, allowed_roles=[role])
    assert "password" not in (await db.read(f"config/{conn}"))["data"]["connection_details"]
    await db.write(f"roles/{role}", db_name=conn, creation_statements=['["~sr-test:*", "+get", "+ping"]'])
    body = await db.read(f"creds/{role}")
    user, password = body["data"]["username"], body["data"]["password"]
    assert user.startswith("V_") and user in acl_users()
    raw = socket.create_connection(("127.0.0.1", 6379), timeout=5)
    raw.sendall(f"AUTH {user} {password}\r\n".encode())
    assert raw.recv(64) == b"+OK\r\n"
    session = client(username=user, password=password)
    assert session.ping() is True
    assert session.get("sr-test:nothing") is None
    with pytest.raises(redis.exceptions.NoPermissionError):
        session.set("sr-test:x", "1")  # only the rules the role gave
    with pytest.raises(redis.exceptions.AuthenticationError):
        client(username=user, password=password + "x").ping()
    resp = await db.client.put("/v1/sys/leases/revoke", json={"lease_id": body["lease_id"]})
    assert resp.status_code == 204, resp.text
    assert user not in acl_users()
    raw.sendall(b"PING\r\n")
    assert raw.recv(64) == b""  # its open connection was closed
    raw.close()
    with pytest.raises((redis.exceptions.AuthenticationError, redis.exceptions.ResponseError)):
        client(username=user, password=password).ping()


async def test_bad_rules_are_refused_and_unreachable_is_clear(db: DB) -> None:
    conn = unique("rd")
    await db.write(f"config/{conn}", plugin_name="redis-database-plugin", host="127.0.0.1", port=6379,
                   allowed_roles="*")
    resp = await db.client.post("/v1/database/roles/x", json={"db_name": conn, "creation_statements": "not json"})
    assert resp.status_code == 400 and "JSON list" in resp.text
    resp = await db.client.post("/v1/database/roles/x", json={"db_name": conn, "creation_statements": '["nopass"]'})
    assert resp.status_code == 400
    # A rule Redis refuses: 400 at issue time, and no user left.
    await db.write("roles/x", db_name=conn, creation_statements='["+nosuchcommand"]')
    before = acl_users()
    resp = await db.client.get("/v1/database/creds/x")
    assert resp.status_code == 400, resp.text
    assert acl_users() == before
    port = closed_port()
    resp = await db.client.post("/v1/database/config/down", json={"plugin_name": "redis-database-plugin",
                                                                  "host": "127.0.0.1", "port": port})
    assert resp.status_code == 400 and "error verifying connection" in resp.text


async def test_static_role_rotates_an_existing_acl_user(db: DB) -> None:
    conn, static, account = unique("rd"), unique("st"), unique("sr-svc-")
    admin().acl_setuser(account, enabled=True, passwords=["+before"], commands=["+ping"])
    try:
        await db.write(f"config/{conn}", plugin_name="redis-database-plugin", host="127.0.0.1", port=6379,
                       allowed_roles="*")
        await db.write(f"static-roles/{static}", db_name=conn, username=account, rotation_period="1h")
        creds = (await db.read(f"static-creds/{static}"))["data"]
        assert client(username=account, password=creds["password"]).ping()
        with pytest.raises(redis.exceptions.AuthenticationError):
            client(username=account, password="before").ping()
    finally:
        admin().acl_deluser(account)


async def test_tls_is_used_when_asked(db: DB) -> None:
    """``tls=true`` speaks TLS: against this plain-text Redis the handshake never completes, a clear
    400 within the deadline."""
    db.backend.deadline = 1.0
    resp = await db.client.post("/v1/database/config/tls", json={
        "plugin_name": "redis-database-plugin", "host": "127.0.0.1", "port": 6379, "tls": True,
        "insecure_tls": True})
    assert resp.status_code == 400 and "error verifying connection" in resp.text
