"""The container auth method's storage.

    config          Config (engine_socket)
    role/<name>     Role (names are case-insensitive, stored lower-case)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson


from strongroom.framework import TokenParams, storage_of
from strongroom.logical import Storage

CONFIG_KEY = "config"
ROLE_PREFIX = "role/"


@dataclass(slots=True)
class Config:
    engine_socket: str

    def to_json(self) -> dict[str, Any]:
        return {"engine_socket": self.engine_socket}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Config:
        return cls(engine_socket=str(d["engine_socket"]))


@dataclass(slots=True)
class Role:
    name: str
    bound_labels: dict[str, str] = field(default_factory=dict)
    check_remote_address: bool = True
    token: TokenParams = field(default_factory=TokenParams)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "bound_labels": self.bound_labels,
                "check_remote_address": self.check_remote_address, "token": self.token.to_json()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Role:
        return cls(name=str(d["name"]), bound_labels={str(k): str(v) for k, v in (d.get("bound_labels") or {}).items()},
                   check_remote_address=bool(d.get("check_remote_address", True)),
                   token=TokenParams.from_json(d.get("token") or {}))

    def to_response(self) -> dict[str, Any]:
        data = self.token.to_response()
        data.update(bound_labels=dict(self.bound_labels), check_remote_address=self.check_remote_address)
        return dict(sorted(data.items()))


storage = storage_of  # the mount's storage view


async def get_config(s: Storage) -> Config | None:
    raw = await s.get(CONFIG_KEY)
    return None if raw is None else Config.from_json(orjson.loads(raw))


async def put_config(s: Storage, config: Config) -> None:
    await s.put(CONFIG_KEY, orjson.dumps(config.to_json()))


async def get_role(s: Storage, name: str) -> Role | None:
    raw = await s.get(ROLE_PREFIX + name.lower())
    return None if raw is None else Role.from_json(orjson.loads(raw))


async def put_role(s: Storage, role: Role) -> None:
    await s.put(ROLE_PREFIX + role.name.lower(), orjson.dumps(role.to_json()))
