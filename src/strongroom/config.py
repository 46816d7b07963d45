"""Server configuration: Vault/OpenBao-style HCL or JSON files → frozen dataclasses, validated once.

``load_config(paths)`` reads each path (a file, or a directory whose ``*.hcl``/``*.json`` files are
read in sorted order) and merges them as Vault does: a later file's scalar settings override an
earlier one's, listeners and audit devices accumulate, and only one storage (and one ha_storage)
stanza may exist across all files. Everything is validated here, so the server never meets a
half-checked value; every error is a :class:`ConfigError` naming the file and the key.

Nothing here reads the environment: ``server.py`` and ``cli/`` own that, and pass the result down.

Unknown keys are errors. Keys Vault users commonly have that are harmless to ignore are accepted
and ignored; keys whose silent omission could weaken security (``seal``, ``user_lockout``, client
certificate enforcement, proxy/X-Forwarded-For trust, cipher suites...) are refused as
"not supported yet" rather than ignored, so a migrated config never runs less safely than it reads.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from strongroom import hcl
from strongroom.durations import format_duration, parse_duration
from strongroom.errors import InvalidRequest

__all__ = ["ConfigError", "ListenerConfig", "ServerConfig", "StorageConfig", "dev_config", "load_config"]

DEFAULT_LEASE_TTL = 768 * 3600  # Vault's default for both default_lease_ttl and max_lease_ttl (32 days)
DEFAULT_MAX_REQUEST_SIZE = 32 * 1024 * 1024
DEFAULT_MAX_REQUEST_DURATION = 90
DEFAULT_ADDRESS = "127.0.0.1:8200"


class ConfigError(InvalidRequest):
    """An unreadable or invalid configuration. The message starts with the file it came from."""

    def __init__(self, source: str, message: str, *, key: str = "") -> None:
        super().__init__(f"{source}: {message}" if source else message)
        self.source = source
        self.key = key


@dataclass(frozen=True, slots=True)
class ListenerConfig:
    """One ``listener "tcp"`` stanza. ``max_request_size`` < 0 means unlimited; durations are seconds.

    ``cluster_address`` empty means "one port above ``address``", which the server derives.
    """

    type: str = "tcp"
    address: str = DEFAULT_ADDRESS
    cluster_address: str = ""
    tls_disable: bool = False
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_min_version: str = "tls12"
    tls_client_ca_file: str = ""
    max_request_size: int = DEFAULT_MAX_REQUEST_SIZE
    max_request_duration: int = DEFAULT_MAX_REQUEST_DURATION
    # OpenBao's switches for the token-less key ceremony endpoints (off by default, as in Vault).
    disable_unauthed_rekey_endpoints: bool = False
    disable_unauthed_generate_root_endpoints: bool = False


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


# --------------------------------------------------------------------------- public entry points


def load_config(paths: Sequence[str], *, require_complete: bool = True) -> ServerConfig:
    """Read, merge and validate config files and directories, in the order given.

    With ``require_complete`` (the default) a storage stanza and at least one listener are
    required, as Vault requires them outside dev mode.
    """
    if isinstance(paths, str):  # a lone path, not a sequence of one-character paths
        paths = [paths]
    builder = _Builder()
    for path in paths:
        for file in _expand(path):
            builder.add_file(_read(file), file)
    return builder.build(", ".join(paths) or "config", require_complete)


def dev_config(listen_address: str = DEFAULT_ADDRESS) -> ServerConfig:
    """``server -dev``: in-memory storage, one plain-HTTP tcp listener, UI on."""
    try:
        address = _address(listen_address, "dev-listen-address")
    except _Bad as exc:
        raise ConfigError("-dev-listen-address", exc.message, key=exc.key) from None
    return ServerConfig(
        storage=StorageConfig("inmem", {}),
        listeners=(ListenerConfig(address=address, tls_disable=True),),
        disable_mlock=True,
        ui=True,
    )


# --------------------------------------------------------------------------- value converters

T = TypeVar("T")


class _Bad(Exception):
    """A value or key problem, before we know which file (and stanza) to blame."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


class _Repeated(list[object]):
    """The values of a key a JSON object repeats (HCL's JSON syntax treats that as several blocks)."""


def _typename(value: object) -> str:
    if isinstance(value, dict):
        return "a block"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _str(value: object, key: str) -> str:
    if not isinstance(value, str):
        raise _Bad(key, f"{key} must be a string, not {_typename(value)}")
    return value


_TRUE = frozenset({"1", "t", "true"})
_FALSE = frozenset({"0", "f", "false"})


def _bool(value: object, key: str) -> bool:
    # Vault accepts Go's strconv.ParseBool spellings ("true", "1", "t", ...) as well as real booleans.
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return value == 1
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _Bad(key, f"{key} must be true or false, not {json.dumps(value, default=str)}")


def _int(value: object, key: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    raise _Bad(key, f"{key} must be an integer, not {json.dumps(value, default=str)}")


def _duration(value: object, key: str) -> int:
    try:
        return parse_duration(value, name=key)
    except InvalidRequest as exc:
        raise _Bad(key, exc.message) from None


def _tls_version(value: object, key: str) -> str:
    raw = _str(value, key)
    text = raw.strip().lower()
    if text in ("tls10", "tls11"):
        raise _Bad(key, f'{key} "{raw}" is refused: TLS 1.0 and 1.1 are insecure (use tls12 or tls13)')
    if text not in ("tls12", "tls13"):
        raise _Bad(key, f'{key} "{raw}" is invalid (tls12 or tls13)')
    return text


_LOG_LEVELS = {"trace": "trace", "debug": "debug", "info": "info", "warn": "warn", "warning": "warn",
               "err": "error", "error": "error"}


def _log_level(value: object, key: str) -> str:
    raw = _str(value, key)
    if raw.strip().lower() not in _LOG_LEVELS:
        raise _Bad(key, f'{key} "{raw}" is invalid (trace, debug, info, warn or error)')
    return _LOG_LEVELS[raw.strip().lower()]


_HOST = re.compile(r"[A-Za-z0-9._-]*")


def _no_template(text: str, key: str) -> None:
    if "{{" in text:
        raise _Bad(key, f'{key} "{text}": go-sockaddr templates are not supported yet')


def _address(value: object, key: str) -> str:
    """A listen address, ``host:port`` or ``[ipv6]:port``; an empty host means all interfaces."""
    text = _str(value, key).strip()
    _no_template(text, key)
    host, sep, port = text.rpartition(":")
    hint = f'{key} "{text}" is invalid: expected host:port, e.g. "127.0.0.1:8200"'
    if "/" in text:
        raise _Bad(key, hint + " (no scheme or path)")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise _Bad(key, hint)
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise _Bad(key, hint) from None
    elif ":" in host:
        raise _Bad(key, f'{key} "{text}" is invalid: put IPv6 addresses in brackets, e.g. "[::1]:8200"')
    elif not _HOST.fullmatch(host):
        raise _Bad(key, hint)
    return text


def _optional_address(value: object, key: str) -> str:
    return _address(value, key) if _str(value, key).strip() else ""


def _url(value: object, key: str) -> str:
    """An advertised address (api_addr, cluster_addr): a full URL such as https://10.0.0.1:8200."""
    text = _str(value, key).strip()
    if not text:
        return ""
    _no_template(text, key)
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        parts = None
    if parts is None or not parts.scheme or not parts.hostname:
        raise _Bad(key, f'{key} "{text}" is invalid: expected a full URL, e.g. "https://10.0.0.1:8200"')
    if key == "api_addr" and parts.scheme not in ("http", "https"):
        raise _Bad(key, f'{key} "{text}" is invalid: the scheme must be http or https')
    return text


def _get(values: Mapping[str, object], key: str, conv: Callable[[object, str], T], default: T) -> T:
    return conv(values[key], key) if key in values else default


def _plain(value: object) -> object:
    """Plain dicts and lists, recursively (HCL block bodies are a dict subclass)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, _Repeated):
        return _Repeated(_plain(v) for v in value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _option_str(value: object, key: str) -> str:
    """A storage option as the string Vault would pass to the backend."""
    if isinstance(value, _Repeated):
        raise _Bad(key, f'"{key}" is set more than once')
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"))


def _is_set(value: object) -> bool:
    """Whether a value would turn a feature on (so ignoring it would change behaviour)."""
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "f", "false")
    if isinstance(value, dict):
        return any(_is_set(v) for v in value.values())
    if isinstance(value, list):
        return any(_is_set(v) for v in value)
    return bool(value)


# --------------------------------------------------------------------------- reading files


def _expand(path: str) -> list[str]:
    p = Path(path)
    if p.is_dir():
        return [str(p / name) for name in sorted(c.name for c in p.iterdir() if c.is_file()
                                                  and c.suffix.lower() in (".hcl", ".json"))]
    if not p.exists():
        raise ConfigError(path, "no such file or directory")
    return [path]


def _read(path: str) -> dict[str, object]:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(path, "not a UTF-8 text file") from None
    except OSError as exc:
        raise ConfigError(path, f"cannot read: {exc.strerror or exc}") from None
    suffix = Path(path).suffix.lower()
    is_json = suffix == ".json" or (suffix != ".hcl" and text.lstrip().startswith("{"))
    data = _parse_json(text, path) if is_json else _parse_hcl(text, path)
    if not isinstance(data, dict):
        raise ConfigError(path, "the top level must be an object")
    return data


def _json_object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            prev = out[key]
            out[key] = _Repeated([*prev, value]) if isinstance(prev, _Repeated) else _Repeated([prev, value])
        else:
            out[key] = value
    return out


def _parse_json(text: str, path: str) -> object:
    try:
        return json.loads(text, object_pairs_hook=_json_object)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise ConfigError(path, f"JSON syntax error at {where}: {exc.msg}") from None


def _parse_hcl(text: str, path: str) -> object:
    try:
        return hcl.loads(text)
    except hcl.HCLError as exc:
        raise ConfigError(path, f"HCL syntax error at line {exc.line} column {exc.column}: {exc.detail}") from None


# --------------------------------------------------------------------------- top-level keys

_SETTINGS: dict[str, Callable[[object, str], object]] = {
    "api_addr": _url, "cluster_addr": _url, "log_level": _log_level,
    "default_lease_ttl": _duration, "max_lease_ttl": _duration, "default_max_request_duration": _duration,
    "ui": _bool, "disable_mlock": _bool, "disable_cache": _bool, "unsafe_allow_api_audit_creation": _bool,
    "cluster_name": _str, "pid_file": _str, "plugin_directory": _str,
}

# Accepted for compatibility with existing Vault/OpenBao configs; ignoring them never weakens security.
_IGNORED = frozenset({
    "log_format", "log_file", "log_rotate_duration", "log_rotate_bytes", "log_rotate_max_files",
    "log_requests_level", "raw_storage_endpoint", "introspection_endpoint", "disable_clustering",
    "enable_response_header_hostname", "enable_response_header_raft_node_id", "license_path",
    "cache_size", "detect_deadlocks", "imprecise_lease_role_tracking", "allow_audit_log_prefixing",
    "disable_standby_reads", "disable_performance_standby", "disable_sealwrap", "disable_printable_check",
    "plugin_file_uid", "plugin_file_permissions", "plugin_auto_download", "plugin_auto_register",
    "plugin_download_behavior", "allow_unauthenticated_workflows",
})

_UNSUPPORTED = {
    "seal": "seal is not supported yet (only Shamir unseal keys); remove the seal stanza",
    "user_lockout": "user_lockout is not supported yet",
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


Block = tuple[tuple[str, ...], dict[str, object]]


def _blocks(value: object, labels: int, shape: str) -> list[Block]:
    """Every block under a key, in any of the forms HCL and Vault's JSON allow.

    ``listener "tcp" {...}`` (once or repeated), ``"listener": {"tcp": {...}}``,
    ``"listener": [{"tcp": {...}}]`` and ``"listener": {"tcp": [{...}, {...}]}`` all land here as
    lists of ``((label, ...), body)``.
    """
    name = shape.split()[0]
    out: list[Block] = []

    def walk(item: object, seen: tuple[str, ...]) -> None:
        if isinstance(item, list):  # a list of blocks, or a JSON key repeated with list values
            for each in item:
                walk(each, seen)
            return
        if not isinstance(item, dict):
            raise _Bad(name, f"{name} must be written as {shape}, not {_typename(item)}")
        if len(seen) == labels:
            out.append((seen, {k: _plain(v) for k, v in item.items()}))
            return
        if isinstance(item, hcl.Block):  # an HCL block with too few labels
            raise _Bad(name, f"{name} must be written as {shape}")
        for label, sub in item.items():
            if not label:
                raise _Bad(name, f"{name} labels must not be empty")
            walk(sub, (*seen, label))

    walk(value, ())
    return out


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


def _audit(labels: tuple[str, ...], body: dict[str, object]) -> dict[str, object]:
    device: dict[str, object] = {"type": labels[0], "path": labels[1], **body}
    options = device.get("options")
    if isinstance(options, list) and len(options) == 1:  # HCL `options { ... }` is a one-block list
        device["options"] = options[0]
    return device


# --------------------------------------------------------------------------- listeners

_LISTENER_FIELDS = frozenset(f.name for f in dataclasses.fields(ListenerConfig)) - {"type"}

# Accepted and ignored: benign, or ignoring them only makes us stricter (e.g. metrics stay authenticated).
_LISTENER_IGNORED: dict[str, Callable[[object, str], object]] = {
    "http_idle_timeout": _duration, "http_read_header_timeout": _duration, "http_read_timeout": _duration,
    "http_write_timeout": _duration, "tls_max_version": _tls_version, "tls_disable_client_certs": _bool,
    "tls_prefer_server_cipher_suites": _bool,
    "max_request_json_memory": _int, "max_request_json_strings": _int,
    "profiling": lambda v, k: v, "inflight_requests_logging": lambda v, k: v,
}

# Refused when set: ignoring these would quietly serve with weaker checks than the operator wrote.
_LISTENER_UNSUPPORTED = ("tls_require_and_verify_client_cert", "tls_cipher_suites",
                         "tls_key_exchange_preferences", "tls_auto_reload", "tls_acme_", "proxy_protocol_",
                         "x_forwarded_for_", "custom_response_headers", "chroot_namespace", "redact_")


def _listener(kind: str, body: dict[str, object]) -> ListenerConfig:
    try:
        return _tcp_listener(kind, body)
    except _Bad as exc:
        raise _Bad(exc.key, f'listener "{kind}": {exc.message}') from None


def _tcp_listener(kind: str, body: dict[str, object]) -> ListenerConfig:
    if kind != "tcp":
        raise _Bad("listener", 'only "tcp" listeners are supported')
    for key, value in body.items():
        if isinstance(value, _Repeated):
            raise _Bad(key, f'"{key}" is set more than once')
        if key in _LISTENER_FIELDS:
            continue
        if key in _LISTENER_IGNORED:
            _LISTENER_IGNORED[key](value, key)
        elif key == "telemetry":
            _listener_telemetry(value)
        elif key.startswith(_LISTENER_UNSUPPORTED):
            if _is_set(value):
                raise _Bad(key, f"{key} is not supported yet")
        else:
            raise _Bad(key, f'unknown key "{key}"')

    listener = ListenerConfig(
        type=kind,
        address=_get(body, "address", _address, DEFAULT_ADDRESS),
        cluster_address=_get(body, "cluster_address", _optional_address, ""),
        tls_disable=_get(body, "tls_disable", _bool, False),
        tls_cert_file=_get(body, "tls_cert_file", _str, ""),
        tls_key_file=_get(body, "tls_key_file", _str, ""),
        tls_min_version=_get(body, "tls_min_version", _tls_version, "tls12"),
        tls_client_ca_file=_get(body, "tls_client_ca_file", _str, ""),
        # 0 means "the default" in Vault; _Builder fills in max_request_duration's, which may come
        # from default_max_request_duration in another file.
        max_request_size=_get(body, "max_request_size", _int, 0),
        max_request_duration=_get(body, "max_request_duration", _duration, 0),
        disable_unauthed_rekey_endpoints=_get(body, "disable_unauthed_rekey_endpoints", _bool, False),
        disable_unauthed_generate_root_endpoints=_get(body, "disable_unauthed_generate_root_endpoints", _bool, False),
    )
    if listener.max_request_size == 0:
        listener = dataclasses.replace(listener, max_request_size=DEFAULT_MAX_REQUEST_SIZE)
    elif listener.max_request_size < 0:
        listener = dataclasses.replace(listener, max_request_size=-1)
    if not listener.tls_disable and not (listener.tls_cert_file and listener.tls_key_file):
        raise _Bad("tls_cert_file", "TLS is enabled but tls_cert_file and tls_key_file are not both set "
                                    "(set tls_disable = true to serve plain HTTP)")
    max_version = _get(body, "tls_max_version", _tls_version, "tls13")
    if listener.tls_min_version > max_version:
        raise _Bad("tls_min_version", f'tls_min_version "{listener.tls_min_version}" is above '
                                      f'tls_max_version "{max_version}"')
    return listener


def _listener_telemetry(value: object) -> None:
    for _, body in _blocks(value, 0, "telemetry { ... }"):
        for key, setting in body.items():
            if key == "unauthenticated_metrics_access":
                _bool(setting, key)  # ignored: metrics then simply require a token
            elif _is_set(setting):
                raise _Bad(key, f"telemetry {key} is not supported yet")
