"""config/NAME (LIST config/), reset/NAME and rotate-root/NAME.

A write builds the plugin first (a bad plugin name or connection URL is a 400), verifies the
connection when ``verify_connection`` (default true) and only then stores the configuration and
puts the new plugin in place of the old one, whose pool is closed. Fields the engine does not know
go into ``connection_details`` as in Vault; the password is never returned.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from strongroom.engines.database import models
from strongroom.engines.database.models import ConnectionConfig
from strongroom.engines.database.plugins import make_plugin
from strongroom.errors import InvalidRequest, StrongroomError
from strongroom.framework import (
    Field, FieldData, FieldType, Op, Path, Request, Response, UsernameTemplateError, compile_username_template,
    name_regex,
)

if TYPE_CHECKING:
    from strongroom.engines.database.backend import DatabaseBackend

NAME = {"name": Field(FieldType.STRING, "Name of this database connection.")}

CONFIG_FIELDS: dict[str, Field] = {
    **NAME,
    "plugin_name": Field(FieldType.STRING, "The name of a builtin database plugin, e.g. postgresql-database-plugin."),
    "plugin_version": Field(FieldType.STRING, "The version of the plugin (only the builtin one exists)."),
    "verify_connection": Field(FieldType.BOOL, "Verify the connection when it is configured.", default=True),
    "allowed_roles": Field(FieldType.COMMA_STRING_SLICE, "Roles allowed to use this connection; '*' for all."),
    "root_rotation_statements": Field(FieldType.STRING_SLICE, "Statements that rotate the root password."),
    "password_policy": Field(FieldType.STRING, "The password policy used for generated passwords."),
    # Connection details (stored in connection_details, as Vault does).
    "connection_url": Field(FieldType.STRING, "Connection string, with {{username}} and {{password}} templates."),
    "username": Field(FieldType.STRING, "The root user name."),
    "password": Field(FieldType.STRING, "The root password (never returned).", sensitive=True),
    "max_open_connections": Field(FieldType.INT, "Maximum open connections to the database (default 4)."),
    "max_idle_connections": Field(FieldType.INT, "Accepted for compatibility."),
    "max_connection_lifetime": Field(FieldType.DURATION, "Accepted for compatibility."),
    "username_template": Field(FieldType.STRING, "Template of generated user names."),
    "password_authentication": Field(FieldType.STRING, "PostgreSQL: 'password' (default: sent as it is) or "
                                     "'scram-sha-256' (sent as a SCRAM verifier, hashed by Strongroom)."),
    "host": Field(FieldType.STRING, "Redis/Valkey host."),
    "port": Field(FieldType.INT, "Redis/Valkey port."),
    "tls": Field(FieldType.BOOL, "Redis/Valkey: connect with TLS."),
    "insecure_tls": Field(FieldType.BOOL, "Redis/Valkey: do not verify the server certificate."),
    "ca_cert": Field(FieldType.STRING, "Redis/Valkey: PEM CA certificate."),
}
TOP_LEVEL = ("name", "plugin_name", "plugin_version", "verify_connection", "allowed_roles",
             "root_rotation_statements", "password_policy")


def config_paths() -> list[Path[DatabaseBackend]]:
    return [
        Path("config/?", operations={Op.LIST: models.CONNECTIONS.list},
             synopsis="List configured database connections."),
        Path(f"config/{name_regex('name')}", fields=CONFIG_FIELDS, exists=models.CONNECTIONS.exists,
             operations={Op.READ: models.CONNECTIONS.read, Op.CREATE: write_config, Op.UPDATE: write_config,
                         Op.DELETE: delete_config},
             synopsis="Configure connection details to a database plugin."),
        Path(f"reset/{name_regex('name')}", fields=NAME, operations={Op.UPDATE: reset_connection},
             synopsis="Reset a database connection: close it and open it anew."),
        Path(f"rotate-root/{name_regex('name')}", fields=NAME, operations={Op.UPDATE: rotate_root},
             synopsis="Rotate the root credentials of a database connection."),
    ]


async def write_config(b: DatabaseBackend, req: Request, d: FieldData) -> Response | None:
    name = d.get("name")
    old = await models.CONNECTIONS.get(b.storage, name)
    plugin_name, given = d.get_ok("plugin_name")
    if not given or not plugin_name:
        if old is None:
            raise InvalidRequest("empty plugin name")
        plugin_name = old.plugin_name
    config = old if old is not None and old.plugin_name == plugin_name else ConnectionConfig(plugin_name)
    for key in ("allowed_roles", "root_rotation_statements", "password_policy", "verify_connection",
                "plugin_version"):
        value, sent = d.get_ok(key)
        if sent or old is None:
            setattr(config, key, value)
    details: dict[str, Any] = dict(config.connection_details)
    for key, value in d.raw.items():
        if key not in TOP_LEVEL and value is not None:
            details[key] = d.get(key) if key in CONFIG_FIELDS else value
    config.connection_details = details
    template = str(details.get("username_template") or "")
    if template:  # as Vault's plugins do on Initialize: parse, then render with empty metadata
        try:
            parsed = compile_username_template(template)
        except UsernameTemplateError as e:
            raise InvalidRequest(f"error creating database object: unable to initialize username template: {e}") \
                from None
        try:
            parsed.render({"DisplayName": "", "RoleName": ""})
        except UsernameTemplateError as e:
            raise InvalidRequest(f"error creating database object: invalid username template: {e}") from None
    plugin = make_plugin(plugin_name, name, details, b.deadline)
    if config.verify_connection:
        try:
            await plugin.check()
        except StrongroomError as e:
            await plugin.close()
            raise InvalidRequest(f"error creating database object: error verifying connection: {e.message}") \
                from None
    await models.save(b.storage, models.CONFIG_PREFIX + name, config)
    replaced = b.install(name, plugin)
    if replaced is not None:
        await replaced.close()
    resp = Response()
    url = str(details.get("connection_url") or "")
    if details.get("password") and url and "{{password}}" not in url:
        resp.warnings.append("Password found in connection_url, use a templated url to enable root rotation "
                             "and prevent read access to password information.")
    return resp if resp.warnings else None


async def delete_config(b: DatabaseBackend, req: Request, d: FieldData) -> None:
    name = d.get("name")
    await b.storage.delete(models.CONFIG_PREFIX + name)
    await b.close_connection(name)


async def reset_connection(b: DatabaseBackend, req: Request, d: FieldData) -> None:
    name = d.get("name")
    config = await b.connection(name)
    await b.close_connection(name)
    await b.plugin(name, config)


async def rotate_root(b: DatabaseBackend, req: Request, d: FieldData) -> None:
    name = d.get("name")
    async with b.locks.lock_for("config/" + name):
        config = await b.connection(name)
        username = str(config.connection_details.get("username") or "")
        if not username:
            raise InvalidRequest("unable to rotate root credentials: no username in configuration")
        if not config.connection_details.get("password"):
            raise InvalidRequest("unable to rotate root credentials: no password in configuration")
        plugin = await b.plugin(name, config)
        password = await b.system.generate_password(config.password_policy)
        await plugin.set_password(config.root_rotation_statements, username, password)
        config.connection_details["password"] = password
        await models.save(b.storage, models.CONFIG_PREFIX + name, config)
        await b.close_connection(name)


__all__ = ["config_paths"]
