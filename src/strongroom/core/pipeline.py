"""The request flow, top to bottom. Each step is one short function; `handle_request` lists them in order.

    1 guard          sealed -> 503
    2 authenticate   token -> TokenEntry (skipped on a backend's unauthenticated paths)
    3 authorize      compiled ACL for the token's policies; existence check decides create vs update
    4 audit request  (issue 3: fail closed before the backend runs)
    5 route          mount's backend handles the mount-relative request
    6 register       (issue 3: leases for secrets, tokens for logins)
    7 wrap           (issue 3: response wrapping)
    8 audit response (issue 3)
    finally          a token whose last use this was is revoked
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.errors import InvalidRequest, PermissionDenied, Sealed, UnsupportedPath
from strongroom.logical import Operation, Request, Response

if TYPE_CHECKING:
    from strongroom.core import Core
    from strongroom.core.mounts import MountEntry
    from strongroom.core.tokens import TokenEntry


async def handle_request(core: Core, req: Request) -> Response | None:
    guard(core)
    hit = core.router.match(req.path)
    open_path = hit is not None and hit[0].backend is not None and hit[0].backend.is_unauthenticated(hit[1])
    entry = await authenticate(core, req, optional=open_path)
    exhausted = False
    try:
        if not open_path:
            assert entry is not None
            exhausted = await core.tokens.use(entry)
            await authorize(core, req, entry, hit)
        refuse_wrapping(req)
        mount, rel = route_target(req, hit)
        return await mount.backend.handle(prepare(req, mount, rel))  # type: ignore[union-attr]
    finally:
        if exhausted and entry is not None:
            await core.tokens.revoke(entry)


def guard(core: Core) -> None:
    if core.barrier.sealed:
        raise Sealed()


async def authenticate(core: Core, req: Request, *, optional: bool) -> TokenEntry | None:
    """The caller's token entry. Missing or unknown tokens are 403, except on a backend's
    unauthenticated (login) paths, where a token is looked up if sent but never required."""
    req.unauthenticated = optional
    entry = await core.tokens.lookup(req.client_token) if req.client_token else None
    if entry is not None and not entry.allows_address(req.connection.remote_addr):
        entry = None  # a token bound to CIDRs is worthless from anywhere else
    if entry is None:
        if optional:
            return None
        raise PermissionDenied()
    req.token_entry = entry
    req.token_id = entry.id
    req.client_token_accessor = entry.accessor
    req.policies = entry.policies
    req.display_name = entry.display_name
    req.entity_id = entry.entity_id
    return entry


async def authorize(core: Core, req: Request, entry: TokenEntry, hit: tuple[MountEntry, str] | None) -> None:
    """403 unless the token's policies allow this operation here (and sudo where the path demands it)."""
    backend = hit[0].backend if hit is not None else None
    if hit is not None and backend is not None and req.operation is Operation.UPDATE:
        mount, rel = hit
        routed = prepare(Request(req.operation, req.path, req.data, token_id=req.token_id), mount, rel)
        checked, exists = await backend.exists(routed)
        if checked and not exists:
            req.operation = Operation.CREATE
    acl = await core.policies.acl(entry.policies)
    result = acl.check(req.operation, req.path, req.data, wrap_ttl=req.wrap_ttl)
    if not result.allowed:
        raise PermissionDenied()
    req.sudo = result.sudo
    if hit is not None and backend is not None and backend.is_root_path(hit[1]) and not result.sudo:
        raise PermissionDenied()


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


def refuse_wrapping(req: Request) -> None:
    # Response wrapping arrives with the lifecycle work; until then refuse (before the backend runs)
    # rather than hand a secret out unwrapped to a client that asked for it to be wrapped.
    if req.wrap_ttl:
        raise InvalidRequest("response wrapping is not supported yet")
