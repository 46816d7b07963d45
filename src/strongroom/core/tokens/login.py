"""Tokens for logins: an auth method answers a login with ``Response(auth=Auth(...))`` and no token;
core mints the token here, from what the method vouched for and the mount's TTLs.

Rules (Vault's): the token is an orphan; "default" is added unless ``no_default_policy``; the TTL
is the method's (or the mount's default), capped by the method's max_ttl and the mount's max; the
display name is the mount path with "/" as "-", followed by the method's display name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.core.tokens.entry import display_name_for, sanitize_policies
from strongroom.core.tokens.ttl import creation_ttl, effective_limit

if TYPE_CHECKING:
    from strongroom.core.tokens.entry import TokenEntry
    from strongroom.core.tokens.store import TokenStore
    from strongroom.logical import Auth, Request


async def issue_login_token(store: TokenStore, auth: Auth, req: Request, *, default_ttl: int,
                            max_ttl: int) -> tuple[str, TokenEntry, list[str]]:
    """(raw token, entry, warnings); fills ``auth`` in as the login response shows it."""
    policies = sanitize_policies(auth.policies, add_default=not auth.no_default_policy,
                                 no_default=auth.no_default_policy)
    limit = effective_limit(auth.max_ttl, max_ttl)
    ttl, warnings = creation_ttl(ttl=auth.ttl, period=auth.period, explicit_max_ttl=auth.explicit_max_ttl,
                                 default_ttl=default_ttl, max_ttl=limit, root_only=policies == ["root"])
    source = req.mount_point.removeprefix("auth/").replace("/", "-")
    display = (source + auth.display_name).rstrip("-")
    token, entry = await store.create(
        policies=policies, no_default_policy=True, path=req.full_path or req.path,
        display_name=display_name_for(display).removeprefix("token-") if display else "token",
        meta=auth.metadata, ttl=ttl, explicit_max_ttl=auth.explicit_max_ttl, period=auth.period,
        renewable=auth.renewable, num_uses=auth.num_uses, entity_id=auth.entity_id,
        bound_cidrs=auth.bound_cidrs, max_ttl=auth.max_ttl, source_addr=req.connection.remote_addr,
        internal=auth.internal_data,
    )
    filled = entry.to_auth(token, lease_duration=ttl)
    auth.client_token, auth.accessor, auth.lease_duration = token, entry.accessor, ttl
    auth.policies = auth.token_policies = filled.policies
    auth.renewable = entry.renewable
    auth.orphan = True
    return token, entry, warnings
