"""The transit backend: the key store (storage + decoded-key cache + per-key locks) and its path table.

Storage layout (the mount's view, encrypted by the barrier)::

    policy/<name>     the key, Vault's keysutil Policy JSON (policy.py), every version kept

The cache maps a name to its decoded :class:`Policy` (AEAD objects, parsed private keys). Every
write of a key goes through :meth:`TransitBackend.store`, which replaces the cached object after
the storage write; ``invalidate`` (a write from elsewhere) and ``deactivate`` drop entries.
Writers take the key's lock (:class:`StripedLocks`), load, change a copy and store, so a failed
write leaves the cached and the stored key unchanged.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from strongroom.engines._request import storage_of, warn_ignored_params
from strongroom.engines.transit.policy import Policy
from strongroom.errors import InvalidRequest
from strongroom.framework import Backend, BackendConfig, Request, Response, StripedLocks
from strongroom.logical import Storage

POLICY_PREFIX = "policy/"
CONFIG_KEYS = "config/keys"
CONFIG_CACHE = "config/cache"
MIN_CACHE_SIZE = 10
WRAPPING_KEY = "import/wrapping-key"


class TransitBackend(Backend):
    help = (
        "The transit backend handles cryptographic functions on data in transit: encryption, "
        "signing, HMAC and hashing with named keys that never leave the server."
    )
    generates_leases = False

    def __init__(self, config: BackendConfig) -> None:
        from strongroom.engines.transit.paths import paths

        super().__init__(config, paths())
        self.cache: dict[str, Policy] = {}
        # config/keys's disable_upsert, read once (None: not read yet).
        self._disable_upsert: bool | None = None
        # cache-config's size: most keys kept decoded (0: no limit; None: not read yet).
        self._cache_size: int | None = None
        self.locks = StripedLocks()
        # Nanosecond clock for key creation times (tests may replace it).
        self.clock: Callable[[], int] = time.time_ns

    async def setup(self) -> None:
        self.cache.clear()
        self._disable_upsert = self._cache_size = None

    async def deactivate(self) -> None:
        self.cache.clear()
        self._disable_upsert = self._cache_size = None
        await super().deactivate()

    async def invalidate(self, key: str) -> None:
        if key.startswith(POLICY_PREFIX):
            self.cache.pop(key[len(POLICY_PREFIX):], None)
        elif key == WRAPPING_KEY:
            self.cache.pop(WRAPPING_KEY, None)  # key names have no "/": no clash with a key
        elif key == CONFIG_KEYS:
            self._disable_upsert = None
        elif key == CONFIG_CACHE:
            self._cache_size = None

    async def disable_upsert(self, storage: Storage) -> bool:
        """config/keys's ``disable_upsert``: encrypt does not create missing keys."""
        if self._disable_upsert is None:
            raw = await storage.get(CONFIG_KEYS)
            self._disable_upsert = bool(json.loads(raw).get("disable_upsert")) if raw else False
        return self._disable_upsert

    async def set_disable_upsert(self, storage: Storage, value: bool) -> None:
        self._disable_upsert = None
        await storage.put(CONFIG_KEYS, json.dumps({"disable_upsert": value}).encode())
        self._disable_upsert = value

    async def periodic(self, now: float) -> None:
        """Rotate keys whose ``auto_rotate_period`` has passed since their latest version."""
        await super().periodic(now)
        if not self.system.active():
            return
        await self.auto_rotate(self.system.storage, int(now))

    async def auto_rotate(self, storage: Storage, now: int) -> list[str]:
        from strongroom.engines.transit.keys import rotate_policy

        rotated = []
        for name in await storage.list(POLICY_PREFIX):
            p = await self.load(storage, name)
            if p is None or not p.auto_rotate_period or p.soft_deleted or (
                    p.imported and not p.allow_imported_key_rotation):
                continue
            latest = p.keys.get(p.latest_version)
            if latest is not None and latest.creation_time + p.auto_rotate_period > now:
                continue
            async with self.lock(name):
                p = await self.load_copy(storage, name)
                if p is None:
                    continue
                await rotate_policy(self, p)
                await self.store(storage, p)
                rotated.append(name)
        return rotated

    async def handle(self, req: Request) -> Response | None:
        # OpenBao's framework warns about fields a path does not take; so do we.
        return warn_ignored_params(self, req, await super().handle(req))

    async def exists(self, req: Request) -> tuple[bool, bool]:
        """The existence check (encrypt/NAME only: whether the key exists), answered from the path
        alone: the framework's would coerce the whole body once more for a name in the URL."""
        hit = self.route(req.path)
        if hit is None or hit[0].exists is None:
            return False, False
        return True, await self.load(storage_of(req), hit[1].get("name", "")) is not None

    # -- the key store --
    async def load(self, storage: Storage, name: str) -> Policy | None:
        """The key ``name`` (shared, cached object: never modify it; use :meth:`load_copy`)."""
        p = self.cache.get(name)
        if p is not None:
            return p
        raw = await storage.get(POLICY_PREFIX + name)
        if raw is None:
            return None
        p = await asyncio.to_thread(Policy.deserialize, raw) if len(raw) > 65536 else Policy.deserialize(raw)
        await self._remember(storage, p)
        return p

    async def _remember(self, storage: Storage, p: Policy) -> None:
        """Cache ``p``, within cache-config's size (the longest cached goes first)."""
        limit = await self.cache_size(storage)
        self.cache.pop(p.name, None)
        while limit and len(self.cache) >= limit:
            del self.cache[next(iter(self.cache))]
        self.cache[p.name] = p

    async def cache_size(self, storage: Storage) -> int:
        """cache-config's ``size`` (0: every key used stays decoded, as OpenBao's default)."""
        if self._cache_size is None:
            raw = await storage.get(CONFIG_CACHE)
            self._cache_size = int(json.loads(raw).get("size") or 0) if raw else 0
        return self._cache_size

    async def set_cache_size(self, storage: Storage, size: int) -> None:
        self._cache_size = None
        await storage.put(CONFIG_CACHE, json.dumps({"size": size}).encode())
        self._cache_size = size

    async def load_copy(self, storage: Storage, name: str) -> Policy | None:
        """A private copy of the key to change and :meth:`store` (hold the key's lock)."""
        p = await self.load(storage, name)
        if p is None:
            return None
        clone = copy.copy(p)
        clone.keys = dict(p.keys)
        clone._aeads = dict(p._aeads)
        return clone

    @asynccontextmanager
    async def editing(self, storage: Storage, name: str, missing: str) -> AsyncIterator[Policy]:
        """Under the key's lock, a private copy of it to change and :meth:`store`; each path that
        changes a key answers a missing one with its own ``missing`` wording (InvalidRequest)."""
        async with self.lock(name):
            p = await self.load_copy(storage, name)
            if p is None:
                raise InvalidRequest(missing)
            yield p

    async def store(self, storage: Storage, p: Policy) -> None:
        """Persist ``p`` and make it the cached key (after the write succeeded)."""
        self.cache.pop(p.name, None)
        await storage.put(POLICY_PREFIX + p.name, p.serialize())
        await self._remember(storage, p)

    async def delete(self, storage: Storage, name: str) -> None:
        self.cache.pop(name, None)
        await storage.delete(POLICY_PREFIX + name)
        self.cache.pop(name, None)

    def lock(self, name: str) -> asyncio.Lock:
        return self.locks.lock_for(name)

    def now_ns(self) -> int:
        return self.clock()


__all__ = ["POLICY_PREFIX", "TransitBackend", "storage_of", "transit_backend"]


def transit_backend(config: BackendConfig) -> TransitBackend:
    return TransitBackend(config)
