"""auth/token/roles/* and create/<role>, with expected answers taken from OpenBao."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.core.tokens import TokenBackend
from strongroom.core.tokens.roles import glob_match
from strongroom.errors import InvalidRequest, NotFound, StrongroomError
from strongroom.framework import Op

H768 = 768 * 3600
# conftest fixture types (tests cannot import conftest reliably)
Caller = Any
Clock = Any


async def read(caller: Caller, name: str) -> dict[str, Any]:
    resp = await caller(Op.READ, f"roles/{name}")
    assert resp is not None and resp.data is not None
    data: dict[str, Any] = resp.data
    return data


async def test_role_crud(as_root: Caller, backend: TokenBackend) -> None:
    with pytest.raises(NotFound):
        await as_root(Op.LIST, "roles")
    assert await as_root(Op.UPDATE, "roles/r1", {"allowed_policies": ["web", "other"]}) is None
    assert await read(as_root, "r1") == {
        "allowed_entity_aliases": None, "allowed_policies": ["other", "web"], "allowed_policies_glob": [],
        "disallowed_policies": [], "disallowed_policies_glob": [], "explicit_max_ttl": 0, "name": "r1",
        "orphan": False, "path_suffix": "", "period": 0, "renewable": True, "token_explicit_max_ttl": 0,
        "token_no_default_policy": False, "token_period": 0, "token_type": "default-service"}
    # Writes merge: unsent fields keep their values.
    await as_root(Op.UPDATE, "roles/r1", {"orphan": True})
    r1 = await read(as_root, "r1")
    assert r1["orphan"] is True and r1["allowed_policies"] == ["other", "web"]
    await as_root(Op.UPDATE, "roles/r0", {})
    listed = await as_root(Op.LIST, "roles/")
    assert listed is not None and listed.data == {"keys": ["r0", "r1"]}
    assert await backend.exists(_req("roles/r1")) == (True, True)
    assert await backend.exists(_req("roles/zz")) == (True, False)
    assert await as_root(Op.DELETE, "roles/r1") is None
    assert await as_root(Op.DELETE, "roles/r1") is None
    with pytest.raises(NotFound):
        await as_root(Op.READ, "roles/r1")


def _req(path: str) -> Any:
    from strongroom.framework import Request

    return Request(Op.UPDATE, path)


async def test_role_fields_and_optional_keys(as_root: Caller) -> None:
    await as_root(Op.UPDATE, "roles/r2", {
        "allowed_policies": "web,other", "disallowed_policies": "bad", "orphan": True, "renewable": False,
        "path_suffix": "v1x", "token_period": "1h", "token_explicit_max_ttl": "2h",
        "token_bound_cidrs": "127.0.0.1/32", "token_num_uses": 5, "token_no_default_policy": True,
        "token_type": "service"})
    r2 = await read(as_root, "r2")
    assert r2["allowed_policies"] == ["other", "web"] and r2["disallowed_policies"] == ["bad"]
    assert r2["token_bound_cidrs"] == ["127.0.0.1"] and r2["token_num_uses"] == 5
    assert (r2["token_period"], r2["period"], r2["token_explicit_max_ttl"], r2["explicit_max_ttl"]) == (3600, 0, 7200, 0)


async def test_deprecated_period_and_explicit_max(as_root: Caller) -> None:
    await as_root(Op.UPDATE, "roles/r3", {"period": "1h", "explicit_max_ttl": "3h"})
    r3 = await read(as_root, "r3")
    assert (r3["period"], r3["token_period"], r3["explicit_max_ttl"], r3["token_explicit_max_ttl"]) == (
        3600, 3600, 10800, 10800)
    resp = await as_root(Op.UPDATE, "roles/r5", {"token_period": "1h", "period": "2h"})
    assert resp is not None
    assert resp.warnings == ["Both 'token_period' and deprecated 'period' value supplied, ignoring the deprecated value"]
    r5 = await read(as_root, "r5")
    assert (r5["token_period"], r5["period"]) == (3600, 0)


@pytest.mark.parametrize(("data", "message"), [
    ({"path_suffix": "v1"}, "given role path suffix contains invalid characters; must match \\w[\\w-.]+\\w"),
    ({"token_num_uses": -1}, "error parsing role fields: 'token_num_uses' cannot be negative"),
    ({"token_type": "bogus"}, "invalid 'token_type' value \"bogus\""),
    ({"token_type": "batch"}, "batch tokens are not supported yet"),
    ({"token_type": "default"}, "invalid 'token_type' value \"default\""),
])
async def test_role_write_rejects(as_root: Caller, data: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        await as_root(Op.UPDATE, "roles/bad", data)
    assert err.value.message == message


async def test_create_against_role_allow_list(as_root: Caller) -> None:
    await as_root(Op.UPDATE, "roles/r1", {"allowed_policies": ["web", "other"]})
    resp = await as_root(Op.UPDATE, "create/r1", {})
    assert resp is not None and resp.auth is not None and resp.auth.policies == ["default", "other", "web"]
    web = await as_root.create({"policies": ["web"]})
    # The role vouches for "other", which the caller does not hold.
    resp = await web(Op.UPDATE, "create/r1", {"policies": ["other"]})
    assert resp is not None and resp.auth is not None and resp.auth.policies == ["default", "other"]
    with pytest.raises(InvalidRequest) as err:
        await as_root(Op.UPDATE, "create/r1", {"policies": ["sudo"]})
    assert err.value.message == ('token policies (["default" "sudo"]) must be subset of the role\'s allowed '
                                 'policies (["default" "other" "web"]) or glob policies ([])')
    with pytest.raises(InvalidRequest) as err:
        await as_root(Op.UPDATE, "create/nope", {})
    assert err.value.message == "unknown role nope"
    with pytest.raises(InvalidRequest) as err:
        await as_root(Op.UPDATE, "create/r1", {"entity_alias": "x"})
    assert err.value.status_code == 400


async def test_role_overrides(as_root: Caller, backend: TokenBackend) -> None:
    await as_root(Op.UPDATE, "roles/r2", {
        "allowed_policies": "web,other", "orphan": True, "renewable": False, "path_suffix": "v1x",
        "token_period": "1h", "token_explicit_max_ttl": "2h", "token_bound_cidrs": "127.0.0.1/32",
        "token_num_uses": 5, "token_no_default_policy": True})
    resp = await as_root(Op.UPDATE, "create/r2", {})
    assert resp is not None and resp.auth is not None
    a = resp.auth
    assert a.policies == ["other", "web"] and a.lease_duration == 3600 and a.renewable is False
    assert a.orphan is True and a.num_uses == 5
    looked = await as_root(Op.UPDATE, "lookup", {"token": a.client_token})
    assert looked is not None and looked.data is not None
    d = looked.data
    assert d["path"] == "auth/token/create/r2/v1x" and d["role"] == "r2" and d["bound_cidrs"] == ["127.0.0.1"]
    # Like OpenBao, the role's period and explicit max are not copied into the token.
    assert "period" not in d and d["explicit_max_ttl"] == 0


async def test_role_period_drives_renewal(as_root: Caller, clock: Clock) -> None:
    await as_root(Op.UPDATE, "roles/p", {"period": "1h", "explicit_max_ttl": "3h"})
    resp = await as_root(Op.UPDATE, "create/p", {"policies": ["web"]})
    assert resp is not None and resp.auth is not None and resp.auth.lease_duration == 3600
    token = resp.auth.client_token
    clock.advance(1800)
    renewed = await as_root(Op.UPDATE, "renew", {"token": token, "increment": "5h"})
    assert renewed is not None and renewed.auth is not None and renewed.auth.lease_duration == 3600
    for _ in range(2):
        clock.advance(3000)
        await as_root(Op.UPDATE, "renew", {"token": token})
    # 7800s in: the role's 3h explicit max leaves 3000s, less than the period.
    renewed = await as_root(Op.UPDATE, "renew", {"token": token})
    assert renewed is not None and renewed.auth is not None and renewed.auth.lease_duration == 3000


async def test_disallowed_policies(as_root: Caller) -> None:
    await as_root(Op.UPDATE, "roles/r8", {"allowed_policies": ["web"], "disallowed_policies": ["default"]})
    resp = await as_root(Op.UPDATE, "create/r8", {})
    assert resp is not None and resp.auth is not None and resp.auth.policies == ["web"]
    await as_root(Op.UPDATE, "roles/r9", {"disallowed_policies": ["web"]})
    web = await as_root.create({"policies": ["web"]})
    for caller, data in ((as_root, {"policies": ["web"]}), (web, {})):
        with pytest.raises(StrongroomError) as err:
            await caller(Op.UPDATE, "create/r9", data)
        assert err.value.message == 'token policy "web" is disallowed by this role'


async def test_globs(as_root: Caller) -> None:
    assert glob_match("dev-*", "dev-a") and glob_match("*", "x") and glob_match("a*c", "abbc")
    assert not glob_match("dev-*", "prod") and not glob_match("a.c", "abc")
    await as_root(Op.UPDATE, "roles/g", {"allowed_policies_glob": "dev-*", "disallowed_policies_glob": "dev-x*"})
    resp = await as_root(Op.UPDATE, "create/g", {"policies": ["dev-a"]})
    assert resp is not None and resp.auth is not None and resp.auth.policies == ["default", "dev-a"]
    with pytest.raises(InvalidRequest):
        await as_root(Op.UPDATE, "create/g", {"policies": ["dev-xy"]})
    with pytest.raises(InvalidRequest):
        await as_root(Op.UPDATE, "create/g", {"policies": ["prod"]})


async def test_role_changes_reach_existing_tokens_on_renewal(as_root: Caller) -> None:
    await as_root(Op.UPDATE, "roles/rx", {"token_explicit_max_ttl": "2h"})
    resp = await as_root(Op.UPDATE, "create/rx", {"policies": ["web"]})
    assert resp is not None and resp.auth is not None and resp.auth.lease_duration == 7200
    assert resp.warnings == ['TTL of "768h" exceeded the effective max_ttl of "2h"; TTL value is capped accordingly']
    renewed = await as_root(Op.UPDATE, "renew", {"token": resp.auth.client_token, "increment": "10h"})
    assert renewed is not None and renewed.auth is not None and renewed.auth.lease_duration == 7200
    assert renewed.warnings == ['TTL of "10h" exceeded the effective max_ttl of "2h"; TTL value is capped accordingly']

    await as_root(Op.UPDATE, "roles/rp", {"token_period": "1h"})
    resp = await as_root(Op.UPDATE, "create/rp", {"policies": ["web"]})
    assert resp is not None and resp.auth is not None
    await as_root(Op.UPDATE, "roles/rp", {"token_period": "2h"})
    renewed = await as_root(Op.UPDATE, "renew", {"token": resp.auth.client_token, "increment": "10h"})
    assert renewed is not None and renewed.auth is not None and renewed.auth.lease_duration == 7200
