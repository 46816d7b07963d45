"""AppRole roles through a real core: CRUD, read shape, role ids, per-property endpoints."""

from __future__ import annotations

from tests.auth.conftest import Vault


async def test_role_crud_and_read_shape(vault: Vault) -> None:
    await vault.done("POST", "auth/approle/role/web", {"token_policies": "a", "token_ttl": "1h",
                                                       "secret_id_ttl": "10m", "secret_id_num_uses": 5})
    data = (await vault.ok("GET", "auth/approle/role/Web"))["data"]
    assert data == {"bind_secret_id": True, "local_secret_ids": False, "secret_id_bound_cidrs": None,
                    "secret_id_num_uses": 5, "secret_id_ttl": 600, "token_bound_cidrs": [],
                    "token_explicit_max_ttl": 0, "token_max_ttl": 0, "token_no_default_policy": False,
                    "token_num_uses": 0, "token_period": 0, "token_policies": ["a"],
                    "token_strictly_bind_ip": False, "token_ttl": 3600, "token_type": "default"}
    assert (await vault.ok("LIST", "auth/approle/role"))["data"]["keys"] == ["web"]
    await vault.done("DELETE", "auth/approle/role/web")
    await vault.fails(404, "GET", "auth/approle/role/web")
    await vault.fails(404, "GET", "auth/approle/role/web/role-id")


async def test_legacy_policies_and_period(vault: Vault) -> None:
    await vault.done("POST", "auth/approle/role/r", {"policies": "p1", "period": "1h"})
    data = (await vault.ok("GET", "auth/approle/role/r"))["data"]
    assert data["policies"] == data["token_policies"] == ["p1"]
    assert data["period"] == data["token_period"] == 3600


async def test_role_validation(vault: Vault) -> None:
    errors = await vault.fails(400, "POST", "auth/approle/role/x", {"bind_secret_id": False})
    assert errors == ["at least one constraint should be enabled on the role"]
    await vault.fails(400, "POST", "auth/approle/role/x", {"secret_id_num_uses": -1})
    await vault.fails(400, "POST", "auth/approle/role/x", {"secret_id_bound_cidrs": "notacidr"})
    await vault.fails(400, "POST", "auth/approle/role/x", {"token_type": "weird"})
    await vault.fails(400, "POST", "auth/approle/role/x", {"token_ttl": "2h", "token_max_ttl": "1h"})
    await vault.fails(404, "GET", "auth/approle/role/x")  # nothing half-written
    await vault.done("POST", "auth/approle/role/x", {"local_secret_ids": True})
    await vault.fails(400, "POST", "auth/approle/role/x", {"local_secret_ids": False})


async def test_role_id_read_set_and_uniqueness(vault: Vault) -> None:
    await vault.done("POST", "auth/approle/role/a", {})
    await vault.done("POST", "auth/approle/role/b", {})
    rid = (await vault.ok("GET", "auth/approle/role/a/role-id"))["data"]["role_id"]
    assert len(rid) == 36
    await vault.done("POST", "auth/approle/role/a/role-id", {"role_id": "custom-rid"})
    assert (await vault.ok("GET", "auth/approle/role/a/role-id"))["data"] == {"role_id": "custom-rid"}
    assert await vault.fails(400, "POST", "auth/approle/role/b/role-id", {"role_id": "custom-rid"}) == [
        "role_id already in use"]
    assert await vault.fails(400, "POST", "auth/approle/role/a/role-id", {}) == ["missing role_id"]
    # Without a bound secret id, the role id alone logs in: the new one does, the old one no longer.
    await vault.done("POST", "auth/approle/role/a", {"bind_secret_id": False, "secret_id_bound_cidrs": "127.0.0.1/32"})
    await vault.fails(400, "POST", "auth/approle/login", {"role_id": rid}, token=None)
    await vault.ok("POST", "auth/approle/login", {"role_id": "custom-rid"}, token=None)


async def test_property_endpoints(vault: Vault) -> None:
    await vault.done("POST", "auth/approle/role/r", {"secret_id_bound_cidrs": "10.0.0.0/8"})
    assert (await vault.ok("GET", "auth/approle/role/r/policies"))["data"] == {"token_policies": []}
    assert (await vault.ok("GET", "auth/approle/role/r/secret-id-bound-cidrs"))["data"] == {
        "secret_id_bound_cidrs": ["10.0.0.0/8"]}
    assert (await vault.ok("GET", "auth/approle/role/r/local-secret-ids"))["data"] == {"local_secret_ids": False}
    await vault.done("POST", "auth/approle/role/r/token-ttl", {"token_ttl": 60})
    assert (await vault.ok("GET", "auth/approle/role/r/token-ttl"))["data"] == {"token_ttl": 60}
    await vault.done("DELETE", "auth/approle/role/r/token-ttl")
    assert (await vault.ok("GET", "auth/approle/role/r/token-ttl"))["data"] == {"token_ttl": 0}
    await vault.done("POST", "auth/approle/role/r/period", {"period": "1h"})
    assert (await vault.ok("GET", "auth/approle/role/r/period"))["data"] == {"token_period": 3600}
    await vault.fails(404, "POST", "auth/approle/role/nope/token-ttl", {"token_ttl": 60})
    await vault.fails(404, "GET", "auth/approle/role/nope/policies")


async def test_delete_role_removes_its_secret_ids(vault: Vault) -> None:
    await vault.done("POST", "auth/approle/role/r", {})
    sid = (await vault.ok("POST", "auth/approle/role/r/secret-id"))["data"]
    rid = (await vault.ok("GET", "auth/approle/role/r/role-id"))["data"]["role_id"]
    await vault.done("DELETE", "auth/approle/role/r")
    mount = vault.core.mounts.find("auth", "approle/")
    assert await mount.view.list("secret_id/") == [] and await mount.view.list("accessor/") == []
    await vault.done("POST", "auth/approle/role/r", {})
    await vault.done("POST", "auth/approle/role/r/role-id", {"role_id": rid})
    await vault.fails(400, "POST", "auth/approle/login", {"role_id": rid, "secret_id": sid["secret_id"]}, token=None)
