"""Vault's login MFA paths on the identity/ mount::

    mfa/method                      LIST every method (key_info: each method's configuration)
    mfa/method/<method_id>          read a method whatever its type
    mfa/method/totp                 create (issuer, period, ...; method_name) -> method_id; LIST
    mfa/method/totp/<method_id>     read, update, delete
    mfa/method/totp/generate        method_id: a TOTP secret for the caller's own entity (self-enrolment)
    mfa/method/totp/admin-generate  method_id, entity_id: the same for any entity
    mfa/method/totp/admin-destroy   method_id, entity_id: forget an entity's secret
    mfa/login-enforcement/<name>    read, write, delete; LIST mfa/login-enforcement

The state is the :class:`~strongroom.core.identity.mfa.store.LoginMFA` core owns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response

if TYPE_CHECKING:
    from strongroom.core.identity.backend import IdentityBackend
    from strongroom.core.identity.mfa.store import LoginMFA

_UUID = r"(?P<method_id>[0-9a-fA-F-]+)"
_NAME = r"(?P<name>\w(?:[\w.-]*\w)?)"

_TOTP_FIELDS: dict[str, Field] = {
    "method_name": Field(FieldType.STRING, "The unique name identifier for this MFA method."),
    "method_id": Field(FieldType.STRING, "The unique identifier for this MFA method."),
    "max_validation_attempts": Field(FieldType.INT, "Max number of allowed validation attempts."),
    "issuer": Field(FieldType.STRING, "The name of the key's issuing organization."),
    "period": Field(FieldType.DURATION, "The length of time used to generate a counter for the TOTP token "
                    "calculation.", default=30),
    "key_size": Field(FieldType.INT, "Determines the size in bytes of the generated key.", default=20),
    "qr_size": Field(FieldType.INT, "The pixel size of the generated square QR code.", default=200),
    "algorithm": Field(FieldType.STRING, "The hashing algorithm: SHA1, SHA256 or SHA512.", default="SHA1"),
    "digits": Field(FieldType.INT, "The number of digits in the generated TOTP token: 6 or 8.", default=6),
    "skew": Field(FieldType.INT, "The number of delay periods allowed when validating a TOTP token: 0 or 1.",
                  default=1),
}
_CONFIG_FIELDS = ("max_validation_attempts", "issuer", "period", "key_size", "qr_size", "algorithm", "digits", "skew")
_GENERATE_FIELDS: dict[str, Field] = {
    "method_id": Field(FieldType.STRING, "The unique identifier for this MFA method."),
    "entity_id": Field(FieldType.STRING, "The entity whose TOTP secret this is."),
}
_ENFORCEMENT_LISTS = ("mfa_method_ids", "auth_method_accessors", "auth_method_types", "identity_group_ids",
                      "identity_entity_ids")
_ENFORCEMENT_FIELDS: dict[str, Field] = {
    "name": Field(FieldType.STRING, "Name for this login enforcement configuration."),
    "mfa_method_ids": Field(FieldType.COMMA_STRING_SLICE, "Method IDs that determine what methods are enforced."),
    "auth_method_accessors": Field(FieldType.COMMA_STRING_SLICE, "Auth mount accessors."),
    "auth_method_types": Field(FieldType.COMMA_STRING_SLICE, "Auth mount types."),
    "identity_group_ids": Field(FieldType.COMMA_STRING_SLICE, "Identity group IDs."),
    "identity_entity_ids": Field(FieldType.COMMA_STRING_SLICE, "Identity entity IDs."),
}


def _mfa(b: IdentityBackend) -> LoginMFA:
    if b.mfa is None:
        raise NotFound()
    return b.mfa


def _listed(rows: dict[str, dict[str, Any]]) -> Response:
    if not rows:
        raise NotFound()
    return Response(data={"keys": sorted(rows), "key_info": rows})


async def list_methods(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    return _listed({m.id: m.view() for m in _mfa(b).methods.values()})


async def read_method(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    method_id = d.get("method_id") or ""
    if not method_id:
        raise InvalidRequest("missing method ID")
    m = _mfa(b).methods.get(method_id)
    if m is None:
        raise NotFound()
    return Response(data=m.view())


async def write_totp(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    method_id = d.get("method_id") or ""
    m = await _mfa(b).write_method(method_id, d.get("method_name") or "", {k: d.get(k) for k in _CONFIG_FIELDS})
    if m is None or method_id:
        return None
    return Response(data={"method_id": m.id})


async def delete_totp(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    method_id = d.get("method_id") or ""
    if not method_id:
        raise InvalidRequest("missing method ID")
    await _mfa(b).delete_method(method_id)
    return None


def _method_id(d: FieldData) -> str:
    method_id = d.get("method_id") or ""
    if not method_id:
        raise InvalidRequest("missing method ID")
    return str(method_id)


async def generate(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    method_id = _method_id(d)
    if not req.entity_id:
        raise InvalidRequest("missing entityID")
    return await _mfa(b).generate(method_id, req.entity_id)


async def admin_generate(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    method_id = _method_id(d)
    if not d.get("entity_id"):
        raise InvalidRequest("missing entityID")
    return await _mfa(b).generate(method_id, d.get("entity_id"))


async def admin_destroy(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    method_id = _method_id(d)
    if not d.get("entity_id"):
        raise InvalidRequest("missing entity ID")
    await _mfa(b).destroy(method_id, d.get("entity_id"))
    return None


async def list_enforcements(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    return _listed({e.name: e.view() for e in _mfa(b).enforcements.values()})


async def read_enforcement(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    e = _mfa(b).enforcements.get(d.get("name"))
    if e is None:
        raise NotFound()
    return Response(data=e.view())


async def write_enforcement(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    given = {k: (d.get(k) if d.has(k) else None) for k in _ENFORCEMENT_LISTS}
    await _mfa(b).write_enforcement(d.get("name"), given)
    return None


async def delete_enforcement(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    await _mfa(b).delete_enforcement(d.get("name"))
    return None


def paths() -> list[Path[IdentityBackend]]:
    return [
        Path("mfa/method/", operations={Op.LIST: list_methods}, synopsis="List every MFA method."),
        Path("mfa/method/totp/", operations={Op.LIST: list_methods_totp}, synopsis="List TOTP MFA methods."),
        Path("mfa/method/totp/generate", fields=_GENERATE_FIELDS, operations={Op.UPDATE: generate},
             synopsis="Generate a TOTP secret for the caller's entity."),
        Path("mfa/method/totp/admin-generate", fields=_GENERATE_FIELDS, operations={Op.UPDATE: admin_generate},
             synopsis="Generate a TOTP secret for an entity."),
        Path("mfa/method/totp/admin-destroy", fields=_GENERATE_FIELDS, operations={Op.UPDATE: admin_destroy},
             synopsis="Destroy an entity's TOTP secret."),
        Path(f"mfa/method/totp(?:/{_UUID})?", fields=_TOTP_FIELDS,
             operations={Op.READ: read_method, Op.UPDATE: write_totp, Op.DELETE: delete_totp},
             synopsis="A TOTP MFA method."),
        Path(f"mfa/method(?:/{_UUID})?", fields={"method_id": _TOTP_FIELDS["method_id"]},
             operations={Op.READ: read_method}, synopsis="An MFA method, whatever its type."),
        Path("mfa/login-enforcement/", operations={Op.LIST: list_enforcements}, synopsis="List login enforcements."),
        Path(f"mfa/login-enforcement/{_NAME}", fields=_ENFORCEMENT_FIELDS,
             operations={Op.READ: read_enforcement, Op.UPDATE: write_enforcement, Op.DELETE: delete_enforcement},
             synopsis="A login enforcement: which logins need which MFA methods."),
    ]


async def list_methods_totp(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    return _listed({m.id: m.view() for m in _mfa(b).methods.values() if m.type == "totp"})
