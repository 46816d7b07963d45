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
logins and request-time policy use); this backend only translates requests. This module is the
path table and its field schemas; the handlers and the JSON shapes are in handlers.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.core.identity import oidc
from strongroom.core.identity.handlers import (
    ENTITIES,
    GROUPS,
    alias_ops,
    batch_delete,
    create_alias_op,
    create_op,
    entity_json,
    group_json,
    list_entity_aliases,
    list_entity_ids,
    list_entity_names,
    list_group_aliases,
    list_group_ids,
    list_group_names,
    lookup_op,
    merge,
    record_ops,
)
from strongroom.core.identity.mfa import paths as mfa_paths
from strongroom.core.identity.store import IdentityStore
from strongroom.framework import Backend, BackendConfig, Field, FieldType, Op, Path

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


def paths() -> list[Path[IdentityBackend]]:
    return [
        Path("entity", fields=_ENTITY_FIELDS, operations={Op.UPDATE: create_op(ENTITIES)},
             synopsis="Create an entity."),
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
        Path(f"entity/id/{_ID}", fields=_ENTITY_FIELDS, operations=record_ops(ENTITIES, "id"),
             synopsis="An entity by id."),
        Path(f"entity/name/{_NAME}", fields=_ENTITY_FIELDS, operations=record_ops(ENTITIES, "name"),
             synopsis="An entity by name."),
        Path("entity-alias", fields=_ALIAS_FIELDS, operations={Op.UPDATE: create_alias_op(ENTITIES)},
             synopsis="Create an entity alias."),
        Path("entity-alias/id/?", operations={Op.LIST: list_entity_aliases}, synopsis="List entity aliases."),
        Path(f"entity-alias/id/{_ID}", fields=_ALIAS_FIELDS, operations=alias_ops(ENTITIES),
             synopsis="An entity alias by id."),
        Path("group", fields=_GROUP_FIELDS, operations={Op.UPDATE: create_op(GROUPS)},
             synopsis="Create a group."),
        Path("group/id/?", operations={Op.LIST: list_group_ids}, synopsis="List groups by id."),
        Path("group/name/?", operations={Op.LIST: list_group_names}, synopsis="List groups by name."),
        Path(f"group/id/{_ID}", fields=_GROUP_FIELDS, operations=record_ops(GROUPS, "id"),
             synopsis="A group by id."),
        Path(f"group/name/{_NAME}", fields=_GROUP_FIELDS, operations=record_ops(GROUPS, "name"),
             synopsis="A group by name."),
        Path("group-alias", fields=_ALIAS_FIELDS, operations={Op.UPDATE: create_alias_op(GROUPS)},
             synopsis="Create a group alias."),
        Path("group-alias/id/?", operations={Op.LIST: list_group_aliases}, synopsis="List group aliases."),
        Path(f"group-alias/id/{_ID}", fields=_ALIAS_FIELDS, operations=alias_ops(GROUPS),
             synopsis="A group alias by id."),
        Path("lookup/entity", fields=_LOOKUP_FIELDS, operations={Op.UPDATE: lookup_op(ENTITIES)},
             synopsis="Find an entity."),
        Path("lookup/group", fields=_LOOKUP_FIELDS, operations={Op.UPDATE: lookup_op(GROUPS)},
             synopsis="Find a group."),
    ]


__all__ = ["IdentityBackend", "entity_json", "group_json", "paths"]
