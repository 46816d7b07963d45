"""identity/entity, entity-alias, batch-delete, merge and lookup/entity over HTTP (OpenBao's shapes)."""

from __future__ import annotations

from tests.auth.conftest import Vault
from tests.identity.conftest import accessor


async def test_entity_crud_by_id_and_name(vault: Vault) -> None:
    created = (await vault.ok("POST", "identity/entity", {"name": "bob", "policies": ["p1"],
                                                          "metadata": {"team": "ops"}}))["data"]
    assert set(created) == {"id", "name", "aliases"} and created["name"] == "bob" and created["aliases"] is None
    eid = created["id"]
    # Writing an existing name updates that entity (204), as OpenBao does.
    await vault.done("POST", "identity/entity", {"name": "bob", "policies": "p2,p3"})
    await vault.done("POST", "identity/entity/name/bob", {"disabled": True})
    data = (await vault.ok("GET", f"identity/entity/id/{eid}"))["data"]
    assert {k: data[k] for k in ("id", "name", "policies", "metadata", "disabled", "aliases", "group_ids",
                                 "direct_group_ids", "inherited_group_ids", "merged_entity_ids",
                                 "namespace_id")} == {
        "id": eid, "name": "bob", "policies": ["p2", "p3"], "metadata": {"team": "ops"}, "disabled": True,
        "aliases": [], "group_ids": [], "direct_group_ids": [], "inherited_group_ids": [],
        "merged_entity_ids": None, "namespace_id": "root"}
    assert data["creation_time"].endswith("Z") and data["last_update_time"] >= data["creation_time"]
    assert (await vault.ok("GET", "identity/entity/name/BOB"))["data"]["id"] == eid  # names: case-insensitive
    # By-name write of a new name creates it.
    other = (await vault.ok("POST", "identity/entity/name/carol", {}))["data"]["id"]
    listed = (await vault.ok("LIST", "identity/entity/id"))["data"]
    assert sorted(listed["keys"]) == sorted([eid, other]) and listed["key_info"][eid] == {"name": "bob"}
    assert (await vault.ok("LIST", "identity/entity/name"))["data"]["keys"] == ["bob", "carol"]
    # Renaming onto a taken name is refused; unknown ids are 404.
    errs = await vault.fails(400, "POST", f"identity/entity/id/{other}", {"name": "bob"})
    assert "already in use" in errs[0]
    await vault.fails(404, "GET", "identity/entity/id/nope")
    await vault.fails(404, "POST", "identity/entity/id/nope", {"policies": "x"})
    await vault.done("DELETE", "identity/entity/name/carol")
    await vault.done("DELETE", f"identity/entity/id/{eid}")
    await vault.fails(404, "LIST", "identity/entity/id")
    await vault.fails(400, "POST", "identity/entity", {"metadata": "not-a-map"})


async def test_aliases_one_per_mount_and_listing(vault: Vault) -> None:
    acc = await accessor(vault)
    eid = (await vault.ok("POST", "identity/entity", {"name": "bob"}))["data"]["id"]
    made = (await vault.ok("POST", "identity/entity-alias", {"name": "alice", "canonical_id": eid,
                                                             "mount_accessor": acc}))["data"]
    assert made["canonical_id"] == eid and set(made) == {"id", "canonical_id"}
    alias = (await vault.ok("GET", f"identity/entity-alias/id/{made['id']}"))["data"]
    assert (alias["name"], alias["mount_accessor"], alias["mount_type"], alias["mount_path"]) == (
        "alice", acc, "userpass", "auth/userpass/")
    # A second alias of the same entity on the same mount, or a duplicate (mount, name): refused.
    await vault.fails(400, "POST", "identity/entity-alias", {"name": "al2", "canonical_id": eid,
                                                             "mount_accessor": acc})
    await vault.fails(400, "POST", "identity/entity-alias", {"name": "alice", "mount_accessor": acc})
    await vault.fails(400, "POST", "identity/entity-alias", {"name": "x", "mount_accessor": "auth_nope_1"})
    await vault.fails(400, "POST", "identity/entity-alias", {"name": "x", "canonical_id": "nope",
                                                             "mount_accessor": acc})
    ent = (await vault.ok("GET", f"identity/entity/id/{eid}"))["data"]
    assert [a["id"] for a in ent["aliases"]] == [made["id"]]
    listed = (await vault.ok("LIST", "identity/entity/id"))["data"]["key_info"][eid]
    assert listed["aliases"][0]["name"] == "alice"
    la = (await vault.ok("LIST", "identity/entity-alias/id"))["data"]
    assert la["keys"] == [made["id"]] and la["key_info"][made["id"]]["canonical_id"] == eid
    # An alias without canonical_id creates its entity.
    acc2 = await accessor(vault, "approle/")
    lone = (await vault.ok("POST", "identity/entity-alias", {"name": "svc", "mount_accessor": acc2}))["data"]
    assert (await vault.ok("GET", f"identity/entity/id/{lone['canonical_id']}"))["data"]["name"].startswith(
        "entity_")
    # Update renames; delete removes it from the entity.
    await vault.done("POST", f"identity/entity-alias/id/{made['id']}", {"name": "alice2"})
    assert (await vault.ok("GET", f"identity/entity-alias/id/{made['id']}"))["data"]["name"] == "alice2"
    await vault.done("DELETE", f"identity/entity-alias/id/{made['id']}")
    await vault.fails(404, "GET", f"identity/entity-alias/id/{made['id']}")
    assert (await vault.ok("GET", f"identity/entity/id/{eid}"))["data"]["aliases"] == []


async def test_batch_delete_merge_and_lookup(vault: Vault) -> None:
    acc = await accessor(vault)
    acc2 = await accessor(vault, "approle/")
    ids = [(await vault.ok("POST", "identity/entity", {"name": f"e{i}"}))["data"]["id"] for i in range(4)]
    await vault.done("POST", "identity/entity/batch-delete", {"entity_ids": ids[2:]})
    assert sorted((await vault.ok("LIST", "identity/entity/id"))["data"]["keys"]) == sorted(ids[:2])
    a0 = (await vault.ok("POST", "identity/entity-alias", {"name": "u0", "canonical_id": ids[0],
                                                           "mount_accessor": acc}))["data"]["id"]
    a1 = (await vault.ok("POST", "identity/entity-alias", {"name": "r1", "canonical_id": ids[1],
                                                           "mount_accessor": acc2}))["data"]["id"]
    await vault.fails(400, "POST", "identity/entity/merge", {"from_entity_ids": ["nope"], "to_entity_id": ids[0]})
    gid = (await vault.ok("POST", "identity/group", {"name": "g", "member_entity_ids": [ids[1]]}))["data"]["id"]
    await vault.done("POST", "identity/entity/merge", {"from_entity_ids": [ids[1]], "to_entity_id": ids[0]})
    assert (await vault.ok("GET", f"identity/group/id/{gid}"))["data"]["member_entity_ids"] == [ids[0]]
    merged = (await vault.ok("GET", f"identity/entity/id/{ids[0]}"))["data"]
    assert sorted(a["id"] for a in merged["aliases"]) == sorted([a0, a1])
    assert merged["merged_entity_ids"] == [ids[1]]
    await vault.fails(404, "GET", f"identity/entity/id/{ids[1]}")
    # Merge conflict: both have an alias on the same mount.
    e2 = (await vault.ok("POST", "identity/entity", {"name": "e2"}))["data"]["id"]
    await vault.ok("POST", "identity/entity-alias", {"name": "u2", "canonical_id": e2, "mount_accessor": acc})
    errs = await vault.fails(400, "POST", "identity/entity/merge", {"from_entity_ids": [e2], "to_entity_id": ids[0]})
    assert "same mount accessor" in errs[0]
    # Lookups: by name, id, alias id, alias name + accessor; nothing found is 204.
    for body in ({"name": "e0"}, {"id": ids[0]}, {"alias_id": a1}, {"alias_name": "r1", "alias_mount_accessor": acc2}):
        assert (await vault.ok("POST", "identity/lookup/entity", body))["data"]["id"] == ids[0]
    await vault.done("POST", "identity/lookup/entity", {"name": "nobody"})
    await vault.fails(400, "POST", "identity/lookup/entity", {})
    await vault.fails(400, "POST", "identity/lookup/entity", {"name": "e0", "id": ids[0]})
    await vault.fails(400, "POST", "identity/lookup/entity", {"alias_name": "r1"})


async def test_identity_mount_is_default_and_protected(vault: Vault) -> None:
    mounts = (await vault.ok("GET", "sys/mounts"))["data"]
    assert mounts["identity/"]["type"] == "identity" and mounts["identity/"]["description"] == "identity store"
    await vault.fails(400, "DELETE", "sys/mounts/identity")
    await vault.fails(400, "POST", "sys/remount", {"from": "identity", "to": "elsewhere"})
