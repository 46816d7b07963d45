"""role/<name>: the labels a container must carry (exact values) and the token it gets. Writes merge;
the whole role is validated before anything is stored."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.auth.container.store import ROLE_PREFIX, Role, get_role, put_role, storage
from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response, name_regex, token_fields

if TYPE_CHECKING:
    from strongroom.auth.container import ContainerBackend

_FIELDS: dict[str, Field] = {
    "name": Field(FieldType.STRING, "Name of the role."),
    "bound_labels": Field(FieldType.KV_PAIRS, "Labels (key=value) the container must carry, all of them."),
    "check_remote_address": Field(FieldType.BOOL, "Require the login to come from one of the container's "
                                  "own IP addresses (default true).", default=True),
    **token_fields(),
}


def paths() -> list[Path[ContainerBackend]]:
    return [
        Path("role/?", operations={Op.LIST: list_roles}, synopsis="Lists the roles."),
        Path(f"role/{name_regex('name')}", fields=_FIELDS,
             operations={Op.READ: read_role, Op.CREATE: write_role, Op.UPDATE: write_role, Op.DELETE: delete_role},
             exists=role_exists, synopsis="Register a role: the labels a container must carry."),
    ]


async def list_roles(b: ContainerBackend, req: Request, d: FieldData) -> Response | None:
    keys = await storage(req).list(ROLE_PREFIX)
    if not keys:
        raise NotFound()
    return Response(data={"keys": keys})


async def role_exists(b: ContainerBackend, req: Request, d: FieldData) -> bool:
    return await get_role(storage(req), d.get("name")) is not None


async def read_role(b: ContainerBackend, req: Request, d: FieldData) -> Response | None:
    role = await get_role(storage(req), d.get("name"))
    if role is None:
        raise NotFound()
    return Response(data=role.to_response())


async def write_role(b: ContainerBackend, req: Request, d: FieldData) -> Response | None:
    name: str = d.get("name").lower()
    s = storage(req)
    role = await get_role(s, name) or Role(name=name)
    role.token.update(d)
    if d.has("bound_labels"):
        role.bound_labels = {str(k): str(v) for k, v in d.get("bound_labels").items()}
    if not role.bound_labels:
        raise InvalidRequest('"bound_labels" can not be empty')
    if any(not k for k in role.bound_labels):
        raise InvalidRequest("bound_labels: a label key can not be empty")
    if d.has("check_remote_address") or req.operation == Op.CREATE:
        role.check_remote_address = bool(d.get("check_remote_address"))
    await put_role(s, role)
    return None


async def delete_role(b: ContainerBackend, req: Request, d: FieldData) -> Response | None:
    await storage(req).delete(ROLE_PREFIX + d.get("name").lower())
    return None
