"""DatabaseBackend: the connections (one plugin, so one bounded pool, per configured connection),
the rollback of half-created users, and the rotation of static roles."""

from __future__ import annotations

from typing import Any

from strongroom.engines.database import models
from strongroom.engines.database.models import ConnectionConfig, Role, StaticRole
from strongroom.engines.database.plugins import Plugin, make_plugin
from strongroom.engines.database.plugins.base import DEFAULT_DEADLINE
from strongroom.errors import InvalidRequest
from strongroom.framework import Backend, BackendConfig, StripedLocks
from strongroom.logical import Storage

#: Write-ahead entry kind: a dynamic user being created ({"db_name", "username", "statements"}).
WAL_CREDS = "creds"

HELP = """The database secrets engine generates database credentials dynamically based on configured roles.

It works with a number of different databases (PostgreSQL, MySQL/MariaDB, Redis/Valkey) by Vault's
plugin names. Configure a connection at config/NAME, a role at roles/NAME, read creds/NAME: a user
is created for each read and dropped when its lease ends. Static roles (static-roles/NAME) manage
the password of an existing user and rotate it periodically."""


class DatabaseBackend(Backend):
    help = HELP

    def __init__(self, config: BackendConfig) -> None:
        from strongroom.engines.database.config import config_paths
        from strongroom.engines.database.roles import CREDS, role_paths
        from strongroom.engines.database.static import static_paths

        super().__init__(config, [*config_paths(), *role_paths(), *static_paths()], [CREDS])
        #: Seconds any one database operation may take (connect and pool wait included).
        self.deadline = DEFAULT_DEADLINE
        self._plugins: dict[str, Plugin] = {}
        self.locks = StripedLocks()
        # Static roles: name -> when the next rotation is due (loaded on setup, kept current).
        self.static_due: dict[str, float] = {}
        self._static_loaded = False

    @property
    def storage(self) -> Storage:
        return self.system.storage

    # -- connections ---------------------------------------------------------------------------
    async def connection(self, name: str) -> ConnectionConfig:
        config = await models.CONNECTIONS.get(self.storage, name)
        if config is None:
            raise InvalidRequest(f'failed to find entry for connection with name: "{name}"')
        return config

    async def plugin(self, name: str, config: ConnectionConfig | None = None) -> Plugin:
        """The open plugin (and pool) of connection ``name``, made on first use."""
        found = self._plugins.get(name)
        if found is not None:
            return found
        if config is None:
            config = await self.connection(name)
            found = self._plugins.get(name)  # made while we read
            if found is not None:
                return found
        plugin = make_plugin(config.plugin_name, name, config.connection_details, self.deadline)
        self._plugins[name] = plugin
        return plugin

    def install(self, name: str, plugin: Plugin) -> Plugin | None:
        """Make ``plugin`` the connection ``name`` uses; the one it replaces (to close) is returned."""
        old = self._plugins.get(name)
        self._plugins[name] = plugin
        return old

    async def close_connection(self, name: str) -> None:
        plugin = self._plugins.pop(name, None)
        if plugin is not None:
            await plugin.close()

    async def close_all(self) -> None:
        plugins, self._plugins = list(self._plugins.values()), {}
        for plugin in plugins:
            try:
                await plugin.close()
            except Exception as e:  # noqa: BLE001 - closing must go on for the others
                self.system.logger.warning("closing database connection %s: %s", plugin.db_name, e)

    # -- lifecycle -----------------------------------------------------------------------------
    async def deactivate(self) -> None:
        await super().deactivate()
        await self.close_all()

    async def invalidate(self, key: str) -> None:
        if key.startswith(models.CONFIG_PREFIX):
            await self.close_connection(key[len(models.CONFIG_PREFIX):])
        elif key.startswith(models.STATIC_PREFIX):
            self._static_loaded = False

    async def periodic(self, now: float) -> None:
        await super().periodic(now)
        if self.system.active():
            await self.rotate_due(now)

    # -- rollback of half-created users (framework/wal.py) ---------------------------------------
    async def rollback(self, kind: str, data: Any) -> bool | None:
        if kind != WAL_CREDS:
            return True
        name = str(data["db_name"])
        try:
            plugin = await self.plugin(name)
        except InvalidRequest:
            self.system.logger.error("cannot roll back user %s: connection %s no longer exists",
                                     data.get("username"), name)
            return True
        await plugin.delete_user(list(data.get("statements") or []), str(data["username"]))
        return True

    # -- static roles --------------------------------------------------------------------------
    async def load_static_schedule(self) -> None:
        due: dict[str, float] = {}
        for name in await models.names(self.storage, models.STATIC_PREFIX):
            role = await models.STATIC_ROLES.get(self.storage, name)
            if role is not None:
                due[name] = role.last_vault_rotation + role.rotation_period
        self.static_due = due
        self._static_loaded = True

    async def rotate_due(self, now: float) -> None:
        if not self._static_loaded:
            await self.load_static_schedule()
        for name, when in list(self.static_due.items()):
            if when > now:
                continue
            try:
                await self.rotate_static(name)
            except Exception as e:  # noqa: BLE001 - retried next round
                self.system.logger.warning("rotation of static role %s failed: %s", name, e)

    async def rotate_static(self, name: str, role: StaticRole | None = None) -> StaticRole:
        """Set a new password for the static role's user, then store it."""
        async with self.locks.lock_for(name):
            if role is None:
                role = await models.STATIC_ROLES.get(self.storage, name)
                if role is None:
                    self.static_due.pop(name, None)
                    raise InvalidRequest(f'unable to find static role "{name}"')
            config = await self.connection(role.db_name)
            plugin = await self.plugin(role.db_name, config)
            password = await self.system.generate_password(config.password_policy)
            await plugin.set_password(role.rotation_statements, role.username, password)
            role.password = password
            role.last_vault_rotation = self.system.now()
            await models.save(self.storage, models.STATIC_PREFIX + name, role)
            self.static_due[name] = role.last_vault_rotation + role.rotation_period
            return role


def database_backend(config: BackendConfig) -> DatabaseBackend:
    """Factory for the "database" mount type."""
    return DatabaseBackend(config)


__all__ = ["WAL_CREDS", "DatabaseBackend", "Role", "database_backend"]
