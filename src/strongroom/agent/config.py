"""Vault Agent's configuration file, HCL or JSON, read into plain dataclasses.

The keys are Vault Agent's (and OpenBao's ``bao agent``): ``vault {}``, ``auto_auth { method, sink }``,
``template {}``, ``template_config {}``, ``env_template "NAME" {}``, ``exec {}``, ``exit_after_auth``,
``pid_file``. A block may be written with a label (``method "approle" { ... }``) or with ``type``
inside it (``method { type = "approle" ... }``), as Vault accepts both. Durations take Vault's
forms (``"5m"``, ``300``). Anything malformed raises :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from strongroom.durations import parse_duration
from strongroom.errors import InvalidRequest
from strongroom.hcl import load_file

__all__ = ["AgentConfig", "AutoAuth", "ConfigError", "Exec", "Listener", "Method", "Sink", "Template", "VaultConfig",
           "load"]

TLS_VERSIONS = ("tls12", "tls13")  # TLS 1.0 and 1.1 are refused


class ConfigError(ValueError):
    """The agent's configuration cannot be used."""


@dataclass(slots=True)
class VaultConfig:
    address: str = ""
    ca_cert: str = ""
    client_cert: str = ""
    client_key: str = ""
    tls_skip_verify: bool = False
    num_retries: int = 12  # Vault Agent's default for retry { num_retries }


@dataclass(slots=True)
class Method:
    type: str
    mount_path: str
    config: dict[str, Any] = field(default_factory=dict)
    wrap_ttl: float = 0


@dataclass(slots=True)
class Sink:
    type: str
    path: str
    mode: int = 0o640  # Vault Agent's default file sink mode
    wrap_ttl: float = 0


@dataclass(slots=True)
class AutoAuth:
    method: Method
    sinks: list[Sink] = field(default_factory=list)


@dataclass(slots=True)
class Template:
    destination: str
    source: str = ""
    contents: str = ""
    perms: int = 0o644
    command: list[str] = field(default_factory=list)
    error_on_missing_key: bool = False
    left_delimiter: str = "{{"
    right_delimiter: str = "}}"
    wait_min: float = 0.0
    wait_max: float = 0.0
    # Beyond Vault: the command after a change (not after the first render) waits a random part of
    # this many seconds, so a fleet of agents does not reload every copy of the application at once.
    splay: float = 0.0
    # env_template "NAME": the rendered text becomes the child's environment variable NAME.
    env_name: str = ""


@dataclass(slots=True)
class Exec:
    command: list[str]
    restart_on_secret_changes: str = "always"  # or "never"
    restart_stop_signal: str = "SIGTERM"
    # Beyond Vault: restarts are delayed by a random part of this many seconds, so agents across a
    # fleet that see the same change do not restart every copy of the application at once.
    splay: float = 0.0
    # consul-template's exec key: a file template change sends this signal instead of restarting.
    reload_signal: str = ""


@dataclass(slots=True)
class Listener:
    """``listener "tcp"|"unix" { address, tls_* }``: TLS when ``tls_cert_file`` is set (a tcp listener
    requires it unless ``tls_disable = true``, as Vault Agent)."""

    type: str  # "tcp" or "unix"
    address: str
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_min_version: str = "tls12"
    tls_max_version: str = ""
    tls_client_ca_file: str = ""
    tls_require_and_verify_client_cert: bool = False


@dataclass(slots=True)
class AgentConfig:
    vault: VaultConfig = field(default_factory=VaultConfig)
    auto_auth: AutoAuth | None = None
    templates: list[Template] = field(default_factory=list)
    env_templates: list[Template] = field(default_factory=list)
    exec: Exec | None = None
    exit_after_auth: bool = False
    pid_file: str = ""
    static_secret_render_interval: float = 300.0  # template_config; Vault's default is 5m
    exit_on_retry_failure: bool = False
    lease_renewal_threshold: float = 0.9  # template_config; fraction of the lease (Vault's default)
    # listener "tcp"|"unix" { address } and api_proxy { use_auto_auth_token = true | "force" }
    listeners: list[Listener] = field(default_factory=list)
    use_auto_auth_token: str = ""


def load(path: str | Path) -> AgentConfig:
    """Read one configuration file (``.json`` as JSON, anything else as HCL)."""
    return parse(load_file(Path(path), ConfigError))


def parse(raw: dict[str, Any]) -> AgentConfig:
    cfg = AgentConfig()
    for vault in _bodies(raw.get("vault")):
        cfg.vault = _vault(vault)
    for aa in _bodies(raw.get("auto_auth")):
        cfg.auto_auth = _auto_auth(aa)
    for t in _bodies(raw.get("template")):
        cfg.templates.append(_template(t))
    for name, t in _labelled(raw.get("env_template"), "env_template"):
        tpl = _template(t, env=True)
        tpl.env_name = name
        cfg.env_templates.append(tpl)
    for tc in _bodies(raw.get("template_config")):
        cfg.static_secret_render_interval = _duration(tc, "static_secret_render_interval", 300)
        cfg.exit_on_retry_failure = _bool(tc, "exit_on_retry_failure")
        if "lease_renewal_threshold" in tc:
            cfg.lease_renewal_threshold = _fraction(tc["lease_renewal_threshold"])
    for ex in _bodies(raw.get("exec")):
        cfg.exec = _exec(ex)
    for kind, lb in _labelled(raw.get("listener"), "listener"):
        if kind not in ("tcp", "unix"):
            raise ConfigError(f'listener type "{kind}" is not supported (tcp, unix)')
        cfg.listeners.append(_listener(kind, lb))
    for ap in _bodies(raw.get("api_proxy")):
        use = ap.get("use_auto_auth_token", False)
        cfg.use_auto_auth_token = "force" if str(use).lower() == "force" else ("true" if _bool(ap, "use_auto_auth_token") else "")
    if cfg.use_auto_auth_token and cfg.auto_auth is None:
        raise ConfigError("api_proxy.use_auto_auth_token requires an auto_auth block")
    cfg.exit_after_auth = _bool(raw, "exit_after_auth")
    cfg.pid_file = _str(raw, "pid_file")
    if cfg.exec is not None and not cfg.env_templates and not cfg.templates:
        raise ConfigError("exec requires at least one env_template or template")
    if cfg.auto_auth is None and (cfg.templates or cfg.env_templates):
        raise ConfigError("template and env_template require an auto_auth block")
    return cfg


# -- blocks ---------------------------------------------------------------------------------


def _bodies(value: Any) -> list[dict[str, Any]]:
    """A block's bodies: HCL gives a list of dicts, JSON an object or a list of objects."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if not isinstance(item, dict):
            raise ConfigError(f"expected a block, got {type(item).__name__}")
        out.append(item)
    return out


def _labelled(value: Any, what: str) -> list[tuple[str, dict[str, Any]]]:
    """``what "label" { ... }`` or ``what { type = "label" ... }`` → [(label, body)]."""
    out = []
    for body in _bodies(value):
        if "type" in body and not isinstance(body["type"], dict):
            out.append((str(body["type"]), {k: v for k, v in body.items() if k != "type"}))
            continue
        if len(body) != 1:
            raise ConfigError(f"{what}: expected one label or a type")
        ((label, inner),) = body.items()
        for b in _bodies(inner):
            out.append((str(label), b))
    return out


def _vault(b: dict[str, Any]) -> VaultConfig:
    v = VaultConfig(address=_str(b, "address"), ca_cert=_str(b, "ca_cert"), client_cert=_str(b, "client_cert"),
                    client_key=_str(b, "client_key"), tls_skip_verify=_bool(b, "tls_skip_verify"))
    for r in _bodies(b.get("retry")):
        if "num_retries" in r:
            v.num_retries = _int(r, "num_retries")
    return v


def _auto_auth(b: dict[str, Any]) -> AutoAuth:
    methods = _labelled(b.get("method"), "method")
    if len(methods) != 1:
        raise ConfigError("auto_auth: exactly one method is required")
    kind, mb = methods[0]
    config = mb.get("config") or {}
    if isinstance(config, list):  # `config { }` written as a block
        config = {k: v for c in config for k, v in c.items()}
    if not isinstance(config, dict):
        raise ConfigError("auto_auth.method.config must be an object")
    mount = _str(mb, "mount_path") or f"auth/{kind}"
    method = Method(kind, mount.strip("/"), dict(config), _duration(mb, "wrap_ttl", 0))
    sinks = []
    for skind, sb in _labelled(b.get("sink"), "sink"):
        sc = sb.get("config") or {}
        if isinstance(sc, list):
            sc = {k: v for c in sc for k, v in c.items()}
        if skind != "file":
            raise ConfigError(f'sink type "{skind}" is not supported (only "file")')
        if not sc.get("path"):
            raise ConfigError("sink file: config.path is required")
        sinks.append(Sink(skind, str(sc["path"]), _mode(sc.get("mode", 0o640)), _duration(sb, "wrap_ttl", 0)))
    return AutoAuth(method, sinks)


def _listener(kind: str, b: dict[str, Any]) -> Listener:
    lis = Listener(kind, _str(b, "address") or ("127.0.0.1:8100" if kind == "tcp" else ""))
    if not lis.address:
        raise ConfigError("listener unix: address is required")
    if _bool(b, "tls_disable"):
        return lis
    lis.tls_cert_file, lis.tls_key_file = _str(b, "tls_cert_file"), _str(b, "tls_key_file")
    if not lis.tls_cert_file or not lis.tls_key_file:
        if kind == "tcp" or lis.tls_cert_file or lis.tls_key_file:
            raise ConfigError(f"listener {kind}: tls_cert_file and tls_key_file are required unless tls_disable = true")
        return lis  # a unix socket without TLS settings: plain, as before
    for key in ("tls_min_version", "tls_max_version"):
        version = _str(b, key)
        if version and version not in TLS_VERSIONS:
            raise ConfigError(f"listener {kind}: {key} {version!r} is not supported (tls12, tls13)")
    lis.tls_min_version = _str(b, "tls_min_version") or "tls12"
    lis.tls_max_version = _str(b, "tls_max_version")
    if lis.tls_max_version and TLS_VERSIONS.index(lis.tls_max_version) < TLS_VERSIONS.index(lis.tls_min_version):
        raise ConfigError(f"listener {kind}: tls_max_version is lower than tls_min_version")
    lis.tls_client_ca_file = _str(b, "tls_client_ca_file")
    lis.tls_require_and_verify_client_cert = _bool(b, "tls_require_and_verify_client_cert")
    return lis


def _template(b: dict[str, Any], *, env: bool = False) -> Template:
    t = Template(destination=_str(b, "destination"), source=_str(b, "source"), contents=_str(b, "contents"),
                 error_on_missing_key=_bool(b, "error_on_missing_key"),
                 left_delimiter=_str(b, "left_delimiter") or "{{", right_delimiter=_str(b, "right_delimiter") or "}}")
    if not env and not t.destination:
        raise ConfigError("template: destination is required")
    if bool(t.source) == bool(t.contents):
        raise ConfigError("template: exactly one of source and contents is required")
    if "perms" in b:
        t.perms = _mode(b["perms"])
    cmd = b.get("command")
    if cmd:
        t.command = [str(c) for c in cmd] if isinstance(cmd, list) else ["/bin/sh", "-c", str(cmd)]
    t.splay = _duration(b, "splay", 0)
    for w in _bodies(b.get("wait")):
        t.wait_min = _duration(w, "min", 0)
        t.wait_max = _duration(w, "max", t.wait_min * 4)  # consul-template's default
        if t.wait_max < t.wait_min:
            raise ConfigError("template.wait: max must not be less than min")
    return t


def _exec(b: dict[str, Any]) -> Exec:
    cmd = b.get("command")
    if not cmd:
        raise ConfigError("exec: command is required")
    command = [str(c) for c in cmd] if isinstance(cmd, list) else ["/bin/sh", "-c", str(cmd)]
    restart = _str(b, "restart_on_secret_changes") or "always"
    if restart not in ("always", "never"):
        raise ConfigError('exec.restart_on_secret_changes must be "always" or "never"')
    sig = (_str(b, "restart_stop_signal") or "SIGTERM").upper()
    if (sig if sig.startswith("SIG") else "SIG" + sig) not in signal.Signals.__members__:
        raise ConfigError(f"exec.restart_stop_signal: unknown signal {sig!r}")
    reload = _str(b, "reload_signal").upper()
    if reload and (reload if reload.startswith("SIG") else "SIG" + reload) not in signal.Signals.__members__:
        raise ConfigError(f"exec.reload_signal: unknown signal {reload!r}")
    return Exec(command, restart, sig, _duration(b, "splay", 0), reload)


# -- values ---------------------------------------------------------------------------------


def _str(b: dict[str, Any], key: str) -> str:
    v = b.get(key, "")
    if v is None:
        return ""
    if not isinstance(v, str):
        raise ConfigError(f"{key}: expected a string")
    return v


def _bool(b: dict[str, Any], key: str) -> bool:
    v = b.get(key, False)
    if isinstance(v, str):
        if v.lower() not in ("true", "false", "1", "0", ""):
            raise ConfigError(f"{key}: expected a boolean")
        return v.lower() in ("true", "1")
    return bool(v)


def _int(b: dict[str, Any], key: str) -> int:
    try:
        return int(b[key])
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected an integer") from None


def _duration(b: dict[str, Any], key: str, default: float) -> float:
    if key not in b or b[key] in (None, ""):
        return default
    try:
        return float(parse_duration(b[key], name=key))
    except InvalidRequest as e:
        raise ConfigError(e.message) from None


def _mode(v: Any) -> int:
    """HCL ``0600`` (octal: the HCL reader decodes it as Go does), ``"0600"`` or a JSON number."""
    try:
        if isinstance(v, str):
            return int(v, 8)
        if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 0o7777:
            return v
    except ValueError:
        pass
    raise ConfigError(f"invalid file mode {v!r}")


def _fraction(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ConfigError("lease_renewal_threshold: expected a number") from None
    if not 0 < f <= 1:
        raise ConfigError("lease_renewal_threshold must be in (0, 1]")
    return f
