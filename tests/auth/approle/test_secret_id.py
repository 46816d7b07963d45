"""AppRole secret ids through a real core: issue, custom, list, lookup, destroy, accessors, tidy,
wrapped delivery, and how they are stored."""

from __future__ import annotations

from typing import Any

import pytest
from tests.auth.conftest import Vault

from strongroom.auth.approle import login as login_module
from strongroom.auth.approle import store as store_module


async def _role(vault: Vault, name: str = "web", **fields: Any) -> str:
    await vault.done("POST", f"auth/approle/role/{name}", fields)
    return str((await vault.ok("GET", f"auth/approle/role/{name}/role-id"))["data"]["role_id"])


async def test_issue_and_lookup(vault: Vault) -> None:
    await _role(vault, secret_id_ttl="10m", secret_id_num_uses=5)
    data = (await vault.ok("POST", "auth/approle/role/web/secret-id",
                           {"metadata": '{"tag": "x"}', "cidr_list": "127.0.0.0/8",
                            "token_bound_cidrs": "127.0.0.1/32", "num_uses": 2}))["data"]
    assert set(data) == {"secret_id", "secret_id_accessor", "secret_id_num_uses", "secret_id_ttl"}
    assert data["secret_id_num_uses"] == 2 and data["secret_id_ttl"] == 600
    looked = (await vault.ok("POST", "auth/approle/role/web/secret-id/lookup",
                             {"secret_id": data["secret_id"]}))["data"]
    assert looked["cidr_list"] == ["127.0.0.0/8"] and looked["token_bound_cidrs"] == ["127.0.0.1/32"]
    assert looked["metadata"] == {"tag": "x"} and looked["secret_id_accessor"] == data["secret_id_accessor"]
    assert looked["secret_id_num_uses"] == 2 and looked["secret_id_ttl"] == 600
    assert looked["expiration_time"].endswith("Z") and looked["expiration_time"] > looked["creation_time"]
    by_accessor = (await vault.ok("POST", "auth/approle/role/web/secret-id-accessor/lookup",
                                  {"secret_id_accessor": data["secret_id_accessor"]}))["data"]
    assert by_accessor == looked
    listed = (await vault.ok("LIST", "auth/approle/role/web/secret-id"))["data"]["keys"]
    assert listed == [data["secret_id_accessor"]]
    # Unknown secret ids look up as nothing (204); unknown accessors are 404.
    await vault.done("POST", "auth/approle/role/web/secret-id/lookup", {"secret_id": "nope"})
    await vault.fails(404, "POST", "auth/approle/role/web/secret-id-accessor/lookup",
                      {"secret_id_accessor": "nope"})


async def test_issue_limits(vault: Vault) -> None:
    await _role(vault, secret_id_ttl="10m", secret_id_num_uses=5, secret_id_bound_cidrs="10.0.0.0/8")
    path = "auth/approle/role/web/secret-id"
    assert await vault.fails(400, "POST", path, {"num_uses": 9}) == [
        "num_uses cannot be higher than the role's secret_id_num_uses"]
    assert await vault.fails(400, "POST", path, {"ttl": "1h"}) == [
        "ttl cannot be longer than the role's secret_id_ttl"]
    await vault.fails(400, "POST", path, {"metadata": "notjson"})
    await vault.fails(400, "POST", path, {"cidr_list": "192.168.0.0/16"})
    await vault.fails(400, "POST", path, {"cidr_list": "bogus"})
    await vault.ok("POST", path, {"cidr_list": "10.1.0.0/16"})
    await vault.fails(404, "POST", "auth/approle/role/nope/secret-id")
    await vault.done("POST", "auth/approle/role/open", {"bind_secret_id": False, "token_bound_cidrs": "127.0.0.1"})
    assert await vault.fails(400, "POST", "auth/approle/role/open/secret-id") == [
        "bind_secret_id is not set on the role"]


async def test_custom_secret_id(vault: Vault) -> None:
    rid = await _role(vault)
    data = (await vault.ok("POST", "auth/approle/role/web/custom-secret-id", {"secret_id": "my-custom"}))["data"]
    assert data["secret_id"] == "my-custom"
    await vault.fails(400, "POST", "auth/approle/role/web/custom-secret-id", {"secret_id": "my-custom"})
    await vault.ok("POST", "auth/approle/login", {"role_id": rid, "secret_id": "my-custom"}, token=None)


async def test_destroy_by_secret_id_and_by_accessor(vault: Vault) -> None:
    rid = await _role(vault)
    one = (await vault.ok("POST", "auth/approle/role/web/secret-id"))["data"]
    two = (await vault.ok("POST", "auth/approle/role/web/secret-id"))["data"]
    await vault.done("POST", "auth/approle/role/web/secret-id/destroy", {"secret_id": one["secret_id"]})
    await vault.done("POST", "auth/approle/role/web/secret-id-accessor/destroy",
                     {"secret_id_accessor": two["secret_id_accessor"]})
    for sid in (one, two):
        await vault.fails(400, "POST", "auth/approle/login", {"role_id": rid, "secret_id": sid["secret_id"]},
                          token=None)
    await vault.fails(404, "LIST", "auth/approle/role/web/secret-id")


async def test_accessor_of_another_role_is_not_found(vault: Vault) -> None:
    await _role(vault, "a")
    await _role(vault, "b")
    acc = (await vault.ok("POST", "auth/approle/role/a/secret-id"))["data"]["secret_id_accessor"]
    await vault.fails(404, "POST", "auth/approle/role/b/secret-id-accessor/destroy", {"secret_id_accessor": acc})
    await vault.ok("POST", "auth/approle/role/a/secret-id-accessor/lookup", {"secret_id_accessor": acc})


async def test_secret_id_is_stored_only_as_an_hmac(vault: Vault) -> None:
    await _role(vault)
    await vault.ok("POST", "auth/approle/role/web/custom-secret-id", {"secret_id": "needle-secret-value"})
    mount = vault.core.mounts.find("auth", "approle/")
    salt = await mount.view.get("salt")
    assert salt is not None and len(bytes.fromhex(salt.decode())) == 32
    seen: list[bytes] = []

    async def walk(prefix: str) -> None:
        for key in await mount.view.list(prefix):
            if key.endswith("/"):
                await walk(prefix + key)
            else:
                seen.append((prefix + key).encode())
                seen.append(await mount.view.get(prefix + key) or b"")

    await walk("")
    assert seen and not any(b"needle-secret-value" in item for item in seen)


async def test_tidy_removes_expired_secret_ids(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> None:
    await _role(vault)
    short = (await vault.ok("POST", "auth/approle/role/web/secret-id", {"ttl": 60}))["data"]
    keep = (await vault.ok("POST", "auth/approle/role/web/secret-id"))["data"]
    later = store_module.now() + 120
    monkeypatch.setattr("strongroom.auth.approle.secret_id.now", lambda: later)
    r = await vault.call("POST", "auth/approle/tidy/secret-id")
    assert r.status_code == 202 and r.json()["warnings"]
    listed = (await vault.ok("LIST", "auth/approle/role/web/secret-id"))["data"]["keys"]
    assert listed == [keep["secret_id_accessor"]] and short["secret_id_accessor"] not in listed


async def test_expired_secret_id_does_not_log_in(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> None:
    rid = await _role(vault)
    sid = (await vault.ok("POST", "auth/approle/role/web/secret-id", {"ttl": 60}))["data"]["secret_id"]
    later = store_module.now() + 120
    monkeypatch.setattr(login_module, "now", lambda: later)
    assert await vault.fails(400, "POST", "auth/approle/login", {"role_id": rid, "secret_id": sid},
                             token=None) == ["invalid role or secret ID"]


async def test_wrapped_secret_id_delivery(vault: Vault) -> None:
    rid = await _role(vault)
    wrapped = await vault.ok("POST", "auth/approle/role/web/secret-id", headers={"X-Vault-Wrap-TTL": "60"})
    assert wrapped["data"] is None and wrapped["wrap_info"]["ttl"] == 60
    assert wrapped["wrap_info"]["creation_path"] == "auth/approle/role/web/secret-id"
    unwrapped = await vault.ok("POST", "sys/wrapping/unwrap", token=wrapped["wrap_info"]["token"])
    sid = unwrapped["data"]["secret_id"]
    # As Vault reports it: the wrapper names the secret ID it carries by its accessor.
    assert wrapped["wrap_info"]["wrapped_accessor"] == unwrapped["data"]["secret_id_accessor"]
    auth = (await vault.ok("POST", "auth/approle/login", {"role_id": rid, "secret_id": sid}, token=None))["auth"]
    assert auth["client_token"]
    # The wrapping token is single-use.
    await vault.fails(400, "POST", "sys/wrapping/unwrap", token=wrapped["wrap_info"]["token"])
