"""The auth/token/* path table over a :class:`TokenStore`.

Core authenticates the caller before any of these run and puts its entry on the request
(``req.token_entry``, ``req.client_token``) along with ``req.sudo``. Errors mirror OpenBao's:
an unknown token on lookup is 403 "bad token"; an unknown accessor is 400 "invalid accessor";
revoking an unknown token is a silent success.
"""

from __future__ import annotations

import math
from typing import Any
from collections.abc import Awaitable, Callable

from strongroom.core.tokens import create, roles
from strongroom.core.tokens.create import caller_entry
from strongroom.core.tokens.entry import TokenEntry
from strongroom.core.tokens.store import TokenStore
from strongroom.errors import InvalidRequest, PermissionDenied
from strongroom.framework import (
    Backend,
    BackendConfig,
    Field,
    FieldData,
    FieldType,
    Op,
    Path,
    Request,
    Response,
)
from strongroom.logical import RENEWING_CONNECTION

PolicyExists = Callable[[str], Awaitable[bool]]


def paths() -> list[Path[TokenBackend]]:
    return [
        *create.paths(),
        Path("lookup", fields={"token": _TOKEN}, operations={Op.READ: lookup, Op.UPDATE: lookup},
             synopsis="Look up a token (the caller's own when none is given)."),
        Path("lookup-self", operations={Op.READ: lookup_self, Op.UPDATE: lookup_self},
             synopsis="Look up the calling token."),
        Path("lookup-accessor", fields={"accessor": _ACCESSOR}, operations={Op.UPDATE: lookup_accessor},
             synopsis="Look up a token by its accessor."),
        Path("renew", fields={"token": _TOKEN, "increment": _INCREMENT}, operations={Op.UPDATE: renew},
             synopsis="Renew a token."),
        Path("renew-self", fields={"increment": _INCREMENT}, operations={Op.UPDATE: renew_self},
             synopsis="Renew the calling token."),
        Path("renew-accessor", fields={"accessor": _ACCESSOR, "increment": _INCREMENT},
             operations={Op.UPDATE: renew_accessor}, synopsis="Renew a token by its accessor."),
        Path("revoke", fields={"token": _TOKEN}, operations={Op.UPDATE: revoke},
             synopsis="Revoke a token and all its children."),
        Path("revoke-self", operations={Op.UPDATE: revoke_self},
             synopsis="Revoke the calling token and all its children."),
        Path("revoke-accessor", fields={"accessor": _ACCESSOR}, operations={Op.UPDATE: revoke_accessor},
             synopsis="Revoke a token and its children by the token's accessor."),
        Path("revoke-orphan", fields={"token": _TOKEN}, operations={Op.UPDATE: revoke_orphan},
             synopsis="Revoke a token, leaving its children alive as orphans (root or sudo)."),
        # Accessors can revoke every token at once: listing them requires sudo.
        Path("accessors/?", operations={Op.LIST: list_accessors}, root=True,
             synopsis="List token accessors (sudo)."),
        *roles.paths(),
        Path("tidy", operations={Op.UPDATE: tidy}, synopsis="Clean up token store leftovers."),
    ]


_TOKEN = Field(FieldType.STRING, "The token.", sensitive=True, query=True)
_ACCESSOR = Field(FieldType.STRING, "The token's accessor.")
_INCREMENT = Field(FieldType.DURATION, "Requested TTL from now; defaults to the token's own TTL.")


class TokenBackend(Backend):
    """The token auth method. Always mounted at auth/token/; cannot be disabled."""

    backend_type = "credential"
    help = "Tokens: create, look up, renew and revoke them, and manage the roles tokens are made from."

    def __init__(self, store: TokenStore, config: BackendConfig, policy_exists: PolicyExists | None = None,
                 identity_policies: Callable[[str], tuple[str, ...]] | None = None) -> None:
        super().__init__(config, paths())
        self.store = store
        self.policy_exists = policy_exists
        self.identity_policies = identity_policies  # an entity id's policies (core/identity/)

    def lookup_data(self, entry: TokenEntry, now: float, token: str) -> dict[str, Any]:
        """A lookup's data, with the entity's and its groups' policies as Vault shows them."""
        data = entry.to_lookup_data(now, token)
        if entry.entity_id and self.identity_policies is not None:
            extra = self.identity_policies(entry.entity_id)
            if extra:
                data["identity_policies"] = sorted(extra)
        return data

    async def missing_policy_warnings(self, policies: list[str]) -> list[str]:
        """Creating a token with a policy that does not exist is allowed, with a warning."""
        if self.policy_exists is None:
            return []
        return [f'Policy "{p}" does not exist' for p in policies
                if p not in ("root", "default") and not await self.policy_exists(p)]


def token_backend(store: TokenStore, config: BackendConfig, *, policy_exists: PolicyExists | None = None,
                  identity_policies: Callable[[str], tuple[str, ...]] | None = None) -> TokenBackend:
    return TokenBackend(store, config, policy_exists, identity_policies)


# -- lookup -------------------------------------------------------------------------------------
async def lookup(b: TokenBackend, req: Request, d: FieldData) -> Response | None:
    if not d.get("token"):
        return await lookup_self(b, req, d)
    token, entry = await _by_token(b, d)
    if entry is None:
        raise PermissionDenied("bad token")
    return Response(data=b.lookup_data(entry, b.store.clock(), token))


async def lookup_self(b: TokenBackend, req: Request, d: FieldData) -> Response | None:
    entry = caller_entry(req)
    now = b.store.clock()
    # The answer holds until the token changes (core/readcache.py watches it) or, for a token that
    # expires, until its "ttl" (whole seconds left) ticks down.
    left = entry.remaining(now)
    until = math.inf if not entry.expire_time else entry.expire_time - left if left else 0.0
    return Response(data=b.lookup_data(entry, now, req.client_token), cache_until=until)


async def lookup_accessor(b: TokenBackend, req: Request, d: FieldData) -> Response | None:
    entry = await _by_accessor(b, d)
    # By accessor the token itself is never shown: knowing an accessor must not yield the token.
    return Response(data=b.lookup_data(entry, b.store.clock(), ""))


async def _by_token(b: TokenBackend, d: FieldData) -> tuple[str, TokenEntry | None]:
    """The request's "token" (required) and its entry, None if there is no such token: each path
    answers an unknown token its own way (403, 400 or silence), as OpenBao does."""
    token: str = d.get("token")
    if not token:
        raise InvalidRequest("missing token ID")
    return token, await b.store.lookup(token)


async def _accessor_entry(b: TokenBackend, d: FieldData) -> TokenEntry | None:
    """The entry of the request's "accessor" (required), None if there is no such accessor."""
    accessor: str = d.get("accessor")
    if not accessor:
        raise InvalidRequest("missing accessor")
    return await b.store.lookup_accessor(accessor)


async def _by_accessor(b: TokenBackend, d: FieldData) -> TokenEntry:
    entry = await _accessor_entry(b, d)
    if entry is None:
        raise InvalidRequest("invalid accessor")
    return entry


# -- renew --------------------------------------------------------------------------------------
async def renew(b: TokenBackend, req: Request, d: FieldData) -> Response | None:
    token, entry = await _by_token(b, d)
    if entry is None:
        raise InvalidRequest("token not found")
    return await _renewed(b, req, entry, token, d)


async def renew_self(b: TokenBackend, req: Request, d: FieldData) -> Response | None:
    return await _renewed(b, req, caller_entry(req), req.client_token, d)


async def renew_accessor(b: TokenBackend, req: Request, d: FieldData) -> Response | None:
    return await _renewed(b, req, await _by_accessor(b, d), "", d)


async def _renewed(b: TokenBackend, req: Request, entry: TokenEntry, token: str, d: FieldData) -> Response:
    warnings: list[str] = []
    renewing = RENEWING_CONNECTION.set(req.connection)  # for the auth method's check (cert auth)
    try:
        entry = await b.store.renew(entry, d.get("increment"), warnings)
    finally:
        RENEWING_CONNECTION.reset(renewing)
    ttl = round(entry.expire_time - entry.last_renewal)
    return Response(auth=entry.to_auth(token, lease_duration=ttl), warnings=warnings)


# -- revoke -------------------------------------------------------------------------------------
async def revoke(b: TokenBackend, req: Request, d: FieldData) -> Response | None:
    _, entry = await _by_token(b, d)
    if entry is not None:  # revoking an unknown token succeeds silently, as in Vault
        await b.store.revoke(entry)
    return None


async def revoke_self(b: TokenBackend, req: Request, d: FieldData) -> Response | None:
    await b.store.revoke(caller_entry(req))
    return None


async def revoke_accessor(b: TokenBackend, req: Request, d: FieldData) -> Response | None:
    entry = await _accessor_entry(b, d)
    if entry is None:
        return Response(warnings=["No token found with this accessor"])
    await b.store.revoke(entry)
    return None


async def revoke_orphan(b: TokenBackend, req: Request, d: FieldData) -> Response | None:
    # Not a sudo path in the ACL sense (Vault's isn't either): the handler checks, and answers 400.
    if not (req.sudo or "root" in caller_entry(req).policies):
        raise InvalidRequest("root or sudo privileges required to revoke and orphan")
    _, entry = await _by_token(b, d)
    if entry is None:
        raise InvalidRequest("token to revoke not found")
    await b.store.revoke(entry, orphan_children=True)
    return None


# -- maintenance --------------------------------------------------------------------------------
async def list_accessors(b: TokenBackend, req: Request, d: FieldData) -> Response | None:
    return Response(data={"keys": await b.store.list_accessors()})


async def tidy(b: TokenBackend, req: Request, d: FieldData) -> Response | None:
    # Nothing to do: revocation removes index records as it goes and tolerates dangling ones.
    return Response(warnings=["Tidy is not needed by this token store; nothing was done."], status=202)
