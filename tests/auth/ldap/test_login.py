"""The ldap auth method against a real slapd: config, group and user mappings, login modes."""

from __future__ import annotations

from pathlib import Path

from tests.auth.conftest import Vault
from tests.auth.ldap.conftest import ADMIN_PW, ALIASES, GROUPS, PRIVATE_GROUPS, USERS, Directory, search_config

from strongroom.core import CoreConfig
from strongroom.core.audit import AuditConfig
from strongroom.testing import asgi_client, unsealed_core


async def login(vault: Vault, user: str, password: str) -> dict[str, object]:
    return dict((await vault.ok("POST", f"auth/ldap/login/{user}", {"password": password}, token=None))["auth"])


async def test_search_then_bind_group_and_user_policies(vault: Vault, directory: Directory) -> None:
    await vault.done("POST", "auth/ldap/config", search_config(directory))
    await vault.done("POST", "auth/ldap/groups/devs", {"policies": "dev-read,shared"})
    await vault.done("POST", "auth/ldap/groups/ops", {"policies": "ops"})
    await vault.done("POST", "auth/ldap/users/alice", {"policies": "alice-own", "groups": "ops"})
    auth = await login(vault, "alice", "alice-pw")
    assert auth["policies"] == ["alice-own", "default", "dev-read", "ops", "shared"]
    assert auth["metadata"] == {"username": "alice"} and auth["renewable"] is True
    # bob: two LDAP groups; carol: none, so the default policy only.
    assert (await login(vault, "bob", "bob-pw"))["policies"] == ["default", "dev-read", "ops", "shared"]
    assert (await login(vault, "carol", "carol-pw"))["policies"] == ["default"]
    # The token works and carries the username.
    token = str((await login(vault, "bob", "bob-pw"))["client_token"])
    me = (await vault.ok("GET", "auth/token/lookup-self", token=token))["data"]
    assert me["display_name"] == "ldap-bob" and me["meta"] == {"username": "bob"}


async def test_wrong_password_unknown_user_and_empty_password(vault: Vault, directory: Directory) -> None:
    await vault.done("POST", "auth/ldap/config", search_config(directory))
    bad = ["ldap operation failed: failed to bind as user"]
    assert await vault.fails(400, "POST", "auth/ldap/login/alice", {"password": "nope"}, token=None) == bad
    assert await vault.fails(400, "POST", "auth/ldap/login/mallory", {"password": "x"}, token=None) == bad
    errors = await vault.fails(400, "POST", "auth/ldap/login/alice", {"password": ""}, token=None)
    assert errors == ["password cannot be of zero length when passwordless binds are being denied"]
    await vault.fails(400, "POST", "auth/ldap/login/alice", {}, token=None)


async def test_injection_in_the_username_matches_nothing(vault: Vault, directory: Directory) -> None:
    await vault.done("POST", "auth/ldap/config", search_config(directory))
    # Unescaped, "al*" would make the filter (uid=al*) find alice alone, and her password would log
    # in as a user called "al*"; the others would match every user or break the filter.
    for name in ("al*", "*", "alice)(uid=*", "*)(uid=*", "alice)(|(uid=*", "\\2a"):
        errors = await vault.fails(400, "POST", f"auth/ldap/login/{name}", {"password": "alice-pw"}, token=None)
        assert errors == ["ldap operation failed: failed to bind as user"], name


async def test_injection_in_the_group_filter(vault: Vault, directory: Directory) -> None:
    # eve's uid is "eve*)(cn=*": put into the group filter unescaped it would read
    # (|(memberUid=eve*)(cn=*)(member=...)) and match every group, so every group's policies.
    await vault.done("POST", "auth/ldap/config", search_config(
        directory, groupfilter="(&(objectClass=groupOfNames)(|(memberUid={{.Username}})(member={{.UserDN}})))"))
    await vault.done("POST", "auth/ldap/groups/ops", {"policies": "ops"})
    await vault.done("POST", "auth/ldap/groups/devs", {"policies": "dev"})
    assert (await login(vault, "eve*)(cn=*", "eve-pw"))["policies"] == ["default"]
    assert (await login(vault, "alice", "alice-pw"))["policies"] == ["default", "dev"]


async def test_bind_directly_with_userdn_and_userattr(vault: Vault, directory: Directory) -> None:
    await vault.done("POST", "auth/ldap/config", {"url": directory.url, "userdn": USERS, "userattr": "uid",
                                                  "groupdn": GROUPS, "groupfilter": "(member={{.UserDN}})"})
    await vault.done("POST", "auth/ldap/groups/ops", {"policies": "ops"})
    assert (await login(vault, "bob", "bob-pw"))["policies"] == ["default", "ops"]
    await vault.fails(400, "POST", "auth/ldap/login/bob", {"password": "alice-pw"}, token=None)
    # A DN-shaped username stays one RDN value: it cannot point the bind elsewhere.
    await vault.fails(400, "POST", "auth/ldap/login/bob,ou=users,dc=example,dc=org", {"password": "bob-pw"},
                      token=None)


async def test_discoverdn_searches_anonymously(vault: Vault, directory: Directory) -> None:
    await vault.done("POST", "auth/ldap/config", {"url": directory.url, "discoverdn": True, "userdn": USERS,
                                                  "userattr": "uid", "groupdn": GROUPS})
    await vault.done("POST", "auth/ldap/groups/devs", {"policies": "dev"})
    # The default groupfilter (memberUid / member / uniqueMember) finds the groupOfNames membership.
    assert (await login(vault, "alice", "alice-pw"))["policies"] == ["default", "dev"]
    await vault.fails(400, "POST", "auth/ldap/login/alice", {"password": "bob-pw"}, token=None)


async def test_dereference_aliases(vault: Vault, directory: Directory) -> None:
    # Under ou=aliases there is only an alias entry pointing at alice: searching it for uid=alice
    # finds her only when aliases are dereferenced while searching.
    await vault.done("POST", "auth/ldap/config", search_config(directory, userdn=ALIASES))
    assert (await vault.ok("GET", "auth/ldap/config"))["data"]["dereference_aliases"] == "never"
    await vault.fails(400, "POST", "auth/ldap/login/alice", {"password": "alice-pw"}, token=None)
    for mode in ("searching", "always"):
        await vault.done("POST", "auth/ldap/config", {"dereference_aliases": mode})
        assert (await login(vault, "alice", "alice-pw"))["metadata"] == {"username": "alice"}
    await vault.fails(400, "POST", "auth/ldap/config", {"dereference_aliases": "sometimes"})


async def test_groups_from_member_of(vault: Vault, directory: Directory) -> None:
    await vault.done("POST", "auth/ldap/config", search_config(
        directory, groupdn=USERS, groupfilter="(&(objectClass=inetOrgPerson)(uid={{.Username}}))",
        groupattr="memberOf"))
    await vault.done("POST", "auth/ldap/groups/ops", {"policies": "ops"})
    await vault.done("POST", "auth/ldap/groups/devs", {"policies": "dev"})
    assert (await login(vault, "bob", "bob-pw"))["policies"] == ["default", "dev", "ops"]


async def test_anonymous_group_search(vault: Vault, directory: Directory) -> None:
    # ou=private-groups is readable by bound clients only: as binddn alice's group is found there;
    # with anonymous_group_search the group search runs unbound and finds nothing.
    await vault.done("POST", "auth/ldap/config", search_config(directory, groupdn=PRIVATE_GROUPS))
    await vault.done("POST", "auth/ldap/groups/secret-team", {"policies": "secret"})
    assert (await login(vault, "alice", "alice-pw"))["policies"] == ["default", "secret"]
    await vault.done("POST", "auth/ldap/config", {"anonymous_group_search": True})
    assert (await login(vault, "alice", "alice-pw"))["policies"] == ["default"]
    # Bind-directly mode without a binddn: the group search runs as the user, who may read them.
    await vault.done("POST", "auth/ldap/config", {"binddn": "", "bindpass": "", "anonymous_group_search": False})
    assert (await login(vault, "alice", "alice-pw"))["policies"] == ["default", "secret"]


async def test_case_insensitive_names_by_default(vault: Vault, directory: Directory) -> None:
    await vault.done("POST", "auth/ldap/config", search_config(directory))
    await vault.done("POST", "auth/ldap/groups/DEVS", {"policies": "dev"})
    await vault.done("POST", "auth/ldap/users/Alice", {"policies": "mine"})
    assert (await vault.ok("LIST", "auth/ldap/groups"))["data"]["keys"] == ["devs"]
    assert (await login(vault, "ALICE", "alice-pw"))["policies"] == ["default", "dev", "mine"]


async def test_config_read_hides_bindpass_and_merges(vault: Vault, directory: Directory) -> None:
    defaults = (await vault.ok("GET", "auth/ldap/config"))["data"]
    assert defaults["url"] == "ldap://127.0.0.1" and defaults["deny_null_bind"] is True
    assert defaults["userattr"] == "cn" and defaults["tls_min_version"] == "tls12"
    await vault.done("POST", "auth/ldap/config", search_config(directory, token_policies="base", token_ttl="1h"))
    data = (await vault.ok("GET", "auth/ldap/config"))["data"]
    assert "bindpass" not in data and ADMIN_PW not in str(data)
    assert data["userattr"] == "uid" and data["token_policies"] == ["base"] and data["token_ttl"] == 3600
    await vault.done("POST", "auth/ldap/config", {"starttls": True})
    data = (await vault.ok("GET", "auth/ldap/config"))["data"]
    assert data["starttls"] is True and data["userattr"] == "uid"  # merged, not replaced
    stored = await vault.core.mounts.find("auth", "ldap/").view.get("config")
    assert stored is not None  # through the barrier view (encrypted at rest by the barrier)


async def test_config_token_params_apply(vault: Vault, directory: Directory) -> None:
    await vault.done("POST", "auth/ldap/config", search_config(directory, token_policies="base", token_ttl=600))
    auth = await login(vault, "carol", "carol-pw")
    assert auth["policies"] == ["base", "default"] and auth["lease_duration"] == 600


async def test_bad_config_is_400_and_changes_nothing(vault: Vault, directory: Directory) -> None:
    await vault.done("POST", "auth/ldap/config", search_config(directory))
    for bad in ({"url": "http://x"}, {"tls_min_version": "tls9"}, {"tls_min_version": "tls13",
                "tls_max_version": "tls12"}, {"groupfilter": "(member={{.Nope}})"}, {"userfilter": "uid=x"},
                {"userfilter": "(uid={{.Username | printf}})"},
                {"certificate": "not a pem"}, {"token_type": "weird"}):
        await vault.fails(400, "POST", "auth/ldap/config", bad)
    data = (await vault.ok("GET", "auth/ldap/config"))["data"]
    assert data["url"] == directory.url and data["tls_min_version"] == "tls12"


async def test_groups_and_users_crud(vault: Vault, directory: Directory) -> None:
    await vault.fails(404, "LIST", "auth/ldap/groups")
    await vault.done("POST", "auth/ldap/groups/devs", {"policies": "a,b"})
    assert (await vault.ok("GET", "auth/ldap/groups/devs"))["data"] == {"policies": ["a", "b"]}
    await vault.done("POST", "auth/ldap/users/alice", {"policies": "p", "groups": "g1,g2"})
    assert (await vault.ok("GET", "auth/ldap/users/alice"))["data"] == {"groups": "g1,g2", "policies": ["p"]}
    assert (await vault.ok("LIST", "auth/ldap/users"))["data"]["keys"] == ["alice"]
    await vault.done("DELETE", "auth/ldap/users/alice")
    await vault.done("DELETE", "auth/ldap/groups/devs")
    await vault.fails(404, "GET", "auth/ldap/groups/devs")
    await vault.fails(404, "GET", "auth/ldap/users/alice")


async def test_unconfigured_login(vault: Vault) -> None:
    assert await vault.fails(400, "POST", "auth/ldap/login/alice", {"password": "x"}, token=None) == [
        "auth method not configured"]


def test_bind_dn_without_search_escapes_the_username() -> None:
    from strongroom.auth.ldap.client import Settings, user_bind_dn_direct

    s = Settings(url="ldap://x", userdn=USERS, userattr="uid")
    assert user_bind_dn_direct(s, "bob") == f"uid=bob,{USERS}"
    assert user_bind_dn_direct(s, "bob,ou=x") == f"uid=bob\\,ou\\=x,{USERS}"
    upn = Settings(url="ldap://x", upndomain="example.org")
    assert user_bind_dn_direct(upn, "bob") == "bob@example.org"
    assert user_bind_dn_direct(upn, "b*)") == "b\\2a\\29@example.org"


async def test_passwords_never_reach_the_audit_log(directory: Directory, tmp_path: Path) -> None:
    async with unsealed_core(config=CoreConfig(audit=AuditConfig(allow_api_creation=True))) as (core, _), \
            asgi_client(core) as client:
        vault = Vault(core, client)
        log = tmp_path / "audit.log"
        await vault.done("PUT", "sys/audit/file", {"type": "file", "options": {"file_path": str(log)}})
        await vault.done("POST", "sys/auth/ldap", {"type": "ldap"})
        await vault.done("POST", "auth/ldap/config", search_config(directory))
        await login(vault, "alice", "alice-pw")
        await vault.fails(400, "POST", "auth/ldap/login/bob", {"password": "bob-wrong-pw"}, token=None)
        text = log.read_text()
        assert "auth/ldap/login/alice" in text
        for secret in (ADMIN_PW, "alice-pw", "bob-wrong-pw"):
            assert secret not in text


async def test_ldap_groups_feed_external_identity_groups(vault: Vault, directory: Directory) -> None:
    """As Vault: an external identity group with a group alias named after an LDAP group (on the
    ldap mount) gains the user's entity at login, and its policies apply to the token."""
    await vault.done("POST", "auth/ldap/config", search_config(directory))
    accessor = (await vault.ok("GET", "sys/auth"))["data"]["ldap/"]["accessor"]
    group = (await vault.ok("POST", "identity/group", {"name": "ldap-devs", "type": "external",
                                                        "policies": "from-identity"}))["data"]["id"]
    await vault.ok("POST", "identity/group-alias", {"name": "devs", "mount_accessor": accessor,
                                                     "canonical_id": group})
    auth = await login(vault, "bob", "bob-pw")  # bob is in the LDAP group devs
    assert auth["identity_policies"] == ["from-identity"] and "from-identity" in auth["policies"]
    members = (await vault.ok("GET", f"identity/group/id/{group}"))["data"]["member_entity_ids"]
    assert members == [auth["entity_id"]]
    carol = await login(vault, "carol", "carol-pw")  # in no LDAP group
    assert not carol.get("identity_policies")
