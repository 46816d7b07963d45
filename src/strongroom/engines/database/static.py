"""static-roles/NAME (LIST static-roles/), static-creds/NAME and rotate-role/NAME.

A static role manages the password of an existing user: it is rotated when the role is created,
on rotate-role and every ``rotation_period`` (from the backend's periodic function). Deleting the
role leaves the user as it is, as Vault does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.engines.database import models
from strongroom.engines.database.models import StaticRole
from strongroom.errors import InvalidRequest
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response, name_regex

if TYPE_CHECKING:
    from strongroom.engines.database.backend import DatabaseBackend

NAME = {"name": Field(FieldType.STRING, "Name of the static role.")}
STATIC_FIELDS: dict[str, Field] = {
    **NAME,
    "db_name": Field(FieldType.STRING, "Name of the database connection this role uses."),
    "username": Field(FieldType.STRING, "Name of the existing database user whose password is managed."),
    "rotation_period": Field(FieldType.DURATION, "How often the password is rotated (at least 5s)."),
    "rotation_statements": Field(FieldType.STRING_SLICE, "Statements that set the password: {{name}}, "
                                 "{{password}}."),
    "credential_type": Field(FieldType.STRING, "Only \"password\" is supported.", default="password"),
}


def static_paths() -> list[Path[DatabaseBackend]]:
    return [
        Path("static-roles/?", operations={Op.LIST: models.STATIC_ROLES.list},
             synopsis="List the static roles."),
        Path(f"static-roles/{name_regex('name')}", fields=STATIC_FIELDS, exists=models.STATIC_ROLES.exists,
             operations={Op.READ: models.STATIC_ROLES.read, Op.CREATE: write_static, Op.UPDATE: write_static,
                         Op.DELETE: delete_static},
             synopsis="Manage the static roles."),
        Path(f"static-creds/{name_regex('name')}", fields=NAME, operations={Op.READ: read_static_creds},
             synopsis="The current credentials of a static role."),
        Path(f"rotate-role/{name_regex('name')}", fields=NAME, operations={Op.UPDATE: rotate_role},
             synopsis="Rotate the password of a static role now."),
    ]


async def delete_static(b: DatabaseBackend, req: Request, d: FieldData) -> None:
    name = d.get("name")
    async with b.locks.lock_for(name):
        await b.storage.delete(models.STATIC_PREFIX + name)
        b.static_due.pop(name, None)


async def write_static(b: DatabaseBackend, req: Request, d: FieldData) -> None:
    name = d.get("name")
    if await b.storage.get(models.ROLE_PREFIX + name) is not None:
        raise InvalidRequest("Role and Static Role names must be unique")
    if d.get("credential_type") != "password":
        raise InvalidRequest(f'unsupported credential_type: "{d.get("credential_type")}"')
    old = await models.STATIC_ROLES.get(b.storage, name)
    username, sent = d.get_ok("username")
    if old is not None and sent and username != old.username:
        raise InvalidRequest("cannot update static account username")
    role = old if old is not None else StaticRole(db_name="", username=username, rotation_period=0)
    for key in ("db_name", "rotation_period", "rotation_statements"):
        value, given = d.get_ok(key)
        if given:
            setattr(role, key, value)
    if not role.db_name:
        raise InvalidRequest("database name is a required field")
    if not role.username:
        raise InvalidRequest("username is a required field to create a static account")
    if role.rotation_period < 5:
        raise InvalidRequest("rotation_period must be 5 seconds or more")
    config = await b.connection(role.db_name)
    if not config.allows(name):
        raise InvalidRequest(f'"{name}" is not an allowed role')
    if old is None:
        await b.rotate_static(name, role)  # the password is Strongroom's from now on
    else:
        async with b.locks.lock_for(name):
            await models.save(b.storage, models.STATIC_PREFIX + name, role)
            b.static_due[name] = role.last_vault_rotation + role.rotation_period


async def read_static_creds(b: DatabaseBackend, req: Request, d: FieldData) -> Response:
    role = await models.STATIC_ROLES.get(b.storage, d.get("name"))
    if role is None:
        raise InvalidRequest(f'unknown role: {d.get("name")}')
    ttl = max(0, int(role.last_vault_rotation + role.rotation_period - b.system.now()))
    return Response(data={"username": role.username, "password": role.password,
                          "last_vault_rotation": models.rfc3339(role.last_vault_rotation),
                          "rotation_period": role.rotation_period, "ttl": ttl})


async def rotate_role(b: DatabaseBackend, req: Request, d: FieldData) -> None:
    await b.rotate_static(d.get("name"))


__all__ = ["static_paths"]
