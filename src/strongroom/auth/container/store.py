"""The container auth method's storage.

    config          Config (engine_socket)
    role/<name>     Role (names are case-insensitive, stored lower-case)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any



from strongroom.framework import TokenParams, storage_of
from strongroom.framework.records import NamedRecords, RecordAt

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

_config = RecordAt(CONFIG_KEY, Config.from_json)
get_config, put_config = _config.get, _config.put

_roles = NamedRecords(ROLE_PREFIX, Role.from_json)
get_role, put_role = _roles.get, _roles.put
