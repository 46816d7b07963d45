"""groups/<name> and users/<name>: what an LDAP group or user is worth in policies.

Names are lower-cased unless the config sets ``case_sensitive_names`` (as Vault). A user entry may
also name extra groups, which count as if the directory had reported them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from strongroom.auth.ldap.config import get_config, storage
from strongroom.errors import NotFound
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response
from strongroom.logical import Storage

if TYPE_CHECKING:
    from strongroom.auth.ldap import LdapBackend

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
        return cls(policies=list(d.get("policies") or []), groups=list(d.get("groups") or []))


def _clean(items: list[str]) -> list[str]:
    return list(dict.fromkeys(i.strip() for i in items if i.strip()))


def paths() -> list[Path[LdapBackend]]:
    policies = Field(FieldType.COMMA_STRING_SLICE, "Comma-separated list of policies associated to the group.")
    return [
        Path("groups/?", operations={Op.LIST: list_groups}, synopsis="Manage groups allowed to authenticate."),
        Path("groups/(?P<name>.+)", fields={
            "name": Field(FieldType.STRING, "Name of the LDAP group."), "policies": policies},
            operations={Op.READ: read_group, Op.CREATE: write_group, Op.UPDATE: write_group,
                        Op.DELETE: delete_group},
            synopsis="Manage the policies of an LDAP group."),
        Path("users/?", operations={Op.LIST: list_users}, synopsis="Manage users allowed to authenticate."),
        Path("users/(?P<name>.+)", fields={
            "name": Field(FieldType.STRING, "Name of the LDAP user."),
            "groups": Field(FieldType.COMMA_STRING_SLICE, "Comma-separated list of additional groups "
                            "associated with the user."),
            "policies": Field(FieldType.COMMA_STRING_SLICE, "Comma-separated list of policies associated "
                              "with the user.")},
            operations={Op.READ: read_user, Op.CREATE: write_user, Op.UPDATE: write_user,
                        Op.DELETE: delete_user},
            synopsis="Manage the policies and extra groups of an LDAP user."),
    ]


async def canonical(req: Request, name: str) -> str:
    cfg = await get_config(req)
    return name if cfg is not None and cfg.case_sensitive_names else name.lower()


async def get_mapping(st: Storage, prefix: str, name: str) -> Mapping | None:
    raw = await st.get(prefix + name)
    return None if raw is None else Mapping.from_json(orjson.loads(raw))


async def _list(req: Request, prefix: str) -> Response:
    keys = await storage(req).list(prefix)
    if not keys:
        raise NotFound()
    return Response(data={"keys": keys})


async def list_groups(b: LdapBackend, req: Request, d: FieldData) -> Response | None:
    return await _list(req, GROUP_PREFIX)


async def list_users(b: LdapBackend, req: Request, d: FieldData) -> Response | None:
    return await _list(req, USER_PREFIX)


async def read_group(b: LdapBackend, req: Request, d: FieldData) -> Response | None:
    group = await get_mapping(storage(req), GROUP_PREFIX, await canonical(req, d.get("name")))
    if group is None:
        raise NotFound()
    return Response(data={"policies": group.policies})


async def write_group(b: LdapBackend, req: Request, d: FieldData) -> Response | None:
    name = await canonical(req, d.get("name"))
    group = await get_mapping(storage(req), GROUP_PREFIX, name) or Mapping()
    if d.has("policies"):
        group.policies = _clean(d.get("policies"))
    await storage(req).put(GROUP_PREFIX + name, orjson.dumps(group.to_json()))
    return None


async def delete_group(b: LdapBackend, req: Request, d: FieldData) -> Response | None:
    await storage(req).delete(GROUP_PREFIX + await canonical(req, d.get("name")))
    return None


async def read_user(b: LdapBackend, req: Request, d: FieldData) -> Response | None:
    user = await get_mapping(storage(req), USER_PREFIX, await canonical(req, d.get("name")))
    if user is None:
        raise NotFound()
    # Vault shows a user's groups as one comma-joined string and its policies as a list.
    return Response(data={"groups": ",".join(user.groups), "policies": user.policies})


async def write_user(b: LdapBackend, req: Request, d: FieldData) -> Response | None:
    name = await canonical(req, d.get("name"))
    user = await get_mapping(storage(req), USER_PREFIX, name) or Mapping()
    if d.has("policies"):
        user.policies = _clean(d.get("policies"))
    if d.has("groups"):
        user.groups = _clean(d.get("groups"))
    await storage(req).put(USER_PREFIX + name, orjson.dumps(user.to_json()))
    return None


async def delete_user(b: LdapBackend, req: Request, d: FieldData) -> Response | None:
    await storage(req).delete(USER_PREFIX + await canonical(req, d.get("name")))
    return None
