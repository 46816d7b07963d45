"""IdentityIndex: the identity store's records as stored and as indexed in memory, and the lookups
over them; IdentityStore (store.py) adds the writes (Vault's rules for entities, aliases, groups).

Barrier layout (relative to the store's view, core/identity/)::

    entity/<id>   one entity as JSON, its aliases inside it (as Vault stores them)
    group/<id>    one group as JSON, its group alias (external groups) inside it

Indexes: entity name -> id, (mount accessor, alias name) -> entity alias, alias id -> entity,
merged entity id -> surviving entity, group name -> id, group alias (accessor, name) -> group,
entity -> groups it is a direct member of, group -> groups that list it as a member. They are
rebuilt at setup, re-read on invalidation and kept consistent on every write (``_put_entity``,
``_put_group``). What a token's policies become at request time (``policies_for``) is cached per
entity and dropped on any write: ``generation`` moves with every change (the read cache's stamp
includes it). The records themselves (entity, alias, group) are in core/identity/records.py.
"""

from __future__ import annotations

import orjson

from strongroom.core.identity.records import Alias, EntityRecord, GroupRecord
from strongroom.lifecycle import Part
from strongroom.logical import Storage

ENTITY_PREFIX = "entity/"
GROUP_PREFIX = "group/"


class IdentityIndex(Part):
    """Entities and groups in memory, indexed, mirroring storage (loaded at setup, re-read on
    invalidation); the base of IdentityStore, which core owns."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self.generation = 0
        self._clear()

    def _clear(self) -> None:
        self.entities: dict[str, EntityRecord] = {}
        self.groups: dict[str, GroupRecord] = {}
        self._entity_names: dict[str, str] = {}
        self._aliases: dict[tuple[str, str], Alias] = {}
        self._alias_ids: dict[str, Alias] = {}
        self._merged: dict[str, str] = {}
        self._group_names: dict[str, str] = {}
        self._group_aliases: dict[tuple[str, str], Alias] = {}
        self._group_alias_ids: dict[str, Alias] = {}
        self._entity_groups: dict[str, set[str]] = {}
        self._parent_groups: dict[str, set[str]] = {}
        self._policy_cache: dict[str, tuple[str, ...]] = {}
        self.generation += 1

    # -- lifecycle ------------------------------------------------------------------------------
    async def setup(self) -> None:
        self._clear()
        for key in await self._storage.list(ENTITY_PREFIX):
            raw = await self._storage.get(ENTITY_PREFIX + key)
            if raw is not None:
                self._index_entity(EntityRecord.from_json(orjson.loads(raw)))
        for key in await self._storage.list(GROUP_PREFIX):
            raw = await self._storage.get(GROUP_PREFIX + key)
            if raw is not None:
                self._index_group(GroupRecord.from_json(orjson.loads(raw)))

    async def deactivate(self) -> None:
        self._clear()

    async def invalidate(self, key: str) -> None:
        """A key under core/identity/ changed behind this node: re-read that one record."""
        if key.startswith(ENTITY_PREFIX):
            old_e = self.entities.get(key[len(ENTITY_PREFIX):])
            if old_e is not None:
                self._unindex_entity(old_e)
            raw = await self._storage.get(key)
            if raw is not None:
                self._index_entity(EntityRecord.from_json(orjson.loads(raw)))
        elif key.startswith(GROUP_PREFIX):
            old_g = self.groups.get(key[len(GROUP_PREFIX):])
            if old_g is not None:
                self._unindex_group(old_g)
            raw = await self._storage.get(key)
            if raw is not None:
                self._index_group(GroupRecord.from_json(orjson.loads(raw)))
        else:
            return
        self._changed()

    # -- indexes --------------------------------------------------------------------------------
    def _changed(self) -> None:
        self._policy_cache.clear()
        self.generation += 1

    def _index_entity(self, e: EntityRecord) -> None:
        self.entities[e.id] = e
        self._entity_names[e.name.lower()] = e.id
        for a in e.aliases:
            self._aliases[(a.mount_accessor, a.name)] = a
            self._alias_ids[a.id] = a
        for m in e.merged_entity_ids:
            self._merged[m] = e.id

    def _unindex_entity(self, e: EntityRecord) -> None:
        self.entities.pop(e.id, None)
        if self._entity_names.get(e.name.lower()) == e.id:
            del self._entity_names[e.name.lower()]
        for a in e.aliases:
            self._aliases.pop((a.mount_accessor, a.name), None)
            self._alias_ids.pop(a.id, None)
        for m in e.merged_entity_ids:
            if self._merged.get(m) == e.id:
                del self._merged[m]

    def _index_group(self, g: GroupRecord) -> None:
        self.groups[g.id] = g
        self._group_names[g.name.lower()] = g.id
        if g.alias is not None:
            self._group_aliases[(g.alias.mount_accessor, g.alias.name)] = g.alias
            self._group_alias_ids[g.alias.id] = g.alias
        for m in g.member_entity_ids:
            self._entity_groups.setdefault(m, set()).add(g.id)
        for m in g.member_group_ids:
            self._parent_groups.setdefault(m, set()).add(g.id)

    def _unindex_group(self, g: GroupRecord) -> None:
        self.groups.pop(g.id, None)
        if self._group_names.get(g.name.lower()) == g.id:
            del self._group_names[g.name.lower()]
        if g.alias is not None:
            self._group_aliases.pop((g.alias.mount_accessor, g.alias.name), None)
            self._group_alias_ids.pop(g.alias.id, None)
        for m in g.member_entity_ids:
            self._entity_groups.get(m, set()).discard(g.id)
        for m in g.member_group_ids:
            self._parent_groups.get(m, set()).discard(g.id)

    async def _put_entity(self, e: EntityRecord, old: EntityRecord | None) -> None:
        await self._storage.put(ENTITY_PREFIX + e.id, orjson.dumps(e.to_json()))
        if old is not None:
            self._unindex_entity(old)
        self._index_entity(e)
        self._changed()

    async def _put_group(self, g: GroupRecord, old: GroupRecord | None) -> None:
        await self._storage.put(GROUP_PREFIX + g.id, orjson.dumps(g.to_json()))
        if old is not None:
            self._unindex_group(old)
        self._index_group(g)
        self._changed()

    # -- lookups --------------------------------------------------------------------------------
    def resolve(self, entity_id: str) -> EntityRecord | None:
        """The entity of that id, following merges (a token keeps the id it was issued with)."""
        e = self.entities.get(entity_id)
        if e is None and entity_id in self._merged:
            e = self.entities.get(self._merged[entity_id])
        return e

    def entity_by_name(self, name: str) -> EntityRecord | None:
        ident = self._entity_names.get(name.lower())
        return self.entities.get(ident) if ident else None

    def group_by_name(self, name: str) -> GroupRecord | None:
        ident = self._group_names.get(name.lower())
        return self.groups.get(ident) if ident else None

    def alias(self, alias_id: str) -> Alias | None:
        return self._alias_ids.get(alias_id)

    def alias_by_name(self, accessor: str, name: str) -> Alias | None:
        return self._aliases.get((accessor, name))

    def group_alias(self, alias_id: str) -> Alias | None:
        return self._group_alias_ids.get(alias_id)

    def group_alias_by_name(self, accessor: str, name: str) -> Alias | None:
        return self._group_aliases.get((accessor, name))

    def direct_groups(self, entity_id: str) -> list[str]:
        return sorted(self._entity_groups.get(entity_id, ()))

    def _ancestors(self, start: list[str]) -> list[str]:
        seen: set[str] = set()
        todo = list(start)
        while todo:
            g = todo.pop()
            for parent in self._parent_groups.get(g, ()):
                if parent not in seen and parent not in start:
                    seen.add(parent)
                    todo.append(parent)
        return sorted(seen)

    def inherited_groups(self, entity_id: str) -> list[str]:
        return self._ancestors(self.direct_groups(entity_id))

    def parent_groups(self, group_id: str) -> list[str]:
        return sorted(self._parent_groups.get(group_id, ()))

    def policies_for(self, entity_id: str) -> tuple[str, ...]:
        """The identity policies of a token of ``entity_id``: the entity's own and every group's it
        is in, directly or through member groups (cached until the next change)."""
        cached = self._policy_cache.get(entity_id)
        if cached is not None:
            return cached
        e = self.resolve(entity_id)
        out: list[str] = []
        if e is not None:
            out.extend(e.policies)
            direct = self.direct_groups(e.id)
            for gid in direct + self._ancestors(direct):
                g = self.groups.get(gid)
                if g is not None:
                    out.extend(g.policies)
        result = tuple(dict.fromkeys(p for p in out if p))
        self._policy_cache[entity_id] = result
        return result
