"""ssh roles: roles/<name> (key_type "ca" or "otp") and LIST roles.

A write replaces the role whole (fields not sent take their defaults), as OpenBao's ssh engine
does; everything is validated before anything is stored.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from strongroom.engines.ssh.store import Role
from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response, name_regex

if TYPE_CHECKING:
    from strongroom.engines.ssh import SSHBackend

ALGORITHM_SIGNERS = ("", "default", "ssh-rsa", "rsa-sha2-256", "rsa-sha2-512")

_S, _B = FieldType.STRING, FieldType.BOOL
ROLE_FIELDS: dict[str, Field] = {
    "role": Field(_S, "Name of the role."),
    "key_type": Field(_S, 'Type of credentials the role issues: "otp" or "ca".'),
    "default_user": Field(_S, "Default username for a credential or certificate."),
    "default_user_template": Field(_B, "default_user may be an identity template."),
    "allowed_users": Field(_S, "Comma-separated usernames (or *) allowed."),
    "allowed_users_template": Field(_B, "allowed_users may hold identity templates."),
    "cidr_list": Field(_S, "Comma-separated CIDR blocks the OTP role covers."),
    "exclude_cidr_list": Field(_S, "Comma-separated CIDR blocks excluded from cidr_list."),
    "port": Field(FieldType.INT, "Port number of the SSH connection (informational).", default=22),
    "allowed_domains": Field(_S, "Domains host certificates may be issued for."),
    "allowed_domains_template": Field(_B, "allowed_domains may hold identity templates."),
    "allow_bare_domains": Field(_B, "Host certificates may name an allowed domain itself."),
    "allow_subdomains": Field(_B, "Host certificates may name subdomains of allowed domains."),
    "allow_user_certificates": Field(_B, "The role signs user certificates."),
    "allow_host_certificates": Field(_B, "The role signs host certificates."),
    "allow_user_key_ids": Field(_B, "Clients may choose the certificate's key id."),
    "allow_empty_principals": Field(_B, "Allow certificates valid for any principal."),
    "allowed_extensions": Field(_S, "Comma-separated extensions clients may request, or *."),
    "default_extensions": Field(FieldType.MAP, "Extensions added when the client asks for none."),
    "default_extensions_template": Field(_B, "default_extensions values may be identity templates."),
    "allowed_critical_options": Field(_S, "Comma-separated critical options clients may request."),
    "default_critical_options": Field(FieldType.MAP, "Critical options added when the client asks for none."),
    "allowed_user_key_lengths": Field(FieldType.MAP, "Key type → allowed bit lengths of signed keys."),
    "key_id_format": Field(_S, "Template of the key id: {{token_display_name}}, {{role_name}}, {{public_key_hash}}."),
    "algorithm_signer": Field(_S, "Signature algorithm for RSA CA keys.", default="default"),
    "ttl": Field(FieldType.DURATION, "Default certificate lifetime."),
    "max_ttl": Field(FieldType.DURATION, "Longest certificate lifetime."),
    "not_before_duration": Field(FieldType.DURATION, "Backdating of valid_after.", default=30),
    "issuer_ref": Field(_S, "Issuer that signs for this role.", default="default"),
}


def paths() -> list[Path[SSHBackend]]:
    return [
        Path("roles/?", operations={Op.LIST: list_roles}, synopsis="List the roles."),
        Path("config/zeroaddress",
             fields={"roles": Field(FieldType.COMMA_STRING_SLICE, "OTP roles whose credentials any IP may use.")},
             operations={Op.READ: read_zero_address, Op.UPDATE: write_zero_address, Op.DELETE: delete_zero_address},
             synopsis="The OTP roles valid for any IP address."),
        Path(f"roles/{name_regex('role')}", fields=ROLE_FIELDS, exists=role_exists,
             operations={Op.READ: read_role, Op.UPDATE: write_role, Op.DELETE: delete_role},
             synopsis="Manage the roles that issue OTPs or sign keys."),
    ]


def parse_cidr_list(text: str, what: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    out = []
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        try:
            out.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise InvalidRequest(f"failed to validate {what}: invalid CIDR address: {item}") from None
    return out


def _string_map(name: str, value: dict[str, Any]) -> dict[str, str]:
    out = {}
    for k, v in value.items():
        if not isinstance(v, (str, int, float, bool)):
            raise InvalidRequest(f'error converting input for field "{name}": values must be strings')
        out[str(k)] = v if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)
    return out


def _key_lengths(value: dict[str, Any]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for k, v in value.items():
        items = v if isinstance(v, list) else [v]
        try:
            out[str(k)] = [int(i) for i in items if not isinstance(i, bool)]
        except (TypeError, ValueError):
            raise InvalidRequest(f"allowed_user_key_lengths: invalid value for {k!r}: {v!r}") from None
    return out


def build_role(d: FieldData) -> Role:
    """A validated Role from the request (InvalidRequest on bad input)."""
    key_type = d.get("key_type").strip().lower()
    if not key_type:
        raise InvalidRequest("missing key type")
    if key_type == "dynamic":
        raise InvalidRequest("dynamic key type roles are no longer supported")
    if key_type == "otp":
        default_user = d.get("default_user")
        if not default_user:
            raise InvalidRequest("missing default user")
        parse_cidr_list(d.get("cidr_list"), "cidr_list")
        parse_cidr_list(d.get("exclude_cidr_list"), "exclude_cidr_list")
        port = d.get("port")
        if not 0 < port < 65536:
            raise InvalidRequest("port must be between 1 and 65535")
        return Role("otp", default_user=default_user, allowed_users=d.get("allowed_users"),
                    cidr_list=d.get("cidr_list"), exclude_cidr_list=d.get("exclude_cidr_list"), port=port)
    if key_type != "ca":
        raise InvalidRequest("invalid key type")
    if not d.get("allow_user_certificates") and not d.get("allow_host_certificates"):
        raise InvalidRequest("Either 'allow_user_certificates' or 'allow_host_certificates' must be set to 'true'")
    signer = d.get("algorithm_signer")
    if signer not in ALGORITHM_SIGNERS:
        raise InvalidRequest(f'unknown algorithm signer "{signer}"')
    ttl, max_ttl = d.get("ttl"), d.get("max_ttl")
    if ttl and max_ttl and ttl > max_ttl:
        raise InvalidRequest('"ttl" value must be less than "max_ttl" when both are specified')
    if d.get("not_before_duration") < 0:
        raise InvalidRequest("not_before_duration cannot be negative")
    return Role(
        "ca",
        default_user=d.get("default_user"), default_user_template=d.get("default_user_template"),
        allowed_users=d.get("allowed_users"), allowed_users_template=d.get("allowed_users_template"),
        allowed_domains=d.get("allowed_domains"), allowed_domains_template=d.get("allowed_domains_template"),
        allow_bare_domains=d.get("allow_bare_domains"), allow_subdomains=d.get("allow_subdomains"),
        allow_user_certificates=d.get("allow_user_certificates"),
        allow_host_certificates=d.get("allow_host_certificates"),
        allow_user_key_ids=d.get("allow_user_key_ids"), allow_empty_principals=d.get("allow_empty_principals"),
        allowed_extensions=d.get("allowed_extensions"),
        default_extensions=_string_map("default_extensions", d.get("default_extensions")),
        default_extensions_template=d.get("default_extensions_template"),
        allowed_critical_options=d.get("allowed_critical_options"),
        default_critical_options=_string_map("default_critical_options", d.get("default_critical_options")),
        allowed_user_key_lengths=_key_lengths(d.get("allowed_user_key_lengths")),
        key_id_format=d.get("key_id_format"), algorithm_signer=signer or "default",
        ttl=ttl, max_ttl=max_ttl, not_before_duration=d.get("not_before_duration"),
        issuer_ref=d.get("issuer_ref") or "default",
    )


# -- handlers -----------------------------------------------------------------------------------
async def list_roles(b: SSHBackend, req: Request, d: FieldData) -> Response | None:
    store = b.store(req)
    names = await store.role_names()
    if not names:
        raise NotFound()
    info: dict[str, dict[str, str]] = {}
    for name in names:
        role = await store.role(name)
        if role is not None:
            info[name] = {"key_type": role.key_type}
            if role.key_type == "ca":
                info[name]["issuer_ref"] = role.issuer_ref
    return Response(data={"keys": names, "key_info": info})


async def role_exists(b: SSHBackend, req: Request, d: FieldData) -> bool:
    return await b.store(req).role(d.get("role")) is not None


async def read_role(b: SSHBackend, req: Request, d: FieldData) -> Response | None:
    role = await b.store(req).role(d.get("role"))
    if role is None:
        raise NotFound()
    return Response(data=role.to_response())


async def write_role(b: SSHBackend, req: Request, d: FieldData) -> Response | None:
    role = build_role(d)
    await b.store(req).put_role(d.get("role"), role)
    return None


async def delete_role(b: SSHBackend, req: Request, d: FieldData) -> Response | None:
    store, name = b.store(req), d.get("role")
    await store.delete_role(name)
    zero = await store.zero_address_roles()
    if name in zero:  # as OpenBao: a deleted role leaves the zero-address list
        await store.set_zero_address_roles([r for r in zero if r != name])
    return None


async def read_zero_address(b: SSHBackend, req: Request, d: FieldData) -> Response | None:
    roles = await b.store(req).zero_address_roles()
    if not roles:
        raise NotFound()
    return Response(data={"roles": roles})


async def write_zero_address(b: SSHBackend, req: Request, d: FieldData) -> Response | None:
    names = [r.strip() for r in d.get("roles") if r.strip()]
    if not names:
        raise InvalidRequest("Missing roles")
    store = b.store(req)
    for name in names:
        if await store.role(name) is None:
            raise InvalidRequest(f'Role "{name}" does not exist')
    await store.set_zero_address_roles(names)
    return None


async def delete_zero_address(b: SSHBackend, req: Request, d: FieldData) -> Response | None:
    await b.store(req).set_zero_address_roles([])
    return None
