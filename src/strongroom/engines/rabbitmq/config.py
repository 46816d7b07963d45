"""config/connection and config/lease."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from strongroom.engines.rabbitmq.client import BrokerError, ManagementClient
from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import (
    Field, FieldData, FieldType, Op, Path, UsernameTemplateError, compile_username_template,
)
from strongroom.logical import Request, Response, Storage

if TYPE_CHECKING:
    from strongroom.engines.rabbitmq import RabbitMQBackend

CONNECTION_KEY = "config/connection"
LEASE_KEY = "config/lease"

# Vault's default username template for RabbitMQ: the token's display name and a UUID.
DEFAULT_USERNAME_TEMPLATE = '{{ printf "%s-%s" (.DisplayName) (uuid) }}'

_CONNECTION_FIELDS = {
    "connection_uri": Field(FieldType.STRING, "RabbitMQ Management URI"),
    "username": Field(FieldType.STRING, "Username of a RabbitMQ management administrator"),
    "password": Field(FieldType.STRING, "Password of the provided RabbitMQ management user", sensitive=True),
    "verify_connection": Field(FieldType.BOOL, "Verify the connection by listing users", default=True),
    "password_policy": Field(FieldType.STRING, "Name of the password policy for generated passwords."),
    "username_template": Field(FieldType.STRING, "Template describing how dynamic usernames are generated."),
}
_LEASE_FIELDS = {
    "ttl": Field(FieldType.DURATION, "Duration before which the issued credentials needs renewal", default=0),
    "max_ttl": Field(FieldType.DURATION, "Duration after which the issued credentials may not be renewed", default=0),
}


@dataclass(frozen=True, slots=True)
class Connection:
    uri: str
    username: str
    password: str
    password_policy: str = ""
    username_template: str = ""

    def to_json(self) -> bytes:
        return orjson.dumps({"connection_uri": self.uri, "username": self.username, "password": self.password,
                             "password_policy": self.password_policy, "username_template": self.username_template})

    @classmethod
    def from_json(cls, raw: bytes) -> Connection:
        d = orjson.loads(raw)
        return cls(str(d["connection_uri"]), str(d["username"]), str(d["password"]),
                   str(d.get("password_policy") or ""), str(d.get("username_template") or ""))


@dataclass(frozen=True, slots=True)
class LeaseConfig:
    ttl: int = 0
    max_ttl: int = 0


def paths() -> list[Path[RabbitMQBackend]]:
    return [
        Path("config/connection", fields=_CONNECTION_FIELDS, operations={Op.UPDATE: write_connection},
             synopsis="Configure the connection URI, username, and password to talk to the RabbitMQ management API."),
        Path("config/lease", fields=_LEASE_FIELDS, operations={Op.READ: read_lease, Op.UPDATE: write_lease},
             synopsis="Configure the lease parameters for generated credentials"),
    ]


async def load_connection(storage: Storage) -> Connection | None:
    raw = await storage.get(CONNECTION_KEY)
    return None if raw is None else Connection.from_json(raw)


async def load_lease(storage: Storage) -> LeaseConfig:
    raw = await storage.get(LEASE_KEY)
    if raw is None:
        return LeaseConfig()
    d = orjson.loads(raw)
    return LeaseConfig(int(d.get("ttl", 0)), int(d.get("max_ttl", 0)))


async def write_connection(b: RabbitMQBackend, req: Request, d: FieldData) -> None:
    uri, username, password = (str(d.get(k)) for k in ("connection_uri", "username", "password"))
    for name, value in (("connection_uri", uri), ("username", username), ("password", password)):
        if not value:
            raise InvalidRequest(f"missing {name}")
    if not uri.startswith(("http://", "https://")):
        raise InvalidRequest("connection_uri must be an http:// or https:// URL of the management API")
    template = str(d.get("username_template"))
    if template:
        try:
            compiled = compile_username_template(template)
        except UsernameTemplateError as e:
            raise InvalidRequest(f"unable to initialize username template: {e}") from None
        try:
            compiled.render({"DisplayName": "", "RoleName": ""})
        except UsernameTemplateError as e:
            raise InvalidRequest(f"invalid username template: {e}") from None
    if d.get("verify_connection"):
        client = ManagementClient(uri, username, password)
        try:
            await client.list_users()
        except BrokerError as e:
            raise InvalidRequest(f"failed to validate the connection: {e}") from None
        finally:
            await client.aclose()
    conn = Connection(uri, username, password, str(d.get("password_policy")), template)
    assert req.storage is not None
    await req.storage.put(CONNECTION_KEY, conn.to_json())
    await b.reset_client()


async def read_lease(b: RabbitMQBackend, req: Request, d: FieldData) -> Response:
    assert req.storage is not None
    if await req.storage.get(LEASE_KEY) is None:
        raise NotFound()
    lease = await load_lease(req.storage)
    return Response(data={"ttl": lease.ttl, "max_ttl": lease.max_ttl})


async def write_lease(b: RabbitMQBackend, req: Request, d: FieldData) -> None:
    assert req.storage is not None
    await req.storage.put(LEASE_KEY, orjson.dumps({"ttl": int(d.get("ttl")), "max_ttl": int(d.get("max_ttl"))}))
