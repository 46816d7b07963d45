"""``groups/<name>`` and ``users/<name>`` of an auth method that maps the groups and users of its
directory to policies (ldap, okta): one shape for both, as Vault's. A group holds policies; a user
holds policies and extra groups, which count as if the directory had reported them. Each method
decides how a name is stored (``canonical``: case-folded or not) and how a user's groups are read
back (Vault's ldap answers them comma-joined, its okta as a list)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any


from strongroom.errors import NotFound
from strongroom.framework.fields import Field, FieldData, FieldType
from strongroom.framework.path import Path, storage_of
from strongroom.framework.records import load_record, save_record
from strongroom.logical import Operation as Op
from strongroom.logical import Request, Response, Storage

GROUP_PREFIX = "group/"
USER_PREFIX = "user/"

#: How a method stores a name given in a request (e.g. lower-cased).
Canonical = Callable[[Request, str], Awaitable[str]]


@dataclass(slots=True)
class Mapping:
    policies: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"policies": self.policies, "groups": self.groups}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Mapping:
        return cls(policies=[str(p) for p in d.get("policies") or []], groups=[str(g) for g in d.get("groups") or []])


async def get_mapping(st: Storage, prefix: str, name: str) -> Mapping | None:
    """The mapping stored under ``prefix`` for ``name`` (already canonical), if any."""
    return await load_record(st, prefix + name, Mapping.from_json)


def _clean(items: list[str]) -> list[str]:
    return list(dict.fromkeys(i.strip() for i in items if i.strip()))


def mapping_paths(label: str, canonical: Canonical, *, user_groups_doc: str,
                  user_groups_joined: bool) -> list[Path[Any]]:
    """The four paths, for a method whose directory is called ``label`` ("LDAP", "Okta")."""

    async def list_keys(req: Request, prefix: str) -> Response:
        keys = await storage_of(req).list(prefix)
        if not keys:
            raise NotFound()
        return Response(data={"keys": keys})

    async def list_groups(b: Any, req: Request, d: FieldData) -> Response | None:
        return await list_keys(req, GROUP_PREFIX)

    async def list_users(b: Any, req: Request, d: FieldData) -> Response | None:
        return await list_keys(req, USER_PREFIX)

    async def read_group(b: Any, req: Request, d: FieldData) -> Response | None:
        group = await get_mapping(storage_of(req), GROUP_PREFIX, await canonical(req, d.get("name")))
        if group is None:
            raise NotFound()
        return Response(data={"policies": group.policies})

    async def read_user(b: Any, req: Request, d: FieldData) -> Response | None:
        user = await get_mapping(storage_of(req), USER_PREFIX, await canonical(req, d.get("name")))
        if user is None:
            raise NotFound()
        groups: str | list[str] = ",".join(user.groups) if user_groups_joined else user.groups
        return Response(data={"groups": groups, "policies": user.policies})

    async def write(req: Request, d: FieldData, prefix: str) -> None:
        name = await canonical(req, d.get("name"))
        entry = await get_mapping(storage_of(req), prefix, name) or Mapping()
        if d.has("policies"):
            entry.policies = _clean(d.get("policies"))
        if prefix == USER_PREFIX and d.has("groups"):
            entry.groups = _clean(d.get("groups"))
        await save_record(storage_of(req), prefix + name, entry)

    async def write_group(b: Any, req: Request, d: FieldData) -> Response | None:
        await write(req, d, GROUP_PREFIX)
        return None

    async def write_user(b: Any, req: Request, d: FieldData) -> Response | None:
        await write(req, d, USER_PREFIX)
        return None

    async def delete_group(b: Any, req: Request, d: FieldData) -> Response | None:
        await storage_of(req).delete(GROUP_PREFIX + await canonical(req, d.get("name")))
        return None

    async def delete_user(b: Any, req: Request, d: FieldData) -> Response | None:
        await storage_of(req).delete(USER_PREFIX + await canonical(req, d.get("name")))
        return None

    policies = Field(FieldType.COMMA_STRING_SLICE, "Comma-separated list of policies associated to the group.")
    return [
        Path("groups/?", operations={Op.LIST: list_groups}, synopsis="Manage groups allowed to authenticate."),
        Path("groups/(?P<name>.+)", fields={
            "name": Field(FieldType.STRING, f"Name of the {label} group."), "policies": policies},
            operations={Op.READ: read_group, Op.CREATE: write_group, Op.UPDATE: write_group,
                        Op.DELETE: delete_group},
            synopsis=f"Manage the policies of an {label} group."),
        Path("users/?", operations={Op.LIST: list_users}, synopsis="Manage users allowed to authenticate."),
        Path("users/(?P<name>.+)", fields={
            "name": Field(FieldType.STRING, f"Name of the {label} user."),
            "groups": Field(FieldType.COMMA_STRING_SLICE, user_groups_doc),
            "policies": Field(FieldType.COMMA_STRING_SLICE, "Comma-separated list of policies associated "
                              "with the user.")},
            operations={Op.READ: read_user, Op.CREATE: write_user, Op.UPDATE: write_user,
                        Op.DELETE: delete_user},
            synopsis=f"Manage the policies and extra groups of an {label} user."),
    ]
