"""Top-level keys and stanzas: :class:`ServerConfig`, :class:`StorageConfig`, and the builder that merges files."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from strongroom.config.lockout import LockoutStanzas, UserLockoutConfig
from strongroom.config.listener import DEFAULT_MAX_REQUEST_DURATION, ListenerConfig, _listener
from strongroom.config.values import (
    ConfigError,
    _Bad,
    _blocks,
    _bool,
    _duration,
    _get,
    _int,
    _log_level,
    _option_str,
    _Repeated,
    _str,
    _url,
)
from strongroom.durations import format_duration

DEFAULT_LEASE_TTL = 768 * 3600  # Vault's default for both default_lease_ttl and max_lease_ttl (32 days)


@dataclass(frozen=True, slots=True)
class StorageConfig:
    """A ``storage "TYPE" {...}`` stanza. Options are strings, as Vault hands them to backends:
    booleans become "true"/"false", numbers their decimal text, lists and maps compact JSON."""

    type: str
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """The whole server configuration. TTLs and durations are seconds."""

    storage: StorageConfig | None = None
    ha_storage: StorageConfig | None = None
    listeners: tuple[ListenerConfig, ...] = ()
    api_addr: str = ""
    cluster_addr: str = ""
    disable_mlock: bool = False
    default_lease_ttl: int = DEFAULT_LEASE_TTL
    max_lease_ttl: int = DEFAULT_LEASE_TTL
    ui: bool = False
    log_level: str = "info"
    unsafe_allow_api_audit_creation: bool = False
    cluster_name: str = ""
    pid_file: str = ""
    plugin_directory: str = ""
    disable_cache: bool = False
    # Kept raw for the subsystems that will own them: each audit device is
    # {"type": ..., "path": ..., "description": ..., "options": {...}, ...}.
    raw_audit_devices: tuple[dict[str, object], ...] = ()
    telemetry: dict[str, object] = field(default_factory=dict)
    # security { webhook_urls = [...], revoke_on_tamper = true } (Strongroom's own stanza).
    security_webhook_urls: tuple[str, ...] = ()
    security_revoke_on_tamper: bool = False
    # HA standbys redirect (307) instead of forwarding requests to the active (docs/ha.md); Vault's
    # disable_clustering (no cluster port, so no forwarding) means the same here.
    disable_request_forwarding: bool = False
    # HA standbys answer plain KV reads and token lookups themselves (Strongroom's own; docs/ha.md).
    standby_reads: bool = False
    # HA fleet monitoring (Strongroom's own key): alarm when fewer nodes are unsealed; 0 = off.
    min_unsealed_nodes: int = 0
    # user_lockout "TYPE" { ... } stanzas (config/lockout.py), resolved; {} without any.
    user_lockouts: dict[str, UserLockoutConfig] = field(default_factory=dict)


# Storage backends with an HA lock (storage/postgresql.py, storage/etcd_ha.py): the only ones ha_storage takes.
HA_STORAGE_TYPES = frozenset({"postgresql", "etcd"})

# --------------------------------------------------------------------------- top-level keys

_SETTINGS: dict[str, Callable[[object, str], object]] = {
    "api_addr": _url, "cluster_addr": _url, "log_level": _log_level,
    "default_lease_ttl": _duration, "max_lease_ttl": _duration, "default_max_request_duration": _duration,
    "ui": _bool, "disable_mlock": _bool, "disable_cache": _bool, "unsafe_allow_api_audit_creation": _bool,
    "cluster_name": _str, "pid_file": _str, "plugin_directory": _str,
    "disable_request_forwarding": _bool, "disable_clustering": _bool, "standby_reads": _bool,
}
_SETTINGS["min_unsealed_nodes"] = lambda v, k: _count(v, k)  # Strongroom's own (docs/ha.md)

# Accepted for compatibility with existing Vault/OpenBao configs; ignoring them never weakens security.
_IGNORED = frozenset({
    "log_format", "log_file", "log_rotate_duration", "log_rotate_bytes", "log_rotate_max_files",
    "log_requests_level", "raw_storage_endpoint", "introspection_endpoint",
    "enable_response_header_hostname", "enable_response_header_raft_node_id", "license_path",
    "cache_size", "detect_deadlocks", "imprecise_lease_role_tracking", "allow_audit_log_prefixing",
    "disable_standby_reads", "disable_performance_standby", "disable_sealwrap", "disable_printable_check",
    "plugin_file_uid", "plugin_file_permissions", "plugin_auto_download", "plugin_auto_register",
    "plugin_download_behavior", "allow_unauthenticated_workflows",
})

_UNSUPPORTED = {
    "seal": "seal is not supported yet (only Shamir unseal keys); remove the seal stanza",
    "service_registration": "service_registration is not supported yet",
    "initialize": "declarative self-initialization (initialize) is not supported yet",
    "plugin": "plugin stanzas are not supported yet",
    "entropy": "entropy is not supported", "kms_library": "kms_library is not supported",
    "replication": "replication is not supported",
}


class _Builder:
    """Accumulates files in order, as Vault merges them, then validates the whole and builds."""

    def __init__(self) -> None:
        self.settings: dict[str, object] = {}
        self.set_in: dict[str, str] = {}  # key → file that last set it
        self.storage: dict[str, tuple[StorageConfig, str]] = {}  # "storage"/"ha_storage" → (config, file)
        self.listeners: list[tuple[ListenerConfig, str]] = []
        self.audit: dict[str, tuple[dict[str, object], str]] = {}  # audit path → (device, file)
        self.telemetry: dict[str, object] = {}
        self.security: dict[str, object] = {}
        self.lockout = LockoutStanzas()

    def add_file(self, data: Mapping[str, object], source: str) -> None:
        for key, value in data.items():
            try:
                self._add(key, value, source)
            except _Bad as exc:
                raise ConfigError(source, exc.message, key=exc.key) from None

    def _add(self, key: str, value: object, source: str) -> None:
        if key in ("storage", "backend", "ha_storage", "ha_backend"):
            which = "ha_storage" if key.startswith("ha_") else "storage"
            for config in _storage(value, key):
                if which in self.storage:
                    where = self.storage[which][1]
                    first = "this file" if where == source else where
                    raise _Bad(which, f"{which} is already defined in {first} (only one is allowed)")
                self.storage[which] = (config, source)
        elif key == "listener":
            for labels, body in _blocks(value, 1, 'listener "tcp" { ... }'):
                self.listeners.append((_listener(labels[0], body), source))
        elif key == "audit":
            for labels, body in _blocks(value, 2, 'audit "TYPE" "PATH" { ... }'):
                if labels[1] in self.audit:
                    raise _Bad(key, f'audit path "{labels[1]}" is already used in {self.audit[labels[1]][1]}')
                self.audit[labels[1]] = (_audit(labels, body), source)
        elif key == "telemetry":
            bodies = _blocks(value, 0, "telemetry { ... }")
            if len(bodies) != 1:
                raise _Bad(key, "only one telemetry stanza is allowed")
            self.telemetry = bodies[0][1]
        elif key == "security":
            bodies = _blocks(value, 0, "security { ... }")
            if len(bodies) != 1 or self.security:
                raise _Bad(key, "only one security stanza is allowed")
            self.security = _security(bodies[0][1])
        elif key == "user_lockout":
            self.lockout.add(value)
        elif key in _SETTINGS:
            if isinstance(value, _Repeated):
                raise _Bad(key, f'"{key}" is set more than once')
            _SETTINGS[key](value, key)  # validate now, so the error names this file even if overridden later
            self.settings[key], self.set_in[key] = value, source
        elif key in _UNSUPPORTED:
            raise _Bad(key, _UNSUPPORTED[key])
        elif key not in _IGNORED:
            raise _Bad(key, f'unknown key "{key}"')

    def build(self, everywhere: str, require_complete: bool) -> ServerConfig:
        s = self.settings
        max_ttl = _get(s, "max_lease_ttl", _duration, 0) or DEFAULT_LEASE_TTL  # 0 means the default
        # An unset default_lease_ttl follows a lowered max_lease_ttl rather than failing against it.
        default_ttl = _get(s, "default_lease_ttl", _duration, 0) or min(DEFAULT_LEASE_TTL, max_ttl)
        if default_ttl > max_ttl:
            raise ConfigError(self.set_in["default_lease_ttl"],
                              f"default_lease_ttl ({format_duration(default_ttl)}) is larger than "
                              f"max_lease_ttl ({format_duration(max_ttl)})", key="default_lease_ttl")
        storage, ha_storage = (self.storage[k][0] if k in self.storage else None
                               for k in ("storage", "ha_storage"))
        listeners = self._listeners(_get(s, "default_max_request_duration", _duration, 0))
        if ha_storage is not None and ha_storage.type not in HA_STORAGE_TYPES:
            raise ConfigError(self.storage["ha_storage"][1], f'ha_storage "{ha_storage.type}" does not support high '
                              f'availability (supported: {", ".join(sorted(HA_STORAGE_TYPES))})', key="ha_storage")
        if require_complete and storage is None:
            raise ConfigError(everywhere, 'no storage stanza: one storage "TYPE" { ... } is required',
                              key="storage")
        if require_complete and not listeners:
            raise ConfigError(everywhere, 'no listener stanza: at least one listener "tcp" { ... } is '
                                          "required", key="listener")
        return ServerConfig(
            storage=storage, ha_storage=ha_storage, listeners=listeners,
            api_addr=_get(s, "api_addr", _url, ""),
            cluster_addr=_get(s, "cluster_addr", _url, ""),
            disable_mlock=_get(s, "disable_mlock", _bool, False),
            default_lease_ttl=default_ttl,
            max_lease_ttl=max_ttl,
            ui=_get(s, "ui", _bool, False),
            log_level=_get(s, "log_level", _log_level, "info"),
            unsafe_allow_api_audit_creation=_get(s, "unsafe_allow_api_audit_creation", _bool, False),
            cluster_name=_get(s, "cluster_name", _str, ""),
            pid_file=_get(s, "pid_file", _str, ""),
            plugin_directory=_get(s, "plugin_directory", _str, ""),
            disable_cache=_get(s, "disable_cache", _bool, False),
            raw_audit_devices=tuple(device for device, _ in self.audit.values()),
            telemetry=self.telemetry,
            security_webhook_urls=tuple(str(u) for u in self.security.get("webhook_urls", ())),  # type: ignore[attr-defined]
            security_revoke_on_tamper=bool(self.security.get("revoke_on_tamper", False)),
            standby_reads=_get(s, "standby_reads", _bool, False),
            disable_request_forwarding=(_get(s, "disable_request_forwarding", _bool, False)
                                        or _get(s, "disable_clustering", _bool, False)),
            min_unsealed_nodes=_get(s, "min_unsealed_nodes", _count, 0),
            user_lockouts=self.lockout.build(),
        )

    def _listeners(self, default_duration: int) -> tuple[ListenerConfig, ...]:
        # A listener's max_request_duration of 0 means the top-level default_max_request_duration,
        # which may come from a later file; that is why it is filled in only now.
        default_duration = default_duration or DEFAULT_MAX_REQUEST_DURATION
        used: dict[str, str] = {}
        out: list[ListenerConfig] = []
        for listener, source in self.listeners:
            if listener.address in used:
                raise ConfigError(source, f'listener "tcp": address "{listener.address}" is already used '
                                          f"by a listener in {used[listener.address]}", key="address")
            used[listener.address] = source
            out.append(listener if listener.max_request_duration
                       else dataclasses.replace(listener, max_request_duration=default_duration))
        return tuple(out)



def _storage(value: object, key: str) -> list[StorageConfig]:
    shape = f'{key} "TYPE" {{ ... }}'
    return [StorageConfig(labels[0], {k: _option_str(v, k) for k, v in body.items() if v is not None})
            for labels, body in _blocks(value, 1, shape)]


def _security(body: dict[str, object]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in body.items():
        if key == "webhook_urls":
            items = value if isinstance(value, list) else [value]
            out[key] = tuple(_url(v, "security.webhook_urls") for v in items)
        elif key == "revoke_on_tamper":
            out[key] = _bool(value, "security.revoke_on_tamper")
        else:
            raise _Bad(f"security.{key}", f'unknown key "security.{key}"')
    return out


def _count(value: object, key: str) -> int:
    n = _int(value, key)
    if n < 0:
        raise _Bad(key, f"{key} must not be negative, not {n}")
    return n


def _audit(labels: tuple[str, ...], body: dict[str, object]) -> dict[str, object]:
    device: dict[str, object] = {"type": labels[0], "path": labels[1], **body}
    options = device.get("options")
    if isinstance(options, list) and len(options) == 1:  # HCL `options { ... }` is a one-block list
        device["options"] = options[0]
    return device
