"""AppRole's storage: roles, the role-id index, secret-id entries and their accessors.

Storage layout (in the mount's barrier-encrypted view; keys reach physical storage in the clear)::

    salt                                  32 random bytes (hex): this mount's HMAC key, made once
    role/<name>                           Role
    role_id/<hmac(role_id)>               {"name": <role name>}
    secret_id/<hmac(role)>/<hmac(sid)>    SecretIdEntry (the secret id itself is never stored)
    accessor/<hmac(accessor)>             {"role": hmac(role), "secret_id": hmac(sid)}

SECURITY: a secret id is looked up by its keyed HMAC only; neither a key nor a value holds the
secret id, so a copy of the storage does not let anyone log in. The per-mount salt lives in the
barrier like everything else. Login compares nothing by hand: equality of secrets is equality of
their HMACs as storage keys.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from strongroom.durations import rfc3339
from strongroom.framework import Salt, TokenParams
from strongroom.framework.records import load_record, save_record
from strongroom.logical import Storage

SALT_KEY = "salt"
ROLE_PREFIX = "role/"
ROLE_ID_PREFIX = "role_id/"
SECRET_ID_PREFIX = "secret_id/"
ACCESSOR_PREFIX = "accessor/"
# Go's zero time, which Vault shows as the expiration of a secret id that never expires.
ZERO_TIME = "0001-01-01T00:00:00Z"


@dataclass(slots=True)
class Role:
    name: str
    role_id: str = ""
    bind_secret_id: bool = True
    secret_id_bound_cidrs: list[str] = field(default_factory=list)
    secret_id_num_uses: int = 0
    secret_id_ttl: int = 0
    local_secret_ids: bool = False
    token: TokenParams = field(default_factory=TokenParams)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "role_id": self.role_id, "bind_secret_id": self.bind_secret_id,
                "secret_id_bound_cidrs": self.secret_id_bound_cidrs, "secret_id_num_uses": self.secret_id_num_uses,
                "secret_id_ttl": self.secret_id_ttl, "local_secret_ids": self.local_secret_ids,
                "token": self.token.to_json()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Role:
        return cls(name=str(d["name"]), role_id=str(d.get("role_id", "")),
                   bind_secret_id=bool(d.get("bind_secret_id", True)),
                   secret_id_bound_cidrs=[str(c) for c in d.get("secret_id_bound_cidrs") or []],
                   secret_id_num_uses=int(d.get("secret_id_num_uses", 0)),
                   secret_id_ttl=int(d.get("secret_id_ttl", 0)),
                   local_secret_ids=bool(d.get("local_secret_ids", False)),
                   token=TokenParams.from_json(d.get("token") or {}))

    def to_response(self) -> dict[str, Any]:
        data = self.token.to_response()
        data.update(bind_secret_id=self.bind_secret_id, local_secret_ids=self.local_secret_ids,
                    secret_id_bound_cidrs=list(self.secret_id_bound_cidrs) or None,
                    secret_id_num_uses=self.secret_id_num_uses, secret_id_ttl=self.secret_id_ttl)
        return dict(sorted(data.items()))


@dataclass(slots=True)
class SecretIdEntry:
    accessor: str
    num_uses: int = 0  # uses left; 0 = unlimited
    ttl: int = 0
    creation_time: float = 0.0
    expiration_time: float = 0.0  # 0 = never
    last_updated_time: float = 0.0
    metadata: dict[str, str] = field(default_factory=dict)
    cidr_list: list[str] = field(default_factory=list)
    token_bound_cidrs: list[str] = field(default_factory=list)

    def expired(self, now: float) -> bool:
        return self.expiration_time != 0.0 and now >= self.expiration_time

    def to_json(self) -> dict[str, Any]:
        return {"accessor": self.accessor, "num_uses": self.num_uses, "ttl": self.ttl,
                "creation_time": self.creation_time, "expiration_time": self.expiration_time,
                "last_updated_time": self.last_updated_time, "metadata": self.metadata,
                "cidr_list": self.cidr_list, "token_bound_cidrs": self.token_bound_cidrs}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SecretIdEntry:
        return cls(accessor=str(d["accessor"]), num_uses=int(d.get("num_uses", 0)), ttl=int(d.get("ttl", 0)),
                   creation_time=float(d.get("creation_time", 0)),
                   expiration_time=float(d.get("expiration_time", 0)),
                   last_updated_time=float(d.get("last_updated_time", 0)),
                   metadata={str(k): str(v) for k, v in (d.get("metadata") or {}).items()},
                   cidr_list=[str(c) for c in d.get("cidr_list") or []],
                   token_bound_cidrs=[str(c) for c in d.get("token_bound_cidrs") or []])

    def to_response(self) -> dict[str, Any]:
        return {
            "cidr_list": list(self.cidr_list),
            "creation_time": rfc3339(self.creation_time),
            "expiration_time": rfc3339(self.expiration_time) if self.expiration_time else ZERO_TIME,
            "last_updated_time": rfc3339(self.last_updated_time),
            "metadata": dict(self.metadata),
            "secret_id_accessor": self.accessor,
            "secret_id_num_uses": self.num_uses,
            "secret_id_ttl": self.ttl,
            "token_bound_cidrs": list(self.token_bound_cidrs),
        }


class AppRoleStore:
    """Typed access to one mount's AppRole storage. Built per request from its storage view."""

    def __init__(self, storage: Storage, salt: Salt) -> None:
        self.storage = storage
        self._salt = salt

    def hmac(self, value: str) -> str:
        return self._salt.hmac(value)

    # -- roles ----------------------------------------------------------------------------------
    async def role(self, name: str) -> Role | None:
        return await load_record(self.storage, ROLE_PREFIX + name.lower(), Role.from_json)

    async def put_role(self, role: Role) -> None:
        await save_record(self.storage, ROLE_PREFIX + role.name, role)

    async def role_names(self) -> list[str]:
        return await self.storage.list(ROLE_PREFIX)

    async def role_for_id(self, role_id: str) -> Role | None:
        raw = await self.storage.get(ROLE_ID_PREFIX + self.hmac(role_id))
        if raw is None:
            return None
        role = await self.role(str(orjson.loads(raw)["name"]))
        # The index is only a hint: the role itself must still carry this role id.
        if role is None or not hmac.compare_digest(role.role_id.encode(), role_id.encode()):
            return None
        return role

    async def set_role_id(self, role: Role, role_id: str) -> None:
        await self.storage.put(ROLE_ID_PREFIX + self.hmac(role_id), orjson.dumps({"name": role.name}))

    async def delete_role_id(self, role_id: str) -> None:
        await self.storage.delete(ROLE_ID_PREFIX + self.hmac(role_id))

    # -- secret ids -----------------------------------------------------------------------------
    def secret_key(self, role_name: str, secret_id: str) -> str:
        return f"{SECRET_ID_PREFIX}{self.hmac(role_name)}/{self.hmac(secret_id)}"

    async def secret(self, key: str) -> SecretIdEntry | None:
        return await load_record(self.storage, key, SecretIdEntry.from_json)

    async def put_secret(self, key: str, entry: SecretIdEntry) -> None:
        await save_record(self.storage, key, entry)

    async def delete_secret(self, key: str, entry: SecretIdEntry) -> None:
        await self.storage.delete(ACCESSOR_PREFIX + self.hmac(entry.accessor))
        await self.storage.delete(key)

    async def put_accessor(self, accessor: str, key: str) -> None:
        await self.storage.put(ACCESSOR_PREFIX + self.hmac(accessor), orjson.dumps({"key": key}))

    async def key_for_accessor(self, role_name: str, accessor: str) -> str | None:
        raw = await self.storage.get(ACCESSOR_PREFIX + self.hmac(accessor))
        if raw is None:
            return None
        key = str(orjson.loads(raw)["key"])
        # An accessor of another role's secret id is not found through this role.
        return key if key.startswith(f"{SECRET_ID_PREFIX}{self.hmac(role_name)}/") else None

    async def secret_keys(self, role_name: str) -> list[str]:
        prefix = f"{SECRET_ID_PREFIX}{self.hmac(role_name)}/"
        return [prefix + k for k in await self.storage.list(prefix) if not k.endswith("/")]


def now() -> float:
    return time.time()
