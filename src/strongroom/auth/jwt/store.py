"""The JWT/OIDC method's storage: one config and the roles.

Storage layout (in the mount's barrier-encrypted view)::

    config          Config (oidc_client_secret is stored here, through the barrier, never shown)
    role/<name>     Role

Pending OIDC authorization requests (state, nonce, PKCE verifier) live in memory only, as in Vault:
they expire after 10 minutes and a restart simply makes a started browser login start again.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


from strongroom.framework import TokenParams
from strongroom.framework.records import load_record, save_record
from strongroom.logical import Storage

CONFIG_KEY = "config"
ROLE_PREFIX = "role/"
_NULL_WHEN_EMPTY = ("allowed_redirect_uris", "bound_audiences", "bound_claims", "claim_mappings", "oidc_scopes")


def _names(obj: Any) -> list[str]:
    return [f.name for f in fields(obj)]


@dataclass(slots=True)
class Config:
    oidc_discovery_url: str = ""
    oidc_discovery_ca_pem: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_response_mode: str = ""
    oidc_response_types: list[str] = field(default_factory=list)
    jwks_url: str = ""
    jwks_ca_pem: str = ""
    jwt_validation_pubkeys: list[str] = field(default_factory=list)
    jwt_supported_algs: list[str] = field(default_factory=list)
    bound_issuer: str = ""
    default_role: str = ""
    namespace_in_state: bool = True

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in _names(self)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Config:
        c = cls()
        for k in _names(cls):
            if k in d:
                setattr(c, k, d[k])
        return c

    def to_response(self) -> dict[str, Any]:
        data = self.to_json()
        del data["oidc_client_secret"]
        data.update(override_allowed_server_names=[], provider_config={}, status="valid")
        return dict(sorted(data.items()))

    @property
    def auth_type(self) -> str:
        """Which verification this config sets up: "oidc_flow", "oidc_discovery", "jwks", "static"."""
        if self.oidc_discovery_url:
            return "oidc_flow" if self.oidc_client_id else "oidc_discovery"
        if self.jwks_url:
            return "jwks"
        if self.jwt_validation_pubkeys:
            return "static"
        return ""


@dataclass(slots=True)
class Role:
    name: str
    role_type: str = "oidc"
    bound_audiences: list[str] = field(default_factory=list)
    bound_subject: str = ""
    bound_claims_type: str = "string"
    bound_claims: dict[str, Any] = field(default_factory=dict)
    claim_mappings: dict[str, str] = field(default_factory=dict)
    user_claim: str = ""
    user_claim_json_pointer: bool = False
    groups_claim: str = ""
    allowed_redirect_uris: list[str] = field(default_factory=list)
    oidc_scopes: list[str] = field(default_factory=list)
    clock_skew_leeway: int = 0
    expiration_leeway: int = 0
    not_before_leeway: int = 0
    max_age: int = 0
    verbose_oidc_logging: bool = False
    token: TokenParams = field(default_factory=TokenParams)

    def to_json(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in _names(self) if k != "token"}
        d["token"] = self.token.to_json()
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Role:
        r = cls(name=str(d["name"]))
        for k in _names(cls):
            if k in d and k not in ("name", "token"):
                setattr(r, k, d[k])
        r.token = TokenParams.from_json(d.get("token") or {})
        return r

    def to_response(self) -> dict[str, Any]:
        data = self.token.to_response()
        data.update({k: getattr(self, k) for k in _names(self)
                     if k not in ("name", "token")})
        # Unset lists and maps read as null, as OpenBao shows them; and OpenBao's fields this
        # method does not implement, at their defaults.
        for k in _NULL_WHEN_EMPTY:
            data[k] = data[k] or None
        data.update(callback_mode="client", oauth2_metadata=None, oidc_disable_confirmation=False,
                    token_policies_template_claims=False)
        return dict(sorted(data.items()))


class JWTStore:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    async def config(self) -> Config | None:
        return await load_record(self.storage, CONFIG_KEY, Config.from_json)

    async def put_config(self, config: Config) -> None:
        await save_record(self.storage, CONFIG_KEY, config)

    async def role(self, name: str) -> Role | None:
        return await load_record(self.storage, ROLE_PREFIX + name.lower(), Role.from_json)

    async def put_role(self, role: Role) -> None:
        await save_record(self.storage, ROLE_PREFIX + role.name, role)

    async def delete_role(self, name: str) -> None:
        await self.storage.delete(ROLE_PREFIX + name.lower())

    async def role_names(self) -> list[str]:
        return await self.storage.list(ROLE_PREFIX)
