"""The opening of a login to a role that a workload proves itself for (container, kubernetes): the
role and the credential are given, the role exists and admits the caller's address (its
token_bound_cidrs), the mount is configured. One place, so the checks and Vault's wording of their
errors stay in step between the methods."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from strongroom.errors import Internal, InvalidRequest
from strongroom.framework import FieldData, Request, TokenParams, storage_of
from strongroom.logical import Storage


class TokenRole(Protocol):
    token: TokenParams


R = TypeVar("R", bound=TokenRole)
C = TypeVar("C")


async def open_login(req: Request, d: FieldData, credential: str,
                     get_role: Callable[[Storage, str], Awaitable[R | None]],
                     get_config: Callable[[Storage], Awaitable[C | None]],
                     check: Callable[[str], None] | None = None) -> tuple[str, R, C]:
    """(the credential, stripped; the role; the config). ``check`` judges the credential's form
    before anything is read."""
    role_name: str = d.get("role")
    if not role_name:
        raise InvalidRequest("missing role")
    value: str = d.get(credential).strip()
    if not value:
        raise InvalidRequest(f"missing {credential}")
    if check is not None:
        check(value)
    s = storage_of(req)
    role = await get_role(s, role_name)
    if role is None:
        raise InvalidRequest(f'invalid role name "{role_name}"')
    role.token.check_source(req.connection.remote_addr)
    config = await get_config(s)
    if config is None:
        raise Internal("could not load backend configuration")
    return value, role, config
