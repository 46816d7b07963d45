"""The RabbitMQ secrets engine (Vault's ``rabbitmq``): a broker user per client, made through the
broker's management HTTP API, with a lease; revoking the lease deletes the user.

    config/connection   connection_uri, username, password, verify_connection, password_policy,
                        username_template (write only: the password is never returned)
    config/lease        ttl, max_ttl of issued credentials (read, write)
    roles/NAME          tags, vhosts, vhost_topics (JSON strings); LIST roles/
    creds/NAME          a new user with the role's tags and permissions, and its lease

Storage (the mount's view, through the barrier): ``config/connection`` JSON
{connection_uri, username, password, password_policy, username_template}; ``config/lease`` JSON
{ttl, max_ttl} in seconds; ``role/NAME`` JSON {tags, vhosts, vhost_topics}; the framework's
``wal/`` entries of kind ``user`` {"username"} while a user is being made.
"""

from __future__ import annotations

from typing import Any

from strongroom.engines.rabbitmq import config, creds, roles
from strongroom.engines.rabbitmq.client import ManagementClient
from strongroom.engines.rabbitmq.config import CONNECTION_KEY, Connection, load_connection
from strongroom.errors import InvalidRequest
from strongroom.framework import Backend, BackendConfig
from strongroom.logical import Storage


class RabbitMQBackend(Backend):
    help = ("The RabbitMQ backend dynamically generates RabbitMQ users.\n\nAfter mounting this backend, "
            "configure it using the endpoints within the \"config/\" path.")

    def __init__(self, cfg: BackendConfig) -> None:
        super().__init__(cfg, config.paths() + roles.paths() + creds.paths(), [creds.CREDS])
        # The connection config and its pooled client, made on first use, dropped when the config is
        # written or invalidated and on deactivate.
        self._conn: tuple[Connection, ManagementClient] | None = None

    async def connection(self, storage: Storage) -> tuple[Connection, ManagementClient]:
        if self._conn is None:
            conn = await load_connection(storage)
            if conn is None:
                raise InvalidRequest("RabbitMQ connection is not configured: write config/connection first")
            if self._conn is None:  # another request may have made it while this one read storage
                self._conn = (conn, ManagementClient(conn.uri, conn.username, conn.password))
        return self._conn

    async def reset_client(self) -> None:
        old, self._conn = self._conn, None
        if old is not None:
            await old[1].aclose()

    async def rollback(self, kind: str, data: Any) -> bool | None:
        """A user whose lease was never written (the process died, or its permissions failed and the
        immediate delete did too): delete it. Kept for a later round while the broker is away."""
        if kind != creds.WAL_KIND:
            return True  # nothing this version knows how to undo
        _, client = await self.connection(self.system.storage)
        await client.delete_user(str(data["username"]))
        return True

    async def invalidate(self, key: str) -> None:
        if key == CONNECTION_KEY:
            await self.reset_client()

    async def deactivate(self) -> None:
        await super().deactivate()
        await self.reset_client()


def rabbitmq_backend(cfg: BackendConfig) -> RabbitMQBackend:
    return RabbitMQBackend(cfg)


__all__ = ["RabbitMQBackend", "rabbitmq_backend"]
