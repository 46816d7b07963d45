"""TokenStore: token entries, accessors, the parent/child tree, lookup, use counting, renew, revoke.

The records (storage layout, salted hashing, cache, locks) are in records.py and revocation (tree,
background expiry, quarantine) in revocation.py; TokenStore builds on both and is what core uses.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from strongroom.audit.mac import KeyedSha256
from strongroom.core.tokens.entry import (
    NUM_USES_EXHAUSTED,
    NUM_USES_REVOKING,
    RESERVED_ID_PREFIXES,
    TokenEntry,
    new_service_token,
    random_base62,
    sanitize_policies,
)
from strongroom.core.tokens.records import (
    ACCESSOR_PREFIX,
    DEFAULT_CACHE_SIZE,
    ID_PREFIX,
    PARENT_PREFIX,
    ROLE_PREFIX,
    SALT_KEY,
)
from strongroom.core.tokens.revocation import Births, RevokeHook, TokenRevocation
from strongroom.core.tokens.roles import TokenRole
from strongroom.core.tokens.ttl import renewal_ttl
from strongroom.errors import InvalidRequest, PermissionDenied
from strongroom.framework.salt import load_or_create_secret
from strongroom.lifecycle import Part
from strongroom.logical import Storage, WriteBatch

# Called after a token's expire_time changed (renewal), e.g. to move its lease.
TokenHook = Callable[[TokenEntry], Awaitable[None]]
# Called while a token is being created, to add writes (its lease) to the token's own batch.
CreateHook = Callable[[TokenEntry, WriteBatch], Awaitable[None]]


class TokenStore(TokenRevocation, Part):
    """All token state; core builds it once, with the token mount's TTLs, and drives its lifecycle.

    Concurrency: everything runs on one event loop. The in-memory cache holds the one canonical
    TokenEntry per token; any read-modify-write of an entry (use, renew, revoke) and any cache
    fill from storage happens under that token's lock stripe, so a revocation can never be undone
    by a concurrent cache fill that read the record just before it was deleted.
    """

    def __init__(
        self,
        view: Storage,
        *,
        default_ttl: Callable[[], int],
        max_ttl: Callable[[], int],
        clock: Callable[[], float] = time.time,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        super().__init__(view, cache_size=cache_size)
        # Activated (the active node, or no HA): expired tokens a lookup finds are revoked here.
        self._active = False
        self.default_ttl = default_ttl
        self.max_ttl = max_ttl
        self.clock = clock
        self._create_hooks: list[CreateHook] = []
        self._renew_hooks: list[TokenHook] = []
        self._renew_checks: list[TokenHook] = []

    async def setup(self) -> None:
        """Load the salt, creating it on first use; nothing cached before a seal survives it."""
        self._cache.clear()
        self.generation += 1
        self._mac = KeyedSha256(await load_or_create_secret(self._view, SALT_KEY))

    async def activate(self) -> None:
        self._active = True

    async def deactivate(self) -> None:
        """Wait for background revocations, then forget every cached token."""
        self._active = False
        await self.drain()
        self._cache.clear()
        self.generation += 1

    async def invalidate(self, key: str) -> None:
        """A token's record changed elsewhere (``key`` relative to this store's view)."""
        if key.startswith(ID_PREFIX):
            self._cache.pop(key[len(ID_PREFIX):], None)
            self.generation += 1
        elif key == SALT_KEY:
            await self.setup()

    def add_create_hook(self, fn: CreateHook) -> None:
        """``fn(entry, batch)`` is awaited for every new token before its batch commits: writes it
        adds to ``batch`` become durable with the token. It must not write on its own."""
        self._create_hooks.append(fn)

    def add_renew_check(self, fn: TokenHook) -> None:
        """``fn(entry)`` is awaited before a renewal; raising refuses it (nothing is changed)."""
        self._renew_checks.append(fn)

    def add_renew_hook(self, fn: TokenHook) -> None:
        """``fn(entry)`` is awaited after every renewal has moved a token's expire_time."""
        self._renew_hooks.append(fn)

    # -- lookup (the hot path) ------------------------------------------------------------------
    async def lookup(self, token: str) -> TokenEntry | None:
        """The live entry for a raw token, or None (unknown, expired, used up, being revoked).

        A cache hit costs one HMAC and one dict probe; nothing here grows with the token count.
        The returned entry is the shared canonical object: read it, never mutate it.
        """
        if not token:
            return None
        token_id = self.hash(token)
        return self._live(self._cache.get(token_id) or await self._load(token_id))

    async def lookup_id(self, token_id: str) -> TokenEntry | None:
        """As :meth:`lookup`, by the token's hash."""
        return self._live(self._cache.get(token_id) or await self._load(token_id))

    def _live(self, entry: TokenEntry | None) -> TokenEntry | None:
        if entry is None or entry.num_uses < 0:
            return None
        if entry.is_expired(self.clock()):
            if self._active:  # an HA standby writes nothing: the active's expiration revokes it
                self._revoke_in_background(entry)
            return None
        return entry

    async def lookup_accessor(self, accessor: str) -> TokenEntry | None:
        if not accessor:
            return None
        raw = await self._view.get(ACCESSOR_PREFIX + self.hash(accessor))
        if raw is None:
            return None
        return await self.lookup_id(str(orjson.loads(raw)["token_id"]))

    async def list_accessors(self) -> list[str]:
        """Every accessor (sudo-only endpoint; reads one record per token, as Vault's does)."""
        out: list[str] = []
        for key in await self._view.list(ACCESSOR_PREFIX):
            raw = await self._view.get(ACCESSOR_PREFIX + key)
            if raw is not None:
                out.append(str(orjson.loads(raw)["accessor"]))
        return out

    # -- create ---------------------------------------------------------------------------------
    async def create(
        self, *, policies: list[str], path: str, parent: TokenEntry | None = None,
        no_default_policy: bool = False, display_name: str = "token", meta: dict[str, str] | None = None,
        ttl: int = 0, explicit_max_ttl: int = 0, period: int = 0, renewable: bool = True, num_uses: int = 0,
        entity_id: str = "", role: str = "", bound_cidrs: list[str] | None = None, token_id: str | None = None,
        max_ttl: int = 0, source_addr: str = "", creator: str = "", internal: dict[str, Any] | None = None,
    ) -> tuple[str, TokenEntry]:
        """Mint and persist a token; returns (raw token, entry).

        ``policies`` are sorted and de-duplicated, with "default" added unless
        ``no_default_policy`` (pass True to store a list already resolved by the caller). ``ttl``
        is final (see ttl.py); 0 means the token never expires. ``token_id`` is a caller-chosen
        token (the create endpoint allows it to root/sudo callers only).
        """
        if num_uses < 0:
            raise InvalidRequest("number of uses cannot be negative")
        if token_id:
            if token_id.startswith(RESERVED_ID_PREFIXES):
                raise InvalidRequest(f"custom token ID cannot have the '{token_id.split('.')[0]}.' prefix")
            if "." in token_id:
                raise InvalidRequest("custom token ID cannot have a '.' in the value")
        token = token_id or new_service_token()
        now = self.clock()
        entry = TokenEntry(
            id=self.hash(token),
            accessor=random_base62(),
            parent=parent.id if parent is not None else "",
            policies=sanitize_policies(policies, add_default=not no_default_policy),
            path=path,
            meta=dict(meta or {}),
            display_name=display_name,
            num_uses=num_uses,
            creation_time=int(now),
            ttl=ttl,
            explicit_max_ttl=explicit_max_ttl,
            period=period,
            # A token that never expires has nothing to renew.
            renewable=renewable and ttl > 0,
            entity_id=entity_id,
            role=role,
            bound_cidrs=list(bound_cidrs or []),
            expire_time=now + ttl if ttl > 0 else 0.0,
            issue_time=now,
            max_ttl=max_ttl,
            source_addr=source_addr,
            creator=creator,
            internal=dict(internal or {}),
        )
        if parent is None:
            await self._persist_new(entry, custom=bool(token_id))
            return token, entry
        # Registered as a birth under the parent's lock: a concurrent revocation of the parent
        # either has marked it dead already (and we refuse), or waits for this child to be
        # persisted before it lists the parent's children (and so revokes it). The lock itself
        # is not held across the commit, so creates by one parent do not queue behind each other.
        async with self._lock(parent.id):
            current = self._cache.get(parent.id) or await self._read(parent.id)
            if current is None or current.num_uses == NUM_USES_REVOKING:
                raise PermissionDenied("parent token is being revoked")
            births = self._births.get(parent.id)
            if births is None:
                births = self._births[parent.id] = Births()
            births.count += 1
        try:
            await self._persist_new(entry, custom=bool(token_id))
        finally:
            births.count -= 1
            if births.count == 0:
                del self._births[parent.id]
                births.done.set()
        return token, entry

    @staticmethod
    async def _run(hooks: list[TokenHook], entry: TokenEntry) -> None:
        for fn in hooks:
            await fn(entry)

    async def create_root(self, token: str | None = None) -> tuple[str, TokenEntry]:
        """A root token: policy root, no TTL, no parent. ``token`` is ``server -dev
        -dev-root-token-id``'s chosen value; without it (init) a random token is generated."""
        if token is not None:
            return await self.create(policies=["root"], path="auth/token/create", token_id=token)
        token, entry = await self.create(policies=["root"], path="auth/token/root", display_name="root")
        # Vault registers no lease for the init root token, so its lookup shows no issue time.
        entry.issue_time = 0.0
        await self._write(entry)
        return token, entry

    async def _persist_new(self, entry: TokenEntry, *, custom: bool) -> None:
        """The token's records and whatever the create hooks add (its lease) in ONE batch: one
        durable commit, atomic where storage is (sqlite), so a token never exists without its
        indexes or its lease. A caller-chosen id is checked and written under its own lock."""
        if not custom:
            await self._commit_new(entry)
            return
        async with self._lock(entry.id):
            if await self._view.get(ID_PREFIX + entry.id) is not None:
                raise InvalidRequest("cannot create a token with a duplicate ID")
            await self._commit_new(entry)

    async def _commit_new(self, entry: TokenEntry) -> None:
        # Indexes first, the authoritative id record last, then the hooks' writes (the lease): where
        # storage applies a batch write by write, a crash leaves only dangling index records, which
        # revocation tolerates, never a token missing from its parent's tree.
        batch = WriteBatch()
        record = orjson.dumps({"token_id": entry.id, "accessor": entry.accessor})
        batch.put(self._view, ACCESSOR_PREFIX + self.hash(entry.accessor), record)
        if entry.parent:
            batch.put(self._view, f"{PARENT_PREFIX}{entry.parent}/{entry.id}", b"")
        batch.put(self._view, ID_PREFIX + entry.id, orjson.dumps(entry.to_json()))
        for hook in self._create_hooks:
            await hook(entry, batch)
        await batch.commit()
        # Not cached here: the cache holds tokens that are used (lookup fills it). A burst of
        # creates (logins by clients that may never call back) must not grow memory by ~1 KB each.

    # -- use counting ---------------------------------------------------------------------------
    async def use(self, entry: TokenEntry) -> bool:
        """Spend one use of a limited-use token. True when this was its last: core revokes it once
        the request completes. Raises PermissionDenied if another request spent it already."""
        if entry.num_uses == 0:
            return False  # unlimited: no I/O on the hot path
        async with self._lock(entry.id):
            canon = self._cache.get(entry.id) or await self._read(entry.id)
            if canon is None or canon.num_uses < 0:
                raise PermissionDenied()
            last = canon.num_uses == 1
            canon.num_uses = NUM_USES_EXHAUSTED if last else canon.num_uses - 1
            await self._write(canon)
            self._cache_put(canon)
            entry.num_uses = canon.num_uses
        return last

    # -- renew ----------------------------------------------------------------------------------
    async def renew(self, entry: TokenEntry, increment: int, warnings: list[str] | None = None) -> TokenEntry:
        """Extend the token's life from now (Vault's TTL math, see ttl.renewal_ttl); capping
        warnings are appended to ``warnings``. Role tokens take period and explicit max from
        their role as it is now."""
        if not entry.renewable or not entry.expire_time:
            raise InvalidRequest("lease is not renewable")
        await self._run(self._renew_checks, entry)
        period, explicit = entry.period, entry.explicit_max_ttl
        if entry.role:
            role = await self.get_role(entry.role)
            if role is not None:
                period = role.token_period or period
                if role.token_explicit_max_ttl and (not explicit or role.token_explicit_max_ttl < explicit):
                    explicit = role.token_explicit_max_ttl
        async with self._lock(entry.id):
            canon = self._cache.get(entry.id) or await self._read(entry.id)
            now = self.clock()
            if canon is None or canon.num_uses == NUM_USES_REVOKING or canon.is_expired(now):
                raise InvalidRequest("token not found")
            mount_max = self.max_ttl()
            if canon.max_ttl and (not mount_max or canon.max_ttl < mount_max):
                mount_max = canon.max_ttl
            ttl, warned = renewal_ttl(
                increment=increment, token_ttl=canon.ttl, period=period, explicit_max_ttl=explicit,
                max_ttl=mount_max, issued_at=canon.issue_time or canon.creation_time, now=now)
            canon.expire_time = now + ttl
            canon.last_renewal = now
            await self._write(canon)
            self._cache_put(canon)
            # The caller's copy (e.g. the entry create returned, which is not cached) sees it too.
            entry.expire_time, entry.last_renewal = canon.expire_time, canon.last_renewal
        await self._run(self._renew_hooks, canon)
        if warnings is not None:
            warnings.extend(warned)
        return canon

    # -- roles ----------------------------------------------------------------------------------
    async def get_role(self, name: str) -> TokenRole | None:
        raw = await self._view.get(ROLE_PREFIX + name)
        return TokenRole.from_json(orjson.loads(raw)) if raw is not None else None

    async def put_role(self, role: TokenRole) -> None:
        await self._view.put(ROLE_PREFIX + role.name, orjson.dumps(role.to_json()))

    async def delete_role(self, name: str) -> None:
        await self._view.delete(ROLE_PREFIX + name)

    async def list_roles(self) -> list[str]:
        return sorted(k for k in await self._view.list(ROLE_PREFIX) if not k.endswith("/"))


__all__ = ["ACCESSOR_PREFIX", "DEFAULT_CACHE_SIZE", "ID_PREFIX", "PARENT_PREFIX", "ROLE_PREFIX", "SALT_KEY",
           "CreateHook", "RevokeHook", "TokenHook", "TokenStore"]
