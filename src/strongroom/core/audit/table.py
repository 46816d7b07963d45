"""The audit table: which devices exist, with their options, salt and chain key, as the server config
declares them (``audit`` stanzas) and as the barrier keeps them under ``core/audit``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from strongroom.errors import InvalidRequest

# Barrier key of the audit table: {"entries": [AuditEntry.to_json(), ...]}.
AUDIT_TABLE_KEY = "core/audit"


@dataclass(frozen=True, slots=True)
class DeclaredDevice:
    """An ``audit "TYPE" "PATH" { ... }`` stanza of the server config."""

    type: str
    path: str
    description: str = ""
    options: tuple[tuple[str, str], ...] = ()
    local: bool = False


@dataclass(frozen=True, slots=True)
class AuditConfig:
    allow_api_creation: bool = False  # the config's unsafe_allow_api_audit_creation
    devices: tuple[DeclaredDevice, ...] = ()

    @classmethod
    def from_raw(cls, allow_api_creation: bool, raw: tuple[Mapping[str, object], ...]) -> AuditConfig:
        """From ServerConfig.raw_audit_devices; InvalidRequest on a malformed stanza."""
        devices = []
        for d in raw:
            options = d.get("options") or {}
            if not isinstance(options, Mapping):
                raise InvalidRequest(f'audit "{d.get("path")}": options must be a map')
            devices.append(DeclaredDevice(
                type=str(d.get("type", "")), path=normalize_path(str(d.get("path", ""))),
                description=str(d.get("description", "") or ""),
                options=tuple((str(k), _option_text(v)) for k, v in options.items()),
                local=bool(d.get("local", False))))
        return cls(allow_api_creation, tuple(devices))


def _option_text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def normalize_path(path: str) -> str:
    path = path.strip().strip("/")
    if not path:
        raise InvalidRequest("audit device path must be specified")
    return path + "/"


@dataclass(slots=True)
class AuditEntry:
    path: str
    type: str
    description: str = ""
    options: dict[str, str] = field(default_factory=dict)
    local: bool = False
    uuid: str = ""
    # SECURITY: both keys live only in the (barrier-encrypted) audit table. The salt keys the HMAC
    # of logged values (and sys/audit-hash); the chain key keys the file device's line chain.
    salt: bytes = b""
    chain_key: bytes = b""
    declared: bool = False  # from the server config

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "type": self.type, "description": self.description,
                "options": dict(self.options), "local": self.local, "uuid": self.uuid,
                "salt": self.salt.hex(), "chain_key": self.chain_key.hex(), "declared": self.declared}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> AuditEntry:
        return cls(path=d["path"], type=d["type"], description=d.get("description", ""),
                   options=dict(d.get("options") or {}), local=d.get("local", False), uuid=d.get("uuid", ""),
                   salt=bytes.fromhex(d["salt"]), chain_key=bytes.fromhex(d["chain_key"]),
                   declared=d.get("declared", False))

    def describe(self) -> dict[str, Any]:
        """The entry as sys/audit lists it (never the keys)."""
        return {"type": self.type, "description": self.description, "options": dict(self.options),
                "local": self.local, "path": self.path}
