"""login/<username>: the directory checks the password; the token gets the union of the policies of
the config (token_policies), of every LDAP group (and user-listed extra group) mapped at
groups/<name>, and of users/<username>.

Refusals: a wrong password, an unknown user, or an empty password (deny_null_bind) answer 400 with
Vault's message; a directory that cannot be reached or does not answer within the configured
timeouts answers 500 naming the URL, never hanging the request.

Renewal (:func:`renew_auth`, called by core before a token from this mount is renewed) looks the
user up again without a password: a user gone from the directory, or whose policies have changed,
cannot renew (Vault's "policies have changed, not renewing").
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from strongroom.auth.ldap import client
from strongroom.auth.ldap.config import LdapConfig, get_config, load_config, storage
from strongroom.auth.ldap.mapping import GROUP_PREFIX, USER_PREFIX, get_mapping
from strongroom.errors import Internal, InvalidCredentials, InvalidRequest
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response
from strongroom.logical import Auth, Storage

if TYPE_CHECKING:
    from strongroom.auth.ldap import LdapBackend

T = TypeVar("T")


def paths() -> list[Path[LdapBackend]]:
    return [
        Path("login/(?P<username>.+)", fields={
            "username": Field(FieldType.STRING, "DN (distinguished name) to be used for login."),
            "password": Field(FieldType.STRING, "Password for this user.", sensitive=True),
        }, operations={Op.UPDATE: login}, unauthenticated=True,
            synopsis="Log in with an LDAP username and password."),
    ]


async def login_alias(req: Request) -> str:
    """The user a login request names (Vault's alias lookahead), for core's user lockout: trimmed
    (a directory that ignores surrounding spaces must not give a locked user a fresh name) and, as
    the config compares names, lower-cased."""
    if req.operation not in (Op.UPDATE, Op.CREATE) or not req.path.startswith("login/"):
        return ""
    username = req.path[len("login/"):].strip()
    cfg = await get_config(req) if username else None
    if cfg is None:
        return ""
    return username if cfg.case_sensitive_names else username.lower()


async def _directory(cfg: LdapConfig, fn: Callable[..., T], *args: str) -> T:
    """``fn(settings, *args)`` in a worker thread, under a hard ceiling above ldap3's own socket
    timeouts (every URL's connect, then a few operations)."""
    settings = cfg.settings()
    limit = cfg.connection_timeout * max(1, len(settings.urls)) + cfg.request_timeout * 5
    try:
        return await asyncio.wait_for(asyncio.to_thread(fn, settings, *args), timeout=limit)
    except client.LdapError as e:
        if e.credentials:  # a failed bind counts toward the user's lockout (core/lockout.py), as OpenBao
            raise InvalidCredentials(str(e)) from None
        raise Internal(str(e)) from None
    except TimeoutError:
        raise Internal("ldap operation failed: the LDAP server did not answer in time") from None


async def policies_for(st: Storage, cfg: LdapConfig, username: str, ldap_groups: list[str]) -> list[str]:
    """The mapped policies (without the config's token_policies) of a user and its groups."""
    cs = cfg.case_sensitive_names
    user = await get_mapping(st, USER_PREFIX, username if cs else username.lower())
    groups = [*(user.groups if user else []), *ldap_groups]
    policies: list[str] = []
    for g in dict.fromkeys(g if cs else g.lower() for g in groups):
        group = await get_mapping(st, GROUP_PREFIX, g)
        if group is not None:
            policies += group.policies
    if user is not None:
        policies += user.policies
    return list(dict.fromkeys(policies))


async def login(b: LdapBackend, req: Request, d: FieldData) -> Response | None:
    username: str = d.get("username")
    password: str = d.get("password") or ""
    cfg = await get_config(req)
    if cfg is None:
        raise InvalidRequest("auth method not configured")
    if not username:
        raise InvalidRequest("missing username")
    addr = req.connection.remote_addr
    cfg.token.check_source(addr)
    result = await _directory(cfg, client.login, username, password)
    policies = await policies_for(storage(req), cfg, username, result.groups)
    auth = cfg.token.fill_auth(Auth(metadata={"username": username}, display_name=username), addr)
    auth.policies = list(dict.fromkeys([*auth.policies, *policies]))
    auth.group_aliases = list(result.groups)  # external identity groups with these aliases (as Vault)
    return Response(auth=auth)


async def renew_auth(st: Storage, auth: Auth) -> None:
    cfg = await load_config(st)
    if cfg is None:
        raise InvalidRequest("auth method not configured")
    username = auth.metadata.get("username", "")
    found = await _directory(cfg, client.lookup, username)
    if found is None:
        raise InvalidRequest("user no longer exists in the LDAP directory, not renewing")
    want = {*cfg.token.token_policies, *await policies_for(st, cfg, username, found.groups)} - {"default"}
    if want != set(auth.policies) - {"default"}:
        raise InvalidRequest("policies have changed, not renewing")
