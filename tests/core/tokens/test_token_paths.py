"""auth/token/* through Backend.handle, with expected answers taken from OpenBao."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.core.tokens import TokenBackend, TokenStore
from strongroom.errors import InvalidRequest, PermissionDenied, StrongroomError
from strongroom.framework import Op

H768 = 768 * 3600
# conftest fixture types (tests cannot import conftest reliably)
Caller = Any
Clock = Any


async def auth_of(caller: Caller, data: dict[str, Any] | None = None, path: str = "create") -> Any:
    resp = await caller(Op.UPDATE, path, data)
    assert resp is not None and resp.auth is not None
    return resp


async def fails(caller: Caller, op: Op, path: str, data: dict[str, Any] | None = None) -> StrongroomError:
    with pytest.raises(StrongroomError) as err:
        await caller(op, path, data)
    return err.value


async def test_backend_identity(backend: TokenBackend) -> None:
    assert backend.backend_type == "credential"
    assert backend.is_root_path("accessors") and backend.is_root_path("accessors/")
    assert not backend.is_root_path("revoke-orphan") and not backend.is_root_path("create")


async def test_root_creates_a_root_child_that_never_expires(as_root: Caller) -> None:
    resp = await auth_of(as_root)
    a = resp.auth
    assert a.client_token.startswith("hvs.") and len(a.accessor) == 24
    assert a.policies == a.token_policies == ["root"]
    assert (a.lease_duration, a.renewable, a.orphan, a.token_type, a.num_uses) == (0, False, False, "service", 0)
    assert resp.warnings == []


async def test_create_with_policies_meta_and_ttl(as_root: Caller) -> None:
    resp = await auth_of(as_root, {"ttl": "1h", "meta": {"a": "b"}, "policies": ["web", "stage"]})
    a = resp.auth
    assert a.policies == ["default", "stage", "web"] and a.metadata == {"a": "b"}
    assert a.lease_duration == 3600 and a.renewable is True
    default = (await auth_of(as_root, {"policies": ["web"]})).auth
    assert default.lease_duration == H768


async def test_ttl_capping_warnings(as_root: Caller) -> None:
    resp = await auth_of(as_root, {"ttl": "1000h"})
    assert resp.auth.lease_duration == H768 and resp.auth.renewable  # a root token with a TTL renews
    assert resp.warnings == ['TTL of "1000h" exceeded the effective max_ttl of "768h"; TTL value is capped accordingly']
    resp = await auth_of(as_root, {"explicit_max_ttl": "1h", "policies": ["web"]})
    assert resp.auth.lease_duration == 3600 and "768h" in resp.warnings[0]
    resp = await auth_of(as_root, {"period": "30m", "ttl": "2h", "policies": ["web"]})
    assert resp.auth.lease_duration == 1800


@pytest.mark.parametrize(("data", "message"), [
    ({"num_uses": -1}, "number of uses cannot be negative"),
    ({"type": "batch"}, "batch tokens are not supported yet"),
    ({"type": "weird"}, "invalid 'token_type' value"),
    ({"entity_alias": "x"}, "'entity_alias' is only allowed in combination with token role"),
    ({"ttl": "-5"}, "ttl must be positive"),
    ({"explicit_max_ttl": "-5"}, "explicit_max_ttl must be positive"),
    ({"period": "-5"}, "period must be positive"),
    ({"id": "my.id"}, "custom token ID cannot have a '.' in the value"),
])
async def test_create_rejects(as_root: Caller, data: dict[str, Any], message: str) -> None:
    err = await fails(as_root, Op.UPDATE, "create", data)
    assert isinstance(err, InvalidRequest) and err.message == message


async def test_custom_id_and_duplicates(as_root: Caller) -> None:
    assert (await auth_of(as_root, {"id": "plainid"})).auth.client_token == "plainid"
    err = await fails(as_root, Op.UPDATE, "create", {"id": "plainid"})
    assert err.message == "cannot create a token with a duplicate ID"


async def test_plain_callers_delegate_only_a_subset(as_root: Caller) -> None:
    web = await as_root.create({"policies": ["web"], "ttl": "2h"})
    assert web.entry.policies == ["default", "web"]
    for data in ({"policies": ["sudo"]}, {"policies": ["web", "other"]}, {"policies": ["root"]}):
        err = await fails(web, Op.UPDATE, "create", data)
        assert err.status_code == 400 and err.message == "child policies must be subset of parent"
    child = (await auth_of(web)).auth
    assert child.policies == ["default", "web"] and child.lease_duration == H768  # not capped by the parent
    assert child.orphan is False
    assert (await auth_of(web, {"policies": []})).auth.policies == ["default", "web"]
    assert (await auth_of(web, {"no_default_policy": True})).auth.policies == ["web"]


@pytest.mark.parametrize(("data", "message"), [
    ({"no_parent": True}, "root or sudo privileges required to create orphan token"),
    ({"period": "1h"}, "root or sudo privileges required to create periodic token"),
    ({"id": "custom1"}, "root or sudo privileges required to specify token id"),
])
async def test_plain_callers_lack_privileged_options(as_root: Caller, data: dict[str, Any], message: str) -> None:
    web = await as_root.create({"policies": ["web"]})
    assert (await fails(web, Op.UPDATE, "create", data)).message == message


async def test_create_orphan_needs_no_sudo(as_root: Caller, backend: TokenBackend) -> None:
    web = await as_root.create({"policies": ["web"]})
    resp = await auth_of(web, {}, path="create-orphan")
    assert resp.auth.orphan is True
    entry = await backend.store.lookup(resp.auth.client_token)
    assert entry is not None and entry.path == "auth/token/create-orphan"
    await web(Op.UPDATE, "revoke-self")
    assert await backend.store.lookup(resp.auth.client_token) is not None  # orphans outlive the creator


async def test_sudo_callers(as_root: Caller) -> None:
    sudo = await as_root.create({"policies": ["sudo"]})
    sudo.sudo = True
    assert (await auth_of(sudo, {"policies": ["other"]})).auth.policies == ["default", "other"]
    assert (await auth_of(sudo, {"no_parent": True})).auth.orphan is True
    err = await fails(sudo, Op.UPDATE, "create", {"policies": ["root"]})
    assert err.message == "root tokens may not be created without parent token being root"
    nodefault = await as_root.create({"policies": ["sudo"], "no_default_policy": True})
    nodefault.sudo = True
    assert (await auth_of(nodefault, {"policies": ["other"]})).auth.policies == ["default", "other"]
    assert (await auth_of(nodefault)).auth.policies == ["sudo"]


async def test_parent_without_default_policy(as_root: Caller) -> None:
    nd = await as_root.create({"policies": ["web"], "no_default_policy": True})
    assert (await auth_of(nd)).auth.policies == ["web"]
    assert (await auth_of(nd, {"policies": ["web"]})).auth.policies == ["web"]
    err = await fails(nd, Op.UPDATE, "create", {"policies": ["web", "default"]})
    assert err.message == "child policies must be subset of parent"


async def test_lookup_self_and_lookup(as_root: Caller, clock: Clock) -> None:
    web = await as_root.create({"policies": ["web"], "ttl": "2h", "display_name": "My App!"})
    clock.advance(37)
    resp = await web(Op.READ, "lookup-self")
    assert resp is not None and resp.data is not None
    d = resp.data
    assert d["id"] == web.token and d["accessor"] == web.entry.accessor
    assert d["display_name"] == "token-My-App" and d["path"] == "auth/token/create"
    assert d["ttl"] == 7200 - 37 and d["creation_ttl"] == 7200 and d["orphan"] is False
    assert d["policies"] == ["default", "web"] and d["renewable"] is True
    for op, data in ((Op.UPDATE, {"token": web.token}), (Op.READ, {"token": web.token})):
        other = await as_root(op, "lookup", data)
        assert other is not None and other.data == d
    own = await as_root(Op.UPDATE, "lookup", {})  # no token: the caller's own
    assert own is not None and own.data is not None and own.data["id"] == "root"
    err = await fails(as_root, Op.UPDATE, "lookup", {"token": "hvs.nonexistent"})
    assert isinstance(err, PermissionDenied) and err.message == "bad token"


async def test_lookup_accessor(as_root: Caller) -> None:
    web = await as_root.create({"policies": ["web"]})
    resp = await as_root(Op.UPDATE, "lookup-accessor", {"accessor": web.entry.accessor})
    assert resp is not None and resp.data is not None
    assert resp.data["id"] == "" and resp.data["accessor"] == web.entry.accessor
    assert (await fails(as_root, Op.UPDATE, "lookup-accessor", {"accessor": "nope"})).message == "invalid accessor"
    assert (await fails(as_root, Op.UPDATE, "lookup-accessor", {})).message == "missing accessor"


async def test_renew_endpoints(as_root: Caller, clock: Clock) -> None:
    web = await as_root.create({"policies": ["web"], "ttl": "1h"})
    resp = await as_root(Op.UPDATE, "renew", {"token": web.token})
    assert resp is not None and resp.auth is not None
    assert resp.auth.lease_duration == 3600 and resp.auth.client_token == web.token
    resp = await as_root(Op.UPDATE, "renew", {"token": web.token, "increment": "2h"})
    assert resp is not None and resp.auth is not None and resp.auth.lease_duration == 7200
    resp = await web(Op.UPDATE, "renew-self", {"increment": "30m"})
    assert resp is not None and resp.auth is not None and resp.auth.lease_duration == 1800
    clock.advance(1)
    looked = await web(Op.READ, "lookup-self")
    assert looked is not None and looked.data is not None
    assert looked.data["ttl"] == 1799 and looked.data["creation_ttl"] == 3600 and "last_renewal" in looked.data
    resp = await as_root(Op.UPDATE, "renew-accessor", {"accessor": web.entry.accessor, "increment": "10000h"})
    assert resp is not None and resp.auth is not None
    assert resp.auth.client_token == "" and resp.auth.lease_duration == H768 - 1
    assert "exceeded the effective max_ttl" in resp.warnings[0]


@pytest.mark.parametrize(("path", "data", "message"), [
    ("renew", {}, "missing token ID"),
    ("renew", {"token": "hvs.nope"}, "token not found"),
    ("renew-self", {}, "lease is not renewable"),
    ("renew-accessor", {"accessor": "nope"}, "invalid accessor"),
])
async def test_renew_errors(as_root: Caller, path: str, data: dict[str, Any], message: str) -> None:
    err = await fails(as_root, Op.UPDATE, path, data)
    assert err.status_code == 400 and err.message == message


async def test_revoke_endpoints(as_root: Caller, backend: TokenBackend) -> None:
    store = backend.store
    parent = await as_root.create({"policies": ["web"]})
    child = await parent.create()
    grandchild = await child.create()
    assert await as_root(Op.UPDATE, "revoke", {"token": parent.token}) is None
    for c in (parent, child, grandchild):
        assert await store.lookup(c.token) is None
    assert await as_root(Op.UPDATE, "revoke", {"token": "hvs.nope"}) is None  # silent, as OpenBao
    assert (await fails(as_root, Op.UPDATE, "revoke", {})).message == "missing token ID"

    me = await as_root.create({"policies": ["web"]})
    assert await me(Op.UPDATE, "revoke-self") is None
    assert await store.lookup(me.token) is None

    victim = await as_root.create({"policies": ["web"]})
    assert await as_root(Op.UPDATE, "revoke-accessor", {"accessor": victim.entry.accessor}) is None
    assert await store.lookup(victim.token) is None
    resp = await as_root(Op.UPDATE, "revoke-accessor", {"accessor": victim.entry.accessor})
    assert resp is not None and resp.warnings == ["No token found with this accessor"]
    assert (await fails(as_root, Op.UPDATE, "revoke-accessor", {})).message == "missing accessor"


async def test_revoke_orphan_endpoint(as_root: Caller, backend: TokenBackend) -> None:
    parent = await as_root.create({"policies": ["web"]})
    child = await parent.create()
    grandchild = await child.create()
    err = await fails(parent, Op.UPDATE, "revoke-orphan", {"token": parent.token})
    assert err.status_code == 400 and err.message == "root or sudo privileges required to revoke and orphan"
    assert await as_root(Op.UPDATE, "revoke-orphan", {"token": parent.token}) is None
    assert await backend.store.lookup(parent.token) is None
    c = await backend.store.lookup(child.token)
    assert c is not None and c.orphan
    g = await backend.store.lookup(grandchild.token)
    assert g is not None and not g.orphan
    err = await fails(as_root, Op.UPDATE, "revoke-orphan", {"token": "hvs.nope"})
    assert err.message == "token to revoke not found"


async def test_num_uses_through_the_pipeline_steps(as_root: Caller, store: TokenStore) -> None:
    limited = await as_root.create({"policies": ["web"], "num_uses": 2})
    seen = []
    for _ in range(2):
        entry = await store.lookup(limited.token)  # core: authenticate
        assert entry is not None
        last = await store.use(entry)  # core: spend a use before routing
        limited.entry = entry
        resp = await limited(Op.READ, "lookup-self")
        assert resp is not None and resp.data is not None
        seen.append(resp.data["num_uses"])
        if last:
            await store.revoke(entry)  # core: after the request
    assert seen == [1, -1]  # OpenBao shows -1 during the last use
    assert await store.lookup(limited.token) is None


async def test_list_accessors_and_tidy(as_root: Caller, root: Any) -> None:
    web = await as_root.create({"policies": ["web"]})
    resp = await as_root(Op.LIST, "accessors/")
    assert resp is not None and resp.data is not None
    assert sorted(resp.data["keys"]) == sorted([root[1].accessor, web.entry.accessor])
    tidy = await as_root(Op.UPDATE, "tidy")
    assert tidy is not None and tidy.status == 202 and tidy.warnings


async def test_missing_policies_are_warned_about(store: TokenStore, root: Any) -> None:
    from strongroom.core.tokens import token_backend
    from strongroom.framework import BackendConfig, Request

    async def exists(name: str) -> bool:
        return name == "web"

    backend = token_backend(store, BackendConfig(mount_path="auth/token/"), policy_exists=exists)
    req = Request(Op.UPDATE, "create", data={"policies": ["web", "stage"]}, client_token="root",
                  token_entry=root[1], sudo=True)
    resp = await backend.handle(req)
    assert resp is not None and resp.warnings == ['Policy "stage" does not exist']


async def test_a_limited_use_token_creates_no_tokens(as_root: Caller, store: TokenStore) -> None:
    # A child (or orphan) of a limited token would escape its count (OpenBao: 400, same wording).
    limited = await as_root.create({"policies": ["web"], "num_uses": 3})
    before = sorted(await store.list_accessors())
    for path in ("create", "create-orphan"):
        entry = await store.lookup(limited.token)
        assert entry is not None
        assert not await store.use(entry)  # core spends the use before routing: uses remain
        limited.entry = entry
        err = await fails(limited, Op.UPDATE, path, {"num_uses": 0})
        assert isinstance(err, InvalidRequest)
        assert err.message == "restricted use token cannot generate child tokens"
    entry = await store.lookup(limited.token)
    assert entry is not None and await store.use(entry)  # its last use: OpenBao no longer finds it
    limited.entry = entry
    err = await fails(limited, Op.UPDATE, "create")
    assert isinstance(err, InvalidRequest) and err.message == "parent token lookup failed: no parent found"
    assert sorted(await store.list_accessors()) == before  # nothing was minted


async def test_policy_names_are_lowercased_as_openbao_does(as_root: Caller, store: TokenStore) -> None:
    a = (await auth_of(as_root, {"policies": ["Narrow", " Wide ", "DEFAULT"]})).auth
    assert a.policies == a.token_policies == ["default", "narrow", "wide"]
    # A plain caller asking for its own policy in another case is within the subset rule ...
    narrow = await as_root.create({"policies": ["narrow"]})
    child = (await auth_of(narrow, {"policies": ["NARROW"]})).auth
    assert child.policies == ["default", "narrow"]
    # ... and "ROOT" is root, which only a root caller may hand out.
    err = await fails(narrow, Op.UPDATE, "create", {"policies": ["ROOT"]})
    assert isinstance(err, InvalidRequest)
    # Roles keep their lists lowercase too, so they match.
    await as_root(Op.UPDATE, "roles/r1", {"allowed_policies": ["Narrow", "Other"], "disallowed_policies": ["BAD"]})
    role = await as_root(Op.READ, "roles/r1")
    assert role is not None and role.data is not None
    assert (role.data["allowed_policies"], role.data["disallowed_policies"]) == (["narrow", "other"], ["bad"])
    assert (await auth_of(as_root, {"policies": ["NARROW"]}, "create/r1")).auth.policies == ["default", "narrow"]
