"""The rabbitmq secrets engine through the real HTTP app and core, against the real local broker:
issued users log in (AMQP and the management API) with exactly the role's permissions, and stop
working once their lease is revoked."""

from __future__ import annotations

import json
from typing import Any

import httpx

from strongroom.framework import wal

from .conftest import ADMIN, MGMT, Engine, amqp_login, user_exists, whoami

VHOSTS_ALL = json.dumps({"/": {"configure": ".*", "write": ".*", "read": ".*"}})


async def _creds(e: Engine, role: str) -> dict[str, Any]:
    r = await e.client.get(f"/v1/rabbitmq/creds/{role}")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_issue_login_revoke(engine: Engine) -> None:
    c = engine.client
    r = await c.post("/v1/rabbitmq/roles/mgmt", json={"tags": "management,policymaker", "vhosts": VHOSTS_ALL})
    assert r.status_code == 204
    body = await _creds(engine, "mgmt")
    user, pw = body["data"]["username"], body["data"]["password"]
    assert isinstance(user, str) and isinstance(pw, str)
    assert user.startswith(engine.prefix + "mgmt-") and len(pw) == 20
    assert body["lease_id"].startswith("rabbitmq/creds/mgmt/") and body["renewable"] is True
    assert body["lease_duration"] == 2764800  # the mount default without config/lease
    # The user exists with the role's tag and permissions, and its credentials work on both protocols.
    info = httpx.get(f"{MGMT}/api/users/{user}", auth=ADMIN).json()
    assert sorted(info["tags"]) == ["management", "policymaker"]
    perms = httpx.get(f"{MGMT}/api/users/{user}/permissions", auth=ADMIN).json()
    assert [(p["vhost"], p["configure"], p["write"], p["read"]) for p in perms] == [("/", ".*", ".*", ".*")]
    assert whoami(user, pw) == 200
    assert whoami(user, pw + "x") == 401
    assert amqp_login(user, pw)
    # Each read makes a new user (never a remembered answer).
    again = await _creds(engine, "mgmt")
    assert again["data"]["username"] != user and whoami(again["data"]["username"], again["data"]["password"]) == 200
    await c.put("/v1/sys/leases/revoke", json={"lease_id": again["lease_id"]})
    # No write-ahead entry is left once the lease is written.
    mount = engine.core.mounts.find("mounts", "rabbitmq/")
    assert mount is not None and mount.backend is not None
    assert await wal.list_wal(mount.backend.system.storage) == []
    # Revoking the lease deletes the user: its credentials stop working.
    r = await c.put("/v1/sys/leases/revoke", json={"lease_id": body["lease_id"]})
    assert r.status_code == 204, r.text
    assert not user_exists(user)
    assert whoami(user, pw) == 401
    assert not amqp_login(user, pw)


async def test_permissions_and_topic_permissions_are_exactly_the_roles(engine: Engine, vhost: str) -> None:
    c = engine.client
    vhosts = json.dumps({vhost: {"configure": "^cfg-.*", "write": "^w-.*", "read": "^r-.*"}})
    topics = json.dumps({vhost: {"amq.topic": {"write": "^orders\\.", "read": ".*"}}})
    r = await c.post("/v1/rabbitmq/roles/limited", json={"vhosts": vhosts, "vhost_topics": topics})
    assert r.status_code == 204
    body = await _creds(engine, "limited")
    user, pw = body["data"]["username"], body["data"]["password"]
    perms = httpx.get(f"{MGMT}/api/users/{user}/permissions", auth=ADMIN).json()
    assert [(p["vhost"], p["configure"], p["write"], p["read"]) for p in perms] == [(vhost, "^cfg-.*", "^w-.*", "^r-.*")]
    topic = httpx.get(f"{MGMT}/api/users/{user}/topic-permissions", auth=ADMIN).json()
    assert [(t["vhost"], t["exchange"], t["write"], t["read"]) for t in topic] == [(vhost, "amq.topic", "^orders\\.", ".*")]
    assert amqp_login(user, pw, vhost)
    assert not amqp_login(user, pw, "/")  # no permission on the default vhost
    assert whoami(user, pw) == 401  # no management tag: the management API refuses it
    await c.put("/v1/sys/leases/revoke", json={"lease_id": body["lease_id"]})
    assert not user_exists(user)


async def test_failed_permissions_delete_the_user(engine: Engine) -> None:
    """A role naming a vhost that does not exist: the user was created, setting its permissions
    fails, so it is deleted at once and no write-ahead entry or lease remains."""
    c = engine.client
    missing = json.dumps({"sr-no-such-vhost": {"configure": ".*", "write": ".*", "read": ".*"}})
    assert (await c.post("/v1/rabbitmq/roles/broken", json={"tags": "management", "vhosts": missing})).status_code == 204
    r = await c.get("/v1/rabbitmq/creds/broken")
    assert r.status_code == 400, r.text
    assert "error updating vhost permissions for sr-no-such-vhost" in r.json()["errors"][0]
    mount = engine.core.mounts.find("mounts", "rabbitmq/")
    assert mount is not None and mount.backend is not None
    assert await wal.list_wal(mount.backend.system.storage) == []
    leases = await c.request("LIST", "/v1/sys/leases/lookup/rabbitmq/creds/broken")
    assert leases.status_code == 404
    # (the engine fixture fails the test if a user with this test's prefix is left on the broker)


async def test_rollback_deletes_a_user_whose_lease_was_never_written(engine: Engine) -> None:
    """The process died between creating the user and writing its lease: the write-ahead entry
    names the user, and the rollback (run on the next activation) deletes it."""
    mount = engine.core.mounts.find("mounts", "rabbitmq/")
    assert mount is not None and mount.backend is not None
    backend = mount.backend
    orphan = engine.prefix + "orphan"
    httpx.put(f"{MGMT}/api/users/{orphan}", auth=ADMIN, json={"password": "pw-orphan-1", "tags": ""}).raise_for_status()
    await backend.put_wal("user", {"username": orphan})
    wal.forget_in_flight()  # as if the process that put it were gone
    await backend.activate()
    await backend.rollback_settled()
    assert not user_exists(orphan)
    assert await wal.list_wal(backend.system.storage) == []


async def test_config_lease_sets_ttls_and_renew_honours_it(engine: Engine) -> None:
    c = engine.client
    assert (await c.get("/v1/rabbitmq/config/lease")).status_code == 404
    assert (await c.post("/v1/rabbitmq/config/lease", json={"ttl": "1h", "max_ttl": 7200})).status_code == 204
    assert (await c.get("/v1/rabbitmq/config/lease")).json()["data"] == {"ttl": 3600, "max_ttl": 7200}
    await c.post("/v1/rabbitmq/roles/r", json={"tags": "management"})
    body = await _creds(engine, "r")
    assert body["lease_duration"] == 3600
    lease_id = body["lease_id"]
    # Renew: config/lease's ttl as it is now.
    await c.post("/v1/rabbitmq/config/lease", json={"ttl": "30m", "max_ttl": "2h"})
    r = await c.put("/v1/sys/leases/renew", json={"lease_id": lease_id, "increment": 60})
    assert r.status_code == 200 and r.json()["lease_duration"] == 1800
    # Never past the max TTL from issue.
    await c.post("/v1/rabbitmq/config/lease", json={"ttl": "5h", "max_ttl": "2h"})
    r = await c.put("/v1/sys/leases/renew", json={"lease_id": lease_id})
    assert r.status_code == 200 and 7190 <= r.json()["lease_duration"] <= 7200
    assert any("max_ttl" in w for w in r.json()["warnings"])
    await c.put("/v1/sys/leases/revoke", json={"lease_id": lease_id})


async def test_revoke_prefix_and_unmount_delete_every_user(engine: Engine) -> None:
    c = engine.client
    await c.post("/v1/rabbitmq/roles/many", json={"tags": "management"})
    users = [(await _creds(engine, "many"))["data"]["username"] for _ in range(3)]
    assert all(user_exists(str(u)) for u in users)
    assert (await c.put("/v1/sys/leases/revoke-prefix/rabbitmq/creds/many")).status_code == 204
    assert not any(user_exists(str(u)) for u in users)
    last = (await _creds(engine, "many"))["data"]["username"]
    assert (await c.delete("/v1/sys/mounts/rabbitmq")).status_code == 204
    assert not user_exists(str(last))


async def test_password_policy_shapes_passwords(engine: Engine) -> None:
    c = engine.client
    policy = 'length = 32\nrule "charset" {\n  charset = "0123456789"\n  min-chars = 1\n}\n'
    assert (await c.put("/v1/sys/policies/password/rmq-digits", json={"policy": policy})).status_code == 204
    r = await c.post("/v1/rabbitmq/config/connection", json={
        "connection_uri": MGMT, "username": ADMIN[0], "password": ADMIN[1], "password_policy": "rmq-digits",
        "username_template": engine.prefix + "{{ .DisplayName }}-{{ .RoleName | uppercase }}-{{ random 6 }}"})
    assert r.status_code == 204, r.text
    await c.post("/v1/rabbitmq/roles/pp", json={"tags": "management"})
    body = await _creds(engine, "pp")
    user, pw = body["data"]["username"], body["data"]["password"]
    assert isinstance(pw, str) and len(pw) == 32 and pw.isdigit()
    display = (await c.get("/v1/auth/token/lookup-self")).json()["data"]["display_name"]
    assert str(user).startswith(f"{engine.prefix}{display}-PP-") and len(str(user)) == len(engine.prefix + display) + 10
    assert whoami(str(user), pw) == 200
    await c.put("/v1/sys/leases/revoke", json={"lease_id": body["lease_id"]})
    # An unknown policy: a clear 400, and no user made.
    await c.post("/v1/rabbitmq/config/connection", json={
        "connection_uri": MGMT, "username": ADMIN[0], "password": ADMIN[1], "password_policy": "nope",
        "username_template": engine.prefix + "x-{{ random 6 }}"})
    r = await c.get("/v1/rabbitmq/creds/pp")
    assert r.status_code == 400 and 'policy "nope" not found' in r.json()["errors"][0]
