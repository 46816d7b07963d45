"""Renewing an ldap token asks the directory again: a user removed from it, or whose policies have
changed, cannot renew (core's renew check seam -> LdapBackend.renew_auth)."""

from __future__ import annotations

import uuid

import pytest
from tests.auth.conftest import Vault
from tests.auth.ldap.conftest import GROUPS, USERS, Directory, search_config


def _add_user(directory: Directory, group: str) -> str:
    uid = f"temp-{uuid.uuid4().hex[:8]}"
    directory.ldap("ldapadd", stdin=f"dn: uid={uid},{USERS}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\n"
                                    f"sn: {uid}\nuserPassword: {uid}-pw\n\n"
                                    f"dn: cn={group},{GROUPS}\nobjectClass: groupOfNames\ncn: {group}\n"
                                    f"member: uid={uid},{USERS}\n")
    return uid


async def _login(vault: Vault, uid: str) -> str:
    r = await vault.ok("POST", f"auth/ldap/login/{uid}", {"password": f"{uid}-pw"}, token=None)
    return str(r["auth"]["client_token"])


@pytest.mark.parametrize("mode", ["search", "bind-directly"])
async def test_removed_user_cannot_renew(vault: Vault, directory: Directory, mode: str) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    uid = _add_user(directory, group)
    if mode == "search":
        cfg = search_config(directory)
    else:
        cfg = {"url": directory.url, "userdn": USERS, "userattr": "uid", "groupdn": GROUPS,
               "groupfilter": "(member={{.UserDN}})"}
    await vault.done("POST", "auth/ldap/config", cfg)
    await vault.done("POST", f"auth/ldap/groups/{group}", {"policies": "temp"})
    token = await _login(vault, uid)
    renewed = await vault.ok("POST", "auth/token/renew-self", {"increment": "1h"}, token=token)
    assert renewed["auth"]["policies"] == ["default", "temp"]
    directory.ldap("ldapdelete", f"uid={uid},{USERS}")
    errors = await vault.fails(400, "POST", "auth/token/renew-self", {}, token=token)
    assert errors == ["user no longer exists in the LDAP directory, not renewing"]
    # Also refused through the accessor by an operator; the token itself still works until it expires.
    accessor = (await vault.ok("GET", "auth/token/lookup-self", token=token))["data"]["accessor"]
    await vault.fails(400, "POST", "auth/token/renew-accessor", {"accessor": accessor})
    directory.ldap("ldapdelete", f"cn={group},{GROUPS}")


async def test_changed_policies_refuse_renewal(vault: Vault, directory: Directory) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    uid = _add_user(directory, group)
    await vault.done("POST", "auth/ldap/config", search_config(directory))
    await vault.done("POST", f"auth/ldap/groups/{group}", {"policies": "temp"})
    token = await _login(vault, uid)
    await vault.done("POST", f"auth/ldap/groups/{group}", {"policies": "temp,more"})
    errors = await vault.fails(400, "POST", "auth/token/renew-self", {}, token=token)
    assert errors == ["policies have changed, not renewing"]
    await vault.done("POST", f"auth/ldap/groups/{group}", {"policies": "temp"})
    await vault.ok("POST", "auth/token/renew-self", {}, token=token)
    directory.ldap("ldapdelete", f"uid={uid},{USERS}")
    directory.ldap("ldapdelete", f"cn={group},{GROUPS}")
