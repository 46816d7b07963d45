"""sys/mounts, sys/auth, sys/remount, tune, sys/internal/ui/mounts, and mount data lifecycle."""

from __future__ import annotations

from strongroom.storage.inmem import InmemStorage
from strongroom.testing import asgi_client, unsealed_core


async def test_enable_list_read_tune_disable() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        r = await c.post("/v1/sys/mounts/team/kv", json={"type": "kv", "description": "team secrets",
                                                         "options": {"version": "2"},
                                                         "config": {"default_lease_ttl": "1h"}})
        assert r.status_code == 204
        mounts = (await c.get("/v1/sys/mounts")).json()
        entry = mounts["data"]["team/kv/"]
        assert entry["type"] == "kv" and entry["options"] == {"version": "2"}
        assert entry["description"] == "team secrets" and entry["accessor"].startswith("kv_")
        assert mounts["team/kv/"] == entry  # legacy top-level copy
        assert {"sys/", "cubbyhole/", "secret/"} <= set(mounts["data"])

        tune = (await c.get("/v1/sys/mounts/team/kv/tune")).json()["data"]
        assert tune["default_lease_ttl"] == 3600 and tune["max_lease_ttl"] == 768 * 3600
        r = await c.post("/v1/sys/mounts/team/kv/tune", json={"max_lease_ttl": "2h", "description": "new"})
        assert r.status_code == 204
        tune = (await c.get("/v1/sys/mounts/team/kv/tune")).json()["data"]
        assert (tune["max_lease_ttl"], tune["description"]) == (7200, "new")
        r = await c.post("/v1/sys/mounts/team/kv/tune", json={"default_lease_ttl": "3h"})
        assert r.status_code == 400  # default above max

        r = await c.post("/v1/sys/mounts/team/kv/tune", json={"options": {"version": "1"}})
        assert r.status_code == 400 and "downgrade" in r.json()["errors"][0]

        assert (await c.post("/v1/sys/mounts/team", json={"type": "kv"})).status_code == 400  # overlaps
        assert (await c.post("/v1/sys/mounts/x", json={"type": "nope"})).status_code == 400
        assert (await c.post("/v1/sys/mounts/sys/x", json={"type": "kv"})).status_code == 400
        assert (await c.delete("/v1/sys/mounts/sys")).status_code == 400
        assert (await c.delete("/v1/sys/mounts/team/kv")).status_code == 204
        assert "team/kv/" not in (await c.get("/v1/sys/mounts")).json()["data"]


async def test_disable_deletes_data_and_remount_keeps_it() -> None:
    storage = InmemStorage()
    from strongroom.core import Core

    core = Core(storage)
    await core.dev_bootstrap("root")
    async with asgi_client(core, "root") as c:
        await c.post("/v1/sys/mounts/kv1", json={"type": "kv"})
        await c.post("/v1/kv1/a", json={"v": 1})
        uuid = (await c.get("/v1/sys/mounts")).json()["data"]["kv1/"]["uuid"]
        assert any(k.startswith(f"logical/{uuid}/") for k in storage._data)

        r = await c.post("/v1/sys/remount", json={"from": "kv1", "to": "moved"})
        assert r.status_code == 200 and r.json()["data"]["migration_id"]
        status = (await c.get(f"/v1/sys/remount/status/{r.json()['data']['migration_id']}")).json()
        assert status["data"]["migration_info"]["status"] == "success"
        assert (await c.get("/v1/moved/a")).json()["data"] == {"v": 1}
        assert (await c.get("/v1/kv1/a")).status_code == 404

        await c.delete("/v1/sys/mounts/moved")
        assert not any(k.startswith(f"logical/{uuid}/") for k in storage._data)
        await c.post("/v1/sys/mounts/moved", json={"type": "kv"})
        assert (await c.get("/v1/moved/a")).status_code == 404


async def test_mount_table_survives_seal_unseal() -> None:
    from strongroom.core import Core

    core = Core(InmemStorage())
    key, _ = await core.dev_bootstrap("root")
    async with asgi_client(core, "root") as c:
        await c.post("/v1/sys/mounts/kept", json={"type": "kv", "options": {"version": "2"}})
        await c.post("/v1/kept/data/x", json={"data": {"a": "b"}})
    await core.seal()
    await core.unseal(key)
    async with asgi_client(core, "root") as c:
        assert (await c.get("/v1/kept/data/x")).json()["data"]["data"] == {"a": "b"}


async def test_auth_table() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        auth = (await c.get("/v1/sys/auth")).json()["data"]
        assert auth["token/"]["type"] == "token" and auth["token/"]["accessor"].startswith("auth_token_")
        assert (await c.post("/v1/sys/auth/other", json={"type": "nope"})).status_code == 400
        assert (await c.delete("/v1/sys/auth/token")).status_code == 400
        tune = (await c.get("/v1/sys/auth/token/tune")).json()["data"]
        assert tune["default_lease_ttl"] == 768 * 3600


async def test_ui_mounts_tells_kv_versions_and_respects_policies() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        await c.post("/v1/sys/mounts/kv1", json={"type": "kv", "options": {"version": "1"}})
        r = (await c.get("/v1/sys/internal/ui/mounts/secret/foo/bar")).json()["data"]
        assert r["path"] == "secret/" and r["options"] == {"version": "2"} and r["type"] == "kv"
        r = (await c.get("/v1/sys/internal/ui/mounts/kv1/x")).json()["data"]
        assert r["options"] == {"version": "1"}

        await c.put("/v1/sys/policy/kv1-only", json={"policy": 'path "kv1/*" { capabilities = ["read"] }'})
        token = (await c.post("/v1/auth/token/create", json={"policies": ["kv1-only"]})).json()["auth"]["client_token"]
        h = {"X-Vault-Token": token}
        assert (await c.get("/v1/sys/internal/ui/mounts/kv1/x", headers=h)).status_code == 200
        assert (await c.get("/v1/sys/internal/ui/mounts/secret/x", headers=h)).status_code == 403
        listing = (await c.get("/v1/sys/internal/ui/mounts", headers=h)).json()["data"]
        assert "kv1/" in listing["secret"] and "secret/" not in listing["secret"]
        c.headers.pop("X-Vault-Token")
        assert (await c.get("/v1/sys/internal/ui/mounts/kv1/x")).status_code == 403


async def test_cubbyhole_is_private_and_dies_with_its_token() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        t1 = (await c.post("/v1/auth/token/create", json={})).json()["auth"]["client_token"]
        t2 = (await c.post("/v1/auth/token/create", json={})).json()["auth"]["client_token"]
        assert (await c.post("/v1/cubbyhole/note", json={"v": "mine"}, headers={"X-Vault-Token": t1})).status_code == 204
        assert (await c.get("/v1/cubbyhole/note", headers={"X-Vault-Token": t2})).status_code == 404
        assert (await c.get("/v1/cubbyhole/note", headers={"X-Vault-Token": t1})).json()["data"] == {"v": "mine"}
        entry = await core.tokens.lookup(t1)
        assert entry is not None
        await c.post("/v1/auth/token/revoke", json={"token": t1})
        mount = core.mounts.find("mounts", "cubbyhole/")
        assert mount is not None and mount.view is not None
        assert await mount.view.list(entry.id + "/") == []


async def test_tune_accepts_a_max_lease_ttl_above_the_system_max_which_then_replaces_it() -> None:
    """As OpenBao: sys/mounts/PATH/tune and sys/auth/PATH/tune take it and read it back, and the
    mount's leases (here tokens, from the token store and from a login) follow it, not the system
    max (checked against bao server -dev: auth tune -max-lease-ttl=100000h token/, then token
    create -ttl=100000h gives 360000000 s)."""
    big = 100000 * 3600
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        assert (await c.post("/v1/sys/auth/userpass", json={"type": "userpass"})).status_code == 204
        for path in ("sys/mounts/secret/tune", "sys/auth/token/tune", "sys/auth/userpass/tune"):
            r = await c.post(f"/v1/{path}", json={"max_lease_ttl": f"{big}s", "default_lease_ttl": f"{big - 60}s"})
            assert r.status_code == 204, (path, r.text)
            tune = (await c.get(f"/v1/{path}")).json()["data"]
            assert (tune["max_lease_ttl"], tune["default_lease_ttl"]) == (big, big - 60), path
        assert (await c.get("/v1/sys/auth/token")).json()["data"]["config"]["max_lease_ttl"] == big
        # Without a max of its own, a mount's default may exceed the system max too.
        assert (await c.post("/v1/sys/mounts/cubbyhole/tune", json={"default_lease_ttl": f"{big}s"})).status_code == 204
        # A default above the mount's own max is still refused.
        r = await c.post("/v1/sys/auth/token/tune", json={"default_lease_ttl": f"{big + 60}s"})
        assert r.status_code == 400

        for body, want in (({"ttl": f"{big}s"}, big), ({}, big - 60)):
            created = (await c.post("/v1/auth/token/create", json={"policies": ["default"], **body})).json()
            assert created["auth"]["lease_duration"] == want, body
        await c.post("/v1/auth/userpass/users/u", json={"password": "pw"})
        login = (await c.post("/v1/auth/userpass/login/u", json={"password": "pw"})).json()["auth"]
        assert login["lease_duration"] == big - 60


async def test_sys_mounts_auth_path_tunes_the_auth_method() -> None:
    """As OpenBao: `bao auth tune` calls sys/mounts/auth/PATH/tune, which is the auth method's."""
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        assert (await c.post("/v1/sys/auth/people", json={"type": "userpass"})).status_code == 204
        r = await c.post("/v1/sys/mounts/auth/people/tune", json={"max_lease_ttl": "2h"})
        assert r.status_code == 204
        assert (await c.get("/v1/sys/auth/people/tune")).json()["data"]["max_lease_ttl"] == 7200
        assert (await c.get("/v1/sys/mounts/auth/people/tune")).json()["data"]["max_lease_ttl"] == 7200
        r = await c.get("/v1/sys/mounts/auth/nobody/tune")
        assert r.status_code == 400 and "no mount entry found" in r.json()["errors"][0]
