"""TokenRecords: the token store's storage layout, salted hashing, entry cache and lock stripes.

The storage layout inside the store's barrier-encrypted view is the key constants below. SECURITY:
every key that names a token or an accessor uses its salted hash, never the value itself.

The read/write primitives here are what creation, use, renewal and revocation (store.py,
revocation.py) build on: one canonical cached TokenEntry per token, changed only under its lock.
"""

from __future__ import annotations

import asyncio

import orjson

from strongroom.audit.mac import KeyedSha256
from strongroom.core.tokens.entry import TokenEntry
from strongroom.framework.locks import StripedLocks
from strongroom.logical import Storage

# The 32-byte random HMAC key for every hash below. Created once, on first setup; losing it makes
# every token unverifiable, which is why it lives behind the barrier with the entries it protects.
SALT_KEY = "salt"
# id/<hash(token)>: the TokenEntry as JSON. The authoritative record: a token exists iff this does.
ID_PREFIX = "id/"
# accessor/<hash(accessor)>: {"token_id": <hash(token)>, "accessor": <accessor>}. The accessor is
# kept in the value (not the key) so LIST accessors can answer without a reverse index.
ACCESSOR_PREFIX = "accessor/"
# parent/<hash(parent)>/<hash(child)>: empty marker; the children of a token, for tree revocation.
PARENT_PREFIX = "parent/"
# roles/<name>: a TokenRole as JSON.
ROLE_PREFIX = "roles/"

DEFAULT_CACHE_SIZE = 65536


class TokenRecords:
    """Token entries as stored (under their salted hash) and cached; the base of TokenStore."""

    def __init__(self, view: Storage, *, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        self._view = view
        self._cache_size = cache_size
        self._cache: dict[str, TokenEntry] = {}
        self._locks = StripedLocks()
        self._mac: KeyedSha256 | None = None  # HMAC-SHA256 under the salt: token id = its hex
        # Moves whenever a token changes (use, renew, revoke, orphaning) or goes: core/readcache.py.
        self.generation = 0

    def hash(self, token: str) -> str:
        """HMAC-SHA256(salt, token), hex. SECURITY: the only form of a token that is ever stored,
        cached or compared; the raw token never reaches storage, as key or as value."""
        if self._mac is None:
            raise RuntimeError("TokenStore.setup() has not run")
        # The salt's key schedule is done once (audit/mac.py): a third of hmac.digest's cost.
        return self._mac.hexdigest(token.encode())

    # -- storage and cache primitives -----------------------------------------------------------
    def _lock(self, token_id: str) -> asyncio.Lock:
        return self._locks.lock_for(token_id)

    async def _read(self, token_id: str) -> TokenEntry | None:
        raw = await self._view.get(ID_PREFIX + token_id)
        return TokenEntry.from_json(orjson.loads(raw)) if raw is not None else None

    async def _write(self, entry: TokenEntry) -> None:
        """Persist a changed entry (the canonical object was changed in memory just before)."""
        self.generation += 1
        try:
            await self._view.put(ID_PREFIX + entry.id, orjson.dumps(entry.to_json()))
        finally:
            self.generation += 1

    async def _load(self, token_id: str) -> TokenEntry | None:
        async with self._lock(token_id):
            entry = self._cache.get(token_id)
            if entry is None:
                entry = await self._read(token_id)
                if entry is not None:
                    self._cache_put(entry)
            return entry

    def _cache_put(self, entry: TokenEntry) -> None:
        cache = self._cache
        if entry.id not in cache and len(cache) >= self._cache_size:
            # Evict the oldest insertion: O(1), and correct because every entry is also in storage.
            del cache[next(iter(cache))]
        cache[entry.id] = entry
