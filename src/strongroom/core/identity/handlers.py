"""The identity/ engine's handlers for entities, entity aliases, groups, group aliases and lookup,
and the JSON shapes they answer with; the path table that routes to them is in backend.py.

All state is the :class:`~strongroom.core.identity.store.IdentityStore` core owns (the same one
logins and request-time policy use); these handlers only translate requests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from strongroom.core.identity.records import Alias, EntityRecord, GroupRecord
from strongroom.core.identity.store import IdentityStore
from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import FieldData, Handler, Op, Request, Response

if TYPE_CHECKING:
    from strongroom.core.identity.backend import IdentityBackend


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


def entity_ops(by: str) -> dict[Op, Handler[IdentityBackend]]:
    async def read(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
        return Response(data=entity_json(b.store, _entity_or_404(b, d, by)))

    async def write(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
        return await _write_entity(b, d, by)

    async def delete(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
        return await _delete_entity(b, d, by)

    return {Op.READ: read, Op.UPDATE: write, Op.DELETE: delete}


def group_ops(by: str) -> dict[Op, Handler[IdentityBackend]]:
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
