"""Bad input to the rabbitmq engine: each a clear 4xx (or a 500 for a broker that does not answer)
in Vault's envelope and wording, with nothing half-made in Strongroom or on the broker."""

from __future__ import annotations

import json
import time

from strongroom.framework import wal
from strongroom.testing import app_client, unsealed_core

from .conftest import ADMIN, MGMT, Engine, users_with_prefix


async def _errors(r: object) -> list[str]:
    return list(r.json()["errors"])  # type: ignore[attr-defined]


async def test_connection_config_validation(engine: Engine) -> None:
    c = engine.client
    full = {"connection_uri": MGMT, "username": ADMIN[0], "password": ADMIN[1]}
    for missing in ("connection_uri", "username", "password"):
        r = await c.post("/v1/rabbitmq/config/connection", json={k: v for k, v in full.items() if k != missing})
        assert r.status_code == 400 and await _errors(r) == [f"missing {missing}"]
    r = await c.post("/v1/rabbitmq/config/connection", json={**full, "password": "wrong"})
    assert r.status_code == 400
    assert (await _errors(r))[0].startswith("failed to validate the connection: 401")
    start = time.monotonic()
    r = await c.post("/v1/rabbitmq/config/connection", json={**full, "connection_uri": "http://127.0.0.1:1"})
    assert r.status_code == 400 and "failed to validate the connection: ConnectError" in (await _errors(r))[0]
    assert time.monotonic() - start < 5
    r = await c.post("/v1/rabbitmq/config/connection", json={**full, "connection_uri": "ftp://x"})
    assert r.status_code == 400
    r = await c.post("/v1/rabbitmq/config/connection", json={**full, "username_template": "{{ nofunc }}"})
    assert r.status_code == 400 and (await _errors(r))[0].startswith("unable to initialize username template:")
    r = await c.post("/v1/rabbitmq/config/connection", json={**full, "username_template": "{{ .Bogus }}"})
    assert r.status_code == 400 and (await _errors(r))[0].startswith("invalid username template:")
    # Write only, as Vault: the admin password is never read back.
    r = await c.get("/v1/rabbitmq/config/connection")
    assert r.status_code == 405


async def test_unconfigured_and_unknown_role() -> None:
    async with unsealed_core() as (core, root), app_client(core, root) as c:
        await c.post("/v1/sys/mounts/rabbitmq", json={"type": "rabbitmq"})
        r = await c.get("/v1/rabbitmq/creds/x")
        assert r.status_code == 400 and await _errors(r) == ["unknown role: x"]
        await c.post("/v1/rabbitmq/roles/x", json={"tags": "management"})
        r = await c.get("/v1/rabbitmq/creds/x")
        assert r.status_code == 400 and "not configured" in (await _errors(r))[0]


async def test_roles_crud_and_validation(engine: Engine) -> None:
    c = engine.client
    assert (await c.request("LIST", "/v1/rabbitmq/roles")).status_code == 404
    r = await c.post("/v1/rabbitmq/roles/r", json={})
    assert r.status_code == 400 and await _errors(r) == ["both tags and vhosts not specified"]
    r = await c.post("/v1/rabbitmq/roles/r", json={"vhosts": "{bad"})
    assert r.status_code == 400 and (await _errors(r))[0].startswith("failed to unmarshal vhosts:")
    for bad in ('["/"]', '{"/": "all"}', '{"/": {"read": 1}}'):
        r = await c.post("/v1/rabbitmq/roles/r", json={"vhosts": bad})
        assert r.status_code == 400 and (await _errors(r))[0].startswith("failed to unmarshal vhosts:"), bad
    r = await c.post("/v1/rabbitmq/roles/r", json={"tags": "x", "vhost_topics": '{"/": {"amq.topic": "w"}}'})
    assert r.status_code == 400 and (await _errors(r))[0].startswith("failed to unmarshal vhost_topics:")
    assert (await c.get("/v1/rabbitmq/roles/r")).status_code == 404  # nothing written by the refusals

    assert (await c.post("/v1/rabbitmq/roles/r", json={"tags": "management"})).status_code == 204
    assert (await c.get("/v1/rabbitmq/roles/r")).json()["data"] == {"tags": "management", "vhosts": {}, "vhost_topics": {}}
    vhosts = {"/": {"read": ".*"}}
    assert (await c.post("/v1/rabbitmq/roles/r2", json={"vhosts": json.dumps(vhosts)})).status_code == 204
    assert (await c.get("/v1/rabbitmq/roles/r2")).json()["data"] == {
        "tags": "", "vhosts": {"/": {"configure": "", "write": "", "read": ".*"}}, "vhost_topics": {}}
    assert (await c.request("LIST", "/v1/rabbitmq/roles")).json()["data"]["keys"] == ["r", "r2"]
    assert (await c.delete("/v1/rabbitmq/roles/r")).status_code == 204
    assert (await c.get("/v1/rabbitmq/roles/r")).status_code == 404
    assert (await c.request("LIST", "/v1/rabbitmq/roles")).json()["data"]["keys"] == ["r2"]


async def test_broker_down_at_issue_leaves_a_wal_entry_rolled_back_later(engine: Engine) -> None:
    """verify_connection=false with a dead port: issuing fails within the deadline with a 500, the
    write-ahead entry stays (the create's outcome was unknown), and once the connection is fixed a
    rollback round clears it."""
    c = engine.client
    r = await c.post("/v1/rabbitmq/config/connection", json={
        "connection_uri": "http://127.0.0.1:1", "username": "guest", "password": "guest", "verify_connection": False,
        "username_template": engine.prefix + "down-{{ random 6 }}"})
    assert r.status_code == 204
    await c.post("/v1/rabbitmq/roles/d", json={"tags": "management"})
    start = time.monotonic()
    r = await c.get("/v1/rabbitmq/creds/d")
    assert r.status_code == 500 and (await _errors(r))[0].startswith("error creating user " + engine.prefix + "down-")
    assert time.monotonic() - start < 10
    mount = engine.core.mounts.find("mounts", "rabbitmq/")
    assert mount is not None and mount.backend is not None
    assert len(await wal.list_wal(mount.backend.system.storage)) == 1
    await c.post("/v1/rabbitmq/config/connection", json={"connection_uri": MGMT, "username": "guest", "password": "guest"})
    done = await mount.backend.rollback_wal(final=True)
    assert done.rolled_back == 1
    assert await wal.list_wal(mount.backend.system.storage) == []
    assert users_with_prefix(engine.prefix) == []
