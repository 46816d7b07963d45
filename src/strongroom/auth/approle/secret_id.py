"""AppRole secret ids: issue (generated or custom), list accessors, look up and destroy by
secret id or accessor, and tidy away expired ones.

A secret id's own num_uses/ttl may only narrow the role's secret_id_num_uses/secret_id_ttl, and
its cidr_list/token_bound_cidrs only narrow the role's CIDR bindings.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import orjson

from strongroom.auth.approle.store import SECRET_ID_PREFIX, AppRoleStore, Role, SecretIdEntry, now
from strongroom.errors import InvalidRequest, NotFound, UnsupportedPath
from strongroom.framework import (
    Field,
    FieldData,
    FieldType,
    Op,
    Path,
    Request,
    Response,
    cidrs_subset,
    name_regex,
    parse_cidrs,
)

if TYPE_CHECKING:
    from strongroom.auth.approle import AppRoleBackend

TIDY_WARNING = ("Tidy operation successfully started. Any information from the operation will be printed "
                "to Strongroom's server logs.")

_ROLE = Field(FieldType.LOWERCASE_STRING, "Name of the role.")
_SECRET_ID = Field(FieldType.STRING, "The secret ID.", sensitive=True)
_ACCESSOR = Field(FieldType.STRING, "Accessor of the secret ID.")
_ISSUE_FIELDS: dict[str, Field] = {
    "role_name": _ROLE,
    "metadata": Field(FieldType.ANY, "JSON object (or a string of one) of string values, set on tokens "
                      "issued with this secret ID. Logged in audit logs in plaintext."),
    "cidr_list": Field(FieldType.COMMA_STRING_SLICE, "CIDR blocks from which this secret ID may be used."),
    "token_bound_cidrs": Field(FieldType.COMMA_STRING_SLICE, "CIDR blocks from which issued tokens may be used."),
    "num_uses": Field(FieldType.INT, "Number of times this secret ID can be used; 0 is unlimited."),
    "ttl": Field(FieldType.DURATION, "Duration after which this secret ID expires; 0 is never."),
}


def paths() -> list[Path[AppRoleBackend]]:
    role = f"role/{name_regex('role_name')}"
    return [
        Path(f"{role}/secret-id/?", fields=_ISSUE_FIELDS,
             operations={Op.UPDATE: issue_secret_id, Op.LIST: list_accessors},
             synopsis="Issue a secret ID for the role, or list the accessors of its secret IDs."),
        Path(f"{role}/custom-secret-id", fields={**_ISSUE_FIELDS, "secret_id": _SECRET_ID},
             operations={Op.UPDATE: issue_secret_id}, synopsis="Register a secret ID of the caller's choosing."),
        Path(f"{role}/secret-id/lookup", fields={"role_name": _ROLE, "secret_id": _SECRET_ID},
             operations={Op.UPDATE: lookup_secret_id}, synopsis="Read the properties of a secret ID."),
        Path(f"{role}/secret-id/destroy", fields={"role_name": _ROLE, "secret_id": _SECRET_ID},
             operations={Op.UPDATE: destroy_secret_id, Op.DELETE: destroy_secret_id},
             synopsis="Destroy a secret ID."),
        Path(f"{role}/secret-id-accessor/lookup", fields={"role_name": _ROLE, "secret_id_accessor": _ACCESSOR},
             operations={Op.UPDATE: lookup_accessor}, synopsis="Read the properties of a secret ID by accessor."),
        Path(f"{role}/secret-id-accessor/destroy", fields={"role_name": _ROLE, "secret_id_accessor": _ACCESSOR},
             operations={Op.UPDATE: destroy_accessor, Op.DELETE: destroy_accessor},
             synopsis="Destroy a secret ID by accessor."),
        Path("tidy/secret-id", operations={Op.UPDATE: tidy}, synopsis="Remove expired secret IDs."),
    ]


def _metadata(raw: Any) -> dict[str, str]:
    if raw is None or raw == "":
        return {}
    try:
        value = orjson.loads(raw) if isinstance(raw, str) else raw
    except orjson.JSONDecodeError:
        raise InvalidRequest("failed to parse metadata: invalid <key,value> format") from None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidRequest("failed to parse metadata: invalid <key,value> format")
    return {str(k): v for k, v in value.items()}


def _narrowed(role: Role, d: FieldData) -> tuple[int, int]:
    """(num_uses, ttl) of a new secret id: the request's, within the role's limits."""
    num_uses, sent = d.get_ok("num_uses")
    if not sent:
        num_uses = role.secret_id_num_uses
    elif num_uses < 0:
        raise InvalidRequest("num_uses cannot be negative")
    elif role.secret_id_num_uses > 0 and (num_uses == 0 or num_uses > role.secret_id_num_uses):
        raise InvalidRequest("num_uses cannot be higher than the role's secret_id_num_uses")
    ttl, sent = d.get_ok("ttl")
    if not sent:
        ttl = role.secret_id_ttl
    elif role.secret_id_ttl > 0 and (ttl == 0 or ttl > role.secret_id_ttl):
        raise InvalidRequest("ttl cannot be longer than the role's secret_id_ttl")
    return num_uses, ttl


def _cidrs(d: FieldData, name: str, role_cidrs: list[str], what: str) -> list[str]:
    cidrs = parse_cidrs(d.get(name), bare_hosts=False)
    if cidrs and role_cidrs and not cidrs_subset(cidrs, role_cidrs):
        raise InvalidRequest(f"failed to verify subset relationship between {what} on the role "
                             f"{role_cidrs} and {what} on the secret ID {cidrs}")
    return cidrs


async def _role(b: AppRoleBackend, req: Request, d: FieldData) -> tuple[AppRoleStore, Role]:
    store = await b.store(req)
    name: str = d.get("role_name")
    role = await store.role(name)
    if role is None:
        raise UnsupportedPath(f'role "{name}" does not exist')
    return store, role


# -- handlers -----------------------------------------------------------------------------------
async def issue_secret_id(b: AppRoleBackend, req: Request, d: FieldData) -> Response | None:
    store, role = await _role(b, req, d)
    if not role.bind_secret_id:
        raise InvalidRequest("bind_secret_id is not set on the role")
    custom = "secret_id" in d.schema
    secret_id: str = d.get("secret_id") if custom else str(uuid.uuid4())
    if not secret_id:
        raise InvalidRequest("missing secret_id")
    num_uses, ttl = _narrowed(role, d)
    ts = now()
    entry = SecretIdEntry(
        accessor=str(uuid.uuid4()), num_uses=num_uses, ttl=ttl, creation_time=ts, last_updated_time=ts,
        expiration_time=ts + ttl if ttl else 0.0, metadata=_metadata(d.get("metadata")),
        cidr_list=_cidrs(d, "cidr_list", role.secret_id_bound_cidrs, "CIDR blocks"),
        token_bound_cidrs=_cidrs(d, "token_bound_cidrs", role.token.token_bound_cidrs, "token bound CIDR blocks"))
    key = store.secret_key(role.name, secret_id)
    async with b.locks.lock_for(key):
        if await store.secret(key) is not None:
            raise InvalidRequest("SecretID is already registered")
        await store.put_secret(key, entry)
        await store.put_accessor(entry.accessor, key)
    return Response(data={"secret_id": secret_id, "secret_id_accessor": entry.accessor,
                          "secret_id_num_uses": num_uses, "secret_id_ttl": ttl})


async def list_accessors(b: AppRoleBackend, req: Request, d: FieldData) -> Response | None:
    store, role = await _role(b, req, d)
    accessors = []
    for key in await store.secret_keys(role.name):
        entry = await store.secret(key)
        if entry is not None:
            accessors.append(entry.accessor)
    if not accessors:
        raise NotFound()
    return Response(data={"keys": accessors})


def _secret_id(d: FieldData) -> str:
    secret_id: str = d.get("secret_id")
    if not secret_id:
        raise InvalidRequest("missing secret_id")
    return secret_id


async def lookup_secret_id(b: AppRoleBackend, req: Request, d: FieldData) -> Response | None:
    secret_id = _secret_id(d)
    store, role = await _role(b, req, d)
    entry = await store.secret(store.secret_key(role.name, secret_id))
    return None if entry is None else Response(data=entry.to_response())


async def destroy_secret_id(b: AppRoleBackend, req: Request, d: FieldData) -> Response | None:
    secret_id = _secret_id(d)
    store, role = await _role(b, req, d)
    await _destroy(b, store, store.secret_key(role.name, secret_id))
    return None


async def _destroy(b: AppRoleBackend, store: AppRoleStore, key: str) -> None:
    async with b.locks.lock_for(key):
        entry = await store.secret(key)
        if entry is not None:
            await store.delete_secret(key, entry)


async def _accessor_key(b: AppRoleBackend, req: Request, d: FieldData) -> tuple[AppRoleStore, str]:
    accessor: str = d.get("secret_id_accessor")
    if not accessor:
        raise InvalidRequest("missing secret_id_accessor")
    store, role = await _role(b, req, d)
    key = await store.key_for_accessor(role.name, accessor)
    if key is None:
        raise UnsupportedPath(f'failed to find accessor entry for secret_id_accessor: "{accessor}"')
    return store, key


async def lookup_accessor(b: AppRoleBackend, req: Request, d: FieldData) -> Response | None:
    store, key = await _accessor_key(b, req, d)
    entry = await store.secret(key)
    return None if entry is None else Response(data=entry.to_response())


async def destroy_accessor(b: AppRoleBackend, req: Request, d: FieldData) -> Response | None:
    store, key = await _accessor_key(b, req, d)
    await _destroy(b, store, key)
    return None


async def tidy(b: AppRoleBackend, req: Request, d: FieldData) -> Response | None:
    """Delete expired secret ids and accessors whose secret id is gone. Runs to completion before
    answering (Vault answers 202 first and tidies in the background)."""
    store = await b.store(req)
    ts = now()
    for role_dir in await store.storage.list(SECRET_ID_PREFIX):
        for name in await store.storage.list(SECRET_ID_PREFIX + role_dir):
            key = SECRET_ID_PREFIX + role_dir + name
            async with b.locks.lock_for(key):
                entry = await store.secret(key)
                if entry is not None and entry.expired(ts):
                    await store.delete_secret(key, entry)
    for acc in await store.storage.list("accessor/"):
        raw = await store.storage.get("accessor/" + acc)
        if raw is not None and await store.storage.get(str(orjson.loads(raw)["key"])) is None:
            await store.storage.delete("accessor/" + acc)
    return Response(warnings=[TIDY_WARNING], status=202)
