"""sys/policy and sys/policies/acl: ACL policy CRUD."""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import Field, FieldData, FieldType, Op, Path, match_all
from strongroom.logical import Request, Response

if TYPE_CHECKING:
    from strongroom.core.system import SystemBackend

_FIELDS = {
    "name": Field(FieldType.STRING, "The name of the policy."),
    "policy": Field(FieldType.STRING, "The policy document, in HCL or JSON."),
    "rules": Field(FieldType.STRING, "Legacy name for policy."),
}


def paths() -> list[Path[SystemBackend]]:
    return [
        Path("policy/?", operations={Op.READ: list_legacy, Op.LIST: list_legacy}, synopsis="List ACL policies."),
        Path(f"policy/{match_all('name')}", fields=_FIELDS,
             operations={Op.READ: read_legacy, Op.UPDATE: write_policy, Op.DELETE: delete_policy},
             synopsis="Read, write or delete an ACL policy."),
        Path("policies/acl/?", operations={Op.LIST: list_acl}, synopsis="List ACL policies."),
        Path(f"policies/acl/{match_all('name')}", fields=_FIELDS,
             operations={Op.READ: read_acl, Op.UPDATE: write_policy, Op.DELETE: delete_policy},
             synopsis="Read, write or delete an ACL policy."),
    ]


def _name(d: FieldData) -> str:
    name = str(d.get("name")).strip().lower()
    if not name:
        raise InvalidRequest("policy name must be provided")
    return name


async def list_legacy(b: SystemBackend, req: Request, d: FieldData) -> Response:
    names = await b.parts.policies.list()
    return Response(data={"keys": names, "policies": names})


async def list_acl(b: SystemBackend, req: Request, d: FieldData) -> Response:
    return Response(data={"keys": await b.parts.policies.list()})


async def _read(b: SystemBackend, d: FieldData) -> tuple[str, str]:
    name = _name(d)
    if name == "root":
        return name, ""
    policy = await b.parts.policies.get(name)
    if policy is None:
        raise NotFound()
    return name, policy.text


async def read_legacy(b: SystemBackend, req: Request, d: FieldData) -> Response:
    name, text = await _read(b, d)
    return Response(data={"name": name, "rules": text})


async def read_acl(b: SystemBackend, req: Request, d: FieldData) -> Response:
    name, text = await _read(b, d)
    return Response(data={"name": name, "policy": text})


async def write_policy(b: SystemBackend, req: Request, d: FieldData) -> None:
    text = d.get("policy") or d.get("rules")
    if not text:
        raise InvalidRequest("'policy' parameter not supplied or empty")
    await b.parts.policies.put(_name(d), _decoded(text))


def _decoded(text: str) -> str:
    """As OpenBao: a policy that is valid standard base64 (padded; line breaks ignored) is taken to
    be its decoding. HCL and JSON policies never are: they hold spaces, quotes or braces."""
    try:
        return base64.b64decode(text.replace("\r", "").replace("\n", ""), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # not base64, or not text once decoded
        return text


async def delete_policy(b: SystemBackend, req: Request, d: FieldData) -> None:
    await b.parts.policies.delete(_name(d))
