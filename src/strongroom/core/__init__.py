"""Core: a façade that builds the parts (barrier, seal, router, mounts, policies, tokens) and owns the
seal lifecycle. Request handling itself is :mod:`strongroom.core.pipeline`.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import orjson

from strongroom import __version__
from strongroom.barrier import Barrier
from strongroom.barrier.seal import SealConfig, UnsealProgress, split_unseal_key
from strongroom.barrier.view import StorageView
from strongroom.core import pipeline
from strongroom.core.audit import AuditBroker, AuditConfig
from strongroom.core.ceremonies import Ceremonies
from strongroom.core.expiration import ExpirationManager, SchedulerConfig
from strongroom.core.mounts import MountEntry, MountTable
from strongroom.core.policy import PolicyStore
from strongroom.core.readcache import DEFAULT_BYTES as READ_CACHE_BYTES
from strongroom.core.readcache import DEFAULT_SIZE as READ_CACHE_SIZE
from strongroom.core.readcache import CachedRead, ReadCache
from strongroom.core.rotation import AutoRotation
from strongroom.core.router import Router
from strongroom.core.security import SecurityConfig, SecurityEvents
from strongroom.core.tokens import TokenEntry, TokenStore, token_backend
from strongroom.core.wrapping import Wrapping
from strongroom.errors import InvalidRequest, Sealed
from strongroom.framework import BackendConfig
from strongroom.logical import Request, Response, Storage

# Barrier prefixes of core's own state.
POLICY_VIEW = "sys/"
TOKEN_VIEW = "sys/token/"
# Barrier key of the cluster's name and id, made on first unseal.
CLUSTER_KEY = "core/cluster-info"
# Barrier prefixes of security events and of spent wrapping tokens' tombstones.
SECURITY_VIEW = "core/security/"
WRAPPING_VIEW = "core/wrapping/"
# Barrier prefix of leases (Vault's sys/expire/): see core/expiration/lease.py for the layout.
EXPIRATION_VIEW = "sys/expire/"


@dataclass(frozen=True, slots=True)
class CoreConfig:
    default_lease_ttl: int = 2764800  # 768h, Vault's default
    max_lease_ttl: int = 2764800
    storage_type: str = "inmem"
    cluster_name: str = ""
    api_addr: str = ""
    security: SecurityConfig = field(default_factory=SecurityConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    expiration: SchedulerConfig = field(default_factory=SchedulerConfig)
    # Answers kept for repeated reads (core/readcache.py): at most this many, in at most this many
    # bytes; 0 (the config's disable_cache) turns it off.
    read_cache_size: int = READ_CACHE_SIZE
    read_cache_bytes: int = READ_CACHE_BYTES


@dataclass(frozen=True, slots=True)
class InitResult:
    keys: list[bytes]
    root_token: str


class Core:
    def __init__(self, physical: Storage, config: CoreConfig | None = None) -> None:
        self.config = config or CoreConfig()
        self.physical = physical
        self.barrier = Barrier(physical)
        self.unseal_progress = UnsealProgress()
        self.router = Router()
        self.mounts = MountTable(self.barrier, self.router, self._factories(), self._system_ttls)
        self.policies = PolicyStore(StorageView(self.barrier, POLICY_VIEW))
        self.tokens = self._new_token_store()
        self.audit = AuditBroker(self.barrier, self.config.audit, mount_of=self._mount_info)
        self.expiration = ExpirationManager(StorageView(self.barrier, EXPIRATION_VIEW), router=self.router,
                                            mount_ttls=self.mounts.ttls, tokens=lambda: self.tokens,
                                            config=self.config.expiration)
        self.security = SecurityEvents(StorageView(self.barrier, SECURITY_VIEW), lambda: self.audit,
                                       self.config.security)
        self.wrapping = Wrapping(StorageView(self.barrier, WRAPPING_VIEW), tokens=lambda: self.tokens,
                                 cubbyhole=self._cubbyhole_of, events=self.security)
        self.ceremonies = Ceremonies(self.barrier, self._mint_root)
        self.rotation = AutoRotation(self.barrier)
        self.wrapping.revoke_lease = self.expiration.revoke
        self.cluster_name = self.config.cluster_name
        self.cluster_id = ""
        self.active_since = ""
        self.reads = ReadCache(self._read_stamp, lambda: self.tokens.clock(), self.config.read_cache_size,
                               self.config.read_cache_bytes)

    def _read_stamp(self) -> tuple[int, int, int, int, int]:
        """What a cached read depends on (core/readcache.py): every counter here moves on a change."""
        return (self.barrier.generation, self.router.version, self.policies.generation, self.tokens.generation,
                self.audit.version)

    # -- construction ---------------------------------------------------------------------------
    def _factories(self) -> dict[str, dict[str, Any]]:
        from strongroom.auth import AUTH_METHODS
        from strongroom.core.system import system_backend
        from strongroom.engines import SECRETS_ENGINES

        return {
            "mounts": {**SECRETS_ENGINES, "system": lambda cfg: system_backend(self, cfg)},
            "auth": {**AUTH_METHODS, "token": lambda cfg: token_backend(self.tokens, cfg, policy_exists=self._policy_exists)},
        }

    async def _policy_exists(self, name: str) -> bool:
        return name == "root" or await self.policies.get(name) is not None

    def _system_ttls(self) -> tuple[int, int]:
        return self.config.default_lease_ttl, self.config.max_lease_ttl

    def _token_ttls(self) -> tuple[int, int]:
        entry = self.mounts.find("auth", "token/")
        return self.mounts.ttls(entry) if entry else self._system_ttls()

    def _new_token_store(self) -> TokenStore:
        return TokenStore(StorageView(self.barrier, TOKEN_VIEW),
                          default_ttl=lambda: self._token_ttls()[0], max_ttl=lambda: self._token_ttls()[1])

    def _default_mounts(self) -> list[MountEntry]:
        m = self.mounts
        return [
            m.new_entry("mounts", "sys/", "system", description="system endpoints used for control, policy and debugging"),
            m.new_entry("mounts", "cubbyhole/", "cubbyhole", description="per-token private secret storage", local=True),
            m.new_entry("auth", "token/", "token", description="token based credentials"),
        ]

    # -- seal lifecycle -------------------------------------------------------------------------
    async def initialized(self) -> bool:
        return await self.barrier.initialized()

    async def initialize(self, shares: int, threshold: int) -> InitResult:
        """sys/init: create the keyring and root token; the server stays sealed afterwards."""
        if await self.barrier.initialized():
            raise InvalidRequest("Vault is already initialized")
        seal_config = SealConfig(secret_shares=shares, secret_threshold=threshold)
        unseal_key = await self.barrier.initialize(seal_config)
        await self.barrier.unseal(unseal_key)
        try:
            await self._post_unseal()
            root_token, _ = await self.tokens.create_root()
        finally:
            await self.seal()
        return InitResult(split_unseal_key(unseal_key, shares, threshold), root_token)

    async def unseal(self, key: bytes | None, reset: bool = False) -> None:
        """sys/unseal: add one key share; unseal when the threshold is reached."""
        if reset:
            self.unseal_progress.reset()
            return
        config = await self.barrier.seal_config()
        if config is None:
            raise InvalidRequest("Vault is not initialized")
        if not self.barrier.sealed:
            raise InvalidRequest("vault is unsealed")
        if key is None:
            raise InvalidRequest("'key' must be specified in request body as JSON, or 'reset' set to true")
        combined = self.unseal_progress.submit(key, config.secret_threshold)
        if combined is None:
            return
        await self.barrier.unseal(combined)  # raises on a wrong key; progress was already reset
        await self._post_unseal()

    async def _post_unseal(self) -> None:
        self.reads.clear()
        await self.policies.setup()
        self.tokens = self._new_token_store()
        await self.tokens.setup()
        self.tokens.add_create_hook(self.expiration.register_token)
        self.tokens.add_renew_hook(self.expiration.token_renewed)
        self.tokens.add_revoke_hook(self.expiration.revoke_by_token)  # queues the leases it holds
        self.tokens.add_revoke_hook(self.wrapping.on_token_revoked)  # before the cubbyhole goes
        self.tokens.add_revoke_hook(self._destroy_cubbyhole)
        await self.mounts.load(self._default_mounts())
        await self._load_cluster_info()
        await self.expiration.setup()
        await self.rotation.setup()
        await self._setup_audit()
        self.active_since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    async def _setup_audit(self) -> None:
        try:
            await self.audit.setup()
        except Exception:
            # SECURITY: a server that cannot audit as configured stays sealed rather than serve unaudited.
            await self.seal()
            raise

    def _mount_info(self, path: str) -> tuple[str, str, str] | None:
        hit = self.router.match(path)
        return (hit[0].full_path, hit[0].type, hit[0].accessor) if hit is not None else None

    async def _load_cluster_info(self) -> None:
        raw = await self.barrier.get(CLUSTER_KEY)
        if raw is None:
            info = {"name": self.config.cluster_name or f"strongroom-cluster-{secrets.token_hex(4)}",
                    "id": str(uuid.uuid4())}
            await self.barrier.put(CLUSTER_KEY, orjson.dumps(info))
        else:
            info = orjson.loads(raw)
        self.cluster_name, self.cluster_id = info["name"], info["id"]

    async def seal(self) -> None:
        if self.barrier.sealed:
            return
        await self.rotation.stop()
        self.ceremonies.reset()
        await self.expiration.stop()
        await self.tokens.drain()
        await self.security.stop()
        await self.mounts.teardown()
        await self.audit.teardown()
        self.barrier.seal()
        self.reads.clear()  # SECURITY: cached answers are plaintext; nothing survives a seal
        self.unseal_progress.reset()

    async def _mint_root(self) -> str:
        """A new root token, for sys/generate-root."""
        token, _ = await self.tokens.create_root()
        return token

    def _cubbyhole_of(self, token_id: str) -> Storage:
        """The private cubbyhole of the token with salted id ``token_id`` (see engines/cubbyhole.py)."""
        mount = self.mounts.find("mounts", "cubbyhole/")
        if mount is None or not isinstance(mount.view, StorageView):
            raise Sealed()
        return mount.view.sub(token_id + "/")

    async def _destroy_cubbyhole(self, entry: TokenEntry) -> None:
        mount = self.mounts.find("mounts", "cubbyhole/")
        if isinstance(mount and mount.view, StorageView):
            await mount.view.sub(entry.id + "/").clear()  # type: ignore[union-attr]

    async def seal_status(self) -> dict[str, Any]:
        config = await self.barrier.seal_config()
        progress = self.unseal_progress
        status: dict[str, Any] = {
            "type": "shamir", "initialized": config is not None, "sealed": self.barrier.sealed,
            "t": config.secret_threshold if config else 0, "n": config.secret_shares if config else 0,
            "progress": progress.progress, "nonce": progress.nonce if progress.progress else "",
            "version": __version__, "build_date": "", "migration": False, "recovery_seal": False,
            "storage_type": self.config.storage_type,
        }
        if not self.barrier.sealed:
            status["cluster_name"] = self.cluster_name
            status["cluster_id"] = self.cluster_id
        return status

    # -- dev mode -------------------------------------------------------------------------------
    async def dev_bootstrap(self, root_token_id: str | None) -> tuple[bytes, str]:
        """`server -dev`: initialise with one key, unseal, make the root token, mount kv-v2 at secret/."""
        unseal_key = await self.barrier.initialize(SealConfig(secret_shares=1, secret_threshold=1))
        await self.barrier.unseal(unseal_key)
        await self._post_unseal()
        root_token, _ = await self.tokens.create_root(root_token_id)
        entry = self.mounts.new_entry("mounts", "secret/", "kv", description="key/value secret storage",
                                      options={"version": "2"})
        await self.mounts.mount(entry)
        return unseal_key, root_token

    # -- requests -------------------------------------------------------------------------------
    async def handle_request(self, req: Request) -> Response | None:
        return await pipeline.handle_request(self, req)

    def cached_read(self, token: str, path: str, query: str) -> tuple[Hashable | None, CachedRead | None]:
        """For a plain GET (see http/app.py): the key to keep its answer under (None: none may be
        kept) and the answer kept for it, if one still holds (see core/readcache.py)."""
        if not token or not self.reads.size or self.barrier.sealed:
            return None, None
        key = (self.tokens.hash(token), path, query)
        return key, self.reads.get(key)

    def require_unsealed(self) -> None:
        if self.barrier.sealed:
            raise Sealed()

    def backend_config(self, entry: MountEntry) -> BackendConfig:
        return self.mounts.backend_config(entry)
