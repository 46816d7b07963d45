"""Storage of the ssh engine: issuers (CA keys), roles and outstanding one-time passwords.

Storage layout (relative to the mount; every value passes the barrier, so CA private keys are
encrypted at rest like everything else)::

    config/issuers          {"default": "<issuer id>"}              the default issuer
    issuer/<id>             {"id", "name", "public_key", "private_key", "version"}
    issuer-name/<name>      {"id": "<issuer id>"}                    name → id, so resolving a
                                                                     reference never lists issuers
    role/<name>             the role's fields (Role.to_json)
    config/zeroaddress      {"roles": [...]}                         OTP roles valid for any IP
    otp/<hmac>              {"username", "ip", "role_name"}          an unused OTP, keyed by its
                                                                     HMAC under the mount salt
    salt                    the mount's HMAC key (framework Salt)

An OTP itself is never stored: only its HMAC (keyed by the mount's salt), so a storage dump does
not reveal a live password, and the lease keeps only that HMAC too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import orjson

from strongroom.errors import InvalidRequest, NotFound
from strongroom.logical import Storage

ISSUERS_CONFIG = "config/issuers"
ISSUER_PREFIX = "issuer/"
ISSUER_NAME_PREFIX = "issuer-name/"
ROLE_PREFIX = "role/"
OTP_PREFIX = "otp/"
ZERO_ADDRESS = "config/zeroaddress"
SALT_KEY = "salt"
DEFAULT_REF = "default"


@dataclass(slots=True)
class Issuer:
    id: str
    name: str
    public_key: str
    private_key: str
    version: int = 1

    def to_json(self) -> bytes:
        return orjson.dumps({"id": self.id, "name": self.name, "public_key": self.public_key,
                             "private_key": self.private_key, "version": self.version})

    @classmethod
    def from_json(cls, raw: bytes) -> Issuer:
        d = orjson.loads(raw)
        return cls(d["id"], d.get("name", ""), d["public_key"], d["private_key"], int(d.get("version", 1)))

    def to_response(self) -> dict[str, Any]:
        return {"issuer_id": self.id, "issuer_name": self.name, "public_key": self.public_key}


@dataclass(slots=True)
class Role:
    """An ssh role; ``key_type`` "ca" or "otp". String lists are kept comma-joined, as OpenBao
    stores and answers them."""

    key_type: str
    # otp
    default_user: str = ""
    allowed_users: str = ""
    cidr_list: str = ""
    exclude_cidr_list: str = ""
    port: int = 22
    # ca
    allowed_users_template: bool = False
    default_user_template: bool = False
    allowed_domains: str = ""
    allowed_domains_template: bool = False
    allow_bare_domains: bool = False
    allow_subdomains: bool = False
    allow_user_certificates: bool = False
    allow_host_certificates: bool = False
    allow_user_key_ids: bool = False
    allow_empty_principals: bool = False
    allowed_extensions: str = ""
    default_extensions: dict[str, str] = field(default_factory=dict)
    default_extensions_template: bool = False
    allowed_critical_options: str = ""
    default_critical_options: dict[str, str] = field(default_factory=dict)
    allowed_user_key_lengths: dict[str, list[int]] = field(default_factory=dict)
    key_id_format: str = ""
    algorithm_signer: str = "default"
    ttl: int = 0
    max_ttl: int = 0
    not_before_duration: int = 30
    issuer_ref: str = DEFAULT_REF

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes) -> Role:
        d = orjson.loads(raw)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def to_response(self) -> dict[str, Any]:
        if self.key_type == "otp":
            return {"allowed_users": self.allowed_users, "cidr_list": self.cidr_list,
                    "default_user": self.default_user, "exclude_cidr_list": self.exclude_cidr_list,
                    "key_type": "otp", "port": self.port}
        return {
            "algorithm_signer": self.algorithm_signer,
            "allow_bare_domains": self.allow_bare_domains,
            "allow_commas_in_identity_templates": False,
            "allow_empty_principals": self.allow_empty_principals,
            "allow_host_certificates": self.allow_host_certificates,
            "allow_subdomains": self.allow_subdomains,
            "allow_user_certificates": self.allow_user_certificates,
            "allow_user_key_ids": self.allow_user_key_ids,
            "allow_wildcards_in_identity_templates": False,
            "allowed_critical_options": self.allowed_critical_options,
            "allowed_domains": self.allowed_domains,
            "allowed_domains_template": self.allowed_domains_template,
            "allowed_extensions": self.allowed_extensions,
            "allowed_user_key_lengths": self.allowed_user_key_lengths,
            "allowed_users": self.allowed_users,
            "allowed_users_template": self.allowed_users_template,
            "default_critical_options": self.default_critical_options,
            "default_extensions": self.default_extensions,
            "default_extensions_template": self.default_extensions_template,
            "default_user": self.default_user,
            "default_user_template": self.default_user_template,
            "issuer_ref": self.issuer_ref,
            "key_id_format": self.key_id_format,
            "key_type": "ca",
            "max_ttl": self.max_ttl,
            "not_before_duration": self.not_before_duration,
            "ttl": self.ttl,
        }


class SSHStore:
    """Typed access to one mount's storage."""

    def __init__(self, storage: Storage) -> None:
        self.s = storage

    # -- issuers --------------------------------------------------------------------------------
    async def default_issuer_id(self) -> str:
        raw = await self.s.get(ISSUERS_CONFIG)
        return str(orjson.loads(raw).get("default", "")) if raw else ""

    async def set_default(self, issuer_id: str) -> None:
        await self.s.put(ISSUERS_CONFIG, orjson.dumps({"default": issuer_id}))

    async def issuer(self, issuer_id: str) -> Issuer | None:
        raw = await self.s.get(ISSUER_PREFIX + issuer_id) if issuer_id else None
        return Issuer.from_json(raw) if raw else None

    async def issuer_ids(self) -> list[str]:
        return sorted(await self.s.list(ISSUER_PREFIX))

    async def id_for_name(self, name: str) -> str:
        raw = await self.s.get(ISSUER_NAME_PREFIX + name) if name else None
        return str(orjson.loads(raw)["id"]) if raw else ""

    async def resolve(self, ref: str) -> Issuer:
        """The issuer a reference names: "default", an id or a name. InvalidRequest if none."""
        if ref in ("", DEFAULT_REF):
            found = await self.issuer(await self.default_issuer_id())
            if found is None:
                raise InvalidRequest("no default issuer currently configured")
            return found
        found = await self.issuer(ref) or await self.issuer(await self.id_for_name(ref))
        if found is None:
            raise InvalidRequest(f"unable to find issuer for reference: {ref}")
        return found

    async def put_issuer(self, issuer: Issuer, old_name: str = "") -> None:
        """Store ``issuer`` and its name index (the index first: a crash leaves at worst a name
        pointing at nothing, which ``resolve`` treats as absent)."""
        if issuer.name:
            holder = await self.id_for_name(issuer.name)
            if holder and holder != issuer.id and await self.issuer(holder) is not None:
                raise InvalidRequest("issuer name already in use")
            await self.s.put(ISSUER_NAME_PREFIX + issuer.name, orjson.dumps({"id": issuer.id}))
        await self.s.put(ISSUER_PREFIX + issuer.id, issuer.to_json())
        if old_name and old_name != issuer.name:
            await self.s.delete(ISSUER_NAME_PREFIX + old_name)

    async def delete_issuer(self, issuer: Issuer) -> bool:
        """Delete ``issuer``; True if it was the default (the default is then unset)."""
        was_default = await self.default_issuer_id() == issuer.id
        if was_default:
            await self.s.delete(ISSUERS_CONFIG)
        await self.s.delete(ISSUER_PREFIX + issuer.id)
        if issuer.name:
            await self.s.delete(ISSUER_NAME_PREFIX + issuer.name)
        return was_default

    # -- roles ----------------------------------------------------------------------------------
    async def role(self, name: str) -> Role | None:
        raw = await self.s.get(ROLE_PREFIX + name)
        return Role.from_json(raw) if raw else None

    async def role_or_404(self, name: str) -> Role:
        role = await self.role(name)
        if role is None:
            raise NotFound()
        return role

    async def put_role(self, name: str, role: Role) -> None:
        await self.s.put(ROLE_PREFIX + name, role.to_json())

    async def delete_role(self, name: str) -> None:
        await self.s.delete(ROLE_PREFIX + name)

    async def role_names(self) -> list[str]:
        return sorted(await self.s.list(ROLE_PREFIX))

    async def zero_address_roles(self) -> list[str]:
        raw = await self.s.get(ZERO_ADDRESS)
        return list(orjson.loads(raw)["roles"]) if raw else []

    async def set_zero_address_roles(self, roles: list[str]) -> None:
        if roles:
            await self.s.put(ZERO_ADDRESS, orjson.dumps({"roles": roles}))
        else:
            await self.s.delete(ZERO_ADDRESS)

    # -- one-time passwords ---------------------------------------------------------------------
    async def put_otp(self, otp_id: str, username: str, ip: str, role_name: str) -> None:
        await self.s.put(OTP_PREFIX + otp_id, orjson.dumps({"username": username, "ip": ip,
                                                            "role_name": role_name}))

    async def otp(self, otp_id: str) -> dict[str, Any] | None:
        raw = await self.s.get(OTP_PREFIX + otp_id)
        return dict(orjson.loads(raw)) if raw else None

    async def delete_otp(self, otp_id: str) -> None:
        await self.s.delete(OTP_PREFIX + otp_id)
