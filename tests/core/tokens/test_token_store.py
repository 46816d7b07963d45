"""TokenStore: hashing, lookup and its cache, use counts, expiry, renew, tree revocation."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from strongroom.core.tokens import TokenEntry, TokenStore
from strongroom.core.tokens.store import ACCESSOR_PREFIX, ID_PREFIX, PARENT_PREFIX
from strongroom.errors import InvalidRequest, PermissionDenied

T0 = 1_800_000_000.25  # the clock fixture's start
H768 = 768 * 3600  # the store fixture's default and max TTL
# conftest fixture types (tests cannot import conftest reliably)
Clock = Any
RecordingStorage = Any
MakeStore = Any


async def test_salt_is_created_once_and_reused(storage: RecordingStorage, make_store: MakeStore,
                                                storage_class: Any) -> None:
    a = await make_store(storage)
    salt = await storage.get("sys/token/salt")
    assert salt is not None and len(salt) == 32
    b = await make_store(storage)
    assert await storage.get("sys/token/salt") == salt
    assert a.hash("hvs.x") == b.hash("hvs.x")
    assert re.fullmatch(r"[0-9a-f]{64}", a.hash("hvs.x"))
    other = await make_store(storage_class())
    assert other.hash("hvs.x") != a.hash("hvs.x")  # salted: the same token hashes differently


async def test_token_and_accessor_format(store: TokenStore) -> None:
    token, entry = await store.create(policies=["web"], path="auth/token/create")
    assert re.fullmatch(r"hvs\.[0-9A-Za-z]{24}", token)
    assert re.fullmatch(r"[0-9A-Za-z]{24}", entry.accessor)
    assert entry.id == store.hash(token)
    assert entry.policies == ["default", "web"]
    assert await store.lookup(token) == entry
    assert await store.lookup("hvs.unknown") is None
    assert await store.lookup("") is None


async def test_raw_tokens_and_accessors_never_reach_storage(store: TokenStore, storage: RecordingStorage) -> None:
    tokens: list[str] = []
    accessors: list[str] = []
    root, r = await store.create_root("my-dev-root")
    tokens.append(root)
    parent_token, parent = await store.create(policies=["a"], path="p", ttl=60, num_uses=3, parent=r)
    child_token, child = await store.create(policies=["a"], path="p", ttl=60, parent=parent)
    tokens += [parent_token, child_token]
    accessors += [r.accessor, parent.accessor, child.accessor]
    await store.use(parent)
    await store.renew(parent, 30)
    await store.revoke(parent, orphan_children=True)
    assert storage.written
    for key, value in storage.written:
        for t in tokens:
            assert t not in key and t.encode() not in value, (key, value)
        for a in accessors:
            assert a not in key, key  # accessors are hashed in keys (values may hold them)


async def test_lookup_is_served_from_the_cache(store: TokenStore, storage: RecordingStorage,
                                               make_store: MakeStore) -> None:
    token, _ = await store.create(policies=["a"], path="p", ttl=60)
    # A fresh store over the same storage has an empty cache: the first lookup reads, later ones don't.
    fresh = await make_store(storage)
    assert await fresh.lookup(token) is not None
    reads = storage.gets
    for _ in range(100):
        assert await fresh.lookup(token) is not None
    assert storage.gets == reads


async def test_creating_tokens_does_not_fill_the_cache(store: TokenStore) -> None:
    # Memory: a burst of creates or logins whose tokens are never presented costs no cache space.
    made = [await store.create(policies=["a"], path="p", ttl=60) for _ in range(20)]
    assert len(store._cache) == 0
    assert await store.lookup(made[0][0]) is not None
    assert list(store._cache) == [made[0][1].id]


async def test_cache_is_bounded_and_misses_fall_back_to_storage(storage: RecordingStorage,
                                                                make_store: MakeStore) -> None:
    store = await make_store(storage, cache_size=3)
    made = [await store.create(policies=["a"], path="p") for _ in range(10)]
    for token, entry in made:
        found = await store.lookup(token)
        assert found is not None and found.id == entry.id
        assert len(store._cache) <= 3


async def test_lookup_stays_correct_after_revoke(store: TokenStore) -> None:
    token, entry = await store.create(policies=["a"], path="p")
    assert await store.lookup(token) is not None  # now cached
    await store.revoke(entry)
    assert await store.lookup(token) is None
    assert await store.lookup_accessor(entry.accessor) is None


async def test_concurrent_cache_fill_cannot_resurrect_a_revoked_token(storage_class: Any,
                                                                      make_store: MakeStore) -> None:
    class Slow(storage_class):  # type: ignore[misc]
        async def get(self, key: str) -> bytes | None:
            value: bytes | None = await super().get(key)
            await asyncio.sleep(0)  # let the revocation interleave with the read
            return value

    slow = Slow()
    writer = await make_store(slow)
    token, _ = await writer.create(policies=["a"], path="p")
    store = await make_store(slow)  # empty cache: lookups must go to storage
    entry = await store.lookup(token)
    assert entry is not None
    store._cache.clear()
    results = await asyncio.gather(*(store.lookup(token) for _ in range(3)), store.revoke(entry),
                                   *(store.lookup(token) for _ in range(3)))
    assert results[-1] is None
    assert await store.lookup(token) is None
    assert entry.id not in store._cache


async def test_num_uses_counts_down_and_the_last_use_is_reported(store: TokenStore, storage: RecordingStorage,
                                                               make_store: MakeStore) -> None:
    token, entry = await store.create(policies=["a"], path="p", num_uses=2)
    assert await store.use(entry) is False
    assert entry.num_uses == 1
    again = await make_store(storage)  # persisted, not just cached
    persisted = await again.lookup(token)
    assert persisted is not None and persisted.num_uses == 1
    assert await store.use(entry) is True
    assert entry.num_uses == -1  # shown as -1 to lookup-self during the last use, as Vault does
    assert await store.lookup(token) is None  # no other request may use it
    with pytest.raises(PermissionDenied):
        await store.use(entry)
    await store.revoke(entry)
    assert await storage.get("sys/token/" + ID_PREFIX + entry.id) is None


async def test_unlimited_tokens_are_used_without_io(store: TokenStore, storage: RecordingStorage) -> None:
    _, entry = await store.create(policies=["a"], path="p")
    before = (len(storage.written), storage.gets)
    assert await store.use(entry) is False
    assert (len(storage.written), storage.gets) == before


async def test_concurrent_last_use_is_granted_once(store: TokenStore) -> None:
    _, entry = await store.create(policies=["a"], path="p", num_uses=1)
    results = await asyncio.gather(store.use(entry), store.use(entry), return_exceptions=True)
    assert sorted(map(repr, results)) == sorted([repr(True), repr(PermissionDenied())])


async def test_expired_token_is_invisible_and_revoked_in_background(store: TokenStore, clock: Clock,
                                                                   storage: RecordingStorage) -> None:
    revoked: list[str] = []

    async def hook(e: TokenEntry) -> None:
        revoked.append(e.id)

    store.add_revoke_hook(hook)
    token, entry = await store.create(policies=["a"], path="p", ttl=10)
    child_token, child = await store.create(policies=["a"], path="p", ttl=100, parent=entry)
    clock.advance(9.9)
    assert await store.lookup(token) == entry
    clock.advance(0.2)
    assert await store.lookup(token) is None
    await store.drain()
    assert set(revoked) == {entry.id, child.id}  # its children go with it
    assert await storage.keys("sys/token/id/") == []
    assert await store.lookup(child_token) is None


async def test_a_standby_sees_an_expired_token_as_gone_and_writes_nothing(
        store: TokenStore, clock: Clock, storage: RecordingStorage, make_store: MakeStore) -> None:
    """An HA standby (set up, never activated) may look tokens up to answer reads itself; revoking
    an expired one is the active's work (its expiration), never a standby's write."""
    token, entry = await store.create(policies=["a"], path="p", ttl=10)
    standby: TokenStore = await make_store(storage)
    await standby.deactivate()  # as a node that stepped down: set up again, not activated
    await standby.setup()
    clock.advance(11)
    assert await standby.lookup(token) is None
    await standby.drain()
    assert await storage.keys("sys/token/id/") == ["sys/token/id/" + entry.id]  # nothing written


async def test_revoke_tree_leaves_first_and_cleans_every_record(store: TokenStore, storage: RecordingStorage) -> None:
    order: list[str] = []

    async def hook(e: TokenEntry) -> None:
        order.append(e.path)

    store.add_revoke_hook(hook)
    ptok, parent = await store.create(policies=["a"], path="parent")
    ctok, child = await store.create(policies=["a"], path="child", parent=parent)
    gtok, _ = await store.create(policies=["a"], path="grandchild", parent=child)
    otok, _ = await store.create(policies=["a"], path="other")
    await store.revoke(parent)
    assert order == ["grandchild", "child", "parent"]
    for t in (ptok, ctok, gtok):
        assert await store.lookup(t) is None
    assert await store.lookup(otok) is not None
    remaining = await storage.keys("sys/token/")
    assert [k for k in remaining if k.startswith("sys/token/" + PARENT_PREFIX)] == []
    assert len([k for k in remaining if k.startswith("sys/token/" + ID_PREFIX)]) == 1
    assert len([k for k in remaining if k.startswith("sys/token/" + ACCESSOR_PREFIX)]) == 1


async def test_revoking_a_deep_tree_is_not_recursion_limited(store: TokenStore) -> None:
    _, top = await store.create(policies=["a"], path="p")
    entry = top
    tokens = []
    for _ in range(1500):
        token, entry = await store.create(policies=["a"], path="p", parent=entry)
        tokens.append(token)
    await store.revoke(top)
    assert await store.lookup(tokens[-1]) is None
    assert await store.lookup(tokens[700]) is None


async def test_revoke_orphan_keeps_children_as_orphans(store: TokenStore, storage: RecordingStorage,
                                                      make_store: MakeStore) -> None:
    _, parent = await store.create(policies=["a"], path="p")
    ctok, child = await store.create(policies=["a"], path="p", parent=parent)
    gtok, _grandchild = await store.create(policies=["a"], path="p", parent=child)
    await store.revoke(parent, orphan_children=True)
    found = await store.lookup(ctok)
    assert found is not None and found.orphan and found.parent == ""
    fresh = await make_store(storage)  # the orphaning was persisted
    persisted = await fresh.lookup(ctok)
    assert persisted is not None and persisted.orphan
    g = await store.lookup(gtok)
    assert g is not None and g.parent == child.id  # only direct children are orphaned
    assert await storage.keys(f"sys/token/{PARENT_PREFIX}{parent.id}/") == []


async def test_revoke_is_idempotent_and_a_dead_parent_gets_no_children(store: TokenStore) -> None:
    _, parent = await store.create(policies=["a"], path="p")
    attempts: list[str] = []

    async def hook(e: TokenEntry) -> None:
        # During revocation the parent is already dead: it cannot gain a child that would escape.
        with pytest.raises(PermissionDenied):
            await store.create(policies=["a"], path="p", parent=e)
        attempts.append(e.id)

    store.add_revoke_hook(hook)
    await store.revoke(parent)
    await store.revoke(parent)  # already gone: no error, hooks not run again
    assert attempts == [parent.id]


async def test_accessor_lookup_and_listing(store: TokenStore) -> None:
    _, a = await store.create(policies=["a"], path="p")
    _, b = await store.create(policies=["b"], path="p")
    assert await store.lookup_accessor(a.accessor) == a
    assert await store.lookup_accessor("nope") is None
    assert await store.lookup_accessor("") is None
    assert sorted(await store.list_accessors()) == sorted([a.accessor, b.accessor])


async def test_renew_from_now_and_capped_by_mount_max(store: TokenStore, clock: Clock) -> None:
    _token, entry = await store.create(policies=["a"], path="p", ttl=3600)
    clock.advance(1000)
    await store.renew(entry, 0)  # 0: the token's own TTL
    assert entry.expire_time == pytest.approx(clock.now + 3600)
    assert entry.last_renewal == clock.now
    assert entry.ttl == 3600  # creation TTL is unchanged
    warnings: list[str] = []
    await store.renew(entry, 10 * H768, warnings)
    assert entry.expire_time == pytest.approx(T0 + H768, abs=1)  # never past issue + mount max
    assert warnings == ['TTL of "7680h" exceeded the effective max_ttl of "768h"; TTL value is capped accordingly']


async def test_renew_periodic_and_explicit_max(store: TokenStore, clock: Clock) -> None:
    _, periodic = await store.create(policies=["a"], path="p", ttl=3600, period=3600)
    clock.advance(3000)
    await store.renew(periodic, 60)  # the period wins over the increment
    assert periodic.expire_time == pytest.approx(clock.now + 3600)
    _, capped = await store.create(policies=["a"], path="p", ttl=3600, explicit_max_ttl=5000)
    clock.advance(3000)
    warnings: list[str] = []
    await store.renew(capped, 3600, warnings)
    assert capped.expire_time == pytest.approx(capped.issue_time + 5000, abs=1)
    assert warnings and '"1h23m20s"' in warnings[0]


async def test_renew_refuses_unrenewable_tokens(store: TokenStore) -> None:
    _, root = await store.create_root()
    with pytest.raises(InvalidRequest, match="lease is not renewable"):
        await store.renew(root, 60)
    _, fixed = await store.create(policies=["a"], path="p", ttl=60, renewable=False)
    with pytest.raises(InvalidRequest, match="lease is not renewable"):
        await store.renew(fixed, 60)


async def test_create_root(store: TokenStore, clock: Clock) -> None:
    token, entry = await store.create_root()
    assert token.startswith("hvs.") and entry.policies == ["root"] and entry.orphan
    assert entry.expire_time == 0 and not entry.renewable
    data = entry.to_lookup_data(clock(), token)
    assert data["path"] == "auth/token/root" and data["display_name"] == "root"
    assert "issue_time" not in data and "renewable" not in data  # init's root token has no lease
    dev, dev_entry = await store.create_root("root")
    assert dev == "root" and await store.lookup("root") == dev_entry
    dev_data = dev_entry.to_lookup_data(clock(), dev)
    assert dev_data["path"] == "auth/token/create" and dev_data["renewable"] is False
    with pytest.raises(InvalidRequest, match="duplicate ID"):
        await store.create_root("root")


@pytest.mark.parametrize(("token_id", "message"), [
    ("my.id", "custom token ID cannot have a '.' in the value"),
    ("s.abc", "custom token ID cannot have the 's.' prefix"),
    ("hvs.abc", "custom token ID cannot have the 'hvs.' prefix"),
])
async def test_custom_ids_are_validated(store: TokenStore, token_id: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        await store.create(policies=["a"], path="p", token_id=token_id)
    assert err.value.message == message


async def test_policies_are_sanitized(store: TokenStore) -> None:
    _, a = await store.create(policies=["b", "a", "b", " "], path="p")
    assert a.policies == ["a", "b", "default"]
    _, b = await store.create(policies=["b"], path="p", no_default_policy=True)
    assert b.policies == ["b"]
    _, r = await store.create(policies=["root", "web"], path="p")
    assert r.policies == ["root"]  # never "default" next to root
    with pytest.raises(InvalidRequest, match="number of uses cannot be negative"):
        await store.create(policies=["a"], path="p", num_uses=-1)


async def test_renew_check_can_refuse_and_changes_nothing(store: TokenStore, clock: Clock) -> None:
    seen: list[str] = []

    async def check(entry: TokenEntry) -> None:
        seen.append(entry.path)
        if entry.path.startswith("auth/ldap/"):
            raise InvalidRequest("user no longer exists")

    store.add_renew_check(check)
    _, ok = await store.create(policies=["a"], path="auth/userpass/login/x", ttl=3600)
    _, refused = await store.create(policies=["a"], path="auth/ldap/login/y", ttl=3600)
    clock.advance(100)
    before = refused.expire_time
    await store.renew(ok, 0)
    with pytest.raises(InvalidRequest, match="user no longer exists"):
        await store.renew(refused, 0)
    assert refused.expire_time == before and refused.last_renewal == 0
    assert seen == ["auth/userpass/login/x", "auth/ldap/login/y"]


async def test_internal_data_of_a_login_is_kept_with_the_entry_and_never_shown() -> None:
    """Vault's Auth.InternalData: what an auth method keeps for renewals (a GitHub token) is
    stored with the token entry, handed back to the method on renew, and absent from lookups."""
    from strongroom.core.tokens.entry import TokenEntry

    entry = TokenEntry(id="h", accessor="a", meta={"u": "x"}, internal={"token": "gh-secret"})
    assert TokenEntry.from_json(entry.to_json()).internal == {"token": "gh-secret"}
    assert entry.to_auth("").internal_data == {"token": "gh-secret"}
    assert "internal" not in TokenEntry(id="h", accessor="a").to_json()  # old entries read the same
    assert TokenEntry.from_json({"id": "h", "accessor": "a"}).internal == {}
