"""AppRole roles: role/<name> CRUD, its role id, and the per-property endpoints
(role/<name>/policies, .../secret-id-ttl, ...) that let ACLs delegate one property at a time.

Role names are case-insensitive (stored lower-case), as in Vault. Writes merge: a field not sent
keeps its stored value. Every write is validated whole before anything is stored.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from strongroom.auth.approle.store import AppRoleStore, Role
from strongroom.errors import InvalidRequest, NotFound, UnsupportedPath
from strongroom.framework import (
    Field,
    FieldData,
    FieldType,
    Op,
    Path,
    Request,
    Response,
    TokenParams,
    name_regex,
    parse_cidrs,
    token_fields,
)

if TYPE_CHECKING:
    from strongroom.auth.approle import AppRoleBackend

ROLE_NAME = Field(FieldType.LOWERCASE_STRING, "Name of the role.")
_ROLE_FIELDS: dict[str, Field] = {
    "role_name": ROLE_NAME,
    "role_id": Field(FieldType.STRING, "Identifier of the role. Defaults to a UUID."),
    "bind_secret_id": Field(FieldType.BOOL, "Require secret_id to be presented when logging in.", default=True),
    "secret_id_bound_cidrs": Field(FieldType.COMMA_STRING_SLICE, "CIDR blocks allowed to log in."),
    "secret_id_num_uses": Field(FieldType.INT, "Number of times a secret ID can be used; 0 is unlimited."),
    "secret_id_ttl": Field(FieldType.DURATION, "Duration after which a secret ID expires; 0 is never."),
    "local_secret_ids": Field(FieldType.BOOL, "Secret IDs are cluster-local. Only settable at creation."),
    **token_fields(legacy=("policies", "period")),
}

# Per-property endpoints: URL suffix -> (fields it accepts, keys a read shows).
_PROPERTIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "policies": (("token_policies", "policies"), ("token_policies",)),
    "secret-id-num-uses": (("secret_id_num_uses",), ("secret_id_num_uses",)),
    "secret-id-ttl": (("secret_id_ttl",), ("secret_id_ttl",)),
    "token-ttl": (("token_ttl",), ("token_ttl",)),
    "token-max-ttl": (("token_max_ttl",), ("token_max_ttl",)),
    "token-num-uses": (("token_num_uses",), ("token_num_uses",)),
    "secret-id-bound-cidrs": (("secret_id_bound_cidrs",), ("secret_id_bound_cidrs",)),
    "token-bound-cidrs": (("token_bound_cidrs",), ("token_bound_cidrs",)),
    "period": (("token_period", "period"), ("token_period",)),
}
_ROLE_ATTRS = ("bind_secret_id", "secret_id_bound_cidrs", "secret_id_num_uses", "secret_id_ttl")


def paths() -> list[Path[AppRoleBackend]]:
    role = f"role/{name_regex('role_name')}"
    table = [
        Path("role/?", operations={Op.LIST: list_roles}, synopsis="List the roles."),
        Path(role, fields=_ROLE_FIELDS,
             operations={Op.READ: read_role, Op.CREATE: write_role, Op.UPDATE: write_role, Op.DELETE: delete_role},
             exists=role_exists, synopsis="Create, read, update or delete a role."),
        Path(f"{role}/role-id",
             fields={"role_name": ROLE_NAME, "role_id": Field(FieldType.STRING, "Identifier of the role.")},
             operations={Op.READ: read_role_id, Op.UPDATE: write_role_id},
             synopsis="Read or set the role id of a role."),
        Path(f"{role}/local-secret-ids", fields={"role_name": ROLE_NAME},
             operations={Op.READ: read_property}, synopsis="Whether the role's secret IDs are cluster-local."),
    ]
    for suffix, (accepted, _) in _PROPERTIES.items():
        fields = {"role_name": ROLE_NAME, **{k: _ROLE_FIELDS[k] for k in accepted}}
        table.append(Path(f"{role}/{suffix}", fields=fields,
                          operations={Op.READ: read_property, Op.UPDATE: write_property,
                                      Op.DELETE: delete_property},
                          synopsis=f"Read, update or reset the role's {suffix.replace('-', ' ')}."))
    return table


def apply_fields(role: Role, d: FieldData, *, creating: bool) -> None:
    """Merge the role fields of ``d`` into ``role`` and validate the result (InvalidRequest)."""
    role.token.update(d)
    for key in _ROLE_ATTRS:
        if key in d.schema and d.has(key):
            setattr(role, key, d.get(key))
    if "local_secret_ids" in d.schema and d.has("local_secret_ids"):
        if not creating and d.get("local_secret_ids") != role.local_secret_ids:
            raise InvalidRequest("local_secret_ids can only be modified during role creation")
        role.local_secret_ids = d.get("local_secret_ids")
    validate(role)


def validate(role: Role) -> None:
    role.secret_id_bound_cidrs = parse_cidrs(role.secret_id_bound_cidrs, bare_hosts=False)
    if role.secret_id_num_uses < 0:
        raise InvalidRequest("secret_id_num_uses cannot be negative")
    if not role.bind_secret_id and not role.secret_id_bound_cidrs and not role.token.token_bound_cidrs:
        raise InvalidRequest("at least one constraint should be enabled on the role")


async def _role_or_404(b: AppRoleBackend, req: Request, d: FieldData) -> tuple[AppRoleStore, Role]:
    store = await b.store(req)
    role = await store.role(d.get("role_name"))
    if role is None:
        raise NotFound()
    return store, role


async def _assign_role_id(store: AppRoleStore, role: Role, role_id: str) -> None:
    """Point the index at ``role`` under ``role_id``; refuse an id another role holds."""
    holder = await store.role_for_id(role_id)
    if holder is not None and holder.name != role.name:
        raise InvalidRequest("role_id already in use")
    old = role.role_id
    role.role_id = role_id
    await store.set_role_id(role, role_id)
    if old and old != role_id:
        await store.delete_role_id(old)


# -- handlers -----------------------------------------------------------------------------------
async def list_roles(b: AppRoleBackend, req: Request, d: FieldData) -> Response | None:
    names = await (await b.store(req)).role_names()
    if not names:
        raise NotFound()
    return Response(data={"keys": names})


async def role_exists(b: AppRoleBackend, req: Request, d: FieldData) -> bool:
    return await (await b.store(req)).role(d.get("role_name")) is not None


async def read_role(b: AppRoleBackend, req: Request, d: FieldData) -> Response | None:
    _, role = await _role_or_404(b, req, d)
    return Response(data=role.to_response())


async def write_role(b: AppRoleBackend, req: Request, d: FieldData) -> Response | None:
    store = await b.store(req)
    name: str = d.get("role_name")
    existing = await store.role(name)
    role = existing or Role(name=name)
    apply_fields(role, d, creating=existing is None)
    role_id: str = d.get("role_id") or role.role_id or str(uuid.uuid4())
    await _assign_role_id(store, role, role_id)
    await store.put_role(role)
    return None


async def delete_role(b: AppRoleBackend, req: Request, d: FieldData) -> Response | None:
    store = await b.store(req)
    role = await store.role(d.get("role_name"))
    if role is None:
        return None
    for key in await store.secret_keys(role.name):
        async with b.locks.lock_for(key):
            entry = await store.secret(key)
            if entry is not None:
                await store.delete_secret(key, entry)
    if role.role_id:
        await store.delete_role_id(role.role_id)
    await store.storage.delete(f"role/{role.name}")
    return None


async def read_role_id(b: AppRoleBackend, req: Request, d: FieldData) -> Response | None:
    _, role = await _role_or_404(b, req, d)
    return Response(data={"role_id": role.role_id})


async def write_role_id(b: AppRoleBackend, req: Request, d: FieldData) -> Response | None:
    role_id: str = d.get("role_id")
    if not role_id:
        raise InvalidRequest("missing role_id")
    store = await b.store(req)
    role = await store.role(d.get("role_name"))
    if role is None:
        raise InvalidRequest("role entry not found")
    await _assign_role_id(store, role, role_id)
    await store.put_role(role)
    return None


def _suffix(req: Request) -> str:
    return req.path.rsplit("/", 1)[-1]


async def read_property(b: AppRoleBackend, req: Request, d: FieldData) -> Response | None:
    _, role = await _role_or_404(b, req, d)
    suffix = _suffix(req)
    shown = _PROPERTIES[suffix][1] if suffix in _PROPERTIES else ("local_secret_ids",)
    full = role.to_response()
    return Response(data={k: full[k] for k in shown})


async def write_property(b: AppRoleBackend, req: Request, d: FieldData) -> Response | None:
    store = await b.store(req)
    role = await store.role(d.get("role_name"))
    if role is None:
        raise UnsupportedPath(f'role "{d.get("role_name")}" does not exist')
    accepted = _PROPERTIES[_suffix(req)][0]
    if not any(d.has(k) for k in accepted):
        raise InvalidRequest(f"missing {accepted[0]}")
    apply_fields(role, d, creating=False)
    await store.put_role(role)
    return None


async def delete_property(b: AppRoleBackend, req: Request, d: FieldData) -> Response | None:
    store, role = await _role_or_404(b, req, d)
    fresh_role, fresh_token = Role(name=role.name), TokenParams()
    for key in _PROPERTIES[_suffix(req)][0]:
        if key in _ROLE_ATTRS:
            setattr(role, key, getattr(fresh_role, key))
        elif hasattr(fresh_token, key):
            setattr(role.token, key, getattr(fresh_token, key))
        else:
            role.token.legacy.pop(key, None)
    validate(role)
    await store.put_role(role)
    return None
