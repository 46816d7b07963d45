"""The bridge's configuration file (HCL or JSON).

    vault  { address, ca_cert, client_cert, client_key, tls_skip_verify }
    bridge { engine_socket, token_file, label = "strongroom.role", roles = { web = "web-role" },
             wrap_ttl = "60s", deliver_path = "/run/strongroom/token" }

``roles`` maps a label value to a token role (``auth/token/roles/ROLE``, created by the operator).
Anything malformed raises :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from strongroom.durations import parse_duration
from strongroom.errors import InvalidRequest
from strongroom.hcl import load_file

__all__ = ["BridgeConfig", "ConfigError", "load", "parse"]


class ConfigError(ValueError):
    """The bridge's configuration cannot be used."""


@dataclass(slots=True)
class BridgeConfig:
    address: str = ""
    ca_cert: str = ""
    client_cert: str = ""
    client_key: str = ""
    tls_skip_verify: bool = False
    engine_socket: str = "/var/run/docker.sock"
    token_file: str = ""
    label: str = "strongroom.role"
    roles: dict[str, str] = field(default_factory=dict)
    wrap_ttl: float = 60.0
    deliver_path: str = "/run/strongroom/token"


def load(path: str | Path) -> BridgeConfig:
    return parse(load_file(Path(path), ConfigError))


def _bodies(value: Any, what: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, dict):
            raise ConfigError(f"{what}: expected a block, got {type(item).__name__}")
    return list(items)


def _str(b: dict[str, Any], key: str, what: str) -> str:
    v = b.get(key, "")
    if not isinstance(v, str):
        raise ConfigError(f"{what}.{key}: expected a string")
    return v


def parse(raw: dict[str, Any]) -> BridgeConfig:
    cfg = BridgeConfig()
    for v in _bodies(raw.get("vault"), "vault"):
        cfg.address = _str(v, "address", "vault")
        cfg.ca_cert = _str(v, "ca_cert", "vault")
        cfg.client_cert = _str(v, "client_cert", "vault")
        cfg.client_key = _str(v, "client_key", "vault")
        skip = v.get("tls_skip_verify", False)
        cfg.tls_skip_verify = skip is True or str(skip).lower() == "true"
    bridges = _bodies(raw.get("bridge"), "bridge")
    if not bridges:
        raise ConfigError("a bridge block is required")
    for b in bridges:
        cfg.engine_socket = _str(b, "engine_socket", "bridge") or cfg.engine_socket
        cfg.token_file = _str(b, "token_file", "bridge")
        cfg.label = _str(b, "label", "bridge") or cfg.label
        cfg.deliver_path = _str(b, "deliver_path", "bridge") or cfg.deliver_path
        roles: dict[str, str] = {}
        for r in _bodies(b.get("roles"), "bridge.roles"):
            for k, val in r.items():
                if not isinstance(val, str) or not val or "/" in val:
                    raise ConfigError(f"bridge.roles.{k}: expected a token role name")
                roles[str(k)] = val
        cfg.roles = roles
        if "wrap_ttl" in b:
            try:
                cfg.wrap_ttl = parse_duration(b["wrap_ttl"])
            except (InvalidRequest, ValueError, TypeError):
                raise ConfigError(f"bridge.wrap_ttl: invalid duration {b['wrap_ttl']!r}") from None
    if not cfg.token_file:
        raise ConfigError("bridge.token_file is required")
    if not cfg.roles:
        raise ConfigError("bridge.roles must map at least one label value to a token role")
    if cfg.wrap_ttl <= 0:
        raise ConfigError("bridge.wrap_ttl must be positive")
    p = cfg.deliver_path
    if not p.startswith("/") or p.endswith("/") or posixpath.normpath(p) != p or posixpath.dirname(p) == "/":
        raise ConfigError("bridge.deliver_path must be an absolute file path inside a directory")
    return cfg
