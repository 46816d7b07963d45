"""roles/NAME: the tags and permissions a user made for the role gets; LIST roles/."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import Field, FieldData, FieldType, Op, Path
from strongroom.framework.path import name_regex
from strongroom.framework.records import load_record, save_record
from strongroom.logical import Request, Response, Storage

if TYPE_CHECKING:
    from strongroom.engines.rabbitmq import RabbitMQBackend

ROLE_PREFIX = "role/"

_FIELDS = {
    "name": Field(FieldType.STRING, "Name of the role."),
    "tags": Field(FieldType.STRING, "Comma-separated list of tags for this role."),
    "vhosts": Field(FieldType.STRING, "A map of virtual hosts to permissions."),
    "vhost_topics": Field(FieldType.STRING, "A nested map of virtual hosts and exchanges to topic permissions."),
}


@dataclass(frozen=True, slots=True)
class Role:
    tags: str = ""
    # vhost -> {"configure", "write", "read"}
    vhosts: dict[str, dict[str, str]] = field(default_factory=dict)
    # vhost -> exchange -> {"write", "read"}
    vhost_topics: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"tags": self.tags, "vhosts": self.vhosts, "vhost_topics": self.vhost_topics}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Role:
        return cls(str(d.get("tags") or ""), dict(d.get("vhosts") or {}), dict(d.get("vhost_topics") or {}))


def paths() -> list[Path[RabbitMQBackend]]:
    return [
        Path("roles/?", operations={Op.LIST: list_roles}, synopsis="Manage the roles that can be created with this backend."),
        Path(f"roles/{name_regex('name')}", fields=_FIELDS,
             operations={Op.READ: read_role, Op.UPDATE: write_role, Op.DELETE: delete_role},
             synopsis="Manage the roles that can be created with this backend."),
    ]


async def load_role(storage: Storage, name: str) -> Role | None:
    return await load_record(storage, ROLE_PREFIX + name, Role.from_json)


def _permissions(raw: Any, keys: tuple[str, ...], what: str) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise InvalidRequest(f"failed to unmarshal {what}: expected a JSON object of permissions")
    out = {}
    for k in keys:
        v = raw.get(k, "")
        if not isinstance(v, str):
            raise InvalidRequest(f"failed to unmarshal {what}: {k!r} must be a string")
        out[k] = v
    return out


def _parse(text: str, what: str) -> dict[str, Any]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise InvalidRequest(f"failed to unmarshal {what}: {e}") from None
    if not isinstance(value, dict):
        raise InvalidRequest(f"failed to unmarshal {what}: expected a JSON object")
    return value


def parse_vhosts(text: str) -> dict[str, dict[str, str]]:
    return {str(vhost): _permissions(p, ("configure", "write", "read"), "vhosts")
            for vhost, p in _parse(text, "vhosts").items()}


def parse_vhost_topics(text: str) -> dict[str, dict[str, dict[str, str]]]:
    out: dict[str, dict[str, dict[str, str]]] = {}
    for vhost, exchanges in _parse(text, "vhost_topics").items():
        if not isinstance(exchanges, dict):
            raise InvalidRequest("failed to unmarshal vhost_topics: expected a JSON object of exchanges per vhost")
        out[str(vhost)] = {str(ex): _permissions(p, ("write", "read"), "vhost_topics") for ex, p in exchanges.items()}
    return out


async def write_role(b: RabbitMQBackend, req: Request, d: FieldData) -> None:
    tags, raw_vhosts, raw_topics = (str(d.get(k)) for k in ("tags", "vhosts", "vhost_topics"))
    if not tags and not raw_vhosts:
        raise InvalidRequest("both tags and vhosts not specified")
    role = Role(tags, parse_vhosts(raw_vhosts) if raw_vhosts else {},
                parse_vhost_topics(raw_topics) if raw_topics else {})
    assert req.storage is not None
    await save_record(req.storage, ROLE_PREFIX + str(d.get("name")), role)


async def read_role(b: RabbitMQBackend, req: Request, d: FieldData) -> Response:
    assert req.storage is not None
    role = await load_role(req.storage, str(d.get("name")))
    if role is None:
        raise NotFound()
    return Response(data=role.to_json())


async def delete_role(b: RabbitMQBackend, req: Request, d: FieldData) -> None:
    assert req.storage is not None
    await req.storage.delete(ROLE_PREFIX + str(d.get("name")))


async def list_roles(b: RabbitMQBackend, req: Request, d: FieldData) -> Response:
    assert req.storage is not None
    keys = await req.storage.list(ROLE_PREFIX)
    if not keys:
        raise NotFound()  # Vault answers an empty list with 404
    return Response(data={"keys": keys})
