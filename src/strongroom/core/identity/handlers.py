"""The identity/ engine's handlers for entities, entity aliases, groups, group aliases and lookup,
and the JSON shapes they answer with; the path table that routes to them is in backend.py.

All state is the :class:`~strongroom.core.identity.store.IdentityStore` core owns (the same one
logins and request-time policy use); these handlers only translate requests. Vault serves entities
and groups alike (by id or name, found through an alias, their alias paths): those handlers are
written once, over a :class:`Kind` (ENTITIES, GROUPS) that holds what differs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from strongroom.core.identity.records import Alias, EntityRecord, GroupRecord
from strongroom.core.identity.store import IdentityStore
from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import FieldData, Handler, Op, Request, Response

if TYPE_CHECKING:
    from strongroom.core.identity.backend import IdentityBackend

R = TypeVar("R", EntityRecord, GroupRecord)
T = TypeVar("T", Alias, EntityRecord, GroupRecord)


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


def _alias_info(a: Alias, *, group: bool) -> dict[str, Any]:
    return {"canonical_id": a.canonical_id, "custom_metadata": None if group else dict(a.custom_metadata),
            "local": False, "metadata": _or_null(a.metadata), "mount_accessor": a.mount_accessor,
            "mount_path": a.mount_path, "mount_type": a.mount_type, "name": a.name}


def _entity_info(e: EntityRecord) -> dict[str, Any]:
    row: dict[str, Any] = {"name": e.name}
    if e.aliases:
        row["aliases"] = [{"id": a.id, "mount_accessor": a.mount_accessor, "mount_path": a.mount_path,
                           "mount_type": a.mount_type, "name": a.name} for a in e.aliases]
    return row


def _group_info(s: IdentityStore, g: GroupRecord) -> dict[str, Any]:
    row: dict[str, Any] = {"name": g.name, "num_member_entities": len(g.member_entity_ids),
                           "num_parent_groups": len(s.parent_groups(g.id))}
    if g.alias is not None:
        row["alias"] = {"mount_accessor": g.alias.mount_accessor, "mount_path": g.alias.mount_path,
                        "mount_type": g.alias.mount_type, "name": g.alias.name}
    return row


def _listed(items: Iterable[T], info: Callable[[T], dict[str, Any]]) -> Response:
    """A LIST by id: the ids in order, each with its row in key_info; 404 when there is none (Vault's)."""
    rows = sorted(items, key=lambda x: x.id)
    if not rows:
        raise NotFound()
    return Response(data={"keys": [x.id for x in rows], "key_info": {x.id: info(x) for x in rows}})


def _names(records: Iterable[EntityRecord | GroupRecord]) -> Response:
    names = sorted(r.name for r in records)
    if not names:
        raise NotFound()
    return Response(data={"keys": names})


# -- what differs between entities and groups -----------------------------------------------------
async def _write_entity(s: IdentityStore, d: FieldData, entity_id: str) -> Response | None:
    e, created = await s.write_entity(entity_id=entity_id, name=_opt(d, "name"), policies=_opt(d, "policies"),
                                      metadata=_opt(d, "metadata"), disabled=_opt(d, "disabled"),
                                      by_name=True)
    return Response(data={"id": e.id, "name": e.name, "aliases": None}) if created else None


async def _write_group(s: IdentityStore, d: FieldData, group_id: str) -> Response | None:
    g, created = await s.write_group(
        group_id=group_id, name=_opt(d, "name"), type_=(d.get("type") or "").lower() or None,
        policies=_opt(d, "policies"), metadata=_opt(d, "metadata"),
        member_entity_ids=_opt(d, "member_entity_ids"), member_group_ids=_opt(d, "member_group_ids"),
        by_name=True)
    return Response(data={"id": g.id, "name": g.name}) if created else None


async def _write_entity_alias(s: IdentityStore, d: FieldData, alias_id: str) -> Alias:
    return await s.write_entity_alias(alias_id=alias_id, name=_opt(d, "name"),
                                      canonical_id=d.get("canonical_id") or d.get("entity_id") or None,
                                      mount_accessor=_opt(d, "mount_accessor"),
                                      custom_metadata=_opt(d, "custom_metadata"))


async def _write_group_alias(s: IdentityStore, d: FieldData, alias_id: str) -> Alias:
    return await s.write_group_alias(alias_id=alias_id, name=_opt(d, "name"),
                                     mount_accessor=_opt(d, "mount_accessor"),
                                     canonical_id=d.get("canonical_id") or None)


@dataclass(frozen=True, slots=True)
class Kind(Generic[R]):
    """Entities or groups: the store's calls and the answers' shapes for one of them."""

    records: Callable[[IdentityStore], dict[str, R]]
    by_name: Callable[[IdentityStore, str], R | None]
    json: Callable[[IdentityStore, R], dict[str, Any]]
    write: Callable[[IdentityStore, FieldData, str], Awaitable[Response | None]]  # by id; "" creates
    delete: Callable[[IdentityStore, str], Awaitable[None]]
    alias: Callable[[IdentityStore, str], Alias | None]
    alias_by_name: Callable[[IdentityStore, str, str], Alias | None]  # (mount accessor, alias name)
    write_alias: Callable[[IdentityStore, FieldData, str], Awaitable[Alias]]
    delete_alias: Callable[[IdentityStore, str], Awaitable[None]]
    group: bool  # a group alias shows fewer fields (alias_json)


ENTITIES: Kind[EntityRecord] = Kind(
    records=lambda s: s.entities, by_name=IdentityStore.entity_by_name, json=entity_json, write=_write_entity,
    delete=IdentityStore.delete_entity, alias=IdentityStore.alias, alias_by_name=IdentityStore.alias_by_name,
    write_alias=_write_entity_alias, delete_alias=IdentityStore.delete_entity_alias, group=False)
GROUPS: Kind[GroupRecord] = Kind(
    records=lambda s: s.groups, by_name=IdentityStore.group_by_name, json=group_json, write=_write_group,
    delete=IdentityStore.delete_group, alias=IdentityStore.group_alias,
    alias_by_name=IdentityStore.group_alias_by_name, write_alias=_write_group_alias,
    delete_alias=IdentityStore.delete_group_alias, group=True)


# -- entities and groups, by id or by name --------------------------------------------------------
def _find(kind: Kind[R], s: IdentityStore, d: FieldData, by: str) -> R | None:
    return kind.by_name(s, d.get("name")) if by == "name" else kind.records(s).get(d.get("id"))


def _id_to_write(kind: Kind[R], s: IdentityStore, d: FieldData, by: str) -> str:
    """By name, the id of the one so named ("" creates it); by id, one that must exist (else 404);
    at the create path (``by`` ""), the id in the body if any."""
    ident: str = d.get("id") or ""
    if by == "name":
        existing = kind.by_name(s, d.get("name"))
        return existing.id if existing else ""
    if by == "id" and ident not in kind.records(s):
        raise NotFound()
    return ident


def record_ops(kind: Kind[R], by: str) -> dict[Op, Handler[IdentityBackend]]:
    """entity/id/<id>, entity/name/<name> and the group paths alike."""
    async def read(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
        found = _find(kind, b.store, d, by)
        if found is None:
            raise NotFound()
        return Response(data=kind.json(b.store, found))

    async def write(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
        return await kind.write(b.store, d, _id_to_write(kind, b.store, d, by))

    async def delete(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
        found = _find(kind, b.store, d, by)
        if found is not None:
            await kind.delete(b.store, found.id)
        return None

    return {Op.READ: read, Op.UPDATE: write, Op.DELETE: delete}


def create_op(kind: Kind[R]) -> Handler[IdentityBackend]:
    """entity, group: create, or update the one the body's id names."""
    return record_ops(kind, "")[Op.UPDATE]


def lookup_op(kind: Kind[R]) -> Handler[IdentityBackend]:
    """lookup/entity, lookup/group: by exactly one of id, name, alias id, alias (mount, name)."""
    async def lookup(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
        s = b.store
        key = _one_criterion(d)
        if key in ("id", "name"):
            found = _find(kind, s, d, key)
        else:
            a = (kind.alias(s, d.get("alias_id")) if key == "alias_id"
                 else kind.alias_by_name(s, d.get("alias_mount_accessor"), d.get("alias_name")))
            found = kind.records(s).get(a.canonical_id) if a else None
        return Response(data=kind.json(s, found)) if found else None

    return lookup


def _one_criterion(d: FieldData) -> str:
    given = [k for k in ("id", "name", "alias_id", "alias_name") if d.get(k)]
    if not given:
        raise InvalidRequest("one of name, id, alias_id or alias_name and alias_mount_accessor must be provided")
    if len(given) > 1:
        raise InvalidRequest("only one of name, id, alias_id or alias_name and alias_mount_accessor must be provided")
    if given[0] == "alias_name" and not d.get("alias_mount_accessor"):
        raise InvalidRequest("'alias_mount_accessor' is required when 'alias_name' is given")
    return given[0]


# -- their aliases --------------------------------------------------------------------------------
def _write_alias_op(kind: Kind[R], by_id: bool) -> Handler[IdentityBackend]:
    async def write(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
        alias_id = d.get("id") or ""
        if by_id and kind.alias(b.store, alias_id) is None:
            raise NotFound()
        a = await kind.write_alias(b.store, d, alias_id)
        return Response(data={"id": a.id, "canonical_id": a.canonical_id}) if not alias_id else None

    return write


def create_alias_op(kind: Kind[R]) -> Handler[IdentityBackend]:
    """entity-alias, group-alias: create, or update the one the body's id names."""
    return _write_alias_op(kind, False)


def alias_ops(kind: Kind[R]) -> dict[Op, Handler[IdentityBackend]]:
    """entity-alias/id/<id>, group-alias/id/<id>."""
    async def read(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
        a = kind.alias(b.store, d.get("id"))
        if a is None:
            raise NotFound()
        return Response(data={**alias_json(a, group=kind.group), "namespace_id": "root"})

    async def delete(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
        await kind.delete_alias(b.store, d.get("id"))
        return None

    return {Op.READ: read, Op.UPDATE: _write_alias_op(kind, True), Op.DELETE: delete}


# -- lists ----------------------------------------------------------------------------------------
async def list_entity_ids(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    return _listed(b.store.entities.values(), _entity_info)


async def list_group_ids(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    return _listed(b.store.groups.values(), lambda g: _group_info(b.store, g))


async def list_entity_names(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    return _names(b.store.entities.values())


async def list_group_names(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    return _names(b.store.groups.values())


async def list_entity_aliases(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    return _listed((a for e in b.store.entities.values() for a in e.aliases),
                   lambda a: _alias_info(a, group=False))


async def list_group_aliases(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    return _listed((g.alias for g in b.store.groups.values() if g.alias is not None),
                   lambda a: _alias_info(a, group=True))


# -- entities only --------------------------------------------------------------------------------
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
