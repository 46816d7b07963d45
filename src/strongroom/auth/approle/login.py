"""AppRole login: role_id (+ secret_id when the role binds one) in, a leased token out.

Checks, in order: the role exists for this role_id; the caller's address is within the role's
secret_id_bound_cidrs; the secret id exists for this role, has not expired, and the address is
within its cidr_list; then one use of it is spent. Unknown role ids, unknown or spent secret ids
all get the same "invalid role or secret ID", so a failed login tells nothing about which part
was wrong.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.auth.approle.store import now
from strongroom.errors import InvalidCredentials, InvalidRequest
from strongroom.framework import (
    Field,
    FieldData,
    FieldType,
    Op,
    Path,
    Request,
    Response,
    addr_allowed,
    parse_cidrs,
)
from strongroom.logical import Alias, Auth

if TYPE_CHECKING:
    from strongroom.auth.approle import AppRoleBackend

INVALID_CREDENTIALS = "invalid role or secret ID"


def paths() -> list[Path[AppRoleBackend]]:
    return [
        Path("login", fields={
            "role_id": Field(FieldType.STRING, "Identifier of the role."),
            "secret_id": Field(FieldType.STRING, "Secret ID of the role.", sensitive=True),
        }, operations={Op.UPDATE: login}, unauthenticated=True,
            synopsis="Issue a token for a role id and secret id."),
    ]


async def login_alias(req: Request) -> str:
    """The role_id a login request names (Vault's alias lookahead), for core's user lockout."""
    if req.operation in (Op.UPDATE, Op.CREATE) and req.path.strip("/") == "login":
        role_id = req.data.get("role_id") if isinstance(req.data, dict) else None
        return role_id.strip() if isinstance(role_id, str) else ""
    return ""


def _unauthorized(addr: str, what: str) -> InvalidRequest:
    return InvalidRequest(f'source address "{addr}" unauthorized by CIDR restrictions on the {what}')


async def login(b: AppRoleBackend, req: Request, d: FieldData) -> Response | None:
    role_id: str = d.get("role_id")
    if not role_id:
        raise InvalidRequest("missing role_id")
    store = await b.store(req)
    role = await store.role_for_id(role_id)
    if role is None:
        raise InvalidRequest(INVALID_CREDENTIALS)
    addr = req.connection.remote_addr
    if role.secret_id_bound_cidrs and not addr_allowed(addr, role.secret_id_bound_cidrs):
        raise _unauthorized(addr, "role")
    metadata: dict[str, str] = {}
    token_cidrs = role.token.token_bound_cidrs
    if role.bind_secret_id:
        secret_id: str = d.get("secret_id")
        if not secret_id:
            raise InvalidRequest("missing secret_id")
        key = store.secret_key(role.name, secret_id)
        # SECURITY: the whole check-and-spend runs under the entry's lock, so two concurrent
        # logins cannot both spend the last use of a secret id.
        async with b.locks.lock_for(key):
            entry = await store.secret(key)
            if entry is None:  # a wrong secret id for a real role counts toward its lockout (as OpenBao)
                raise InvalidCredentials(INVALID_CREDENTIALS)
            ts = now()
            if entry.expired(ts):
                await store.delete_secret(key, entry)
                raise InvalidRequest(INVALID_CREDENTIALS)
            if entry.cidr_list and not addr_allowed(addr, entry.cidr_list):
                raise _unauthorized(addr, "secret ID")
            if entry.num_uses == 1:
                await store.delete_secret(key, entry)
            elif entry.num_uses > 1:
                entry.num_uses -= 1
                entry.last_updated_time = ts
                await store.put_secret(key, entry)
        metadata.update(entry.metadata)
        if entry.token_bound_cidrs:
            token_cidrs = parse_cidrs(entry.token_bound_cidrs)
    metadata["role_name"] = role.name
    auth = role.token.fill_auth(Auth(metadata=metadata, display_name="",
                                     alias=Alias(name=role.role_id, metadata=dict(metadata))), addr)
    if not role.token.token_strictly_bind_ip:
        auth.bound_cidrs = list(token_cidrs)
    return Response(auth=auth)
