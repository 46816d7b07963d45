"""The Kubernetes auth method's storage: the one config entry and the roles.

Storage layout (in the mount's barrier-encrypted view)::

    config          Config (kubernetes_host, CA, token reviewer JWT, PEM keys, issuer options)
    role/<name>     Role (names are case-insensitive, stored lower-case, as in Vault)

The token reviewer JWT is a credential: it is stored through the barrier and never returned
(a config read shows only ``token_reviewer_jwt_set``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any



from strongroom.framework import TokenParams, storage_of
from strongroom.framework.records import NamedRecords, RecordAt

CONFIG_KEY = "config"
ROLE_PREFIX = "role/"

ALIAS_SOURCE_UID = "serviceaccount_uid"
ALIAS_SOURCE_NAME = "serviceaccount_name"
ALIAS_SOURCES = (ALIAS_SOURCE_UID, ALIAS_SOURCE_NAME)


@dataclass(slots=True)
class Config:
    kubernetes_host: str
    kubernetes_ca_cert: str = ""
    token_reviewer_jwt: str = ""
    pem_keys: list[str] = field(default_factory=list)
    issuer: str = ""
    disable_iss_validation: bool = True
    disable_local_ca_jwt: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"kubernetes_host": self.kubernetes_host, "kubernetes_ca_cert": self.kubernetes_ca_cert,
                "token_reviewer_jwt": self.token_reviewer_jwt, "pem_keys": self.pem_keys, "issuer": self.issuer,
                "disable_iss_validation": self.disable_iss_validation,
                "disable_local_ca_jwt": self.disable_local_ca_jwt}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Config:
        return cls(kubernetes_host=str(d["kubernetes_host"]), kubernetes_ca_cert=str(d.get("kubernetes_ca_cert", "")),
                   token_reviewer_jwt=str(d.get("token_reviewer_jwt", "")),
                   pem_keys=[str(k) for k in d.get("pem_keys") or []], issuer=str(d.get("issuer", "")),
                   disable_iss_validation=bool(d.get("disable_iss_validation", True)),
                   disable_local_ca_jwt=bool(d.get("disable_local_ca_jwt", False)))

    def to_response(self) -> dict[str, Any]:
        return {"disable_iss_validation": self.disable_iss_validation,
                "disable_local_ca_jwt": self.disable_local_ca_jwt, "issuer": self.issuer,
                "kubernetes_ca_cert": self.kubernetes_ca_cert, "kubernetes_host": self.kubernetes_host,
                "pem_keys": list(self.pem_keys), "token_reviewer_jwt_set": bool(self.token_reviewer_jwt)}


@dataclass(slots=True)
class Role:
    name: str
    bound_service_account_names: list[str] = field(default_factory=list)
    bound_service_account_namespaces: list[str] = field(default_factory=list)
    bound_service_account_namespace_selector: str = ""
    audience: str = ""
    alias_name_source: str = ALIAS_SOURCE_UID
    token: TokenParams = field(default_factory=TokenParams)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "bound_service_account_names": self.bound_service_account_names,
                "bound_service_account_namespaces": self.bound_service_account_namespaces,
                "bound_service_account_namespace_selector": self.bound_service_account_namespace_selector,
                "audience": self.audience, "alias_name_source": self.alias_name_source,
                "token": self.token.to_json()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Role:
        return cls(name=str(d["name"]),
                   bound_service_account_names=[str(n) for n in d.get("bound_service_account_names") or []],
                   bound_service_account_namespaces=[str(n) for n in d.get("bound_service_account_namespaces") or []],
                   bound_service_account_namespace_selector=str(
                       d.get("bound_service_account_namespace_selector", "")),
                   audience=str(d.get("audience", "")),
                   alias_name_source=str(d.get("alias_name_source", ALIAS_SOURCE_UID)),
                   token=TokenParams.from_json(d.get("token") or {}))

    def to_response(self) -> dict[str, Any]:
        data = self.token.to_response()
        data.update(alias_name_source=self.alias_name_source,
                    bound_service_account_names=list(self.bound_service_account_names),
                    bound_service_account_namespace_selector=self.bound_service_account_namespace_selector,
                    bound_service_account_namespaces=list(self.bound_service_account_namespaces))
        if self.audience:
            data["audience"] = self.audience
        return dict(sorted(data.items()))


storage = storage_of  # the mount's storage view

_config = RecordAt(CONFIG_KEY, Config.from_json)
get_config, put_config = _config.get, _config.put

_roles = NamedRecords(ROLE_PREFIX, Role.from_json)
get_role, put_role = _roles.get, _roles.put
