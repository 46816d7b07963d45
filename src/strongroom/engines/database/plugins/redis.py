"""``redis-database-plugin`` (and ``valkey-database-plugin``): Redis ACL users, through redis-py.

Connection fields are Vault's: ``host``, ``port``, ``username``, ``password``, ``tls``,
``insecure_tls``, ``ca_cert``. A creation statement is a JSON list of ACL rules
(``'["~*", "+@read"]'``), as in Vault; the user is created with ``ACL SETUSER name on >password
rules...``. ``ACL DELUSER`` drops it and Redis disconnects its clients at once.
"""

from __future__ import annotations

from typing import Any

import orjson
import redis.asyncio as aredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from strongroom.engines.database.plugins.base import DEFAULT_MAX_OPEN, ConnectFailed, Plugin, StatementError, Statements
from strongroom.errors import InvalidRequest

DEFAULT_USERNAME_TEMPLATE = ('{{ printf "V_%s_%s_%s_%s" (.DisplayName | uppercase | truncate 10) '
                             '(.RoleName | uppercase | truncate 10) (random 20 | uppercase) (unix_time) '
                             '| truncate 32 }}')


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true")


def acl_rules(statements: list[str]) -> list[str]:
    rules: list[str] = []
    for stmt in statements:
        try:
            parsed = orjson.loads(stmt)
        except orjson.JSONDecodeError:
            raise InvalidRequest('creation statements must be a JSON list of ACL rules, e.g. \'["~*", "+@read"]\'') \
                from None
        if not isinstance(parsed, list) or not all(isinstance(r, str) for r in parsed):
            raise InvalidRequest("creation statements must be a JSON list of ACL rules (strings)")
        rules.extend(parsed)
    for rule in rules:
        if rule.startswith((">", "<", "#", "!")) or rule in ("nopass", "resetpass", "reset"):
            raise InvalidRequest(f'ACL rule "{rule}" is not allowed: the password is set by the engine')
    return rules


class Redis(Plugin):
    default_username_template = DEFAULT_USERNAME_TEMPLATE

    def __init__(self, db_name: str, details: dict[str, Any], deadline: float = 10.0) -> None:
        super().__init__(db_name, details, deadline)
        host = str(details.get("host") or "")
        if not host:
            raise InvalidRequest("host cannot be empty")
        try:
            port = int(details.get("port") or 6379)
        except (TypeError, ValueError):
            raise InvalidRequest("port must be an integer") from None
        kwargs: dict[str, Any] = {}
        if _flag(details.get("tls")):
            insecure = _flag(details.get("insecure_tls"))
            kwargs.update(connection_class=aredis.SSLConnection, ssl_ca_data=str(details.get("ca_cert") or "") or None,
                          ssl_cert_reqs="none" if insecure else "required", ssl_check_hostname=not insecure)
        self.pool = aredis.BlockingConnectionPool(
            host=host, port=port, username=str(details.get("username") or "") or None,
            password=str(details.get("password") or "") or None,
            max_connections=int(details.get("max_open_connections") or DEFAULT_MAX_OPEN),
            timeout=deadline, socket_connect_timeout=deadline, socket_timeout=deadline, **kwargs)
        # No retries: a failure is reported at once (the deadline bounds the whole operation anyway).
        self.client = aredis.Redis(connection_pool=self.pool, retry=Retry(NoBackoff(), 0))

    async def close(self) -> None:
        await self.client.aclose()
        await self.pool.disconnect()

    async def _command(self, *args: Any) -> Any:
        try:
            return await self.client.execute_command(*args)  # type: ignore[no-untyped-call]
        except ResponseError as e:
            raise StatementError(str(e)) from None
        except RedisConnectionError as e:
            if "connecting to" in str(e):
                raise ConnectFailed(str(e)) from None
            raise
        except RedisTimeoutError:
            raise
        except RedisError as e:
            raise StatementError(str(e)) from None

    def validate_creation(self, statements: list[str]) -> None:
        acl_rules(statements)  # none is fine: a user with no permissions, as in Vault

    async def verify(self) -> None:
        await self._command("PING")

    async def _create_user(self, statements: Statements, username: str, password: str, expiration: float) -> None:
        await self._command("ACL", "SETUSER", username, "reset", "on", ">" + password, *acl_rules(statements.creation))

    async def _delete_user(self, statements: list[str], username: str) -> None:
        # Deleting the user disconnects its clients (Redis does that itself).
        await self._command("ACL", "DELUSER", username)

    async def _renew_user(self, statements: list[str], username: str, expiration: float) -> None:
        return None  # Redis users do not expire

    async def _set_password(self, statements: list[str], username: str, password: str) -> None:
        users = await self._command("ACL", "USERS")
        if username not in {u.decode() if isinstance(u, bytes) else str(u) for u in users}:
            raise StatementError(f'user "{username}" does not exist')
        await self._command("ACL", "SETUSER", username, "resetpass", ">" + password)


__all__ = ["Redis", "acl_rules"]
