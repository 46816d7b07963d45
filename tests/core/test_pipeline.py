"""The request pipeline end to end (in-process HTTP): authentication, ACL, sudo paths, num_uses, revocation."""

from __future__ import annotations

from strongroom.testing import asgi_client, unsealed_core


async def _token(c, **body: object) -> str:  # type: ignore[no-untyped-def]
    r = await c.post("/v1/auth/token/create", json=body)
    assert r.status_code == 200, r.text
    return str(r.json()["auth"]["client_token"])


async def test_acl_create_vs_update_uses_existence_check() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        await c.put("/v1/sys/policy/updater", json={"policy": 'path "kv/*" { capabilities = ["update", "read"] }'})
        await c.post("/v1/sys/mounts/kv", json={"type": "kv"})
        await c.post("/v1/kv/exists", json={"v": 1})
        t = await _token(c, policies=["updater"])
        h = {"X-Vault-Token": t}
        assert (await c.post("/v1/kv/exists", json={"v": 2}, headers=h)).status_code == 204
        assert (await c.post("/v1/kv/new", json={"v": 1}, headers=h)).status_code == 403  # would be a create
        assert (await c.get("/v1/kv/new")).status_code == 404


async def test_sudo_paths_need_sudo() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        await c.put("/v1/sys/policy/rot", json={"policy": 'path "sys/rotate" { capabilities = ["update"] }'})
        await c.put("/v1/sys/policy/rot-sudo", json={"policy": 'path "sys/rotate" { capabilities = ["update", "sudo"] }'})
        plain = await _token(c, policies=["rot"])
        sudo = await _token(c, policies=["rot-sudo"])
        assert (await c.post("/v1/sys/rotate", headers={"X-Vault-Token": plain})).status_code == 403
        assert (await c.post("/v1/sys/rotate", headers={"X-Vault-Token": sudo})).status_code == 204


async def test_num_uses_is_enforced() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        t = await _token(c, num_uses=2)
        h = {"X-Vault-Token": t}
        assert (await c.get("/v1/auth/token/lookup-self", headers=h)).status_code == 200
        assert (await c.get("/v1/auth/token/lookup-self", headers=h)).status_code == 200
        assert (await c.get("/v1/auth/token/lookup-self", headers=h)).status_code == 403


async def test_revocation_is_immediate_and_cascades() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        parent = await _token(c)
        child = (await c.post("/v1/auth/token/create", json={}, headers={"X-Vault-Token": parent})).json()
        child_token = child["auth"]["client_token"]
        assert (await c.get("/v1/auth/token/lookup-self", headers={"X-Vault-Token": child_token})).status_code == 200
        assert (await c.post("/v1/auth/token/revoke", json={"token": parent})).status_code == 204
        for t in (parent, child_token):
            assert (await c.get("/v1/auth/token/lookup-self", headers={"X-Vault-Token": t})).status_code == 403


async def test_policy_change_takes_effect_without_new_token() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        await c.put("/v1/sys/policy/p", json={"policy": 'path "secret/data/x" { capabilities = ["read"] }'})
        await c.post("/v1/secret/data/x", json={"data": {"a": 1}})
        h = {"X-Vault-Token": await _token(c, policies=["p"])}
        assert (await c.get("/v1/secret/data/x", headers=h)).status_code == 200
        await c.put("/v1/sys/policy/p", json={"policy": 'path "secret/data/y" { capabilities = ["read"] }'})
        assert (await c.get("/v1/secret/data/x", headers=h)).status_code == 403


async def test_capabilities_endpoints() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        await c.put("/v1/sys/policy/p", json={"policy": 'path "secret/data/+/db" { capabilities = ["read", "list"] }'})
        t = await _token(c, policies=["p"])
        r = (await c.post("/v1/sys/capabilities", json={"token": t, "paths": ["secret/data/app/db"]})).json()
        assert r["data"]["capabilities"] == ["list", "read"]
        r = (await c.post("/v1/sys/capabilities-self", json={"paths": ["secret/data/x"]},
                          headers={"X-Vault-Token": t})).json()
        assert r["data"]["secret/data/x"] == ["deny"]
        acc = (await c.post("/v1/auth/token/lookup", json={"token": t})).json()["data"]["accessor"]
        r = (await c.post("/v1/sys/capabilities-accessor", json={"accessor": acc, "path": "secret/data/a/db"})).json()
        assert r["data"]["capabilities"] == ["list", "read"]
        r = (await c.post("/v1/sys/capabilities-self", json={"path": "anything"})).json()
        assert r["data"]["capabilities"] == ["root"]
