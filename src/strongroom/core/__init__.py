"""Core: a façade that builds the parts (barrier, seal, router, mounts, policies, tokens) and owns the
seal lifecycle. Request handling itself is :mod:`strongroom.core.pipeline`.

Unsealing is two stages: the barrier gets its keys, then post-unseal sets up every part behind it
(policies, tokens, mounts, leases, rotation, audit) through the barrier directly. Only then does
the core serve: until that last step has succeeded, :attr:`Core.sealed` stays True and every
request gate answers 503 (see there). ``barrier.sealed`` only says whether storage can be read.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import orjson

from strongroom import __version__
from strongroom.barrier import Barrier
from strongroom.barrier.seal import SealConfig, UnsealProgress, check_share_length, split_unseal_key
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

log = logging.getLogger(__name__)

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
        self.ceremonies = Ceremonies(self.barrier, self._mint_root, lambda: self.sealed)
        self.rotation = AutoRotation(self.barrier)
        self.wrapping.revoke_lease = self.expiration.revoke
        self.cluster_name = self.config.cluster_name
        self.cluster_id = ""
        self.active_since = ""
        self.reads = ReadCache(self._read_stamp, lambda: self.tokens.clock(), self.config.read_cache_size,
                               self.config.read_cache_bytes)
        # Requests are served only while this is set: from the end of a successful post-unseal to
        # the first line of seal() (see ``sealed``).
        self._serving = False
        # Moves when serving starts and on every seal: an unseal whose setup saw it move was
        # overtaken by a seal and must not start serving; cached reads die with it.
        self._epoch = 0
        # One unseal (with its post-unseal) or init at a time: a key share sent meanwhile waits
        # for the outcome instead of meeting a barrier that is open while the core is not ready.
        self._unsealing = asyncio.Lock()

    @property
    def sealed(self) -> bool:
        """True unless the core may serve requests: the barrier is open AND post-unseal finished.

        SECURITY: every request gate (pipeline guard, require_unsealed, the read cache, sys/health,
        sys/seal-status, the key ceremonies) asks this, never ``barrier.sealed``. The barrier opens
        first so that post-unseal can read through it; a request served in between would meet a
        half-built core: no audit device yet (an unaudited request), the previous token store,
        missing mounts. Vault too reports itself unsealed only once postUnseal has completed."""
        return not self._serving or self.barrier.sealed

    def _read_stamp(self) -> tuple[int, int, int, int, int, int]:
        """What a cached read depends on (core/readcache.py): every counter here moves on a change."""
        return (self.barrier.generation, self.router.version, self.policies.generation, self.tokens.generation,
                self.audit.version, self._epoch)

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
        async with self._unsealing:
            unseal_key = await self.barrier.initialize(seal_config)
            try:
                await self._open(unseal_key)  # never serving: the root token is minted internally
                root_token, _ = await self.tokens.create_root()
            finally:
                await self.seal()
        return InitResult(split_unseal_key(unseal_key, shares, threshold), root_token)

    async def unseal(self, key: bytes | None, reset: bool = False) -> None:
        """sys/unseal: add one key share; unseal when the threshold is reached. As OpenBao: a share
        already given in this attempt changes nothing, and a share sent to an unsealed core is
        ignored (the caller answers with the seal status); a share of the wrong size is refused."""
        if reset:
            if not self.sealed:
                raise InvalidRequest("vault is unsealed")
            self.unseal_progress.reset()
            return
        async with self._unsealing:
            config = await self.barrier.seal_config()
            if config is None:
                raise InvalidRequest("Vault is not initialized")
            if key is None:
                raise InvalidRequest("'key' must be specified in request body as JSON, or 'reset' set to true")
            if not self.barrier.sealed:
                return
            check_share_length(key)
            combined = self.unseal_progress.submit(key, config.secret_threshold)
            if combined is None:
                return
            self._serve(await self._open(combined))  # raises on a wrong key; progress was already reset

    async def _open(self, unseal_key: bytes) -> int:
        """Open the barrier and run post-unseal; the core does not serve yet (see :meth:`_serve`).
        Returns the epoch to hand to ``_serve``. Any failure, or a seal() that came in meanwhile,
        leaves the core sealed with every part stopped again: no half-unsealed core."""
        self._serving = False
        epoch = self._epoch
        try:
            await self.barrier.unseal(unseal_key)
        except BaseException:
            if not self.barrier.sealed:  # the keyring was installed, then a later write failed
                self.barrier.seal()
            raise
        try:
            await self._post_unseal()
            if epoch != self._epoch:
                raise Sealed()  # sealed meanwhile: parts set up after its teardown must stop too
        except BaseException:
            await self._abandon()
            raise
        return epoch

    def _serve(self, epoch: int) -> None:
        """Start serving requests; the last step of every unseal. Refused if a seal came after
        ``epoch`` was taken (the barrier may be sealed, or be sealing)."""
        if epoch != self._epoch or self.barrier.sealed:
            raise Sealed()
        self.active_since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self._epoch += 1
        self._serving = True

    async def _post_unseal(self) -> None:
        """Set up every part behind the barrier. Internal: it uses the parts and the barrier
        directly, never the request pipeline, which refuses everything until :meth:`_serve`."""
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
        # SECURITY: last, and a failure reseals (see _open): better sealed than serving unaudited.
        await self.audit.setup()

    async def _abandon(self) -> None:
        """Undo a post-unseal that failed or was overtaken by a seal. The caller re-raises the
        original error, so a failure to stop a part is logged rather than raised over it."""
        try:
            await self._shut_down()
        except Exception:
            log.exception("stopping what a failed unseal had set up")

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
        """Stop serving (first, before any await), stop every part, then drop the keys."""
        self._serving = False
        self._epoch += 1
        if self.barrier.sealed:
            return
        await self._shut_down()

    async def _shut_down(self) -> None:
        """Stop every part; the barrier drops its keys even if one fails to stop. Safe to repeat
        and on parts never set up (a failed or overtaken post-unseal, see _open)."""
        try:
            await self.rotation.stop()
            self.ceremonies.reset()
            await self.expiration.stop()
            await self.tokens.drain()
            await self.security.stop()
            await self.mounts.teardown()
            await self.audit.teardown()
        finally:
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
            "type": "shamir", "initialized": config is not None, "sealed": self.sealed,
            "t": config.secret_threshold if config else 0, "n": config.secret_shares if config else 0,
            "progress": progress.progress, "nonce": progress.nonce if progress.progress else "",
            "version": __version__, "build_date": "", "migration": False, "recovery_seal": False,
            "storage_type": self.config.storage_type,
        }
        if not self.sealed:
            status["cluster_name"] = self.cluster_name
            status["cluster_id"] = self.cluster_id
        return status

    # -- dev mode -------------------------------------------------------------------------------
    async def dev_bootstrap(self, root_token_id: str | None) -> tuple[bytes, str]:
        """`server -dev`: initialise with one key, unseal, make the root token, mount kv-v2 at secret/."""
        async with self._unsealing:
            unseal_key = await self.barrier.initialize(SealConfig(secret_shares=1, secret_threshold=1))
            epoch = await self._open(unseal_key)
            try:
                root_token, _ = await self.tokens.create_root(root_token_id)
                entry = self.mounts.new_entry("mounts", "secret/", "kv", description="key/value secret storage",
                                              options={"version": "2"})
                await self.mounts.mount(entry)
            except BaseException:
                await self._abandon()
                raise
            self._serve(epoch)  # serving starts once the dev setup is complete too
        return unseal_key, root_token

    # -- requests -------------------------------------------------------------------------------
    async def handle_request(self, req: Request) -> Response | None:
        return await pipeline.handle_request(self, req)

    def cached_read(self, token: str, path: str, query: str) -> tuple[Hashable | None, CachedRead | None]:
        """For a plain GET (see http/app.py): the key to keep its answer under (None: none may be
        kept) and the answer kept for it, if one still holds (see core/readcache.py)."""
        if not token or not self.reads.size or self.sealed:  # nothing kept or given before serving
            return None, None
        key = (self.tokens.hash(token), path, query)
        entry = self.reads.get(key)
        if entry is None and not self.reads.admit(key):
            return None, None  # the cache is full and this key is not seen often enough
        return key, entry

    def require_unsealed(self) -> None:
        """The gate of the sys endpoints outside the pipeline (http/sys.py, http/ceremonies.py)."""
        if self.sealed:
            raise Sealed()

    def backend_config(self, entry: MountEntry) -> BackendConfig:
        return self.mounts.backend_config(entry)
