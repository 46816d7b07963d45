"""Mount tables: which backend serves which path prefix, persisted through the barrier.

Two tables, as in Vault: secrets engines ("mounts", keyed "secret/") and auth methods ("auth",
keyed "token/" and routed under "auth/"). Each mount's data lives in its own storage view named by
its UUID, so a remount moves no data and an unmount deletes exactly one prefix.
"""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from strongroom.barrier.view import StorageView
from strongroom.core.lockout import shown_settings
from strongroom.core.router import Router
from strongroom.core.sysview import EntityLookup, EventSink, MountSystemView, PasswordSource, default_password, no_entity
from strongroom.errors import InvalidRequest
from strongroom.framework import Backend, BackendConfig
from strongroom.framework.registry import FactorySpec, resolve
from strongroom.lifecycle import Part, deactivate_all
from strongroom.logical import Storage

log = logging.getLogger(__name__)

# Barrier keys holding each table as JSON {"entries": [...]}.
MOUNTS_TABLE_KEY = "core/mounts"
AUTH_TABLE_KEY = "core/auth"
# Per-mount data prefixes: "logical/<uuid>/" for secrets engines, "auth/<uuid>/" for auth methods.
LOGICAL_PREFIX = "logical/"
AUTH_PREFIX = "auth/"

# Mounts that exist on every server and cannot be disabled or moved.
PROTECTED = ("sys/", "cubbyhole/", "auth/token/", "identity/")
# Mount types core creates itself rather than from the plugin catalog.
CORE_TYPES = frozenset({"system", "cubbyhole", "token", "identity"})
# Path prefixes a user cannot mount a secrets engine under.
RESERVED = ("sys/", "auth/", "cubbyhole/", "identity/")

@dataclass(slots=True)
class MountConfig:
    default_lease_ttl: int = 0
    max_lease_ttl: int = 0
    force_no_cache: bool = False
    listing_visibility: str = ""
    audit_non_hmac_request_keys: list[str] = field(default_factory=list)
    audit_non_hmac_response_keys: list[str] = field(default_factory=list)
    passthrough_request_headers: list[str] = field(default_factory=list)
    allowed_response_headers: list[str] = field(default_factory=list)
    token_type: str = ""
    min_wrapping_ttl: int = 0
    max_wrapping_ttl: int = 0
    # OpenBao's tuned user lockout of an auth mount (core/lockout.py), None until tuned.
    user_lockout_config: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "default_lease_ttl": self.default_lease_ttl,
            "max_lease_ttl": self.max_lease_ttl,
            "force_no_cache": self.force_no_cache,
        }
        for name in ("listing_visibility", "token_type", "min_wrapping_ttl", "max_wrapping_ttl"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        for name in ("audit_non_hmac_request_keys", "audit_non_hmac_response_keys",
                     "passthrough_request_headers", "allowed_response_headers"):
            if getattr(self, name):
                out[name] = list(getattr(self, name))
        if self.user_lockout_config is not None:
            out["user_lockout_config"] = dict(self.user_lockout_config)
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> MountConfig:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


@dataclass(slots=True)
class MountEntry:
    table: str  # "mounts" or "auth"
    path: str  # "secret/" or, for auth, "token/" (without the "auth/" routing prefix)
    type: str
    description: str = ""
    uuid: str = ""
    accessor: str = ""
    config: MountConfig = field(default_factory=MountConfig)
    options: dict[str, str] | None = None
    local: bool = False
    seal_wrap: bool = False
    external_entropy_access: bool = False
    # Runtime only, never persisted.
    backend: Backend | None = field(default=None, repr=False)
    view: Storage | None = field(default=None, repr=False)

    @property
    def full_path(self) -> str:
        return ("auth/" + self.path) if self.table == "auth" else self.path

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table, "path": self.path, "type": self.type, "description": self.description,
            "uuid": self.uuid, "accessor": self.accessor, "config": self.config.to_json(),
            "options": self.options, "local": self.local, "seal_wrap": self.seal_wrap,
            "external_entropy_access": self.external_entropy_access,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> MountEntry:
        return cls(
            table=d["table"], path=d["path"], type=d["type"], description=d.get("description", ""),
            uuid=d["uuid"], accessor=d["accessor"], config=MountConfig.from_json(d.get("config") or {}),
            options=d.get("options"), local=d.get("local", False), seal_wrap=d.get("seal_wrap", False),
            external_entropy_access=d.get("external_entropy_access", False),
        )

    def shown_config(self) -> MountConfig:
        """The config as sys/mounts, sys/auth and tune show it, with OpenBao's implicit values."""
        cfg = replace(self.config)
        if self.type == "system" and not cfg.passthrough_request_headers:
            cfg.passthrough_request_headers = ["Accept"]
        if self.type == "identity" and not cfg.passthrough_request_headers:
            cfg.passthrough_request_headers = ["Authorization"]
        if self.table == "auth" and not cfg.token_type:
            cfg.token_type = "default-service"
        return cfg

    def describe(self, version: str) -> dict[str, Any]:
        """The entry as sys/mounts and sys/auth list it: OpenBao's fields and types. A builtin
        plugin has a catalog status and options ({} when none); the mounts core makes itself
        (CORE_TYPES) have neither, and the system mount is seal-wrapped."""
        out = self.to_json()
        del out["table"], out["path"]
        out["config"] = self.shown_config().to_json()
        if self.config.user_lockout_config is not None:
            out["config"]["user_lockout_config"] = shown_settings(self.config.user_lockout_config)
        if self.type not in CORE_TYPES:
            out["deprecation_status"] = getattr(self.backend, "deprecation_status", "supported")
            if self.options is None:
                out["options"] = {}
        if self.type == "system":
            out["seal_wrap"] = True
        out["plugin_version"] = ""
        out["running_plugin_version"] = f"v{version}+builtin.strongroom"
        out["running_sha256"] = ""
        return out


def normalize_path(path: str) -> str:
    path = path.strip().strip("/")
    if not path:
        raise InvalidRequest("path cannot be empty")
    if not path.isprintable():  # a NUL or control character in a mount path (OpenBao: 400)
        raise InvalidRequest("path cannot contain non-printable characters")
    if ".." in path.split("/"):
        raise InvalidRequest(f'invalid path "{path}"')
    return path + "/"


class MountTable(Part):
    """Owns both tables, their persistence and the router entries; creates backends through the
    mount-type registries and drives each backend's lifecycle (strongroom/lifecycle.py)."""

    def __init__(self, barrier: Storage, router: Router, factories: dict[str, dict[str, FactorySpec]],
                 system_ttls: Callable[[], tuple[int, int]], *, defaults: Callable[[], list[MountEntry]] = list,
                 clock: Callable[[], float] = time.time, active: Callable[[], bool] = lambda: True,
                 passwords: PasswordSource = default_password, events: EventSink | None = None,
                 entities: EntityLookup = no_entity) -> None:
        self._barrier = barrier
        self._entities = entities  # SystemView.entity: core's identity store
        self._events = events  # SystemView.emit_event: core's event bus
        self._router = router
        self._factories = factories  # {"mounts": {type: "module:factory"}, "auth": {type: ...}}
        self._system_ttls = system_ttls
        self._defaults = defaults
        self._clock = clock
        self._active = active  # whether this node is active: a backend started now is activated too
        self._passwords = passwords  # SystemView.generate_password: core's named password policies
        self._activated = False
        self.tables: dict[str, dict[str, MountEntry]] = {"mounts": {}, "auth": {}}

    # -- lifecycle ------------------------------------------------------------------------------
    async def setup(self) -> None:
        """Load both tables (creating the default mounts on first unseal) and set every backend up."""
        defaults = self._defaults()
        self.tables = {"mounts": {}, "auth": {}}
        self._router.clear()
        for table, key in (("mounts", MOUNTS_TABLE_KEY), ("auth", AUTH_TABLE_KEY)):
            raw = await self._barrier.get(key)
            entries = [MountEntry.from_json(e) for e in orjson.loads(raw)["entries"]] if raw else []
            present = {e.path for e in entries}
            missing = [d for d in defaults if d.table == table and d.path not in present]
            for e in entries + missing:
                await self._start(e)
            if missing or raw is None:
                await self._persist(table)

    async def activate(self) -> None:
        self._activated = True
        for e in self.entries():
            if e.backend is not None:
                await e.backend.activate()

    async def deactivate(self) -> None:
        """Stop every backend (each one even if another fails) and empty the router."""
        self._activated = False
        try:
            await deactivate_all(e.backend for e in self.entries() if e.backend is not None)
        finally:
            self._router.clear()

    async def invalidate(self, key: str) -> None:
        """A mount table key restarts every mount from the stored tables; a key under a mount's
        data goes to its backend, relative to the mount."""
        if key in (MOUNTS_TABLE_KEY, AUTH_TABLE_KEY):
            activated = self._activated
            await self.deactivate()
            await self.setup()
            if activated:
                await self.activate()
            return
        for prefix in (LOGICAL_PREFIX, AUTH_PREFIX):
            if key.startswith(prefix):
                uuid_, _, rest = key[len(prefix):].partition("/")
                for e in self.entries():
                    if e.uuid == uuid_ and e.backend is not None:
                        await e.backend.invalidate(rest)
                return

    async def periodic(self, now: float) -> None:
        """Each backend's periodic function, one after another; one failing does not stop the rest."""
        for e in self.entries():
            if e.backend is not None:
                try:
                    await e.backend.periodic(now)
                except Exception:
                    log.exception("periodic function of %s failed", e.full_path)

    def entries(self) -> list[MountEntry]:
        return [e for t in self.tables.values() for e in t.values()]

    # -- persistence ----------------------------------------------------------------------------
    async def _persist(self, table: str) -> None:
        entries = [e.to_json() for e in self.tables[table].values()]
        key = MOUNTS_TABLE_KEY if table == "mounts" else AUTH_TABLE_KEY
        await self._barrier.put(key, orjson.dumps({"entries": entries}))

    # -- mount operations -----------------------------------------------------------------------
    def new_entry(self, table: str, path: str, type_: str, **kw: Any) -> MountEntry:
        prefix = "auth_" if table == "auth" else ""
        return MountEntry(table=table, path=path, type=type_, uuid=str(uuid.uuid4()),
                          accessor=f"{prefix}{type_}_{secrets.token_hex(4)}", **kw)

    def backend_config(self, e: MountEntry) -> BackendConfig:
        view = self._view(e)
        system = MountSystemView(e, view, ttls=self.ttls, clock=self._clock, active=self._active,
                                 passwords=self._passwords, events=self._events, entities=self._entities)
        default, mx = self.ttls(e)
        return BackendConfig(mount_path=e.full_path, mount_type=e.type, options=dict(e.options or {}),
                             default_lease_ttl=default, max_lease_ttl=mx, system=system)

    def ttls(self, e: MountEntry) -> tuple[int, int]:
        """The effective (default, max) lease TTLs of a mount: its own tune, else the system's. A
        tune may ask for more than the system max and then replaces it, as in OpenBao (a root CA
        mount tuned to 10 years issues a 1-year root)."""
        sys_default, sys_max = self._system_ttls()
        mx = e.config.max_lease_ttl or sys_max
        default = e.config.default_lease_ttl or sys_default
        return min(default, mx), mx

    def _view(self, e: MountEntry) -> StorageView:
        prefix = AUTH_PREFIX if e.table == "auth" else LOGICAL_PREFIX
        return StorageView(self._barrier, f"{prefix}{e.uuid}/")

    async def _start(self, e: MountEntry) -> None:
        """Build the mount's backend (importing its module the first time) and set it up; on an
        active node that has been activated, activate it too."""
        spec = self._factories[e.table].get(e.type)
        if spec is None:
            raise InvalidRequest(f"plugin not found in the catalog: {e.type}")
        config = self.backend_config(e)
        assert config.system is not None
        e.view = config.system.storage
        backend = resolve(spec)(config)
        await backend.setup()
        if self._activated:
            await backend.activate()
        e.backend = backend
        self.tables[e.table][e.path] = e
        self._router.add(e)

    async def mount(self, e: MountEntry) -> None:
        full = e.full_path
        if e.table == "mounts" and any(full.startswith(r) for r in RESERVED):
            raise InvalidRequest(f'cannot mount "{full}"')
        if e.type not in self._factories[e.table]:
            raise InvalidRequest(f"plugin not found in the catalog: {e.type}")
        clash = self._router.conflicts(full)
        if clash is not None:
            raise InvalidRequest(f"path is already in use at {clash}")
        await self._start(e)
        await self._persist(e.table)

    async def unmount(self, table: str, path: str) -> None:
        e = self.tables[table].get(path)
        if e is None:
            return  # Vault answers 204 for a path that is not mounted.
        if e.full_path in PROTECTED:
            raise InvalidRequest(f'cannot unmount "{e.full_path}"')
        del self.tables[table][path]
        self._router.remove(e.full_path)
        await self._persist(table)
        if e.backend is not None:
            await e.backend.deactivate()
            # Undo unfinished external work before its log goes with the mount's data
            # (framework/wal.py; a backend without a rollback does nothing).
            await e.backend.rollback_wal(final=True)
        await self._view(e).clear()  # disabling a mount deletes its data

    async def remount(self, src: MountEntry, table: str, path: str) -> None:
        if src.full_path in PROTECTED:
            raise InvalidRequest(f'cannot remount "{src.full_path}"')
        dst_full = ("auth/" + path) if table == "auth" else path
        if table == "mounts" and any(dst_full.startswith(r) for r in RESERVED):
            raise InvalidRequest(f'cannot remount to "{dst_full}"')
        clash = self._router.conflicts(dst_full)
        if clash is not None:
            raise InvalidRequest(f"path already in use at {clash}")
        del self.tables[src.table][src.path]
        self._router.remove(src.full_path)
        if src.backend is not None:
            await src.backend.deactivate()
        src.path = path
        src.backend = None
        await self._start(src)  # restart so the backend learns its new mount path
        await self._persist(table)

    async def retune(self, e: MountEntry) -> None:
        """Persist changed config/options and restart the backend with them."""
        if e.backend is not None:
            await e.backend.deactivate()
        await self._start(e)
        await self._persist(e.table)

    def find(self, table: str, path: str) -> MountEntry | None:
        return self.tables[table].get(path)

    def by_accessor(self, accessor: str) -> MountEntry | None:
        for t in self.tables.values():
            for e in t.values():
                if e.accessor == accessor:
                    return e
        return None
