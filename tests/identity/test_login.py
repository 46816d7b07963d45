"""Logins create or find entities; identity policies apply at request time; disabled entities and
quarantine by entity reach every token of the entity."""

from __future__ import annotations

from tests.auth.conftest import Vault
from tests.identity.conftest import accessor

READ_SECRET = 'path "secret/*" { capabilities = ["read", "create", "update"] }'


async def _login(vault: Vault, user: str = "alice") -> dict[str, object]:
    return dict((await vault.ok("POST", f"auth/userpass/login/{user}", {"password": "pw"}, token=None))["auth"])


async def test_userpass_login_creates_then_finds_entity(vault: Vault) -> None:
    await vault.done("POST", "auth/userpass/users/alice", {"password": "pw", "token_policies": "own"})
    first = await _login(vault)
    eid = first["entity_id"]
    assert isinstance(eid, str) and eid
    assert (await _login(vault))["entity_id"] == eid  # the same entity on the second login
    looked = (await vault.ok("GET", "auth/token/lookup-self", token=str(first["client_token"])))["data"]
    assert looked["entity_id"] == eid
    ent = (await vault.ok("GET", f"identity/entity/id/{eid}"))["data"]
    assert ent["name"].startswith("entity_") and len(ent["aliases"]) == 1
    alias = ent["aliases"][0]
    assert (alias["name"], alias["mount_accessor"], alias["mount_type"]) == ("alice", await accessor(vault),
                                                                             "userpass")
    assert len((await vault.ok("LIST", "identity/entity/id"))["data"]["keys"]) == 1


async def test_approle_alias_is_role_id(vault: Vault) -> None:
    await vault.done("POST", "auth/approle/role/web", {"token_policies": "x"})
    role_id = (await vault.ok("GET", "auth/approle/role/web/role-id"))["data"]["role_id"]
    secret_id = (await vault.ok("POST", "auth/approle/role/web/secret-id"))["data"]["secret_id"]
    auth = (await vault.ok("POST", "auth/approle/login", {"role_id": role_id, "secret_id": secret_id},
                           token=None))["auth"]
    ent = (await vault.ok("GET", f"identity/entity/id/{auth['entity_id']}"))["data"]
    assert ent["aliases"][0]["name"] == role_id and ent["aliases"][0]["metadata"] == {"role_name": "web"}


async def test_group_policies_apply_on_next_request(vault: Vault) -> None:
    await vault.done("POST", "sys/policies/acl/reader", {"policy": READ_SECRET})
    await vault.done("POST", "auth/userpass/users/alice", {"password": "pw"})
    auth = await _login(vault)
    token, eid = str(auth["client_token"]), str(auth["entity_id"])
    assert auth["identity_policies"] is None
    await vault.fails(403, "GET", "secret/data/x", token=token)
    # Through a parent group: entity -> devs -> eng (eng carries the policy).
    devs = (await vault.ok("POST", "identity/group", {"name": "devs", "member_entity_ids": [eid]}))["data"]["id"]
    await vault.ok("POST", "identity/group", {"name": "eng", "policies": "reader", "member_group_ids": [devs]})
    await vault.ok("POST", "secret/data/x", {"data": {"v": 1}}, token=token)
    assert (await vault.ok("GET", "secret/data/x", token=token))["data"]["data"] == {"v": 1}
    again = await _login(vault)
    assert again["identity_policies"] == ["reader"] and again["token_policies"] == ["default"]
    assert again["policies"] == ["default", "reader"]  # OpenBao: the login shows the union
    looked = (await vault.ok("GET", "auth/token/lookup-self", token=token))["data"]
    assert looked["identity_policies"] == ["reader"] and looked["policies"] == ["default"]
    # Removing the entity from the group takes effect on the next request (no stale cached read).
    await vault.done("POST", f"identity/group/id/{devs}", {"member_entity_ids": []})
    await vault.fails(403, "GET", "secret/data/x", token=token)
    assert "identity_policies" not in (await vault.ok("GET", "auth/token/lookup-self", token=token))["data"]
    # The entity's own policies apply as well.
    await vault.done("POST", f"identity/entity/id/{eid}", {"policies": ["reader"]})
    await vault.ok("GET", "secret/data/x", token=token)


async def test_disabled_entity_tokens_refused(vault: Vault) -> None:
    await vault.done("POST", "auth/userpass/users/alice", {"password": "pw"})
    auth = await _login(vault)
    token, eid = str(auth["client_token"]), str(auth["entity_id"])
    await vault.ok("GET", "auth/token/lookup-self", token=token)
    await vault.done("POST", f"identity/entity/id/{eid}", {"disabled": True})
    await vault.fails(403, "GET", "auth/token/lookup-self", token=token)
    await vault.fails(403, "POST", "auth/userpass/login/alice", {"password": "pw"}, token=None)
    await vault.done("POST", f"identity/entity/id/{eid}", {"disabled": False})
    await vault.ok("GET", "auth/token/lookup-self", token=token)


async def test_quarantine_by_entity_reaches_every_token(vault: Vault) -> None:
    await vault.done("POST", "auth/userpass/users/alice", {"password": "pw"})
    await vault.done("POST", "auth/userpass/users/bob", {"password": "pw"})
    t1, t2 = await _login(vault), await _login(vault)
    other = await _login(vault, "bob")
    assert t1["entity_id"] == t2["entity_id"] != other["entity_id"]
    r = await vault.call("POST", "sys/security/quarantine", {"entity_id": t1["entity_id"]})
    assert r.status_code in (200, 204), r.text
    for t in (t1, t2):
        await vault.fails(403, "GET", "auth/token/lookup-self", token=str(t["client_token"]))
    await vault.ok("GET", "auth/token/lookup-self", token=str(other["client_token"]))


async def test_store_survives_reseal_and_invalidate(vault: Vault) -> None:
    await vault.done("POST", "auth/userpass/users/alice", {"password": "pw"})
    eid = str((await _login(vault))["entity_id"])
    gid = (await vault.ok("POST", "identity/group", {"name": "devs", "member_entity_ids": [eid],
                                                     "policies": "p"}))["data"]["id"]
    store = vault.core.identity
    await store.setup()  # rebuilt from the barrier alone
    assert store.policies_for(eid) == ("p",) and store.direct_groups(eid) == [gid]
    # A write behind the store's back reaches it through Core.invalidate.
    raw = await vault.core.barrier.get(f"core/identity/group/{gid}")
    await vault.core.barrier.delete(f"core/identity/group/{gid}")
    await vault.core.invalidate(f"core/identity/group/{gid}")
    assert store.policies_for(eid) == () and gid not in store.groups
    await vault.core.barrier.put(f"core/identity/group/{gid}", raw)
    await vault.core.invalidate(f"core/identity/group/{gid}")
    assert store.policies_for(eid) == ("p",)


async def test_capabilities_include_identity_policies(vault: Vault) -> None:
    await vault.done("POST", "sys/policies/acl/reader", {"policy": READ_SECRET})
    await vault.done("POST", "auth/userpass/users/alice", {"password": "pw"})
    auth = await _login(vault)
    await vault.done("POST", f"identity/entity/id/{auth['entity_id']}", {"policies": "reader"})
    body = {"token": auth["client_token"], "path": "secret/data/x"}
    assert (await vault.ok("POST", "sys/capabilities", body))["data"]["capabilities"] == ["create", "read", "update"]
    body = {"accessor": auth["accessor"], "path": "secret/data/x"}
    assert (await vault.ok("POST", "sys/capabilities-accessor", body))["data"]["capabilities"] == [
        "create", "read", "update"]
    self_caps = await vault.ok("POST", "sys/capabilities-self", {"path": "secret/data/x"},
                               token=str(auth["client_token"]))
    assert self_caps["data"]["capabilities"] == ["create", "read", "update"]
