"""The request flow, top to bottom. Each step is one short function; `handle_request` lists them in order.

    1 guard          sealed (barrier closed, or post-unseal not finished: Core.sealed) -> 503
    2 authenticate   token -> TokenEntry (skipped on a backend's unauthenticated paths)
    3 authorize      compiled ACL for the token's policies; existence check decides create vs update
    4 audit request  fail closed: no device could record it -> error, and the backend never runs
    5 route          mount's backend handles the mount-relative request
    6 register       leases for secrets (deleting the backend's write-ahead entries in the same
                     commit: framework/wal.py); tokens (and their leases) for logins, unless
                     login MFA holds the login for its second factor (core/identity/mfa)
    7 wrap           response wrapping into a single-use token's cubbyhole
    8 audit response the outcome, success or error (an error before step 4 is audited here too)
    finally          a token whose last use this was is revoked; a read the edge may cache is
                     marked so (``req.cached_as``, see core/readcache.py)

``handle_action`` runs the same steps for sys/seal and sys/step-down, which http/sys.py answers
itself: core acts in place of a backend (steps 5-7).
"""

from __future__ import annotations

import logging
from time import perf_counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from strongroom.core.readcache import Cacheable
from strongroom.core.tokens.entry import TOKEN_TYPE_SERVICE
from strongroom.core.tokens.login import issue_login_token
from strongroom.errors import (
    Internal,
    InvalidRequest,
    PermissionDenied,
    Sealed,
    StrongroomError,
    UnsupportedPath,
)
from strongroom.framework.wal import commit_wal_deletes
from strongroom.logical import Auth, Operation, Request, Response

if TYPE_CHECKING:
    from strongroom.core import Core
    from strongroom.core.identity import EntityRecord
    from strongroom.core.audit import Replay
    from strongroom.core.mounts import MountEntry
    from strongroom.core.tokens import TokenEntry

log = logging.getLogger(__name__)


async def handle_request(core: Core, req: Request) -> Response | None:
    guard(core)
    started = perf_counter()  # sys/metrics (core/metrics.py): the request's only cost is this pair
    hit = core.router.match(req.path)
    open_path = hit is not None and hit[0].backend is not None and hit[0].backend.is_unauthenticated(hit[1])
    entry: TokenEntry | None = None
    exhausted = audited = False
    resp: Response | None = None
    err: StrongroomError | None = None
    acl_until: float | None = None
    try:
        entry = await authenticate(core, req, optional=open_path)
        if not open_path:
            assert entry is not None
            exhausted = await core.tokens.use(entry)
            acl_until = await authorize(core, req, entry, hit)
        await core.audit.log_request(req)
        audited = True
        mount, rel = route_target(req, hit)
        check_wrapping_bounds(req, mount)
        routed = prepare(req, mount, rel)  # a login passes the user lockout check first (core/lockout.py)
        resp = await (core.lockout.handle_login(mount, routed) if open_path
                      else mount.backend.handle(routed))  # type: ignore[union-attr]
        resp = await register(core, req, mount, resp)
        resp = await wrap(core, req, resp)
        return resp
    except Exception as e:
        err = as_error(e)
        if err is e:
            raise  # as it was raised, its own cause kept
        raise err from e
    finally:
        replay = await audit_outcome(core, req, resp, err, request_logged=audited)
        if exhausted and entry is not None:
            await core.tokens.revoke(entry)
        elif replay is not None and hit is not None and entry is not None and resp is not None:
            until = reusable_until(req, entry, hit[0], resp, acl_until)
            if until > 0:
                req.cached_as = Cacheable(until, replay, replay.size)
        core.metrics.observe(req.operation, req.mount_point, perf_counter() - started)


async def handle_action(core: Core, req: Request, act: Callable[[], Awaitable[None]]) -> None:
    """sys/seal, sys/step-down: steps 1-4 with sudo required, then ``act`` (core's own, no backend),
    then step 8. SECURITY: the audit request entry is written before acting and fails closed, so a
    seal nobody could record does not happen. As Vault, a token's last use is spent (revoked)
    before acting, and after a seal no response entry is written: the audit devices are gone."""
    guard(core)
    entry: TokenEntry | None = None
    exhausted = audited = False
    err: StrongroomError | None = None
    try:
        entry = await authenticate(core, req, optional=False)
        assert entry is not None
        exhausted = await core.tokens.use(entry)
        await authorize(core, req, entry, None, sudo=True)
        await core.audit.log_request(req)
        audited = True
        if exhausted:
            exhausted = False
            await core.tokens.revoke(entry)
        await act()
    except Exception as e:
        err = as_error(e)
        if err is e:
            raise  # as it was raised, its own cause kept
        raise err from e
    finally:
        if not core.sealed:
            await audit_outcome(core, req, None, err, request_logged=audited)
            if exhausted and entry is not None:
                await core.tokens.revoke(entry)


def as_error(e: Exception) -> StrongroomError:
    """What a failure is audited and answered as: itself, or (a bug) a bare 500 whose cause the
    edge logs and the client never sees."""
    return e if isinstance(e, StrongroomError) else Internal("internal error")


def guard(core: Core) -> None:
    """SECURITY: ``core.sealed``, not ``core.barrier.sealed``: the barrier is open while post-unseal
    is still setting up (audit last), and a request let in then would go unaudited."""
    if core.sealed:
        raise Sealed()


async def authenticate(core: Core, req: Request, *, optional: bool) -> TokenEntry | None:
    """The caller's token entry. Missing or unknown tokens are 403, except on a backend's
    unauthenticated (login) paths, where a token is looked up if sent but never required."""
    req.unauthenticated = optional
    entry = await core.tokens.lookup(req.client_token) if req.client_token else None
    if entry is not None and not entry.allows_address(req.connection.remote_addr):
        entry = None  # a token bound to CIDRs is worthless from anywhere else
    if entry is not None and entry.entity_id:
        entity = core.identity.resolve(entry.entity_id)
        if entity is not None and entity.disabled:
            entry = None  # SECURITY: a disabled entity's tokens are worthless (Vault: 403)
    if entry is None:
        if optional:
            return None
        raise PermissionDenied()
    req.token_entry = entry
    req.token_id = entry.id
    req.client_token_accessor = entry.accessor
    req.policies = effective_policies(core, entry)
    req.display_name = entry.display_name
    req.entity_id = entry.entity_id
    return entry


async def authorize(core: Core, req: Request, entry: TokenEntry, hit: tuple[MountEntry, str] | None,
                    *, sudo: bool = False) -> float | None:
    """403 unless the token's policies allow this operation here (and sudo where the path, or
    ``sudo``, demands it).
    Returns when the ACL that allowed it lapses (a stanza with an expiry), None if never."""
    backend = hit[0].backend if hit is not None else None
    if hit is not None and backend is not None and req.operation is Operation.UPDATE:
        mount, rel = hit
        routed = prepare(Request(req.operation, req.path, req.data, token_id=req.token_id), mount, rel)
        checked, exists = await backend.exists(routed)
        if checked and not exists:
            req.operation = Operation.CREATE
    acl = await core.policies.acl(req.policies if req.token_entry is entry else effective_policies(core, entry))
    result = acl.check(req.operation, req.path, req.data, wrap_ttl=req.wrap_ttl)
    if not result.allowed:
        raise PermissionDenied()
    req.sudo = result.sudo
    if not result.sudo and (sudo or (hit is not None and backend is not None and backend.is_root_path(hit[1]))):
        raise PermissionDenied()
    return acl.expires_at


def effective_policies(core: Core, entry: TokenEntry) -> list[str]:
    """The token's own policies plus, at request time, its entity's and all its groups'
    (transitively): a change to the entity or a group applies on the next request."""
    if not entry.entity_id:
        return entry.policies
    extra = core.identity.policies_for(entry.entity_id)
    if not extra:
        return entry.policies
    return list(dict.fromkeys([*entry.policies, *extra]))


def route_target(req: Request, hit: tuple[MountEntry, str] | None) -> tuple[MountEntry, str]:
    if hit is None or hit[0].backend is None:
        raise UnsupportedPath(f'no handler for route "{req.path}". route entry not found.')
    return hit


def prepare(req: Request, mount: MountEntry, rel: str) -> Request:
    """The request as the backend sees it: mount-relative path and the mount's storage view."""
    if not req.full_path:
        req.full_path = req.path
    req.path = rel
    req.mount_point = mount.full_path
    req.mount_type = mount.type
    req.mount_accessor = mount.accessor
    req.storage = mount.view
    return req


async def register(core: Core, req: Request, mount: MountEntry, resp: Response | None) -> Response | None:
    """Leases for a backend's secrets; for a login (``auth`` without a token), the token itself."""
    if resp is None:
        return None
    backend = mount.backend
    if resp.secret is not None and backend is not None and backend.generates_leases:
        await core.expiration.register_secret(req, resp)
    if resp.auth is not None and not resp.auth.client_token:
        entity = await login_entity(core, mount, resp.auth)
        # Login MFA (core/identity/mfa): a login an enforcement matches is held for its second
        # factor (no token now; sys/mfa/validate issues it) or passes the X-Vault-MFA header.
        if not await core.mfa.hold_login(req, mount, resp, entity):
            await issue_login(core, req, mount, resp)
    if resp.wal_ids and mount.view is not None:
        # Write-ahead entries no lease commit took (no lease was registered): the request is
        # done with them (framework/wal.py).
        ids, resp.wal_ids = resp.wal_ids, []
        await commit_wal_deletes(mount.view, ids)
    return resp


async def issue_login(core: Core, req: Request, mount: MountEntry, resp: Response) -> None:
    """The token of a login (``resp.auth``, its entity already found), with the mount's TTLs; also
    how sys/mfa/validate finishes a login held for MFA (``req``: the login request's facts)."""
    assert resp.auth is not None
    default_ttl, max_ttl = core.mounts.ttls(mount)
    _, _, warnings = await issue_login_token(core.tokens, resp.auth, req, default_ttl=default_ttl, max_ttl=max_ttl)
    if resp.auth.entity_id:  # as Vault: policies = token's + identity's, both sorted
        resp.auth.identity_policies = sorted(core.identity.policies_for(resp.auth.entity_id))
        resp.auth.policies = sorted({*resp.auth.token_policies, *resp.auth.identity_policies})
    resp.warnings.extend(warnings)


async def login_entity(core: Core, mount: MountEntry, auth: Auth) -> EntityRecord | None:
    """A login: the entity of the method's alias (found, or created with the alias), whose id the
    token carries; the external groups the method reported are the entity's on that mount. A
    disabled entity cannot log in (403). The alias name is the method's ``auth.alias``, else Vault's
    builtins' defaults: metadata username, role name, or the display name."""
    if mount.type == "token" or mount.table != "auth":
        return None
    alias = auth.alias
    name = alias.name if alias is not None else (
        auth.metadata.get("username") or auth.metadata.get("role_name") or auth.metadata.get("role")
        or auth.display_name)
    if not name:
        return None
    metadata = dict(alias.metadata) if alias is not None else {}
    entity = await core.identity.login(mount.accessor, name, metadata)
    if entity.disabled:
        raise PermissionDenied()
    if auth.group_aliases is not None:
        await core.identity.set_external_groups(entity.id, mount.accessor, list(auth.group_aliases))
    auth.entity_id = entity.id
    return entity


def check_wrapping_bounds(req: Request, mount: MountEntry) -> None:
    """A mount's min/max_wrapping_ttl (Strongroom's own tune settings), checked before the backend runs.
    As with a policy's, setting either makes wrapping mandatory on the mount."""
    low, high = mount.config.min_wrapping_ttl, mount.config.max_wrapping_ttl
    if high and (not req.wrap_ttl or req.wrap_ttl > high):
        raise InvalidRequest(f"this mount requires response wrapping with a TTL of at most {high}s")
    if low and (not req.wrap_ttl or req.wrap_ttl < low):
        raise InvalidRequest(f"this mount requires a response-wrapping TTL of at least {low}s")


async def wrap(core: Core, req: Request, resp: Response | None) -> Response | None:
    """Replace the response by a wrapping token when the client (or policy) asked for it."""
    if resp is None or not req.wrap_ttl or resp.raw_body is not None:
        return resp
    return await core.wrapping.wrap(req, resp)


async def audit_outcome(core: Core, req: Request, resp: Response | None, err: StrongroomError | None,
                        *, request_logged: bool) -> Replay | None:
    """Step 8. A request refused before step 4 (bad token, denied) is audited here, request and
    error both. If step 4 itself failed, there is nothing more any device can take. For a read the
    edge may cache, the makings of its entries' replay."""
    if not request_logged and core.audit.enabled:
        if isinstance(err, Internal):
            return None
        try:
            await core.audit.log_request(req, error=err)
        except StrongroomError:
            return None
    return await core.audit.log_response(req, resp, err)


def reusable_until(req: Request, entry: TokenEntry, mount: MountEntry, resp: Response, acl_until: float | None) -> float:
    """Until when (token-store clock) the edge may give this answer again to the same token for
    the same read without asking anyone (core/readcache.py); 0: it may not. Only a plain read whose
    backend vouches for its answer, by a token whose every use is alike: no use limit (each use is
    a write), no CIDR binding (the answer would depend on the address). Nothing wrapped, leased or
    logged in; no redirect, no raw body, no status but 200."""
    if (not req.cacheable or req.operation is not Operation.READ or req.wrap_ttl or not resp.cache_until
            or resp.wrap_info is not None or resp.auth is not None or resp.raw_body is not None or resp.redirect
            or resp.status not in (0, 200) or resp.data is None
            or (resp.secret is not None and (resp.secret.lease_id or mount.backend is None
                                             or mount.backend.generates_leases))
            or entry.num_uses != 0 or entry.bound_cidrs or entry.type != TOKEN_TYPE_SERVICE):
        return 0.0
    until = resp.cache_until
    if entry.expire_time:
        until = min(until, entry.expire_time)
    if acl_until is not None:
        until = min(until, acl_until)
    return until
