"""groups/<name> and users/<name>: what an Okta group or user is worth in policies (a user may also
name extra local groups). Names are matched case-insensitively (stored lower-case)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from strongroom.auth.okta.config import storage
from strongroom.errors import NotFound
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response
from strongroom.logical import Storage

if TYPE_CHECKING:
    from strongroom.auth.okta import OktaBackend

GROUP_PREFIX = "group/"
USER_PREFIX = "user/"


@dataclass(slots=True)
class Mapping:
    policies: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"policies": self.policies, "groups": self.groups}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Mapping:
        return cls(policies=[str(p) for p in d.get("policies") or []], groups=[str(g) for g in d.get("groups") or []])


def _clean(items: list[str]) -> list[str]:
    return list(dict.fromkeys(i.strip() for i in items if i.strip()))


def paths() -> list[Path[OktaBackend]]:
    policies = Field(FieldType.COMMA_STRING_SLICE, "Comma-separated list of policies associated to the group.")
    return [
        Path("groups/?", operations={Op.LIST: list_groups}, synopsis="Manage users allowed to authenticate."),
        Path("groups/(?P<name>.+)", fields={"name": Field(FieldType.STRING, "Name of the Okta group."),
                                            "policies": policies},
             operations={Op.READ: read_group, Op.CREATE: write_group, Op.UPDATE: write_group,
                         Op.DELETE: delete_group}, synopsis="Manage the policies of an Okta group."),
        Path("users/?", operations={Op.LIST: list_users}, synopsis="Manage users allowed to authenticate."),
        Path("users/(?P<name>.+)", fields={
            "name": Field(FieldType.STRING, "Name of the user."),
            "groups": Field(FieldType.COMMA_STRING_SLICE, "List of groups associated with the user."),
            "policies": Field(FieldType.COMMA_STRING_SLICE, "List of policies associated with the user.")},
            operations={Op.READ: read_user, Op.CREATE: write_user, Op.UPDATE: write_user, Op.DELETE: delete_user},
            synopsis="Manage the policies and local groups of an Okta user."),
    ]


async def get_mapping(st: Storage, prefix: str, name: str) -> Mapping | None:
    raw = await st.get(prefix + name.lower())
    return None if raw is None else Mapping.from_json(orjson.loads(raw))


async def policies_for(st: Storage, username: str, okta_groups: list[str]) -> tuple[list[str], list[str]]:
    """(mapped policies, all groups): the policies of the user's Okta and local groups, then the user's."""
    user = await get_mapping(st, USER_PREFIX, username)
    groups = [*okta_groups, *(user.groups if user else [])]
    out: list[str] = []
    for g in dict.fromkeys(g.lower() for g in groups):
        group = await get_mapping(st, GROUP_PREFIX, g)
        if group is not None:
            out += group.policies
    if user is not None:
        out += user.policies
    return list(dict.fromkeys(out)), groups


async def _list(req: Request, prefix: str) -> Response:
    keys = await storage(req).list(prefix)
    if not keys:
        raise NotFound()
    return Response(data={"keys": keys})


async def list_groups(b: OktaBackend, req: Request, d: FieldData) -> Response | None:
    return await _list(req, GROUP_PREFIX)


async def list_users(b: OktaBackend, req: Request, d: FieldData) -> Response | None:
    return await _list(req, USER_PREFIX)


async def read_group(b: OktaBackend, req: Request, d: FieldData) -> Response | None:
    group = await get_mapping(storage(req), GROUP_PREFIX, d.get("name"))
    if group is None:
        raise NotFound()
    return Response(data={"policies": group.policies})


async def write_group(b: OktaBackend, req: Request, d: FieldData) -> Response | None:
    name = d.get("name").lower()
    group = await get_mapping(storage(req), GROUP_PREFIX, name) or Mapping()
    if d.has("policies"):
        group.policies = _clean(d.get("policies"))
    await storage(req).put(GROUP_PREFIX + name, orjson.dumps(group.to_json()))
    return None


async def delete_group(b: OktaBackend, req: Request, d: FieldData) -> Response | None:
    await storage(req).delete(GROUP_PREFIX + d.get("name").lower())
    return None


async def read_user(b: OktaBackend, req: Request, d: FieldData) -> Response | None:
    user = await get_mapping(storage(req), USER_PREFIX, d.get("name"))
    if user is None:
        raise NotFound()
    return Response(data={"groups": user.groups, "policies": user.policies})


async def write_user(b: OktaBackend, req: Request, d: FieldData) -> Response | None:
    name = d.get("name").lower()
    user = await get_mapping(storage(req), USER_PREFIX, name) or Mapping()
    if d.has("policies"):
        user.policies = _clean(d.get("policies"))
    if d.has("groups"):
        user.groups = _clean(d.get("groups"))
    await storage(req).put(USER_PREFIX + name, orjson.dumps(user.to_json()))
    return None


async def delete_user(b: OktaBackend, req: Request, d: FieldData) -> Response | None:
    await storage(req).delete(USER_PREFIX + d.get("name").lower())
    return None
