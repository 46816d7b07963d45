"""Roles: roles/<name> CRUD and LIST. A role is stored whole (every field, defaults filled in) as
``role/<name>``; a write replaces it (PATCH merges), as in OpenBao."""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import TYPE_CHECKING, Any

import orjson

from strongroom.engines.pki import crypto
from strongroom.engines.pki.store import ROLE_PREFIX, list_all
from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response, name_regex

if TYPE_CHECKING:
    from strongroom.engines.pki import PkiBackend

_B, _I, _D, _S, _L = FieldType.BOOL, FieldType.INT, FieldType.DURATION, FieldType.STRING, FieldType.COMMA_STRING_SLICE

# name -> (type, default): the role as OpenBao reads it back, in its order.
ROLE_DEFAULTS: dict[str, tuple[FieldType, Any]] = {
    "allow_any_name": (_B, False), "allow_bare_domains": (_B, False), "allow_glob_domains": (_B, False),
    "allow_globs_in_identity_templates": (_B, False), "allow_ip_sans": (_B, True),
    "allow_localhost": (_B, True), "allow_subdomains": (_B, False), "allow_token_displayname": (_B, False),
    "allow_wildcard_certificates": (_B, True), "allowed_domains": (_L, []),
    "allowed_domains_template": (_B, False), "allowed_ip_sans_cidr": (_L, []), "allowed_other_sans": (_L, []),
    "allowed_serial_numbers": (_L, []), "allowed_uri_sans": (_L, []), "allowed_uri_sans_template": (_B, False),
    "allowed_user_ids": (_L, []), "basic_constraints_valid_for_non_ca": (_B, False), "client_flag": (_B, True),
    "cn_validations": (_L, ["email", "hostname"]), "code_signing_flag": (_B, False), "country": (_L, []),
    "email_protection_flag": (_B, False), "enforce_hostnames": (_B, True), "ext_key_usage": (_L, []),
    "ext_key_usage_oids": (_L, []), "generate_lease": (_B, False), "issuer_ref": (_S, "default"),
    "key_bits": (_I, 0), "key_type": (_S, "rsa"),
    "key_usage": (_L, ["DigitalSignature", "KeyAgreement", "KeyEncipherment"]), "locality": (_L, []),
    "max_ttl": (_D, 0), "no_store": (_B, False), "not_after": (_S, ""), "not_after_bound": (_S, "permit"),
    "not_before": (_S, ""), "not_before_bound": (_S, "permit"), "not_before_duration": (_D, 30),
    "organization": (_L, []), "ou": (_L, []), "policy_identifiers": (_L, []), "postal_code": (_L, []),
    "province": (_L, []), "require_cn": (_B, True), "server_flag": (_B, True), "signature_bits": (_I, 0),
    "street_address": (_L, []), "ttl": (_D, 0), "use_csr_common_name": (_B, True), "use_csr_sans": (_B, True),
    "use_pss": (_B, False),
}
ROLE_FIELDS = {name: Field(t, name.replace("_", " ") + ".") for name, (t, _) in ROLE_DEFAULTS.items()}


def paths() -> list[Path[PkiBackend]]:
    return [
        Path(r"roles/?", operations={Op.LIST: list_roles}, synopsis="List the roles."),
        Path(f"roles/{name_regex('name')}", fields={"name": Field(_S, "Name of the role."), **ROLE_FIELDS},
             exists=role_exists,
             operations={Op.READ: read_role, Op.UPDATE: write_role, Op.CREATE: write_role,
                         Op.PATCH: patch_role, Op.DELETE: delete_role},
             synopsis="Manage the roles certificates are issued under."),
    ]


async def load_role(b: PkiBackend, req: Request, name: str) -> dict[str, Any] | None:
    """The role, defaults filled in (a copy: callers may change it). Decoded roles are cached per
    mount (bounded), dropped on every write of the role here and by ``invalidate``."""
    role = b.roles.get(name)
    if role is None:
        generation = b.roles_generation
        raw = await b.storage(req).get(ROLE_PREFIX + name)
        if raw is None:
            return None
        role = {k: v for k, (_, v) in ROLE_DEFAULTS.items()}
        role.update(orjson.loads(raw))
        if generation == b.roles_generation:  # no role written meanwhile
            if len(b.roles) >= 1024:
                b.roles.clear()
            b.roles[name] = role
    return dict(role)


async def role_exists(b: PkiBackend, req: Request, d: FieldData) -> bool:
    return await b.storage(req).get(ROLE_PREFIX + d.get("name")) is not None


async def list_roles(b: PkiBackend, req: Request, d: FieldData) -> Response:
    keys = sorted(await list_all(b.storage(req), ROLE_PREFIX))
    if not keys:
        raise NotFound()  # an empty LIST is a 404, as in OpenBao
    return Response(data={"keys": keys})


async def read_role(b: PkiBackend, req: Request, d: FieldData) -> Response:
    role = await load_role(b, req, d.get("name"))
    if role is None:
        raise NotFound()
    return Response(data=role)


def _validate(role: dict[str, Any]) -> None:
    kt = role["key_type"]
    if kt not in ("rsa", "ec", "ed25519", "any"):
        raise InvalidRequest(f"unknown key type {kt}")
    role["key_bits"] = crypto.validate_key(kt, role["key_bits"], allow_any=True)
    if role["max_ttl"] and role["ttl"] > role["max_ttl"]:
        raise InvalidRequest('"ttl" value must be less than "max_ttl" value')
    for u in role["key_usage"]:
        if u.lower() not in crypto.KEY_USAGES:
            raise InvalidRequest(f"unknown key usage: {u}")
    for u in role["ext_key_usage"]:
        if u.lower().replace("extkeyusage", "") not in crypto.EXT_KEY_USAGES:
            raise InvalidRequest(f"unknown ext key usage: {u}")
    if role["signature_bits"] not in (0, 256, 384, 512):
        raise InvalidRequest(f"unsupported signature_bits: {role['signature_bits']}")
    for cidr in role["allowed_ip_sans_cidr"]:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise InvalidRequest(f"invalid CIDR in allowed_ip_sans_cidr: {cidr}") from None
    for oid in [*role["ext_key_usage_oids"], *role["policy_identifiers"]]:
        crypto.check_oid(oid)
    if role["not_after"]:
        try:
            dt.datetime.strptime(role["not_after"], "%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            raise InvalidRequest(f'error parsing not_after "{role["not_after"]}": expected '
                                 "YYYY-MM-ddTHH:MM:SSZ") from None
    if not role["issuer_ref"]:
        role["issuer_ref"] = "default"


async def _save(b: PkiBackend, req: Request, name: str, role: dict[str, Any]) -> Response:
    _validate(role)
    if role["issuer_ref"] != "default":
        (await b.snapshot(req)).issuer(role["issuer_ref"])  # must resolve now
    await b.storage(req).put(ROLE_PREFIX + name, orjson.dumps(role))
    b.forget_role(name)
    return Response(data=role)


async def write_role(b: PkiBackend, req: Request, d: FieldData) -> Response:
    role = {k: (d.get(k) if d.has(k) else v) for k, (_, v) in ROLE_DEFAULTS.items()}
    return await _save(b, req, d.get("name"), role)


async def patch_role(b: PkiBackend, req: Request, d: FieldData) -> Response:
    role = await load_role(b, req, d.get("name"))
    if role is None:
        raise NotFound()
    for k in ROLE_DEFAULTS:
        if d.has(k):
            role[k] = d.get(k)
    return await _save(b, req, d.get("name"), role)


async def delete_role(b: PkiBackend, req: Request, d: FieldData) -> Response | None:
    await b.storage(req).delete(ROLE_PREFIX + d.get("name"))
    b.forget_role(d.get("name"))
    return None
