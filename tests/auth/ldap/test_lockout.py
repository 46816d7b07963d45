"""User lockout on the ldap auth method against a real slapd: failed binds count (unknown users
too, as OpenBao), and the lock holds for any spelling of the name the directory would accept."""

from __future__ import annotations

from tests.auth.conftest import Vault
from tests.auth.ldap.conftest import Directory, search_config

BAD = ["ldap operation failed: failed to bind as user"]


async def test_failed_binds_lock_the_user(vault: Vault, directory: Directory) -> None:
    await vault.done("POST", "auth/ldap/config", search_config(directory))
    for _ in range(5):
        assert await vault.fails(400, "POST", "auth/ldap/login/alice", {"password": "nope"}, token=None) == BAD
    for name in ("alice", "ALICE", "%20alice%20"):
        errors = await vault.fails(403, "POST", f"auth/ldap/login/{name}", {"password": "alice-pw"}, token=None)
        assert errors == ["permission denied"], name
    accessor = (await vault.ok("GET", "sys/auth"))["data"]["ldap/"]["accessor"]
    users = (await vault.ok("GET", "sys/locked-users"))["data"]["by_namespace"][0]["mount_accessors"]
    assert users == [{"mount_accessor": accessor, "counts": 1, "alias_identifiers": ["alice"]}]
    # bob is not affected; unlocking lets alice in.
    await vault.ok("POST", "auth/ldap/login/bob", {"password": "bob-pw"}, token=None)
    await vault.done("POST", f"sys/locked-users/{accessor}/unlock/alice")
    await vault.ok("POST", "auth/ldap/login/alice", {"password": "alice-pw"}, token=None)


async def test_case_sensitive_names_keep_spellings_apart(vault: Vault, directory: Directory) -> None:
    await vault.done("POST", "auth/ldap/config", search_config(directory, case_sensitive_names=True))
    for _ in range(5):
        await vault.fails(400, "POST", "auth/ldap/login/ALICE", {"password": "nope"}, token=None)
    await vault.fails(403, "POST", "auth/ldap/login/ALICE", {"password": "alice-pw"}, token=None)
    await vault.ok("POST", "auth/ldap/login/alice", {"password": "alice-pw"}, token=None)
