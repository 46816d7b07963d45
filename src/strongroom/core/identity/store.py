"""The identity store: entities, their aliases and groups (Vault's identity store), persisted
through the barrier, with in-memory indexes rebuilt at setup and kept consistent on every write.

IdentityStore is what core owns: the writes, with Vault's rules (names and alias combinations
unique, merges, group membership without cycles, external groups set at login), serialized by one
lock. The storage layout, the indexes and the lookups it builds on are in core/identity/index.py
(IdentityIndex); the records themselves (entity, alias, group) in core/identity/records.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping
from typing import TypeVar

import orjson

from strongroom.core.identity.index import ENTITY_PREFIX, GROUP_PREFIX, IdentityIndex
from strongroom.core.identity.records import Alias, EntityRecord, GroupRecord, str_map, timestamp
from strongroom.errors import InvalidRequest
from strongroom.logical import Storage

#: (mount type, mount path) of an auth mount by its accessor, None if no such mount.
MountLookup = Callable[[str], "tuple[str, str] | None"]

R = TypeVar("R", EntityRecord, GroupRecord)


def _to_update(kind: str, records: Mapping[str, R], by_name: Callable[[str], R | None], ident: str,
               name: str | None, match_name: bool) -> R | None:
    """The entity or group (``kind``) a write updates, None for a new one: the one of ``ident`` (which
    must exist), else with ``match_name`` the one called ``name``; a ``name`` given must be no other's."""
    old: R | None = None
    if ident:
        old = records.get(ident)
        if old is None:
            raise InvalidRequest(f"{kind} not found from id")
    elif match_name and name:
        old = by_name(name)
    if name:
        clash = by_name(name)
        if clash is not None and (old is None or clash.id != old.id):
            raise InvalidRequest(f"{kind} name is already in use")
    return old


def _draft(cls: type[R], kind: str, old: R | None, name: str | None, now: str) -> R:
    """What a write of an entity or group starts from: a copy of the one it updates, renamed if
    ``name`` is given, or a new one (a fresh id, and a name made of it unless ``name`` is given)."""
    if old is None:
        ident = str(uuid.uuid4())
        return cls(id=ident, name=name or f"{kind}_{ident[:8]}", creation_time=now)
    new = cls.from_json(orjson.loads(orjson.dumps(old.to_json())))
    if name:
        new.name = name
    return new


class IdentityStore(IdentityIndex):
    def __init__(self, storage: Storage, mounts: MountLookup) -> None:
        self._mounts = mounts
        self._lock = asyncio.Lock()
        super().__init__(storage)

    # -- entities -------------------------------------------------------------------------------
    def _mount(self, accessor: str) -> tuple[str, str]:
        found = self._mounts(accessor)
        if found is None:
            raise InvalidRequest(f'invalid mount accessor "{accessor}"')
        return found

    async def write_entity(self, *, entity_id: str = "", name: str | None = None, policies: list[str] | None = None,
                           metadata: dict[str, str] | None = None, disabled: bool | None = None,
                           by_name: bool = False) -> tuple[EntityRecord, bool]:
        """Create or update; (entity, created)."""
        async with self._lock:
            old = _to_update("entity", self.entities, self.entity_by_name, entity_id, name, by_name)
            now = timestamp()
            e = _draft(EntityRecord, "entity", old, name, now)
            if policies is not None:
                e.policies = [p.strip() for p in policies if p.strip()]
            if metadata is not None:
                e.metadata = str_map(metadata)
            if disabled is not None:
                e.disabled = disabled
            e.last_update_time = now
            await self._put_entity(e, old)
            return e, old is None

    async def delete_entity(self, entity_id: str) -> None:
        async with self._lock:
            await self._delete_entity(entity_id)

    async def _delete_entity(self, entity_id: str) -> None:
        old = self.entities.get(entity_id)
        if old is not None:
            await self._delete(old, ENTITY_PREFIX, self._unindex_entity, self._entity_groups,
                               "member_entity_ids")

    async def _delete(self, old: R, prefix: str, unindex: Callable[[R], None],
                      containing: dict[str, set[str]], members_field: str) -> None:
        """An entity or a group deleted: first taken out of the ``members_field`` list
        (member_entity_ids or member_group_ids) of every group that lists it (``containing``: the
        index of those groups), then out of storage and the indexes."""
        member = old.id
        for gid in list(containing.get(member, ())):
            g = self.groups.get(gid)
            if g is not None:
                ng = GroupRecord.from_json(g.to_json())
                setattr(ng, members_field, [m for m in getattr(ng, members_field) if m != member])
                await self._put_group(ng, g)
        await self._storage.delete(prefix + member)
        unindex(old)
        containing.pop(member, None)
        self._changed()

    async def batch_delete(self, ids: list[str]) -> None:
        async with self._lock:
            for ident in ids:
                await self._delete_entity(ident)

    async def merge(self, to_id: str, from_ids: list[str], *, force: bool = False,
                    keep_alias_ids: list[str] | None = None) -> None:
        async with self._lock:
            to = self.entities.get(to_id)
            if to is None:
                raise InvalidRequest("entity id to merge to is invalid")
            if not from_ids:
                raise InvalidRequest("missing entity ids to merge from")
            new = EntityRecord.from_json(orjson.loads(orjson.dumps(to.to_json())))
            keep = set(keep_alias_ids or ())
            sources: list[EntityRecord] = []
            for fid in from_ids:
                if fid == to_id:
                    raise InvalidRequest("to_entity_id should not be present in from_entity_ids")
                src = self.entities.get(fid)
                if src is None:
                    raise InvalidRequest("entity id to merge from is invalid")
                sources.append(src)
            for src in sources:
                for a in src.aliases:
                    clash = next((x for x in new.aliases if x.mount_accessor == a.mount_accessor), None)
                    if clash is not None:
                        if a.id in keep:
                            new.aliases.remove(clash)
                        elif clash.id in keep or force:
                            continue
                        else:
                            raise InvalidRequest(
                                "toEntity and at least one fromEntity have aliases with the same mount accessor, "
                                "repeat the merge request specifying exactly one fromEntity, optionally with "
                                "conflicting_alias_ids_to_keep")
                    moved = Alias.from_json(a.to_json())
                    moved.merged_from_canonical_ids.append(src.id)
                    moved.canonical_id = new.id
                    new.aliases.append(moved)
                new.merged_entity_ids.extend([src.id, *src.merged_entity_ids])
            new.last_update_time = timestamp()
            for src in sources:
                for gid in list(self._entity_groups.get(src.id, ())):  # memberships move to the survivor
                    g = self.groups.get(gid)
                    if g is not None:
                        ng = GroupRecord.from_json(orjson.loads(orjson.dumps(g.to_json())))
                        ng.member_entity_ids = list(dict.fromkeys(
                            to_id if m == src.id else m for m in ng.member_entity_ids))
                        await self._put_group(ng, g)
                await self._delete_entity(src.id)
            await self._put_entity(new, to)

    # -- entity aliases -------------------------------------------------------------------------
    def _alias_to_write(self, kind: str, by_id: dict[str, Alias], by_key: dict[tuple[str, str], Alias],
                        alias_id: str, name: str | None, mount_accessor: str | None,
                        ) -> tuple[Alias | None, str, str, tuple[str, str]]:
        """What entity and group alias writes (``kind``: "alias" or "group alias", as the errors
        say) check alike: (the alias updated, None for a new one; its name and mount accessor, the
        old ones unless given; the mount's type and path). The pair must be no other alias's."""
        old = by_id.get(alias_id) if alias_id else None
        if alias_id and old is None:
            raise InvalidRequest(f"invalid {kind} ID provided")
        name = name if name is not None else (old.name if old else "")
        accessor = mount_accessor or (old.mount_accessor if old else "")
        if not name:
            raise InvalidRequest("missing alias name")
        if not accessor:
            raise InvalidRequest("missing mount_accessor")
        mount = self._mount(accessor)
        clash = by_key.get((accessor, name))
        if clash is not None and (old is None or clash.id != old.id):
            raise InvalidRequest(f"combination of mount and {kind} name is already in use")
        return old, name, accessor, mount

    async def write_entity_alias(self, *, alias_id: str = "", name: str | None = None,
                                 canonical_id: str | None = None, mount_accessor: str | None = None,
                                 custom_metadata: dict[str, str] | None = None,
                                 metadata: dict[str, str] | None = None) -> Alias:
        async with self._lock:
            return await self._write_entity_alias(alias_id=alias_id, name=name, canonical_id=canonical_id,
                                                  mount_accessor=mount_accessor, custom_metadata=custom_metadata,
                                                  metadata=metadata)

    async def _write_entity_alias(self, *, alias_id: str, name: str | None, canonical_id: str | None,
                                  mount_accessor: str | None, custom_metadata: dict[str, str] | None,
                                  metadata: dict[str, str] | None) -> Alias:
        old, name, accessor, (mtype, mpath) = self._alias_to_write(
            "alias", self._alias_ids, self._aliases, alias_id, name, mount_accessor)
        target_id = canonical_id or (old.canonical_id if old else "")
        now = timestamp()
        created_entity: EntityRecord | None = None
        if not target_id:
            ident = str(uuid.uuid4())
            created_entity = EntityRecord(id=ident, name=f"entity_{ident[:8]}", creation_time=now,
                                          last_update_time=now)
            target = created_entity
        else:
            found = self.entities.get(target_id)
            if found is None:
                raise InvalidRequest("invalid canonical ID")
            target = found
        if any(a.mount_accessor == accessor and (old is None or a.id != old.id) for a in target.aliases):
            raise InvalidRequest("mount accessor " + accessor + " is already in use by another alias of this entity")
        alias = Alias(id=old.id if old else str(uuid.uuid4()), name=name, canonical_id=target.id,
                      mount_accessor=accessor, mount_type=mtype, mount_path=mpath,
                      metadata=dict(metadata if metadata is not None else (old.metadata if old else {})),
                      custom_metadata=dict(custom_metadata if custom_metadata is not None
                                           else (old.custom_metadata if old else {})),
                      creation_time=old.creation_time if old else now, last_update_time=now)
        if old is not None and old.canonical_id != target.id:  # moved to another entity
            prev = self.entities.get(old.canonical_id)
            if prev is not None:
                np = EntityRecord.from_json(orjson.loads(orjson.dumps(prev.to_json())))
                np.aliases = [a for a in np.aliases if a.id != old.id]
                await self._put_entity(np, prev)
            target = self.entities.get(target.id, target)
        nt = EntityRecord.from_json(orjson.loads(orjson.dumps(target.to_json())))
        nt.aliases = [a for a in nt.aliases if a.id != alias.id] + [alias]
        nt.last_update_time = now
        await self._put_entity(nt, None if created_entity is not None else target)
        return alias

    async def delete_entity_alias(self, alias_id: str) -> None:
        async with self._lock:
            a = self._alias_ids.get(alias_id)
            if a is None:
                return
            e = self.entities.get(a.canonical_id)
            if e is None:
                return
            ne = EntityRecord.from_json(orjson.loads(orjson.dumps(e.to_json())))
            ne.aliases = [x for x in ne.aliases if x.id != alias_id]
            await self._put_entity(ne, e)

    async def login(self, accessor: str, name: str, metadata: dict[str, str]) -> EntityRecord:
        """The entity of the alias (accessor, name), created with the alias if new (a login)."""
        found = self._aliases.get((accessor, name))
        if found is not None and found.metadata == metadata:
            e = self.entities.get(found.canonical_id)
            if e is not None:
                return e
        async with self._lock:
            found = self._aliases.get((accessor, name))
            if found is None:
                alias = await self._write_entity_alias(alias_id="", name=name, canonical_id=None,
                                                       mount_accessor=accessor, custom_metadata=None,
                                                       metadata=metadata)
            elif found.metadata != metadata:
                alias = await self._write_entity_alias(alias_id=found.id, name=None, canonical_id=None,
                                                       mount_accessor=None, custom_metadata=None,
                                                       metadata=metadata)
            else:
                alias = found
            return self.entities[alias.canonical_id]

    # -- groups ---------------------------------------------------------------------------------
    async def write_group(self, *, group_id: str = "", name: str | None = None, type_: str | None = None,
                          policies: list[str] | None = None, metadata: dict[str, str] | None = None,
                          member_entity_ids: list[str] | None = None, member_group_ids: list[str] | None = None,
                          by_name: bool = False) -> tuple[GroupRecord, bool]:
        async with self._lock:
            old = _to_update("group", self.groups, self.group_by_name, group_id, name, by_name)
            now = timestamp()
            g = _draft(GroupRecord, "group", old, name, now)
            if old is None:
                g.type = type_ or "internal"
                if g.type not in ("internal", "external"):
                    raise InvalidRequest(f'invalid group type "{g.type}"')
            elif type_ and type_ != g.type:
                raise InvalidRequest("group type cannot be changed")
            if policies is not None:
                g.policies = [p.strip() for p in policies if p.strip()]
            if metadata is not None:
                g.metadata = str_map(metadata)
            if member_entity_ids is not None:
                if g.type == "external" and member_entity_ids:
                    raise InvalidRequest("member entities can't be set manually for external groups")
                for m in member_entity_ids:
                    if m not in self.entities:
                        raise InvalidRequest(f'invalid entity ID "{m}"')
                g.member_entity_ids = list(dict.fromkeys(member_entity_ids))
            if member_group_ids is not None:
                if g.type == "external" and member_group_ids:
                    raise InvalidRequest("member groups can't be set for external groups")
                for m in member_group_ids:
                    if m not in self.groups:
                        raise InvalidRequest(f'invalid member group ID "{m}"')
                    if m == g.id or (old is not None and m in self._ancestors([g.id])):
                        raise InvalidRequest(f'cyclic relationship detected for member group ID "{m}"')
                g.member_group_ids = list(dict.fromkeys(member_group_ids))
            g.last_update_time = now
            await self._put_group(g, old)
            return g, old is None

    async def delete_group(self, group_id: str) -> None:
        async with self._lock:
            old = self.groups.get(group_id)
            if old is not None:
                await self._delete(old, GROUP_PREFIX, self._unindex_group, self._parent_groups,
                                   "member_group_ids")

    async def write_group_alias(self, *, alias_id: str = "", name: str | None = None,
                                mount_accessor: str | None = None, canonical_id: str | None = None) -> Alias:
        async with self._lock:
            old, name, accessor, (mtype, mpath) = self._alias_to_write(
                "group alias", self._group_alias_ids, self._group_aliases, alias_id, name, mount_accessor)
            now = timestamp()
            target_id = canonical_id or (old.canonical_id if old else "")
            if target_id:
                found = self.groups.get(target_id)
                if found is None:
                    raise InvalidRequest("invalid group ID given in 'canonical_id'")
                if found.type != "external":
                    raise InvalidRequest("alias can't be set on an internal group")
                if found.alias is not None and (old is None or found.alias.id != old.id):
                    raise InvalidRequest("group already has an alias")
                target: GroupRecord | None = found
            else:
                target = None
            if target is None:
                ident = str(uuid.uuid4())
                new_group = GroupRecord(id=ident, name=f"group_{ident[:8]}", type="external", creation_time=now)
                old_group: GroupRecord | None = None
            else:
                new_group = GroupRecord.from_json(orjson.loads(orjson.dumps(target.to_json())))
                old_group = target
            alias = Alias(id=old.id if old else str(uuid.uuid4()), name=name, canonical_id=new_group.id,
                          mount_accessor=accessor, mount_type=mtype, mount_path=mpath,
                          creation_time=old.creation_time if old else now, last_update_time=now)
            if old is not None and old.canonical_id != new_group.id:
                prev = self.groups.get(old.canonical_id)
                if prev is not None:
                    np = GroupRecord.from_json(orjson.loads(orjson.dumps(prev.to_json())))
                    np.alias = None
                    await self._put_group(np, prev)
            new_group.alias = alias
            new_group.last_update_time = now
            await self._put_group(new_group, old_group)
            return alias

    async def delete_group_alias(self, alias_id: str) -> None:
        async with self._lock:
            a = self._group_alias_ids.get(alias_id)
            g = self.groups.get(a.canonical_id) if a else None
            if g is None:
                return
            ng = GroupRecord.from_json(orjson.loads(orjson.dumps(g.to_json())))
            ng.alias = None
            await self._put_group(ng, g)

    async def set_external_groups(self, entity_id: str, accessor: str, names: list[str]) -> None:
        """A login through a method that reports groups: the entity is a member of exactly the
        external groups whose alias on that mount is one of ``names`` (unknown names are ignored)."""
        wanted = {a.canonical_id for n in names if (a := self._group_aliases.get((accessor, n))) is not None}
        current = {gid for gid in self._entity_groups.get(entity_id, ())
                   if (g := self.groups.get(gid)) is not None and g.type == "external" and g.alias is not None
                   and g.alias.mount_accessor == accessor}
        if wanted == current:
            return  # the usual login: nothing changed, nothing written
        async with self._lock:
            for gid in wanted ^ current:
                g = self.groups.get(gid)
                if g is None:
                    continue
                ng = GroupRecord.from_json(orjson.loads(orjson.dumps(g.to_json())))
                ng.member_entity_ids = ([*ng.member_entity_ids, entity_id] if gid in wanted
                                        else [m for m in ng.member_entity_ids if m != entity_id])
                await self._put_group(ng, g)


__all__ = ["ENTITY_PREFIX", "GROUP_PREFIX", "Alias", "EntityRecord", "GroupRecord", "IdentityStore", "MountLookup"]
