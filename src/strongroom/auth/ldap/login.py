"""login/<username>: the directory checks the password; the token gets the union of the policies of
the config (token_policies), of every LDAP group (and user-listed extra group) mapped at
groups/<name>, and of users/<username>.

Refusals: a wrong password, an unknown user, or an empty password (deny_null_bind) answer 400 with
Vault's message; a directory that cannot be reached or does not answer within the configured
timeouts answers 500 naming the URL, never hanging the request.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from strongroom.auth.ldap import client
from strongroom.auth.ldap.config import get_config
from strongroom.auth.ldap.mapping import GROUP_PREFIX, USER_PREFIX, get_mapping
from strongroom.errors import Internal, InvalidRequest, PermissionDenied
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response, addr_allowed
from strongroom.logical import Auth

if TYPE_CHECKING:
    from strongroom.auth.ldap import LdapBackend


def paths() -> list[Path[LdapBackend]]:
    return [
        Path("login/(?P<username>.+)", fields={
            "username": Field(FieldType.STRING, "DN (distinguished name) to be used for login."),
            "password": Field(FieldType.STRING, "Password for this user.", sensitive=True),
        }, operations={Op.UPDATE: login}, unauthenticated=True,
            synopsis="Log in with an LDAP username and password."),
    ]


async def login(b: LdapBackend, req: Request, d: FieldData) -> Response | None:
    username: str = d.get("username")
    password: str = d.get("password") or ""
    cfg = await get_config(req)
    if cfg is None:
        raise InvalidRequest("auth method not configured")
    if not username:
        raise InvalidRequest("missing username")
    addr = req.connection.remote_addr
    if not addr_allowed(addr, cfg.token.token_bound_cidrs):
        raise PermissionDenied()
    try:
        # A hard ceiling over ldap3's own socket timeouts: connect to every URL, then a few operations.
        limit = cfg.connection_timeout * max(1, len(cfg.settings().urls)) + cfg.request_timeout * 5
        result = await asyncio.wait_for(asyncio.to_thread(client.login, cfg.settings(), username, password),
                                        timeout=limit)
    except client.LdapError as e:
        if e.credentials:
            raise InvalidRequest(str(e)) from None
        raise Internal(str(e)) from None
    except TimeoutError:
        raise Internal("ldap operation failed: the LDAP server did not answer in time") from None

    cs = cfg.case_sensitive_names
    name = username if cs else username.lower()
    user = await get_mapping(req, USER_PREFIX, name)
    groups = [*(user.groups if user else []), *result.groups]
    policies: list[str] = []
    for g in dict.fromkeys(g if cs else g.lower() for g in groups):
        group = await get_mapping(req, GROUP_PREFIX, g)
        if group is not None:
            policies += group.policies
    if user is not None:
        policies += user.policies
    auth = cfg.token.fill_auth(Auth(metadata={"username": username}, display_name=username), addr)
    auth.policies = list(dict.fromkeys([*auth.policies, *policies]))
    return Response(auth=auth)
