"""Shared by the auth methods' group-alias tests: an external identity group with a group alias on
a mount, whose policy reads secret/data/team, and a check of what a token may read there."""

from __future__ import annotations

from tests.auth.conftest import Vault

POLICY = "from-idp-group"


async def external_group(vault: Vault, mount: str, alias: str) -> None:
    """The external group "<mount>-<alias>" (policy POLICY) with a group alias ``alias`` on ``mount``."""
    accessor = (await vault.ok("GET", "sys/auth"))["data"][f"{mount}/"]["accessor"]
    await vault.done("POST", f"sys/policies/acl/{POLICY}",
                     {"policy": 'path "secret/data/team" { capabilities = ["read"] }'})
    await vault.ok("POST", "secret/data/team", {"data": {"motto": "ship it"}})
    gid = (await vault.ok("POST", "identity/group", {"name": f"{mount}-{alias}", "type": "external",
                                                      "policies": POLICY}))["data"]["id"]
    await vault.ok("POST", "identity/group-alias", {"name": alias, "mount_accessor": accessor, "canonical_id": gid})


async def reads_team_secret(vault: Vault, token: str) -> bool:
    r = await vault.call("GET", "secret/data/team", token=token)
    assert r.status_code in (200, 403), r.text
    return r.status_code == 200
