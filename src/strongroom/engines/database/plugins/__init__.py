"""Database plugins by Vault's names. Each driver is imported only when a connection of its kind is
configured, so a server without MySQL connections never imports aiomysql."""

from __future__ import annotations

from typing import Any

from strongroom.engines.database.plugins.base import Plugin
from strongroom.errors import InvalidRequest

PLUGINS: dict[str, str] = {
    "postgresql-database-plugin": "postgresql",
    "mysql-database-plugin": "mysql",
    "mysql-aurora-database-plugin": "mysql-legacy",
    "mysql-rds-database-plugin": "mysql-legacy",
    "mysql-legacy-database-plugin": "mysql-legacy",
    "redis-database-plugin": "redis",
    "valkey-database-plugin": "redis",
}


def make_plugin(plugin_name: str, db_name: str, details: dict[str, Any], deadline: float) -> Plugin:
    """A plugin for ``plugin_name`` (Vault's name); InvalidRequest for an unknown one or bad details.
    Opens no connection."""
    kind = PLUGINS.get(plugin_name)
    if kind == "postgresql":
        from strongroom.engines.database.plugins.postgresql import PostgreSQL

        return PostgreSQL(db_name, details, deadline)
    if kind in ("mysql", "mysql-legacy"):
        from strongroom.engines.database.plugins.mysql import MySQL

        return MySQL(db_name, details, deadline, legacy=kind == "mysql-legacy")
    if kind == "redis":
        from strongroom.engines.database.plugins.redis import Redis

        return Redis(db_name, details, deadline)
    raise InvalidRequest(f'error creating database object: invalid database version: plugin "{plugin_name}" '
                         f"not found (supported: {', '.join(sorted(PLUGINS))})")


__all__ = ["PLUGINS", "Plugin", "make_plugin"]
