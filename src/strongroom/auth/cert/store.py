"""The cert auth method's storage: trusted certificates (roles) and the one config entry.

Storage layout (in the mount's barrier-encrypted view), as Vault's::

    cert/<name>     CertRole: a PEM (CA or the client's own certificate), constraints, token_*
    config          Config (disable_binding, enable_identity_alias_metadata)

Names are case-insensitive (stored lower-case), as in Vault.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from strongroom.errors import Internal
from strongroom.framework import Request, TokenParams
from strongroom.logical import Storage

CONFIG_KEY = "config"
CERT_PREFIX = "cert/"

#: The constraint lists of a role, in the order a read shows them.
CONSTRAINTS = ("allowed_names", "allowed_common_names", "allowed_dns_sans", "allowed_email_sans",
               "allowed_uri_sans", "allowed_organizational_units", "required_extensions")


@dataclass(slots=True)
class Config:
    disable_binding: bool = False
    enable_identity_alias_metadata: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"disable_binding": self.disable_binding,
                "enable_identity_alias_metadata": self.enable_identity_alias_metadata}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Config:
        return cls(disable_binding=bool(d.get("disable_binding", False)),
                   enable_identity_alias_metadata=bool(d.get("enable_identity_alias_metadata", False)))


@dataclass(slots=True)
class CertRole:
    name: str
    certificate: str = ""
    display_name: str = ""
    constraints: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in CONSTRAINTS})
    token: TokenParams = field(default_factory=TokenParams)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "certificate": self.certificate, "display_name": self.display_name,
                "constraints": self.constraints, "token": self.token.to_json()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CertRole:
        stored = d.get("constraints") or {}
        return cls(name=str(d["name"]), certificate=str(d.get("certificate", "")),
                   display_name=str(d.get("display_name", "")),
                   constraints={k: [str(v) for v in stored.get(k) or []] for k in CONSTRAINTS},
                   token=TokenParams.from_json(d.get("token") or {}))

    def to_response(self) -> dict[str, Any]:
        data = self.token.to_response()
        data.update(certificate=self.certificate, display_name=self.display_name,
                    **{k: list(v) or None for k, v in self.constraints.items()})  # null when empty, as Go
        return dict(sorted(data.items()))


def storage(req: Request) -> Storage:
    if req.storage is None:
        raise Internal("no storage attached to the request")
    return req.storage


async def get_config(s: Storage) -> Config:
    raw = await s.get(CONFIG_KEY)
    return Config() if raw is None else Config.from_json(orjson.loads(raw))


async def put_config(s: Storage, config: Config) -> None:
    await s.put(CONFIG_KEY, orjson.dumps(config.to_json()))


async def get_role(s: Storage, name: str) -> CertRole | None:
    raw = await s.get(CERT_PREFIX + name.lower())
    return None if raw is None else CertRole.from_json(orjson.loads(raw))


async def put_role(s: Storage, role: CertRole) -> None:
    await s.put(CERT_PREFIX + role.name.lower(), orjson.dumps(role.to_json()))
