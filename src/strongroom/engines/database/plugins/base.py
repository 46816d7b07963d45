"""What every database plugin is: a connection (a bounded pool of them) and five user operations.

Every operation runs under one deadline (``Plugin.deadline`` seconds, waiting for a pooled
connection included): a database that does not answer is an error within it, never a hung request.
Errors reaching a handler are :class:`strongroom.errors` ones with messages that never hold a
password (:meth:`Plugin.redact`):

    could not connect / did not answer       Internal (500), like Vault's
    the database refused a statement         InvalidRequest (400)
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from strongroom.errors import Internal, InvalidRequest, StrongroomError

C = TypeVar("C")

#: Seconds any one database operation (pool wait, connect, statements) may take.
DEFAULT_DEADLINE = 10.0
DEFAULT_MAX_OPEN = 4


class Unreachable(Exception):
    """The database could not be reached (connect failed or the connection broke)."""


class ConnectFailed(Exception):
    """No connection could be opened: nothing reached the database."""


class NotConnected(Internal):
    """The operation failed before anything reached the database (it could not be connected to)."""


class StatementError(Exception):
    """The database answered, and refused a statement."""


class Pool(Generic[C]):
    """At most ``size`` open connections; idle ones are reused, one that saw an error other than a
    refused statement (:class:`StatementError`) is closed.

    ``close()`` closes the idle ones now and each busy one when it is given back."""

    def __init__(self, connect: Callable[[], Awaitable[C]], close: Callable[[C], Awaitable[None]], size: int) -> None:
        self._connect = connect
        self._close = close
        self._slots = asyncio.Semaphore(max(1, size))
        self._idle: list[C] = []
        self.closed = False

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[C]:
        if self.closed:
            raise Unreachable("connection pool is closed")
        async with self._slots:
            if self._idle:
                conn = self._idle.pop()
            else:
                try:
                    conn = await self._connect()
                except Exception as e:  # noqa: BLE001 - any driver failure to connect
                    raise ConnectFailed(first_line(e)) from None
            try:
                yield conn
            except StatementError:  # the database answered: the connection is fine
                if self.closed:
                    await self._discard(conn)
                else:
                    self._give_back(conn)
                raise
            except BaseException:
                await self._discard(conn)
                raise
            if self.closed:
                await self._discard(conn)
            else:
                self._idle.append(conn)

    def _give_back(self, conn: C) -> None:
        self._idle.append(conn)

    async def _discard(self, conn: C) -> None:
        with contextlib.suppress(Exception):
            await asyncio.shield(self._close(conn))

    async def close(self) -> None:
        self.closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await self._discard(conn)


@dataclass(slots=True)
class Statements:
    creation: list[str] = field(default_factory=list)
    revocation: list[str] = field(default_factory=list)
    rollback: list[str] = field(default_factory=list)
    renew: list[str] = field(default_factory=list)


class Plugin(abc.ABC):
    """One configured connection. ``details`` are the connection's ``connection_details``."""

    #: Vault's default ``username_template`` for this plugin.
    default_username_template: str = ""

    def __init__(self, db_name: str, details: dict[str, Any], deadline: float = DEFAULT_DEADLINE) -> None:
        self.db_name = db_name
        self.details = details
        self.deadline = deadline
        self._secrets: set[str] = {str(details.get("password") or "")} - {""}

    # -- what each plugin implements ------------------------------------------------------------
    @abc.abstractmethod
    async def verify(self) -> None: ...

    @abc.abstractmethod
    async def _create_user(self, statements: Statements, username: str, password: str, expiration: float) -> None: ...

    @abc.abstractmethod
    async def _delete_user(self, statements: list[str], username: str) -> None:
        """Drop ``username`` (``statements`` if any, else the plugin's own way), and end its sessions.
        A user already gone is not an error."""

    @abc.abstractmethod
    async def _renew_user(self, statements: list[str], username: str, expiration: float) -> None: ...

    @abc.abstractmethod
    async def _set_password(self, statements: list[str], username: str, password: str) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    def validate_creation(self, statements: list[str]) -> None:
        """Refuse creation statements this plugin could never run (checked when a role is written)."""
        if not statements:
            raise InvalidRequest("empty creation statements")

    # -- the operations, each under the deadline and with redacted errors ------------------------
    async def create_user(self, statements: Statements, username: str, password: str, expiration: float) -> None:
        await self._run("create user", self._create_user(statements, username, password, expiration), password)

    async def delete_user(self, statements: list[str], username: str) -> None:
        await self._run("revoke user", self._delete_user(statements, username))

    async def renew_user(self, statements: list[str], username: str, expiration: float) -> None:
        await self._run("renew user", self._renew_user(statements, username, expiration))

    async def set_password(self, statements: list[str], username: str, password: str) -> None:
        await self._run("set password", self._set_password(statements, username, password), password)

    async def check(self) -> None:
        await self._run("verify connection", self.verify())

    def redact(self, text: str, *extra: str) -> str:
        for secret in (*self._secrets, *extra):
            if secret:
                text = text.replace(secret, "[redacted]")
        return text

    async def _run(self, what: str, work: Awaitable[None], *secrets: str) -> None:
        try:
            async with asyncio.timeout(self.deadline):
                await work
        except TimeoutError:
            raise Internal(f'failed to {what}: database "{self.db_name}" did not answer within '
                           f"{self.deadline:g}s") from None
        except StrongroomError:
            raise
        except ConnectFailed as e:
            raise NotConnected(f'failed to {what}: could not connect to database "{self.db_name}": '
                               f"{self.redact(str(e), *secrets)}") from None
        except StatementError as e:
            raise InvalidRequest(f"failed to {what}: {self.redact(str(e), *secrets)}") from None
        except Exception as e:  # noqa: BLE001 - any driver failure is the database being unusable
            msg = self.redact(str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__, *secrets)
            raise Internal(f'failed to {what}: database "{self.db_name}": {msg}') from None


def first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


__all__ = ["DEFAULT_DEADLINE", "DEFAULT_MAX_OPEN", "ConnectFailed", "NotConnected", "Plugin", "Pool", "StatementError", "Statements", "Unreachable",
           "first_line"]
