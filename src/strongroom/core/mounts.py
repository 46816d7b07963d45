"""Mount tables: which backend serves which path prefix, persisted through the barrier.

Two tables, as in Vault: secrets engines ("mounts", keyed "secret/") and auth methods ("auth",
keyed "token/" and routed under "auth/"). Each mount's data lives in its own storage view named by
its UUID, so a remount moves no data and an unmount deletes exactly one prefix.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from strongroom.barrier.view import StorageView
from strongroom.core.router import Router
from strongroom.errors import InvalidRequest
from strongroom.framework import Backend, BackendConfig
from strongroom.logical import Operation, Request, Storage

# Barrier keys holding each table as JSON {"entries": [...]}.
MOUNTS_TABLE_KEY = "core/mounts"
AUTH_TABLE_KEY = "core/auth"
# Per-mount data prefixes: "logical/<uuid>/" for secrets engines, "auth/<uuid>/" for auth methods.
LOGICAL_PREFIX = "logical/"
AUTH_PREFIX = "auth/"

# Mounts that exist on every server and cannot be disabled or moved.
PROTECTED = ("sys/", "cubbyhole/", "auth/token/")
# Mount types core creates itself rather than from the plugin catalog.
CORE_TYPES = frozenset({"system", "cubbyhole", "token", "identity"})
# Path prefixes a user cannot mount a secrets engine under.
RESERVED = ("sys/", "auth/", "cubbyhole/", "identity/")

Factory = Callable[[BackendConfig], Backend]


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
        if self.type not in CORE_TYPES:
            out["deprecation_status"] = "supported"
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
    if ".." in path.split("/"):
        raise InvalidRequest(f'invalid path "{path}"')
    return path + "/"


class MountTable:
    """Owns both tables, their persistence and the router entries; creates backends through factories."""

    def __init__(self, barrier: Storage, router: Router, factories: dict[str, dict[str, Factory]],
                 system_ttls: Callable[[], tuple[int, int]]) -> None:
        self._barrier = barrier
        self._router = router
        self._factories = factories  # {"mounts": {type: factory}, "auth": {type: factory}}
        self._system_ttls = system_ttls
        self.tables: dict[str, dict[str, MountEntry]] = {"mounts": {}, "auth": {}}

    # -- persistence ----------------------------------------------------------------------------
    async def load(self, defaults: list[MountEntry]) -> None:
        """Load both tables (creating the default mounts on first unseal) and start every backend."""
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

    async def _persist(self, table: str) -> None:
        entries = [e.to_json() for e in self.tables[table].values()]
        key = MOUNTS_TABLE_KEY if table == "mounts" else AUTH_TABLE_KEY
        await self._barrier.put(key, orjson.dumps({"entries": entries}))

    # -- lifecycle ------------------------------------------------------------------------------
    def new_entry(self, table: str, path: str, type_: str, **kw: Any) -> MountEntry:
        prefix = "auth_" if table == "auth" else ""
        return MountEntry(table=table, path=path, type=type_, uuid=str(uuid.uuid4()),
                          accessor=f"{prefix}{type_}_{secrets.token_hex(4)}", **kw)

    def backend_config(self, e: MountEntry) -> BackendConfig:
        return BackendConfig(mount_path=e.full_path, mount_type=e.type, options=dict(e.options or {}),
                             default_lease_ttl=self.ttls(e)[0], max_lease_ttl=self.ttls(e)[1])

    def ttls(self, e: MountEntry) -> tuple[int, int]:
        """The effective (default, max) lease TTLs of a mount: its own tune, else the system's. A
        tune may ask for more than the system max (OpenBao accepts it); the system max still caps."""
        sys_default, sys_max = self._system_ttls()
        mx = min(e.config.max_lease_ttl or sys_max, sys_max)
        default = e.config.default_lease_ttl or sys_default
        return min(default, mx), mx

    def _view(self, e: MountEntry) -> StorageView:
        prefix = AUTH_PREFIX if e.table == "auth" else LOGICAL_PREFIX
        return StorageView(self._barrier, f"{prefix}{e.uuid}/")

    async def _start(self, e: MountEntry) -> None:
        factory = self._factories[e.table].get(e.type)
        if factory is None:
            raise InvalidRequest(f"plugin not found in the catalog: {e.type}")
        e.view = self._view(e)
        e.backend = factory(self.backend_config(e))
        await e.backend.initialize(Request(Operation.UPDATE, "", storage=e.view, mount_point=e.full_path))
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
            await e.backend.cleanup()
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
        src.path = path
        src.backend = None
        await self._start(src)  # restart so the backend learns its new mount path
        await self._persist(table)

    async def retune(self, e: MountEntry) -> None:
        """Persist changed config/options and restart the backend with them."""
        if e.backend is not None:
            await e.backend.cleanup()
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

    async def teardown(self) -> None:
        for t in self.tables.values():
            for e in t.values():
                if e.backend is not None:
                    await e.backend.cleanup()
        self._router.clear()
