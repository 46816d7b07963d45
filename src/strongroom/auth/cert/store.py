"""The cert auth method's storage: trusted certificates (roles) and the one config entry.

Storage layout (in the mount's barrier-encrypted view), as Vault's::

    cert/<name>     CertRole: a PEM (CA or the client's own certificate), constraints, OCSP, token_*
    config          Config (disable_binding, enable_identity_alias_metadata, ocsp_cache_size)
    crls/<name>     CrlEntry: the revoked serials of a registered CRL, and its URL when fetched

Names are case-insensitive (stored lower-case), as in Vault.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson


from strongroom.framework import TokenParams, storage_of
from strongroom.framework.records import NamedRecords, load_record, save_record
from strongroom.logical import Storage

CONFIG_KEY = "config"
CERT_PREFIX = "cert/"
CRL_PREFIX = "crls/"
DEFAULT_OCSP_CACHE_SIZE = 100
MAX_OCSP_CACHE_SIZE = 100000

#: The constraint lists of a role, in the order a read shows them.
CONSTRAINTS = ("allowed_names", "allowed_common_names", "allowed_dns_sans", "allowed_email_sans",
               "allowed_uri_sans", "allowed_organizational_units", "required_extensions")


@dataclass(slots=True)
class Config:
    disable_binding: bool = False
    enable_identity_alias_metadata: bool = False
    ocsp_cache_size: int = DEFAULT_OCSP_CACHE_SIZE

    def to_json(self) -> dict[str, Any]:
        return {"disable_binding": self.disable_binding,
                "enable_identity_alias_metadata": self.enable_identity_alias_metadata,
                "ocsp_cache_size": self.ocsp_cache_size}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Config:
        return cls(disable_binding=bool(d.get("disable_binding", False)),
                   enable_identity_alias_metadata=bool(d.get("enable_identity_alias_metadata", False)),
                   ocsp_cache_size=int(d.get("ocsp_cache_size") or DEFAULT_OCSP_CACHE_SIZE))


@dataclass(slots=True)
class OcspSettings:
    """A role's OCSP fields (Vault's names). ``this_update_max_age`` in seconds, 0: no limit."""

    enabled: bool = False
    ca_certificates: str = ""
    servers_override: list[str] = field(default_factory=list)
    fail_open: bool = False
    query_all_servers: bool = False
    max_retries: int = 4
    this_update_max_age: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"ocsp_enabled": self.enabled, "ocsp_ca_certificates": self.ca_certificates,
                "ocsp_servers_override": list(self.servers_override), "ocsp_fail_open": self.fail_open,
                "ocsp_query_all_servers": self.query_all_servers, "ocsp_max_retries": self.max_retries,
                "ocsp_this_update_max_age": self.this_update_max_age}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> OcspSettings:
        return cls(enabled=bool(d.get("ocsp_enabled", False)), ca_certificates=str(d.get("ocsp_ca_certificates", "")),
                   servers_override=[str(v) for v in d.get("ocsp_servers_override") or []],
                   fail_open=bool(d.get("ocsp_fail_open", False)),
                   query_all_servers=bool(d.get("ocsp_query_all_servers", False)),
                   max_retries=int(d.get("ocsp_max_retries", 4)),
                   this_update_max_age=int(d.get("ocsp_this_update_max_age", 0)))


@dataclass(slots=True)
class CrlEntry:
    """A registered CRL: the revoked serials (decimal strings) and, for a fetched one, its URL and
    the CRL's nextUpdate (ISO 8601, "" when it has none), after which the periodic task refetches."""

    serials: list[str] = field(default_factory=list)
    url: str = ""
    valid_until: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"serials": self.serials, "url": self.url, "valid_until": self.valid_until}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CrlEntry:
        return cls(serials=[str(v) for v in d.get("serials") or []], url=str(d.get("url", "")),
                   valid_until=str(d.get("valid_until", "")))


@dataclass(slots=True)
class CertRole:
    name: str
    certificate: str = ""
    display_name: str = ""
    constraints: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in CONSTRAINTS})
    token: TokenParams = field(default_factory=TokenParams)
    ocsp: OcspSettings = field(default_factory=OcspSettings)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "certificate": self.certificate, "display_name": self.display_name,
                "constraints": self.constraints, "token": self.token.to_json(), "ocsp": self.ocsp.to_json()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CertRole:
        stored = d.get("constraints") or {}
        return cls(name=str(d["name"]), certificate=str(d.get("certificate", "")),
                   display_name=str(d.get("display_name", "")),
                   constraints={k: [str(v) for v in stored.get(k) or []] for k in CONSTRAINTS},
                   token=TokenParams.from_json(d.get("token") or {}),
                   ocsp=OcspSettings.from_json(d.get("ocsp") or {}))

    def to_response(self) -> dict[str, Any]:
        data = self.token.to_response()
        data.update(self.ocsp.to_json(), ocsp_servers_override=list(self.ocsp.servers_override) or None)
        data.update(certificate=self.certificate, display_name=self.display_name,
                    **{k: list(v) or None for k, v in self.constraints.items()})  # null when empty, as Go
        return dict(sorted(data.items()))


storage = storage_of  # the mount's storage view


async def get_config(s: Storage) -> Config:
    raw = await s.get(CONFIG_KEY)
    return Config() if raw is None else Config.from_json(orjson.loads(raw))


async def put_config(s: Storage, config: Config) -> None:
    await save_record(s, CONFIG_KEY, config)


_roles = NamedRecords(CERT_PREFIX, CertRole.from_json)
get_role, put_role = _roles.get, _roles.put


async def get_crl(s: Storage, name: str) -> CrlEntry | None:
    return await load_record(s, CRL_PREFIX + name.lower(), CrlEntry.from_json)


async def put_crl(s: Storage, name: str, entry: CrlEntry) -> None:
    await save_record(s, CRL_PREFIX + name.lower(), entry)
