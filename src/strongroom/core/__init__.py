"""Core: a façade that builds the parts (barrier, router, mounts, policies, tokens, audit, leases...)
and lists them for the lifecycle (strongroom/lifecycle.py). The seal lifecycle that drives them is
:mod:`strongroom.core.sealing`; request handling is :mod:`strongroom.core.pipeline`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from typing import Any
from dataclasses import dataclass, field

from strongroom.barrier import Barrier
from strongroom.barrier.seal import SealConfig
from strongroom.barrier.view import StorageView
from strongroom.core import pipeline
from strongroom.core.audit import AuditBroker, AuditConfig
from strongroom.core.ceremonies import Ceremonies
from strongroom.core.cluster import ClusterInfo
from strongroom.core.events import EventBus
from strongroom.core.expiration import ExpirationManager, SchedulerConfig
from strongroom.core.fleet import FleetMonitor
from strongroom.core.identity import IdentityStore, LoginMFA
from strongroom.core.lockout import LOCKED_USERS_VIEW, LockoutConfig, UserLockout
from strongroom.core.mounts import MountEntry, MountTable
from strongroom.core.password_policies import PasswordPolicyStore
from strongroom.core.periodic import DEFAULT_INTERVAL, Periodic
from strongroom.core.policy import PolicyStore
from strongroom.core.metrics import TelemetryConfig, attach_metrics
from strongroom.core.readcache import DEFAULT_BYTES as READ_CACHE_BYTES, DEFAULT_SIZE as READ_CACHE_SIZE
from strongroom.core.readcache import CachedRead, ReadCache
from strongroom.core.rotation import AutoRotation
from strongroom.core.router import Router
from strongroom.core.sealing import InitResult, SealLifecycle
from strongroom.core.security import SecurityConfig, SecurityEvents
from strongroom.core.tokens import TokenEntry, TokenStore, token_backend
from strongroom.core.wrapping import Wrapping
from strongroom.errors import Sealed
from strongroom.framework import Backend, BackendConfig
from strongroom.framework.registry import FactorySpec
from strongroom.framework.system import Entity
from strongroom.lifecycle import Lifecycle, Part, Steps
from strongroom.logical import Request, Response, Storage

log = logging.getLogger(__name__)

# Barrier prefixes of core's own state.
POLICY_VIEW = "sys/"
TOKEN_VIEW = "sys/token/"
# Barrier prefixes of security events and of spent wrapping tokens' tombstones.
SECURITY_VIEW = "core/security/"
WRAPPING_VIEW = "core/wrapping/"
# Barrier prefix of leases (Vault's sys/expire/): see core/expiration/lease.py for the layout.
EXPIRATION_VIEW = "sys/expire/"
# Barrier prefix of the identity store (entities and groups: core/identity/store.py).
IDENTITY_VIEW = "core/identity/"
MFA_VIEW = "core/login-mfa/"  # login MFA: methods, enforcements, TOTP secrets (core/identity/mfa/store.py)
# Barrier prefix of the fleet monitor's alarm state and of seal drills (core/fleet.py, core/drills.py).
FLEET_VIEW = "core/fleet/"


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
    # Seconds between two rounds of every part's and mount's periodic function (core/periodic.py).
    periodic_interval: float = DEFAULT_INTERVAL
    # HA: fewer unsealed nodes than this raises an alarm (core/fleet.py); 0 turns it off.
    min_unsealed_nodes: int = 0
    # OpenBao's user lockout: the server config's user_lockout stanzas (core/lockout.py).
    user_lockout: LockoutConfig = field(default_factory=LockoutConfig)
    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)  # sys/metrics (core/metrics.py)


def auth_mount_lookup(mounts: MountTable) -> Callable[[str], tuple[str, str] | None]:
    """(type, path) of the auth mount with an accessor: what an identity alias records. A closure
    over the mount table only, so the identity store (held by the identity/ mount) never holds Core."""
    def lookup(accessor: str) -> tuple[str, str] | None:
        e = mounts.by_accessor(accessor)
        return (e.type, e.full_path) if e is not None and e.table == "auth" else None

    return lookup


class Core(SealLifecycle):
    def __init__(self, physical: Storage, config: CoreConfig | None = None) -> None:
        self.config = config or CoreConfig()
        self.physical = physical
        super().__init__(Barrier(physical), self.config.storage_type)
        self.router = Router()
        self._mount_memo: dict[str, tuple[str, str, str] | None] = {}  # see _mount_info
        self._mount_memo_version = -1
        self.password_policies = PasswordPolicyStore(StorageView(self.barrier, POLICY_VIEW))
        self.events = EventBus()  # change events (core/events.py); backends publish via their SystemView
        self.mounts = MountTable(self.barrier, self.router, self._factories(), self._system_ttls,
                                 defaults=self._default_mounts, active=lambda: not self.standby,
                                 passwords=self.password_policies.generate, events=self.events.publish,
                                 entities=self._entity)
        self.identity = IdentityStore(StorageView(self.barrier, IDENTITY_VIEW), auth_mount_lookup(self.mounts))
        self.mfa = LoginMFA(StorageView(self.barrier, MFA_VIEW), self.identity, self.mounts)
        self.mfa.issue = lambda req, mount, resp: pipeline.issue_login(self, req, mount, resp)
        self.policies = PolicyStore(StorageView(self.barrier, POLICY_VIEW))
        self.lockout = UserLockout(StorageView(self.barrier, LOCKED_USERS_VIEW), self.config.user_lockout,
                                   self.mounts.by_accessor)
        self.tokens = TokenStore(StorageView(self.barrier, TOKEN_VIEW), default_ttl=lambda: self._token_ttls()[0],
                                 max_ttl=lambda: self._token_ttls()[1])
        self.audit = AuditBroker(self.barrier, self.config.audit, mount_of=self._mount_info)
        self.expiration = ExpirationManager(StorageView(self.barrier, EXPIRATION_VIEW), router=self.router,
                                            mount_ttls=self.mounts.ttls, tokens=lambda: self.tokens,
                                            config=self.config.expiration, events=self.events.publish)
        self.security = SecurityEvents(StorageView(self.barrier, SECURITY_VIEW), lambda: self.audit,
                                       self.config.security)
        self.wrapping = Wrapping(StorageView(self.barrier, WRAPPING_VIEW), tokens=lambda: self.tokens,
                                 cubbyhole=self._cubbyhole_of, events=self.security)
        self.fleet = FleetMonitor(StorageView(self.barrier, FLEET_VIEW), lambda: self.ha, self.security,
                                  self.config.min_unsealed_nodes)
        self.ceremonies = Ceremonies(self.barrier, self._mint_root, lambda: self.sealed)
        self.rotation = AutoRotation(self.barrier)
        self.cluster = ClusterInfo(self.barrier, self.config.cluster_name)
        self.reads = ReadCache(self._read_stamp, lambda: self.tokens.clock(), self.config.read_cache_size,
                               self.config.read_cache_bytes)
        self._followed = 0  # moves around every Core.invalidate (the read cache's stamp)
        # HA standby_reads (http/app.py sets it): whether this standby may keep and give cached reads now.
        self.standby_cache: Callable[[], bool] | None = None
        self.metrics = attach_metrics(self)
        self.periodic = Periodic(lambda: [part for _, part in self.parts], self.config.periodic_interval)
        self.wrapping.revoke_lease = self.expiration.revoke
        self.tokens.add_create_hook(self.expiration.register_token)
        self.tokens.add_renew_hook(self.expiration.token_renewed)
        self.tokens.add_renew_check(self._auth_renew_check)
        self.tokens.add_revoke_hook(self.expiration.revoke_by_token)  # queues the leases it holds
        self.tokens.add_revoke_hook(self.wrapping.on_token_revoked)  # before the cubbyhole goes
        self.tokens.add_revoke_hook(self._destroy_cubbyhole)
        # Every part, with the barrier prefix of the keys its invalidate() takes (relative to it), in
        # the order of setup and activate; deactivate runs in reverse (strongroom/lifecycle.py).
        # SECURITY: audit is set up once every part it records from is, and stops before them; the
        # read cache (plaintext answers) is emptied on every step.
        forget_reads = self.reads.clear
        self.parts: list[tuple[str, Lifecycle]] = [
            ("", physical if isinstance(physical, Lifecycle) else Part()),  # the storage cache
            ("", Steps(setup=forget_reads, deactivate=forget_reads, invalidate=forget_reads)),
            (POLICY_VIEW, self.policies),
            (POLICY_VIEW, self.password_policies),
            (TOKEN_VIEW, self.tokens),
            ("", self.mounts),
            (IDENTITY_VIEW, self.identity),
            (MFA_VIEW, self.mfa),
            (LOCKED_USERS_VIEW, self.lockout),
            ("", self.cluster),
            ("", self.audit),
            ("", Steps(activate=lambda: self.expiration.setup(), deactivate=lambda: self.expiration.stop())),
            ("", Steps(activate=lambda: self.rotation.setup(), deactivate=lambda: self.rotation.stop())),
            ("", Steps(deactivate=lambda: self.security.stop())),
            (FLEET_VIEW, self.fleet),
            ("", Steps(deactivate=lambda: self.ceremonies.reset())),
            ("", Steps(deactivate=self.events.close_all)),
            ("", self.periodic),
        ]

    @property
    def cluster_name(self) -> str:
        return self.cluster.name

    @property
    def cluster_id(self) -> str:
        return self.cluster.id

    def _read_stamp(self) -> tuple[int, int, int, int, int, int, int, int, int]:
        """What a cached read depends on (core/readcache.py): every counter here moves on a change
        (the identity store's too: a token's policies include its entity's and groups'; on an HA
        standby, the active's writes it follows and its switches and reloads)."""
        return (self.barrier.generation, self.router.version, self.policies.generation, self.tokens.generation,
                self.audit.version, self._epoch, self.identity.generation, self._followed, self.switches)

    def _purge_storage_cache(self) -> None:
        purge = getattr(self.physical, "purge", None)  # storage/cache.py CachedStorage
        if purge is not None:
            purge()

    async def invalidate(self, key: str) -> None:
        """Barrier key ``key`` was written behind this node's back (another node, a restore): every
        part drops what it cached of it. The one path such a write takes to every cache. The read
        cache's stamp moves before and after: a read that overlapped it is never kept."""
        self._followed += 1
        try:
            for prefix, part in self.parts:
                if key.startswith(prefix):
                    await part.invalidate(key[len(prefix):])
        finally:
            self._followed += 1

    # -- construction ---------------------------------------------------------------------------
    def _factories(self) -> dict[str, dict[str, FactorySpec]]:
        from strongroom.auth import AUTH_METHODS
        from strongroom.engines import SECRETS_ENGINES

        def system(cfg: BackendConfig) -> Backend:
            from strongroom.core.system import SystemBackend, SystemParts

            return SystemBackend(SystemParts(
                mounts=self.mounts, router=self.router, policies=self.policies, tokens=self.tokens,
                expiration=self.expiration, audit=self.audit, wrapping=self.wrapping, ceremonies=self.ceremonies,
                rotation=self.rotation, keys=self.barrier, security=self.security,
                password_policies=self.password_policies, ha_nodes=self._ha_nodes,
                default_lease_ttl=self.config.default_lease_ttl, max_lease_ttl=self.config.max_lease_ttl,
                identity_policies=self.identity.policies_for, mfa=self.mfa, fleet=self.fleet,
                lockout=self.lockout, metrics=self.metrics), cfg)

        def token(cfg: BackendConfig) -> Backend:
            return token_backend(self.tokens, cfg, policy_exists=self._policy_exists,
                                 identity_policies=self.identity.policies_for)

        def identity(cfg: BackendConfig) -> Backend:
            from strongroom.core.identity import IdentityBackend

            return IdentityBackend(self.identity, cfg, self.config.api_addr, self.mfa)

        return {"mounts": {**SECRETS_ENGINES, "system": system, "identity": identity},
                "auth": {**AUTH_METHODS, "token": token}}

    async def _entity(self, entity_id: str) -> Entity | None:
        """SystemView.entity: the identity store's entity as a backend sees it."""
        e = self.identity.resolve(entity_id)
        if e is None:
            return None
        return Entity(e.id, e.name, tuple(e.policies), dict(e.metadata), disabled=e.disabled)

    async def _ha_nodes(self) -> list[dict[str, Any]]:
        if self.ha is not None:
            return await self.ha.nodes()
        import socket

        from strongroom import __version__
        return [{"hostname": socket.gethostname(), "api_address": self.config.api_addr, "cluster_address": "",
                 "active_node": True, "last_echo": None, "version": __version__}]

    async def _policy_exists(self, name: str) -> bool:
        return name == "root" or await self.policies.get(name) is not None

    def _system_ttls(self) -> tuple[int, int]:
        return self.config.default_lease_ttl, self.config.max_lease_ttl

    def _token_ttls(self) -> tuple[int, int]:
        entry = self.mounts.find("auth", "token/")
        return self.mounts.ttls(entry) if entry else self._system_ttls()

    def _default_mounts(self) -> list[MountEntry]:
        m = self.mounts
        return [
            m.new_entry("mounts", "sys/", "system", description="system endpoints used for control, policy and debugging"),
            m.new_entry("mounts", "cubbyhole/", "cubbyhole", description="per-token private secret storage", local=True),
            m.new_entry("mounts", "identity/", "identity", description="identity store"),
            m.new_entry("auth", "token/", "token", description="token based credentials"),
        ]

    def _mount_info(self, path: str) -> tuple[str, str, str] | None:
        """The audit's view of ``path``'s mount: asked twice per request (request and response
        entry), so the answers for recent paths are kept until the mount table next changes."""
        router = self.router
        memo = self._mount_memo
        if self._mount_memo_version != router.version or len(memo) >= 4096:
            memo.clear()
            self._mount_memo_version = router.version
        info = memo.get(path, memo)
        if info is memo:
            hit = router.match(path)
            info = memo[path] = (hit[0].full_path, hit[0].type, hit[0].accessor) if hit is not None else None
        return info  # type: ignore[return-value]

    async def _auth_renew_check(self, entry: TokenEntry) -> None:
        """Vault's AuthRenew: a token issued by a login renews only if its auth method agrees (ldap
        checks the user is still in the directory). A method opts in with an async
        ``renew_auth(storage, auth)`` that raises to refuse; the others are not asked."""
        if not entry.path.startswith("auth/"):
            return
        hit = self.router.match(entry.path)
        check = getattr(hit[0].backend, "renew_auth", None) if hit is not None else None
        if hit is None or check is None or hit[0].view is None:
            return
        await check(hit[0].view, entry.to_auth(""))

    async def _mint_root(self, token_id: str | None = None) -> str:
        token, _ = await self.tokens.create_root(token_id)
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

    # -- dev mode -------------------------------------------------------------------------------
    async def dev_bootstrap(self, root_token_id: str | None) -> tuple[bytes, str]:
        """`server -dev`: initialise with one key, unseal, make the root token, mount kv-v2 at secret/."""
        async with self._unsealing:
            unseal_key = await self.barrier.initialize(SealConfig(secret_shares=1, secret_threshold=1))
            epoch = await self._open(unseal_key)
            try:
                root_token = await self._mint_root(root_token_id)
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
        """For a plain GET (see http/app.py): the key its answer is kept under (None: none may be
        kept) and the answer kept for it, if one still holds (see core/readcache.py). A lookup only:
        whether a miss's answer may be kept is ``reads.admit(key)``, asked once per request."""
        # Nothing kept or given before serving, nor on an HA standby unless it answers reads itself
        # (``standby_cache``: standby_reads on, following the active's writes, no switch under way).
        if not token or not self.reads.size or self.sealed or not (
                self.serving_active or (self.standby_cache is not None and self.standby_cache())):
            return None, None
        key = (self.tokens.hash(token), path, query)
        return key, self.reads.get(key)


__all__ = ["Core", "CoreConfig", "InitResult"]
