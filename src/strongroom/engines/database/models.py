"""What the database engine stores (in its barrier-encrypted view), with Vault's storage keys:

    config/<name>        ConnectionConfig (connection_details hold the root password)
    role/<name>          Role (dynamic)
    static-role/<name>   StaticRole (with its current password)
    wal/<id>             framework write-ahead entries: users being created
"""

from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import orjson

from strongroom.errors import Internal, NotFound
from strongroom.framework import FieldData, Request, Response
from strongroom.logical import Storage

CONFIG_PREFIX = "config/"
ROLE_PREFIX = "role/"
STATIC_PREFIX = "static-role/"


@dataclass(slots=True)
class ConnectionConfig:
    plugin_name: str
    connection_details: dict[str, Any] = field(default_factory=dict)
    allowed_roles: list[str] = field(default_factory=list)
    root_rotation_statements: list[str] = field(default_factory=list)
    password_policy: str = ""
    verify_connection: bool = True
    plugin_version: str = ""

    def allows(self, role: str) -> bool:
        """Vault's allowed_roles: names or globs with ``*``; none allows nothing."""
        return any(p == "*" or p == role or ("*" in p and fnmatch.fnmatchcase(role, p.replace("[", "[[]")))
                   for p in self.allowed_roles)

    def public(self) -> dict[str, Any]:
        details = {k: v for k, v in self.connection_details.items() if k != "password"}
        return {"plugin_name": self.plugin_name, "plugin_version": self.plugin_version,
                "connection_details": details, "allowed_roles": self.allowed_roles,
                "root_credentials_rotate_statements": self.root_rotation_statements,
                "password_policy": self.password_policy}


@dataclass(slots=True)
class Role:
    db_name: str
    creation_statements: list[str] = field(default_factory=list)
    revocation_statements: list[str] = field(default_factory=list)
    rollback_statements: list[str] = field(default_factory=list)
    renew_statements: list[str] = field(default_factory=list)
    default_ttl: int = 0
    max_ttl: int = 0

    def public(self) -> dict[str, Any]:
        return {**asdict(self), "credential_type": "password"}


@dataclass(slots=True)
class StaticRole:
    db_name: str
    username: str
    rotation_period: int
    rotation_statements: list[str] = field(default_factory=list)
    password: str = ""
    last_vault_rotation: float = 0.0

    def public(self) -> dict[str, Any]:
        return {"db_name": self.db_name, "username": self.username, "rotation_period": self.rotation_period,
                "rotation_statements": self.rotation_statements, "credential_type": "password",
                "last_vault_rotation": rfc3339(self.last_vault_rotation)}


def rfc3339(when: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(when, datetime.UTC).isoformat().replace("+00:00", "Z")


async def load(storage: Storage, key: str, cls: type[Any]) -> Any:
    raw = await storage.get(key)
    if raw is None:
        return None
    try:
        return cls(**orjson.loads(raw))
    except (ValueError, TypeError):
        raise Internal(f"stored entry {key} is malformed") from None


async def save(storage: Storage, key: str, value: Any) -> None:
    await storage.put(key, orjson.dumps(asdict(value)))


async def names(storage: Storage, prefix: str) -> list[str]:
    return sorted(k for k in await storage.list(prefix) if not k.endswith("/"))


class _Public(Protocol):
    def public(self) -> dict[str, Any]: ...


class _HasStorage(Protocol):
    @property
    def storage(self) -> Storage: ...


P = TypeVar("P", bound=_Public)


@dataclass(frozen=True, slots=True)
class Named(Generic[P]):
    """The records kept one per name under ``prefix``, with the existence check, LIST and READ
    their paths share (connections, roles and static roles answer them alike: nothing found is a 404)."""

    prefix: str
    cls: type[P]

    async def get(self, storage: Storage, name: str) -> P | None:
        record: P | None = await load(storage, self.prefix + name, self.cls)
        return record

    async def exists(self, b: _HasStorage, req: Request, d: FieldData) -> bool:
        return await b.storage.get(self.prefix + d.get("name")) is not None

    async def list(self, b: _HasStorage, req: Request, d: FieldData) -> Response:
        keys = await names(b.storage, self.prefix)
        if not keys:
            raise NotFound()
        return Response(data={"keys": keys})

    async def read(self, b: _HasStorage, req: Request, d: FieldData) -> Response:
        record = await self.get(b.storage, d.get("name"))
        if record is None:
            raise NotFound()
        return Response(data=record.public())


CONNECTIONS = Named(CONFIG_PREFIX, ConnectionConfig)
ROLES = Named(ROLE_PREFIX, Role)
STATIC_ROLES = Named(STATIC_PREFIX, StaticRole)

__all__ = ["CONFIG_PREFIX", "CONNECTIONS", "ROLES", "ROLE_PREFIX", "STATIC_PREFIX", "STATIC_ROLES",
           "ConnectionConfig", "Named", "Role", "StaticRole", "load", "names", "rfc3339", "save"]
