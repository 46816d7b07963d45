"""roles/NAME (LIST roles/), creds/NAME and the ``creds`` secret type (renew, revoke).

Issuing credentials follows the write-ahead rule (framework/wal.py):

    1  put_wal("creds", {db_name, username, statements})    durable before the user exists
    2  the plugin runs the creation statements                (PostgreSQL: in one transaction)
    3  the response names the entry; core deletes it in the commit that makes the lease durable

A creation the database refuses is undone at once (the role's rollback statements, else its
revocation, else the plugin's own drop) and its entry deleted; if even that fails, or the database
stopped answering mid-way, the entry stays and the rollback rounds (activate after a restart,
periodic) drop the user. A database that could not be reached at all created nothing: the entry goes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from strongroom.engines.database import models
from strongroom.engines.database.models import Role
from strongroom.engines.database.plugins.base import NotConnected, Statements
from strongroom.errors import InvalidRequest, StrongroomError
from strongroom.framework import (
    Field, FieldData, FieldType, Op, Path, Request, Response, SecretType, UsernameTemplateError,
    compile_username_template, name_regex,
)
from strongroom.logical import LeaseInfo

if TYPE_CHECKING:
    from strongroom.engines.database.backend import DatabaseBackend

NAME = {"name": Field(FieldType.STRING, "Name of the role.")}
ROLE_FIELDS: dict[str, Field] = {
    **NAME,
    "db_name": Field(FieldType.STRING, "Name of the database connection this role uses."),
    "creation_statements": Field(FieldType.STRING_SLICE, "Statements creating the user: {{name}}, "
                                 "{{password}}, {{expiration}}."),
    "revocation_statements": Field(FieldType.STRING_SLICE, "Statements dropping the user: {{name}}."),
    "rollback_statements": Field(FieldType.STRING_SLICE, "Statements undoing a failed creation: {{name}}."),
    "renew_statements": Field(FieldType.STRING_SLICE, "Statements run on renewal: {{name}}, {{expiration}}."),
    "default_ttl": Field(FieldType.DURATION, "Default TTL of the leases of this role."),
    "max_ttl": Field(FieldType.DURATION, "Maximum TTL of the leases of this role."),
    "credential_type": Field(FieldType.STRING, "Only \"password\" is supported.", default="password"),
}
STATEMENT_KEYS = ("creation_statements", "revocation_statements", "rollback_statements", "renew_statements")


async def renew_creds(b: DatabaseBackend, req: Request, d: FieldData) -> Response:
    internal = d.raw
    secret = req.secret or LeaseInfo()
    role = await models.ROLES.get(b.storage, str(internal.get("role", "")))
    if role is None:
        raise InvalidRequest(f'error during renew: could not find role with name: "{internal.get("role")}"')
    now = b.system.now()
    expiration = now + secret.ttl
    issued, limit = float(internal.get("issued_at") or 0), secret.max_ttl
    if issued and limit:
        expiration = min(expiration, issued + limit)
    plugin = await b.plugin(str(internal["db_name"]))
    await plugin.renew_user(role.renew_statements, str(internal["username"]), expiration)
    return Response(secret=LeaseInfo(ttl=secret.ttl, renewable=True))


async def revoke_creds(b: DatabaseBackend, req: Request, d: FieldData) -> None:
    internal = d.raw
    role = await models.ROLES.get(b.storage, str(internal.get("role", "")))
    statements = role.revocation_statements if role is not None else list(internal.get("revocation_statements") or [])
    plugin = await b.plugin(str(internal["db_name"]))
    await plugin.delete_user(statements, str(internal["username"]))


CREDS: SecretType[DatabaseBackend] = SecretType("creds", renew=renew_creds, revoke=revoke_creds)


def role_paths() -> list[Path[DatabaseBackend]]:
    return [
        Path("roles/?", operations={Op.LIST: models.ROLES.list}, synopsis="List the dynamic roles."),
        Path(f"roles/{name_regex('name')}", fields=ROLE_FIELDS, exists=models.ROLES.exists,
             operations={Op.READ: models.ROLES.read, Op.CREATE: write_role, Op.UPDATE: write_role,
                         Op.DELETE: delete_role},
             synopsis="Manage the roles that can be created with this backend."),
        Path(f"creds/{name_regex('name')}", fields=NAME, operations={Op.READ: issue_creds},
             synopsis="Request database credentials for a certain role."),
    ]


async def delete_role(b: DatabaseBackend, req: Request, d: FieldData) -> None:
    await b.storage.delete(models.ROLE_PREFIX + d.get("name"))


async def write_role(b: DatabaseBackend, req: Request, d: FieldData) -> Response | None:
    name = d.get("name")
    if await b.storage.get(models.STATIC_PREFIX + name) is not None:
        raise InvalidRequest("Role and Static Role names must be unique")
    old = await models.ROLES.get(b.storage, name)
    role = old if old is not None else Role(db_name="")
    for key in ("db_name", *STATEMENT_KEYS, "default_ttl", "max_ttl"):
        value, sent = d.get_ok(key)
        if sent:
            setattr(role, key, value)
    if d.get("credential_type") != "password":
        raise InvalidRequest(f'unsupported credential_type: "{d.get("credential_type")}"')
    if not role.db_name:
        raise InvalidRequest("empty database name attribute")
    if role.max_ttl and role.default_ttl > role.max_ttl:
        raise InvalidRequest("ttl cannot be greater than max_ttl")
    if role.creation_statements and await b.storage.get(models.CONFIG_PREFIX + role.db_name) is not None:
        # Statements the plugin could never run are refused now (Vault finds out at issue time).
        (await b.plugin(role.db_name)).validate_creation(role.creation_statements)
    await models.save(b.storage, models.ROLE_PREFIX + name, role)
    return None


async def issue_creds(b: DatabaseBackend, req: Request, d: FieldData) -> Response:
    name = d.get("name")
    role = await models.ROLES.get(b.storage, name)
    if role is None:
        raise InvalidRequest(f"unknown role: {name}")
    config = await b.connection(role.db_name)
    if not config.allows(name):
        raise InvalidRequest(f'"{name}" is not an allowed role')
    plugin = await b.plugin(role.db_name, config)
    plugin.validate_creation(role.creation_statements)
    mount_default, mount_max = b.system.lease_ttls()
    ttl = role.default_ttl or mount_default
    limit = min(role.max_ttl or mount_max, mount_max) if mount_max else role.max_ttl
    if limit:
        ttl = min(ttl, limit)
    template = str(config.connection_details.get("username_template") or plugin.default_username_template)
    try:
        username = compile_username_template(template).render({"DisplayName": req.display_name or "token",
                                                                "RoleName": name})
    except UsernameTemplateError as e:
        raise InvalidRequest(f"unable to generate username: {e}") from None
    password = await b.system.generate_password(config.password_policy)
    now = b.system.now()
    undo = role.rollback_statements or role.revocation_statements
    wal_id = await b.put_wal("creds", {"db_name": role.db_name, "username": username, "statements": undo})
    statements = Statements(creation=role.creation_statements, revocation=role.revocation_statements,
                            rollback=role.rollback_statements, renew=role.renew_statements)
    try:
        await plugin.create_user(statements, username, password, now + ttl)
    except NotConnected:
        await b.delete_wal(wal_id)  # nothing reached the database
        raise
    except InvalidRequest:
        # The database refused a statement: undo what the ones before it did, now.
        try:
            await plugin.delete_user(undo, username)
        except StrongroomError as e:
            b.system.logger.warning("undoing the failed creation of %s failed (the rollback log keeps it): %s",
                                    username, e)
        else:
            await b.delete_wal(wal_id)
        raise
    internal: dict[str, Any] = {"username": username, "role": name, "db_name": role.db_name,
                                "revocation_statements": role.revocation_statements, "issued_at": now}
    return CREDS.response({"username": username, "password": password}, internal, ttl=ttl,
                          max_ttl=role.max_ttl, wal_ids=[wal_id], system=b.system)


__all__ = ["CREDS", "role_paths"]
