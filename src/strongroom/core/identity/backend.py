"""The identity secrets engine, mounted by core at identity/ (cannot be disabled or moved).

Paths (Vault's)::

    entity                       create (or update, by id or by an existing name)
    entity/id/<id>  entity/name/<name>     read, update, delete; LIST entity/id, entity/name
    entity/batch-delete          entity_ids
    entity/merge                 from_entity_ids -> to_entity_id (force, conflicting_alias_ids_to_keep)
    entity-alias                 create (name, canonical_id, mount_accessor) or update (id)
    entity-alias/id/<id>         read, update, delete; LIST entity-alias/id
    group                        create (or update by id or existing name): internal or external
    group/id/<id>  group/name/<name>       read, update, delete; LIST group/id, group/name
    group-alias                  create (name, mount_accessor, canonical_id) or update (id)
    group-alias/id/<id>          read, update, delete; LIST group-alias/id
    lookup/entity  lookup/group  find by name, id, alias_id or alias_name + alias_mount_accessor

All state is the :class:`~strongroom.core.identity.store.IdentityStore` core owns (the same one
logins and request-time policy use); this backend only translates requests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from strongroom.core.identity import oidc
from strongroom.core.identity.mfa import paths as mfa_paths
from strongroom.core.identity.records import Alias, EntityRecord, GroupRecord
from strongroom.core.identity.store import IdentityStore
from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import (
    Backend,
    BackendConfig,
    Field,
    FieldData,
    FieldType,
    Handler,
    Op,
    Path,
    Request,
    Response,
)

if TYPE_CHECKING:
    from strongroom.core.identity.mfa import LoginMFA

_ID = r"(?P<id>[^/]+)"
_NAME = r"(?P<name>[^/]+)"

_ENTITY_FIELDS: dict[str, Field] = {
    "id": Field(FieldType.STRING, "ID of the entity. If set, updates the corresponding existing entity."),
    "name": Field(FieldType.STRING, "Name of the entity."),
    "metadata": Field(FieldType.KV_PAIRS, "Metadata to be associated with the entity."),
    "policies": Field(FieldType.COMMA_STRING_SLICE, "Policies to be tied to the entity."),
    "disabled": Field(FieldType.BOOL, "If set true, tokens tied to this identity will not be able to be used."),
}
_ALIAS_FIELDS: dict[str, Field] = {
    "id": Field(FieldType.STRING, "ID of the alias."),
    "name": Field(FieldType.STRING, "Name of the alias."),
    "canonical_id": Field(FieldType.STRING, "ID of the entity (group) to which this alias belongs."),
    "entity_id": Field(FieldType.STRING, "Old name of canonical_id."),
    "mount_accessor": Field(FieldType.STRING, "Mount accessor to which this alias belongs."),
    "custom_metadata": Field(FieldType.KV_PAIRS, "User-provided key-value pairs."),
}
_GROUP_FIELDS: dict[str, Field] = {
    "id": Field(FieldType.STRING, "ID of the group. If set, updates the corresponding existing group."),
    "name": Field(FieldType.STRING, "Name of the group."),
    "type": Field(FieldType.STRING, "Type of the group, 'internal' or 'external'. Defaults to 'internal'."),
    "metadata": Field(FieldType.KV_PAIRS, "Metadata to be associated with the group."),
    "policies": Field(FieldType.COMMA_STRING_SLICE, "Policies to be tied to the group."),
    "member_group_ids": Field(FieldType.COMMA_STRING_SLICE, "Group IDs to be assigned as group members."),
    "member_entity_ids": Field(FieldType.COMMA_STRING_SLICE, "Entity IDs to be assigned as group members."),
}
_LOOKUP_FIELDS: dict[str, Field] = {
    "type": Field(FieldType.STRING, "Type of lookup."),
    "id": Field(FieldType.STRING, "ID of the entity (group)."),
    "name": Field(FieldType.STRING, "Name of the entity (group)."),
    "alias_id": Field(FieldType.STRING, "ID of the alias."),
    "alias_name": Field(FieldType.STRING, "Name of the alias."),
    "alias_mount_accessor": Field(FieldType.STRING, "Accessor of the mount to which the alias belongs."),
}


def _opt(d: FieldData, name: str) -> Any:
    value, ok = d.get_ok(name)
    return value if ok and name in d.schema and d.has(name) else None


def _or_null(v: Any) -> Any:
    return v if v else None


# -- shapes ---------------------------------------------------------------------------------------
def alias_json(a: Alias, *, group: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": a.id, "name": a.name, "canonical_id": a.canonical_id, "mount_accessor": a.mount_accessor,
        "mount_type": a.mount_type, "mount_path": a.mount_path, "metadata": _or_null(a.metadata),
        "creation_time": a.creation_time, "last_update_time": a.last_update_time,
        "merged_from_canonical_ids": _or_null(a.merged_from_canonical_ids),
    }
    if not group:
        out["custom_metadata"] = dict(a.custom_metadata)
        out["local"] = False
    return out


def entity_json(s: IdentityStore, e: EntityRecord) -> dict[str, Any]:
    direct = s.direct_groups(e.id)
    inherited = s.inherited_groups(e.id)
    return {
        "id": e.id, "name": e.name, "aliases": [alias_json(a) for a in e.aliases],
        "creation_time": e.creation_time, "last_update_time": e.last_update_time,
        "direct_group_ids": direct, "inherited_group_ids": inherited,
        "group_ids": direct + [g for g in inherited if g not in direct], "disabled": e.disabled,
        "merged_entity_ids": _or_null(e.merged_entity_ids), "metadata": _or_null(e.metadata),
        "namespace_id": "root", "policies": _or_null(e.policies),
    }


def group_json(s: IdentityStore, g: GroupRecord) -> dict[str, Any]:
    return {
        "id": g.id, "name": g.name, "type": g.type, "alias": alias_json(g.alias, group=True) if g.alias else {},
        "creation_time": g.creation_time, "last_update_time": g.last_update_time,
        "member_entity_ids": _or_null(g.member_entity_ids), "member_group_ids": _or_null(g.member_group_ids),
        "parent_group_ids": _or_null(s.parent_groups(g.id)), "metadata": _or_null(g.metadata),
        "modify_index": 0, "namespace_id": "root", "policies": _or_null(g.policies),
    }


class IdentityBackend(Backend):
    backend_type = "logical"
    generates_leases = False
    help = ("The identity store: entities (one per person or service, with an alias per auth mount) and "
            "groups whose policies apply to every token of their members.")

    def __init__(self, store: IdentityStore, config: BackendConfig, api_addr: str = "",
                 mfa: LoginMFA | None = None) -> None:
        super().__init__(config, [*paths(), *oidc.paths(), *mfa_paths.paths()])
        self.store = store
        self.mfa = mfa  # login MFA (core/identity/mfa): the mfa/* paths
        self.api_addr = api_addr  # the default OIDC issuer's base (identity/oidc/config overrides)


# -- entities -------------------------------------------------------------------------------------
def _entity_or_404(b: IdentityBackend, d: FieldData, by: str) -> EntityRecord:
    if by == "name":
        e = b.store.entity_by_name(d.get("name"))
    else:
        e = b.store.entities.get(d.get("id"))
    if e is None:
        raise NotFound()
    return e


async def _write_entity(b: IdentityBackend, d: FieldData, by: str) -> Response | None:
    entity_id = d.get("id") or ""
    name = _opt(d, "name")
    if by == "name":
        existing = b.store.entity_by_name(d.get("name"))
        entity_id = existing.id if existing else ""
    elif by == "id" and entity_id not in b.store.entities:
        raise NotFound()
    e, created = await b.store.write_entity(entity_id=entity_id, name=name, policies=_opt(d, "policies"),
                                            metadata=_opt(d, "metadata"), disabled=_opt(d, "disabled"),
                                            by_name=True)
    if not created:
        return None
    return Response(data={"id": e.id, "name": e.name, "aliases": None})


async def _delete_entity(b: IdentityBackend, d: FieldData, by: str) -> Response | None:
    if by == "name":
        e = b.store.entity_by_name(d.get("name"))
    else:
        e = b.store.entities.get(d.get("id"))
    if e is not None:
        await b.store.delete_entity(e.id)
    return None


async def list_entity_ids(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    ents = sorted(b.store.entities.values(), key=lambda e: e.id)
    if not ents:
        raise NotFound()
    info: dict[str, Any] = {}
    for e in ents:
        row: dict[str, Any] = {"name": e.name}
        if e.aliases:
            row["aliases"] = [{"id": a.id, "mount_accessor": a.mount_accessor, "mount_path": a.mount_path,
                               "mount_type": a.mount_type, "name": a.name} for a in e.aliases]
        info[e.id] = row
    return Response(data={"keys": [e.id for e in ents], "key_info": info})


async def list_entity_names(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    names = sorted(e.name for e in b.store.entities.values())
    if not names:
        raise NotFound()
    return Response(data={"keys": names})


async def batch_delete(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    ids = d.get("entity_ids") or []
    if not ids:
        raise InvalidRequest("missing entity ids to delete")
    await b.store.batch_delete(list(ids))
    return None


async def merge(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    to_id = d.get("to_entity_id") or ""
    if not to_id:
        raise InvalidRequest("missing entity id to merge to")
    await b.store.merge(to_id, list(d.get("from_entity_ids") or []), force=bool(d.get("force")),
                        keep_alias_ids=list(d.get("conflicting_alias_ids_to_keep") or []))
    return None


# -- entity aliases -------------------------------------------------------------------------------
async def _write_entity_alias(b: IdentityBackend, d: FieldData, by_id: bool) -> Response | None:
    alias_id = d.get("id") or ""
    if by_id and b.store.alias(alias_id) is None:
        raise NotFound()
    creating = not alias_id
    a = await b.store.write_entity_alias(alias_id=alias_id, name=_opt(d, "name"),
                                         canonical_id=d.get("canonical_id") or d.get("entity_id") or None,
                                         mount_accessor=_opt(d, "mount_accessor"),
                                         custom_metadata=_opt(d, "custom_metadata"))
    return Response(data={"id": a.id, "canonical_id": a.canonical_id}) if creating else None


async def read_entity_alias(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    a = b.store.alias(d.get("id"))
    if a is None:
        raise NotFound()
    return Response(data={**alias_json(a), "namespace_id": "root"})


async def delete_entity_alias(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    await b.store.delete_entity_alias(d.get("id"))
    return None


def _alias_info(a: Alias, *, group: bool) -> dict[str, Any]:
    return {"canonical_id": a.canonical_id, "custom_metadata": None if group else dict(a.custom_metadata),
            "local": False, "metadata": _or_null(a.metadata), "mount_accessor": a.mount_accessor,
            "mount_path": a.mount_path, "mount_type": a.mount_type, "name": a.name}


async def list_entity_aliases(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    aliases = sorted((a for e in b.store.entities.values() for a in e.aliases), key=lambda a: a.id)
    if not aliases:
        raise NotFound()
    return Response(data={"keys": [a.id for a in aliases],
                          "key_info": {a.id: _alias_info(a, group=False) for a in aliases}})


# -- groups ---------------------------------------------------------------------------------------
def _group_or_404(b: IdentityBackend, d: FieldData, by: str) -> GroupRecord:
    g = b.store.group_by_name(d.get("name")) if by == "name" else b.store.groups.get(d.get("id"))
    if g is None:
        raise NotFound()
    return g


async def _write_group(b: IdentityBackend, d: FieldData, by: str) -> Response | None:
    group_id = d.get("id") or ""
    name = _opt(d, "name")
    if by == "name":
        existing = b.store.group_by_name(d.get("name"))
        group_id = existing.id if existing else ""
    elif by == "id" and group_id not in b.store.groups:
        raise NotFound()
    g, created = await b.store.write_group(
        group_id=group_id, name=name, type_=(d.get("type") or "").lower() or None, policies=_opt(d, "policies"),
        metadata=_opt(d, "metadata"), member_entity_ids=_opt(d, "member_entity_ids"),
        member_group_ids=_opt(d, "member_group_ids"), by_name=True)
    return Response(data={"id": g.id, "name": g.name}) if created else None


async def _delete_group(b: IdentityBackend, d: FieldData, by: str) -> Response | None:
    g = b.store.group_by_name(d.get("name")) if by == "name" else b.store.groups.get(d.get("id"))
    if g is not None:
        await b.store.delete_group(g.id)
    return None


async def list_group_ids(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    groups = sorted(b.store.groups.values(), key=lambda g: g.id)
    if not groups:
        raise NotFound()
    info: dict[str, Any] = {}
    for g in groups:
        row: dict[str, Any] = {"name": g.name, "num_member_entities": len(g.member_entity_ids),
                               "num_parent_groups": len(b.store.parent_groups(g.id))}
        if g.alias is not None:
            row["alias"] = {"mount_accessor": g.alias.mount_accessor, "mount_path": g.alias.mount_path,
                            "mount_type": g.alias.mount_type, "name": g.alias.name}
        info[g.id] = row
    return Response(data={"keys": [g.id for g in groups], "key_info": info})


async def list_group_names(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    names = sorted(g.name for g in b.store.groups.values())
    if not names:
        raise NotFound()
    return Response(data={"keys": names})


async def _write_group_alias(b: IdentityBackend, d: FieldData, by_id: bool) -> Response | None:
    alias_id = d.get("id") or ""
    if by_id and b.store.group_alias(alias_id) is None:
        raise NotFound()
    creating = not alias_id
    a = await b.store.write_group_alias(alias_id=alias_id, name=_opt(d, "name"),
                                        mount_accessor=_opt(d, "mount_accessor"),
                                        canonical_id=d.get("canonical_id") or None)
    return Response(data={"id": a.id, "canonical_id": a.canonical_id}) if creating else None


async def read_group_alias(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    a = b.store.group_alias(d.get("id"))
    if a is None:
        raise NotFound()
    return Response(data={**alias_json(a, group=True), "namespace_id": "root"})


async def delete_group_alias(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    await b.store.delete_group_alias(d.get("id"))
    return None


async def list_group_aliases(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    aliases = sorted((g.alias for g in b.store.groups.values() if g.alias is not None), key=lambda a: a.id)
    if not aliases:
        raise NotFound()
    return Response(data={"keys": [a.id for a in aliases],
                          "key_info": {a.id: _alias_info(a, group=True) for a in aliases}})


# -- lookup ---------------------------------------------------------------------------------------
def _one_criterion(d: FieldData) -> str:
    given = [k for k in ("id", "name", "alias_id", "alias_name") if d.get(k)]
    if not given:
        raise InvalidRequest("one of name, id, alias_id or alias_name and alias_mount_accessor must be provided")
    if len(given) > 1:
        raise InvalidRequest("only one of name, id, alias_id or alias_name and alias_mount_accessor must be provided")
    if given[0] == "alias_name" and not d.get("alias_mount_accessor"):
        raise InvalidRequest("'alias_mount_accessor' is required when 'alias_name' is given")
    return given[0]


async def lookup_entity(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    s = b.store
    key = _one_criterion(d)
    e: EntityRecord | None = None
    if key == "id":
        e = s.entities.get(d.get("id"))
    elif key == "name":
        e = s.entity_by_name(d.get("name"))
    else:
        a = s.alias(d.get("alias_id")) if key == "alias_id" else s.alias_by_name(d.get("alias_mount_accessor"),
                                                                               d.get("alias_name"))
        e = s.entities.get(a.canonical_id) if a else None
    return Response(data=entity_json(s, e)) if e else None


async def lookup_group(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    s = b.store
    key = _one_criterion(d)
    g: GroupRecord | None = None
    if key == "id":
        g = s.groups.get(d.get("id"))
    elif key == "name":
        g = s.group_by_name(d.get("name"))
    else:
        a = (s.group_alias(d.get("alias_id")) if key == "alias_id"
             else s.group_alias_by_name(d.get("alias_mount_accessor"), d.get("alias_name")))
        g = s.groups.get(a.canonical_id) if a else None
    return Response(data=group_json(s, g)) if g else None


def _entity_ops(by: str) -> dict[Op, Handler[IdentityBackend]]:
    async def read(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
        return Response(data=entity_json(b.store, _entity_or_404(b, d, by)))

    async def write(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
        return await _write_entity(b, d, by)

    async def delete(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
        return await _delete_entity(b, d, by)

    return {Op.READ: read, Op.UPDATE: write, Op.DELETE: delete}


def _group_ops(by: str) -> dict[Op, Handler[IdentityBackend]]:
    async def read(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
        return Response(data=group_json(b.store, _group_or_404(b, d, by)))

    async def write(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
        return await _write_group(b, d, by)

    async def delete(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
        return await _delete_group(b, d, by)

    return {Op.READ: read, Op.UPDATE: write, Op.DELETE: delete}


async def create_entity(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    return await _write_entity(b, d, "")


async def create_group(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    return await _write_group(b, d, "")


async def create_entity_alias(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    return await _write_entity_alias(b, d, False)


async def update_entity_alias(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    return await _write_entity_alias(b, d, True)


async def create_group_alias(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    return await _write_group_alias(b, d, False)


async def update_group_alias(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    return await _write_group_alias(b, d, True)


def paths() -> list[Path[IdentityBackend]]:
    return [
        Path("entity", fields=_ENTITY_FIELDS, operations={Op.UPDATE: create_entity}, synopsis="Create an entity."),
        Path("entity/id/?", operations={Op.LIST: list_entity_ids}, synopsis="List entities by id."),
        Path("entity/name/?", operations={Op.LIST: list_entity_names}, synopsis="List entities by name."),
        Path("entity/batch-delete", fields={"entity_ids": Field(FieldType.COMMA_STRING_SLICE, "Entity IDs to delete.")},
             operations={Op.UPDATE: batch_delete}, synopsis="Delete several entities."),
        Path("entity/merge", fields={
            "from_entity_ids": Field(FieldType.COMMA_STRING_SLICE, "Entity IDs to merge from."),
            "to_entity_id": Field(FieldType.STRING, "Entity ID into which the others are merged."),
            "force": Field(FieldType.BOOL, "Drop conflicting aliases of the merged entities."),
            "conflicting_alias_ids_to_keep": Field(FieldType.COMMA_STRING_SLICE, "Alias IDs to keep on conflict."),
        }, operations={Op.UPDATE: merge}, synopsis="Merge entities."),
        Path(f"entity/id/{_ID}", fields=_ENTITY_FIELDS, operations=_entity_ops("id"), synopsis="An entity by id."),
        Path(f"entity/name/{_NAME}", fields=_ENTITY_FIELDS, operations=_entity_ops("name"), synopsis="An entity by name."),
        Path("entity-alias", fields=_ALIAS_FIELDS, operations={Op.UPDATE: create_entity_alias},
             synopsis="Create an entity alias."),
        Path("entity-alias/id/?", operations={Op.LIST: list_entity_aliases}, synopsis="List entity aliases."),
        Path(f"entity-alias/id/{_ID}", fields=_ALIAS_FIELDS,
             operations={Op.READ: read_entity_alias, Op.UPDATE: update_entity_alias, Op.DELETE: delete_entity_alias},
             synopsis="An entity alias by id."),
        Path("group", fields=_GROUP_FIELDS, operations={Op.UPDATE: create_group}, synopsis="Create a group."),
        Path("group/id/?", operations={Op.LIST: list_group_ids}, synopsis="List groups by id."),
        Path("group/name/?", operations={Op.LIST: list_group_names}, synopsis="List groups by name."),
        Path(f"group/id/{_ID}", fields=_GROUP_FIELDS, operations=_group_ops("id"), synopsis="A group by id."),
        Path(f"group/name/{_NAME}", fields=_GROUP_FIELDS, operations=_group_ops("name"), synopsis="A group by name."),
        Path("group-alias", fields=_ALIAS_FIELDS, operations={Op.UPDATE: create_group_alias},
             synopsis="Create a group alias."),
        Path("group-alias/id/?", operations={Op.LIST: list_group_aliases}, synopsis="List group aliases."),
        Path(f"group-alias/id/{_ID}", fields=_ALIAS_FIELDS,
             operations={Op.READ: read_group_alias, Op.UPDATE: update_group_alias, Op.DELETE: delete_group_alias},
             synopsis="A group alias by id."),
        Path("lookup/entity", fields=_LOOKUP_FIELDS, operations={Op.UPDATE: lookup_entity},
             synopsis="Find an entity."),
        Path("lookup/group", fields=_LOOKUP_FIELDS, operations={Op.UPDATE: lookup_group}, synopsis="Find a group."),
    ]


__all__ = ["IdentityBackend", "entity_json", "group_json", "paths"]
