"""The identity store's records: entities, their aliases and groups, as stored (JSON in Vault's
shape) and as the store keeps them in memory (core/identity/index.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from strongroom.errors import InvalidRequest


def timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def str_map(v: Any, name: str = "metadata") -> dict[str, str]:
    if v is None:
        return {}
    if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
        raise InvalidRequest(f"failed to parse {name}: values must be strings")
    return {str(k): x for k, x in v.items()}


@dataclass(slots=True)
class Alias:
    id: str
    name: str
    canonical_id: str
    mount_accessor: str
    mount_type: str = ""
    mount_path: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    custom_metadata: dict[str, str] = field(default_factory=dict)
    creation_time: str = ""
    last_update_time: str = ""
    merged_from_canonical_ids: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "canonical_id": self.canonical_id,
                "mount_accessor": self.mount_accessor, "mount_type": self.mount_type,
                "mount_path": self.mount_path, "metadata": dict(self.metadata),
                "custom_metadata": dict(self.custom_metadata), "creation_time": self.creation_time,
                "last_update_time": self.last_update_time,
                "merged_from_canonical_ids": list(self.merged_from_canonical_ids) or None,
                "local": False, "namespace_id": "root"}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Alias:
        return cls(id=d["id"], name=d["name"], canonical_id=d["canonical_id"], mount_accessor=d["mount_accessor"],
                   mount_type=d.get("mount_type", ""), mount_path=d.get("mount_path", ""),
                   metadata=dict(d.get("metadata") or {}), custom_metadata=dict(d.get("custom_metadata") or {}),
                   creation_time=d.get("creation_time", ""), last_update_time=d.get("last_update_time", ""),
                   merged_from_canonical_ids=list(d.get("merged_from_canonical_ids") or []))


@dataclass(slots=True)
class EntityRecord:
    id: str
    name: str
    policies: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    disabled: bool = False
    aliases: list[Alias] = field(default_factory=list)
    merged_entity_ids: list[str] = field(default_factory=list)
    creation_time: str = ""
    last_update_time: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "policies": self.policies, "metadata": self.metadata,
                "disabled": self.disabled, "aliases": [a.to_json() for a in self.aliases],
                "merged_entity_ids": self.merged_entity_ids, "creation_time": self.creation_time,
                "last_update_time": self.last_update_time}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> EntityRecord:
        return cls(id=d["id"], name=d["name"], policies=list(d.get("policies") or []),
                   metadata=dict(d.get("metadata") or {}), disabled=bool(d.get("disabled")),
                   aliases=[Alias.from_json(a) for a in d.get("aliases") or []],
                   merged_entity_ids=list(d.get("merged_entity_ids") or []),
                   creation_time=d.get("creation_time", ""), last_update_time=d.get("last_update_time", ""))


@dataclass(slots=True)
class GroupRecord:
    id: str
    name: str
    type: str = "internal"
    policies: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    member_entity_ids: list[str] = field(default_factory=list)
    member_group_ids: list[str] = field(default_factory=list)
    alias: Alias | None = None
    creation_time: str = ""
    last_update_time: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "type": self.type, "policies": self.policies,
                "metadata": self.metadata, "member_entity_ids": self.member_entity_ids,
                "member_group_ids": self.member_group_ids,
                "alias": self.alias.to_json() if self.alias else None,
                "creation_time": self.creation_time, "last_update_time": self.last_update_time}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> GroupRecord:
        return cls(id=d["id"], name=d["name"], type=d.get("type", "internal"), policies=list(d.get("policies") or []),
                   metadata=dict(d.get("metadata") or {}), member_entity_ids=list(d.get("member_entity_ids") or []),
                   member_group_ids=list(d.get("member_group_ids") or []),
                   alias=Alias.from_json(d["alias"]) if d.get("alias") else None,
                   creation_time=d.get("creation_time", ""), last_update_time=d.get("last_update_time", ""))
