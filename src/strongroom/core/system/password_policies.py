"""sys/policies/password: named password policies (core/password_policies.py) and generation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.core.password_policies import decode_policy_text
from strongroom.errors import InvalidRequest, NotFound, UnsupportedPath
from strongroom.framework import Field, FieldData, FieldType, Op, Path
from strongroom.framework.path import name_regex
from strongroom.logical import Request, Response

if TYPE_CHECKING:
    from strongroom.core.system import SystemBackend

_NAME = {"name": Field(FieldType.STRING, "The name of the password policy.")}
_FIELDS = {**_NAME, "policy": Field(FieldType.STRING, "The password policy, in HCL (or base64 of it).")}
_MISSING = "policy does not exist"  # Vault's wording, with a 404


def paths() -> list[Path[SystemBackend]]:
    return [
        Path("policies/password/?", operations={Op.LIST: list_policies}, synopsis="List password policies."),
        Path(f"policies/password/{name_regex('name')}/generate", fields=_NAME,
             operations={Op.READ: generate}, synopsis="Generate a password from a password policy."),
        Path(f"policies/password/{name_regex('name')}", fields=_FIELDS,
             operations={Op.READ: read_policy, Op.UPDATE: write_policy, Op.DELETE: delete_policy},
             synopsis="Read, write or delete a password policy."),
    ]


def _name(d: FieldData) -> str:
    name = str(d.get("name"))
    if not name:
        raise InvalidRequest("missing policy name")
    return name


async def list_policies(b: SystemBackend, req: Request, d: FieldData) -> Response:
    keys = await b.parts.password_policies.list()
    if not keys:
        raise NotFound()  # Vault answers an empty list with 404
    return Response(data={"keys": keys})


async def read_policy(b: SystemBackend, req: Request, d: FieldData) -> Response:
    text = await b.parts.password_policies.get_text(_name(d))
    if text is None:
        raise UnsupportedPath(_MISSING)
    return Response(data={"policy": text})


async def write_policy(b: SystemBackend, req: Request, d: FieldData) -> None:
    text = d.get("policy")
    if not text:
        raise InvalidRequest("missing policy")
    await b.parts.password_policies.put(_name(d), decode_policy_text(text))


async def delete_policy(b: SystemBackend, req: Request, d: FieldData) -> None:
    await b.parts.password_policies.delete(_name(d))


async def generate(b: SystemBackend, req: Request, d: FieldData) -> Response:
    policy = await b.parts.password_policies.get(_name(d))
    if policy is None:
        raise UnsupportedPath(_MISSING)
    return Response(data={"password": policy.generate()})
