"""AppRole login through a real core: the token it yields, CIDR bindings, use counting."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests.auth.conftest import Vault

from strongroom.auth.approle.store import AppRoleStore, SecretIdEntry


async def _role(vault: Vault, name: str = "web", **fields: Any) -> str:
    await vault.done("POST", f"auth/approle/role/{name}", fields)
    return str((await vault.ok("GET", f"auth/approle/role/{name}/role-id"))["data"]["role_id"])


async def _secret(vault: Vault, name: str = "web", **fields: Any) -> str:
    return str((await vault.ok("POST", f"auth/approle/role/{name}/secret-id", fields))["data"]["secret_id"])


async def _login(vault: Vault, role_id: str, secret_id: str | None = None) -> dict[str, Any]:
    body = {"role_id": role_id} if secret_id is None else {"role_id": role_id, "secret_id": secret_id}
    return dict((await vault.ok("POST", "auth/approle/login", body, token=None))["auth"])


async def test_login_issues_a_token(vault: Vault) -> None:
    rid = await _role(vault, token_policies="a", token_ttl="1h", token_max_ttl="2h")
    sid = await _secret(vault, metadata='{"tag": "x"}')
    auth = await _login(vault, rid, sid)
    assert auth["policies"] == ["a", "default"] and auth["lease_duration"] == 3600
    assert auth["metadata"] == {"role_name": "web", "tag": "x"} and auth["orphan"] and auth["renewable"]
    look = (await vault.ok("GET", "auth/token/lookup-self", token=auth["client_token"]))["data"]
    assert look["display_name"] == "approle" and look["path"] == "auth/approle/login"
    renewed = (await vault.ok("POST", "auth/token/renew-self", {"increment": "5h"},
                              token=auth["client_token"]))["auth"]
    assert renewed["lease_duration"] <= 7200


async def test_login_errors_reveal_nothing(vault: Vault) -> None:
    rid = await _role(vault)
    await _secret(vault)
    expected = ["invalid role or secret ID"]
    assert await vault.fails(400, "POST", "auth/approle/login", {"role_id": rid, "secret_id": "wrong"},
                             token=None) == expected
    assert await vault.fails(400, "POST", "auth/approle/login", {"role_id": "wrong", "secret_id": "wrong"},
                             token=None) == expected
    assert await vault.fails(400, "POST", "auth/approle/login", {"role_id": rid}, token=None) == [
        "missing secret_id"]
    assert await vault.fails(400, "POST", "auth/approle/login", {}, token=None) == ["missing role_id"]


async def test_secret_id_of_another_role_does_not_log_in(vault: Vault) -> None:
    rid_a = await _role(vault, "a")
    await _role(vault, "b")
    sid_b = await _secret(vault, "b")
    await vault.fails(400, "POST", "auth/approle/login", {"role_id": rid_a, "secret_id": sid_b}, token=None)


async def test_num_uses_are_counted_and_spent(vault: Vault) -> None:
    rid = await _role(vault)
    sid = await _secret(vault, num_uses=2)
    await _login(vault, rid, sid)
    looked = (await vault.ok("POST", "auth/approle/role/web/secret-id/lookup", {"secret_id": sid}))["data"]
    assert looked["secret_id_num_uses"] == 1
    await _login(vault, rid, sid)
    await vault.fails(400, "POST", "auth/approle/login", {"role_id": rid, "secret_id": sid}, token=None)
    await vault.done("POST", "auth/approle/role/web/secret-id/lookup", {"secret_id": sid})  # gone


async def test_last_use_cannot_be_spent_twice_concurrently(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> None:
    rid = await _role(vault)
    sid = await _secret(vault, num_uses=1)
    real = AppRoleStore.secret

    async def slow_read(self: AppRoleStore, key: str) -> SecretIdEntry | None:
        entry = await real(self, key)
        await asyncio.sleep(0.01)  # let every concurrent login read before any spends
        return entry

    monkeypatch.setattr(AppRoleStore, "secret", slow_read)
    results = await asyncio.gather(*(vault.call("POST", "auth/approle/login", {"role_id": rid, "secret_id": sid},
                                                token=None) for _ in range(8)))
    codes = sorted(r.status_code for r in results)
    # One login spends it; the others are refused: 400, or 403 once their failures lock the role id
    # (user lockout, core/lockout.py: a spent secret id counts as a wrong one, as in OpenBao).
    assert codes[0] == 200 and set(codes[1:]) <= {400, 403} and codes.count(400) >= 4


async def test_cidr_bindings(vault: Vault) -> None:
    # The in-process client connects from 127.0.0.1.
    rid = await _role(vault, "far", secret_id_bound_cidrs="10.0.0.0/8")
    sid = await _secret(vault, "far")
    errors = await vault.fails(400, "POST", "auth/approle/login", {"role_id": rid, "secret_id": sid}, token=None)
    assert errors == ['source address "127.0.0.1" unauthorized by CIDR restrictions on the role']
    rid = await _role(vault)
    sid = await _secret(vault, cidr_list="10.0.0.0/8")
    errors = await vault.fails(400, "POST", "auth/approle/login", {"role_id": rid, "secret_id": sid}, token=None)
    assert errors == ['source address "127.0.0.1" unauthorized by CIDR restrictions on the secret ID']
    sid = await _secret(vault, cidr_list="127.0.0.0/8", token_bound_cidrs="127.0.0.1/32")
    auth = await _login(vault, rid, sid)
    look = (await vault.ok("POST", "auth/token/lookup", {"token": auth["client_token"]}))["data"]
    assert look["bound_cidrs"] == ["127.0.0.1"]


async def test_token_bound_to_elsewhere_is_useless_here(vault: Vault) -> None:
    rid = await _role(vault, token_bound_cidrs="10.0.0.0/8")
    auth = await _login(vault, rid, await _secret(vault))
    await vault.fails(403, "GET", "auth/token/lookup-self", token=auth["client_token"])


async def test_role_without_secret_id(vault: Vault) -> None:
    rid = await _role(vault, bind_secret_id=False, secret_id_bound_cidrs="127.0.0.1/32", period="1h",
                      policies="p1")
    auth = await _login(vault, rid)
    assert auth["policies"] == ["default", "p1"] and auth["lease_duration"] == 3600
    assert auth["metadata"] == {"role_name": "web"}
