"""``config/acme``: Vault's ACME configuration of a pki mount (disabled until enabled, as in Vault).

Fields as Vault/OpenBao: ``enabled``, ``allowed_issuers``, ``allowed_roles``,
``allow_role_ext_key_usage``, ``default_directory_policy`` (``sign-verbatim``, ``role:NAME`` or
``forbid``), ``dns_resolver`` (``IP[:PORT]`` for dns-01 lookups; "" = the system's resolver),
``eab_policy`` (eab.py). Values Strongroom cannot honour are refused, never ignored.
Two Strongroom extensions, for tests: ``http_challenge_port`` (0 = 80, RFC 8555's port) and
``tls_challenge_port`` (0 = 443, RFC 8737's), the ports http-01 and tls-alpn-01 validation connect
to. Vault has no such knobs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from strongroom.engines.pki.acme import store
from strongroom.engines.pki.acme.dns import parse_resolver
from strongroom.errors import InvalidRequest
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response

if TYPE_CHECKING:
    from strongroom.engines.pki.acme.ca import AcmeCA
    from strongroom.logical import Storage

CLUSTER_PATH_REQUIRED = "ACME feature requires local cluster 'path' field configuration to be set"
EAB_POLICIES = ("not-required", "new-account-required", "always-required")


@dataclass(slots=True)
class AcmeConfig:
    enabled: bool = False
    allowed_issuers: list[str] = field(default_factory=lambda: ["*"])
    allowed_roles: list[str] = field(default_factory=lambda: ["*"])
    allow_role_ext_key_usage: bool = False
    default_directory_policy: str = "sign-verbatim"
    dns_resolver: str = ""
    eab_policy: str = "not-required"
    http_challenge_port: int = 0
    tls_challenge_port: int = 0

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> AcmeConfig:
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def role_policy(self) -> str | None:
        """The role of ``role:NAME``; "" for sign-verbatim; None for forbid."""
        policy = self.default_directory_policy
        if policy == "forbid":
            return None
        return policy.removeprefix("role:") if policy.startswith("role:") else ""


async def load_config(storage: Storage) -> AcmeConfig:
    raw = await store.get(storage, store.CONFIG_KEY)
    return AcmeConfig.from_dict(raw) if raw else AcmeConfig()


FIELDS = {
    "enabled": Field(FieldType.BOOL, "whether ACME is enabled on this mount", default=False),
    "allowed_issuers": Field(FieldType.COMMA_STRING_SLICE, "issuers ACME may use; * for all", default=["*"]),
    "allowed_roles": Field(FieldType.COMMA_STRING_SLICE, "roles ACME may use; * for all", default=["*"]),
    "allow_role_ext_key_usage": Field(FieldType.BOOL, "use the role's ext key usages", default=False),
    "default_directory_policy": Field(FieldType.STRING, "sign-verbatim, role:NAME or forbid",
                                      default="sign-verbatim"),
    "dns_resolver": Field(FieldType.STRING, "IP[:port] of the DNS resolver dns-01 validation asks", default=""),
    "eab_policy": Field(FieldType.STRING, "external account binding policy", default="not-required"),
    "http_challenge_port": Field(FieldType.INT, "Strongroom extension for tests: the port http-01 "
                                 "validation connects to (0: 80)", default=0),
    "tls_challenge_port": Field(FieldType.INT, "Strongroom extension for tests: the port tls-alpn-01 "
                                "validation connects to (0: 443)", default=0),
}


async def read_config(b: AcmeCA, req: Request, d: FieldData) -> Response:
    assert req.storage is not None
    return Response(data=(await load_config(req.storage)).to_dict())


async def write_config(b: AcmeCA, req: Request, d: FieldData) -> Response:
    assert req.storage is not None
    cfg = await load_config(req.storage)
    for name in FIELDS:
        value, ok = d.get_ok(name)
        if ok:
            setattr(cfg, name, value)
    policy = cfg.default_directory_policy
    if policy not in ("sign-verbatim", "forbid") and not (policy.startswith("role:") and len(policy) > 5):
        raise InvalidRequest(f"invalid default directory policy {policy!r}: "
                             "expected sign-verbatim, role:<role_name> or forbid")
    role = cfg.role_policy()
    if role and "*" not in cfg.allowed_roles and role not in cfg.allowed_roles:
        raise InvalidRequest(f"default directory policy role {role!r} is not among allowed_roles")
    if cfg.eab_policy not in EAB_POLICIES:
        raise InvalidRequest(f"invalid eab policy {cfg.eab_policy!r}: expected one of {', '.join(EAB_POLICIES)}")
    if cfg.dns_resolver:
        try:
            parse_resolver(cfg.dns_resolver)
        except ValueError:
            raise InvalidRequest(f"invalid dns_resolver {cfg.dns_resolver!r}: expected an IP address "
                                 "with an optional port") from None
    for name in ("http_challenge_port", "tls_challenge_port"):
        if not 0 <= getattr(cfg, name) <= 65535:
            raise InvalidRequest(f"{name} must be 0 to 65535")
    if cfg.enabled and not await b.cluster_path(req):
        raise InvalidRequest(CLUSTER_PATH_REQUIRED)
    await store.put(req.storage, store.CONFIG_KEY, cfg.to_dict())
    return Response(data=cfg.to_dict())


def config_paths() -> list[Path[AcmeCA]]:
    return [Path("config/acme", operations={Op.READ: read_config, Op.UPDATE: write_config}, fields=FIELDS,
                 synopsis="Configuration of the ACME server of this mount.")]
