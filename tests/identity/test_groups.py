"""identity/group (internal, external), group-alias and lookup/group over HTTP."""

from __future__ import annotations

from tests.auth.conftest import Vault
from tests.identity.conftest import accessor


async def test_internal_groups_members_and_nesting(vault: Vault) -> None:
    eid = (await vault.ok("POST", "identity/entity", {"name": "bob"}))["data"]["id"]
    made = (await vault.ok("POST", "identity/group", {"name": "devs", "policies": "gp",
                                                      "member_entity_ids": [eid]}))["data"]
    assert set(made) == {"id", "name"} and made["name"] == "devs"
    gid = made["id"]
    parent = (await vault.ok("POST", "identity/group", {"name": "eng", "member_group_ids": [gid],
                                                        "metadata": {"k": "v"}}))["data"]["id"]
    g = (await vault.ok("GET", "identity/group/name/devs"))["data"]
    assert {k: g[k] for k in ("id", "name", "type", "policies", "member_entity_ids", "member_group_ids",
                              "parent_group_ids", "metadata", "alias", "namespace_id")} == {
        "id": gid, "name": "devs", "type": "internal", "policies": ["gp"], "member_entity_ids": [eid],
        "member_group_ids": None, "parent_group_ids": [parent], "metadata": None, "alias": {},
        "namespace_id": "root"}
    ent = (await vault.ok("GET", f"identity/entity/id/{eid}"))["data"]
    assert ent["direct_group_ids"] == [gid] and ent["inherited_group_ids"] == [parent]
    assert ent["group_ids"] == [gid, parent]
    # A cycle, unknown members and a bad type are refused with OpenBao's wording.
    errs = await vault.fails(400, "POST", f"identity/group/id/{gid}", {"member_group_ids": [parent]})
    assert errs == [f'cyclic relationship detected for member group ID "{parent}"']
    assert await vault.fails(400, "POST", "identity/group", {"name": "x", "member_entity_ids": ["nope"]}) == [
        'invalid entity ID "nope"']
    await vault.fails(400, "POST", "identity/group", {"name": "y", "member_group_ids": ["nope"]})
    assert await vault.fails(400, "POST", "identity/group", {"name": "z", "type": "bogus"}) == [
        'invalid group type "bogus"']
    listed = (await vault.ok("LIST", "identity/group/id"))["data"]
    assert listed["key_info"][gid] == {"name": "devs", "num_member_entities": 1, "num_parent_groups": 1}
    assert (await vault.ok("LIST", "identity/group/name"))["data"]["keys"] == ["devs", "eng"]
    # Deleting the entity removes it from the group; deleting a group removes it from its parents.
    await vault.done("DELETE", f"identity/entity/id/{eid}")
    assert (await vault.ok("GET", f"identity/group/id/{gid}"))["data"]["member_entity_ids"] is None
    await vault.done("DELETE", "identity/group/name/devs")
    assert (await vault.ok("GET", f"identity/group/id/{parent}"))["data"]["member_group_ids"] is None
    await vault.fails(404, "GET", f"identity/group/id/{gid}")


async def test_external_group_and_alias(vault: Vault) -> None:
    acc = await accessor(vault)
    gid = (await vault.ok("POST", "identity/group", {"name": "ext", "type": "external",
                                                     "policies": ["ext-p"]}))["data"]["id"]
    await vault.fails(400, "POST", f"identity/group/id/{gid}", {"member_entity_ids": ["x"]})
    made = (await vault.ok("POST", "identity/group-alias", {"name": "ldap-devs", "mount_accessor": acc,
                                                            "canonical_id": gid}))["data"]
    assert made["canonical_id"] == gid
    g = (await vault.ok("GET", f"identity/group/id/{gid}"))["data"]
    assert g["type"] == "external" and g["alias"]["name"] == "ldap-devs" and g["alias"]["mount_type"] == "userpass"
    ga = (await vault.ok("GET", f"identity/group-alias/id/{made['id']}"))["data"]
    assert (ga["name"], ga["canonical_id"], ga["mount_accessor"]) == ("ldap-devs", gid, acc)
    assert (await vault.ok("LIST", "identity/group-alias/id"))["data"]["keys"] == [made["id"]]
    # An internal group takes no alias; a duplicate (mount, name) is refused.
    internal = (await vault.ok("POST", "identity/group", {"name": "int"}))["data"]["id"]
    await vault.fails(400, "POST", "identity/group-alias", {"name": "a", "mount_accessor": acc,
                                                            "canonical_id": internal})
    await vault.fails(400, "POST", "identity/group-alias", {"name": "ldap-devs", "mount_accessor": acc})
    for body in ({"name": "ext"}, {"id": gid}, {"alias_id": made["id"]},
                 {"alias_name": "ldap-devs", "alias_mount_accessor": acc}):
        assert (await vault.ok("POST", "identity/lookup/group", body))["data"]["id"] == gid
    await vault.done("POST", "identity/lookup/group", {"name": "nope"})
    await vault.done("DELETE", f"identity/group-alias/id/{made['id']}")
    assert (await vault.ok("GET", f"identity/group/id/{gid}"))["data"]["alias"] == {}
