"""A test engine that creates "users" in an outside world (a dict standing in for a database) the
way a real database engine would: write-ahead entry, external create, response naming the entry.

``creds/<name>`` issues a user with a lease; ``plain/<name>`` creates one without a lease (the
response still names its entry: core deletes it once the request is done). ``World.failing``
makes rollbacks raise; ``World.busy`` makes them answer False (not done yet).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from strongroom.framework import Backend, BackendConfig, Field, FieldData, FieldType, Op, Path, SecretType
from strongroom.logical import Request, Response


@dataclass
class World:
    users: set[str] = field(default_factory=set)
    rolled_back: list[str] = field(default_factory=list)
    failing: int = 0  # rollbacks still to fail by raising
    busy: int = 0  # rollbacks still to answer False
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    def factory(self, config: BackendConfig) -> ExternalBackend:
        return ExternalBackend(config, self)


class ExternalBackend(Backend):
    help = "Test engine: users created outside, with a write-ahead log."

    def __init__(self, config: BackendConfig, world: World) -> None:
        super().__init__(config, paths(), [USER])
        self.world = world

    async def rollback(self, kind: str, data: Any) -> bool | None:
        assert kind == "user"
        if self.world.failing:
            self.world.failing -= 1
            raise ConnectionError("the database is unreachable")
        if self.world.busy:
            self.world.busy -= 1
            return False
        self.world.users.discard(data["name"])
        self.world.rolled_back.append(data["name"])
        return True

    async def create_user(self, prefix: str) -> tuple[str, str]:
        name = f"{prefix}-{next(self.world._counter)}"
        wal_id = await self.put_wal("user", {"name": name})
        self.world.users.add(name)
        return name, wal_id


def paths() -> list[Path[ExternalBackend]]:
    name = {"name": Field(FieldType.STRING)}
    return [
        Path(r"creds/(?P<name>\w+)", fields=name, operations={Op.READ: issue}),
        Path(r"plain/(?P<name>\w+)", fields=name, operations={Op.UPDATE: plain}),
    ]


async def issue(b: ExternalBackend, req: Request, d: FieldData) -> Response:
    name, wal_id = await b.create_user(d.get("name"))
    return USER.response({"username": name}, {"username": name}, wal_ids=[wal_id], system=b.system)


async def plain(b: ExternalBackend, req: Request, d: FieldData) -> Response:
    name, wal_id = await b.create_user(d.get("name"))
    return Response(data={"username": name}, wal_ids=[wal_id])


async def revoke_user(b: ExternalBackend, req: Request, d: FieldData) -> None:
    b.world.users.discard(str(d.raw["username"]))


USER: SecretType[ExternalBackend] = SecretType("user", revoke=revoke_user)
