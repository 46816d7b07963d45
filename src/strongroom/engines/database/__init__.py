"""The database secrets engine (Vault's ``database``): a fresh database user per client, dropped
when its lease ends; static roles whose passwords it rotates.

    config/NAME        a connection: plugin_name (Vault's names, plugins/__init__.py), connection
                       details, allowed_roles, password_policy (config.py)
    roles/NAME         statements and TTLs of dynamic users; creds/NAME issues one (roles.py)
    static-roles/NAME  an existing user whose password is rotated; static-creds/NAME (static.py)

One plugin object, holding one bounded connection pool, per configured connection
(backend.py); every database operation runs under a deadline (plugins/base.py).
"""

from strongroom.engines.database.backend import DatabaseBackend, database_backend

__all__ = ["DatabaseBackend", "database_backend"]
