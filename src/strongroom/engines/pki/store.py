"""Storage layout of a pki mount (keys relative to the mount; the barrier encrypts every value).

    config/issuer/<uuid>     an issuer: its certificate, key id, name and settings (JSON)
    config/key/<uuid>        a private key (PKCS#8 PEM in JSON); never leaves except "exported"
    config/issuers           {"default": issuer id, "default_follows_latest_issuer": bool}
    config/keys              {"default": key id}
    config/urls              AIA URLs (issuing_certificates, crl_distribution_points, ocsp_servers)
    config/cluster           {"path", "aia_path"}
    config/crl               CRL settings (expiry, disable, ocsp_disable, auto_rebuild ...)
    role/<name>              a role (roles.py: the Role fields)
    certs/<serial>           an issued certificate: {"certificate": PEM, "issuer_id"} (serial xx-xx)
    revoked/<serial>         a revocation: {"serial_number", "revocation_time", "issuer_id", "certificate"}
    crls/<issuer uuid>       the issuer's current CRL: {"number", "der" (base64), "next_update"}
    config/auto-tidy         periodic tidy settings (tidy.py)
    tidy/last-auto           {"finished": when auto-tidy last finished}

Storage formats are compatibility contracts: the from_json functions accept what to_json wrote.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import orjson

from strongroom.logical import Storage

ISSUER_PREFIX = "config/issuer/"
KEY_PREFIX = "config/key/"
ISSUERS_CONFIG = "config/issuers"
KEYS_CONFIG = "config/keys"
URLS_CONFIG = "config/urls"
CLUSTER_CONFIG = "config/cluster"
CRL_CONFIG = "config/crl"
ROLE_PREFIX = "role/"
CERT_PREFIX = "certs/"
REVOKED_PREFIX = "revoked/"
CRL_PREFIX = "crls/"


def new_id() -> str:
    return str(uuid.uuid4())


def serial_key(serial: str) -> str:
    """Serials are stored with dashes (colons would be awkward in paths), as Vault does."""
    return serial.replace(":", "-")


def _load(cls: Any, raw: bytes) -> Any:
    data = orjson.loads(raw)
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(slots=True)
class IssuerEntry:
    id: str
    name: str = ""
    key_id: str = ""
    certificate: str = ""  # PEM
    manual_chain: list[str] = field(default_factory=list)
    usage: str = "crl-signing,issuing-certificates,ocsp-signing,read-only"
    leaf_not_after_behavior: str = "err"
    revocation_signature_algorithm: str = ""
    issuing_certificates: list[str] = field(default_factory=list)
    crl_distribution_points: list[str] = field(default_factory=list)
    ocsp_servers: list[str] = field(default_factory=list)
    enable_aia_url_templating: bool = False
    serial_number: str = ""
    revoked: bool = False  # issuer/<ref>/revoke: it can no longer issue
    revocation_time: float = 0.0

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes) -> IssuerEntry:
        entry: IssuerEntry = _load(cls, raw)
        return entry


@dataclass(slots=True)
class KeyEntry:
    id: str
    name: str = ""
    private_key_type: str = ""
    private_key: str = ""  # PKCS#8 PEM

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes) -> KeyEntry:
        entry: KeyEntry = _load(cls, raw)
        return entry


@dataclass(slots=True)
class URLConfig:
    issuing_certificates: list[str] = field(default_factory=list)
    crl_distribution_points: list[str] = field(default_factory=list)
    ocsp_servers: list[str] = field(default_factory=list)
    enable_templating: bool = False

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes) -> URLConfig:
        entry: URLConfig = _load(cls, raw)
        return entry


@dataclass(slots=True)
class CRLConfig:
    expiry: str = "72h"
    disable: bool = False
    ocsp_disable: bool = False
    ocsp_expiry: str = "12h"
    auto_rebuild: bool = False
    auto_rebuild_grace_period: str = "12h"
    enable_delta: bool = False
    delta_rebuild_interval: str = "15m"
    allow_expired_cert_revocation: bool = False

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes) -> CRLConfig:
        entry: CRLConfig = _load(cls, raw)
        return entry


async def get_json(storage: Storage, key: str) -> dict[str, Any] | None:
    raw = await storage.get(key)
    if raw is None:
        return None
    data = orjson.loads(raw)
    return data if isinstance(data, dict) else None


async def put_json(storage: Storage, key: str, value: dict[str, Any]) -> None:
    await storage.put(key, orjson.dumps(value))


async def list_all(storage: Storage, prefix: str) -> list[str]:
    return [k for k in await storage.list(prefix) if not k.endswith("/")]
