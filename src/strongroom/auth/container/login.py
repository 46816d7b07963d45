"""login: a container ID and a role in, a token out, once the engine confirms the container.

Order: ``role`` and ``container_id`` present and well-formed; the role exists; the caller's address is
within the role's token_bound_cidrs; the engine knows the container, it is running, and it carries
every label the role binds (exact values, compared in constant time); with ``check_remote_address``
(the default) the login must come from one of the container's own IP addresses.

SECURITY: a container ID is not a secret. Without ``check_remote_address`` (or token_bound_cidrs
narrowing callers to a trusted network), anyone who can reach the server and learns a running
container's ID can log in as it. Stopped and unknown containers are always refused.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

from strongroom.auth.container.engine import CONTAINER_RE, EngineUnavailable, addresses, inspect
from strongroom.auth.rolelogin import open_login
from strongroom.auth.container.store import Role, get_config, get_role
from strongroom.errors import InvalidRequest, PermissionDenied, StrongroomError
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response
from strongroom.logical import Auth, Storage

if TYPE_CHECKING:
    from strongroom.auth.container import ContainerBackend


class EngineGatewayError(StrongroomError):
    """The container engine gave no usable answer."""

    status_code = 502


def paths() -> list[Path[ContainerBackend]]:
    return [Path("login", fields={
        "role": Field(FieldType.STRING, "Name of the role against which the login is being attempted."),
        "container_id": Field(FieldType.STRING, "ID (or name) of the container logging in."),
    }, operations={Op.UPDATE: login}, unauthenticated=True,
        synopsis="Authenticates a container, as its engine reports it.")]


def _labels_match(info: dict[str, Any], role: Role) -> None:
    cfg = info.get("Config")
    labels = cfg.get("Labels") if isinstance(cfg, dict) else None
    labels = labels if isinstance(labels, dict) else {}
    for key, want in role.bound_labels.items():
        have = labels.get(key)
        if not isinstance(have, str) or not hmac.compare_digest(have.encode(), want.encode()):
            raise PermissionDenied("container labels do not match the role")


def _check_id(container: str) -> None:
    if not CONTAINER_RE.fullmatch(container):
        raise InvalidRequest("invalid container_id")


async def login(b: ContainerBackend, req: Request, d: FieldData) -> Response | None:
    container, role, config = await open_login(req, d, "container_id", get_role, get_config, _check_id)
    addr = req.connection.remote_addr
    try:
        info = await inspect(b.engines.client(config.engine_socket, b.engine_timeout), container)
    except EngineUnavailable as e:
        b.system.logger.warning("container login: the engine could not be asked: %s", e)
        raise EngineGatewayError(f"container engine unavailable: {e}") from None
    if info is None:
        raise PermissionDenied("container not found")
    state = info.get("State")
    if not isinstance(state, dict) or state.get("Running") is not True:
        raise PermissionDenied("container is not running")
    _labels_match(info, role)
    if role.check_remote_address and addr not in addresses(info):
        raise PermissionDenied("login does not come from the container's address")
    cid = str(info.get("Id") or container)
    name = str(info.get("Name") or "").lstrip("/")
    metadata = {"container_id": cid, "container_name": name, "role": role.name}
    auth = role.token.fill_auth(Auth(metadata=metadata, display_name=f"container-{name or cid[:12]}",
                                     internal_data={"role": role.name, "container_id": cid}), addr)
    return Response(auth=auth)


async def renew_auth(b: ContainerBackend, s: Storage, auth: Auth) -> None:
    """A token is renewed only while its container still runs with the role's labels (and the role
    still grants the same policies)."""
    name, cid = auth.metadata.get("role", ""), auth.metadata.get("container_id", "")
    role = await get_role(s, name) if name else None
    if role is None:
        raise InvalidRequest(f'role "{name}" no longer exists, not renewing')
    if set(role.token.token_policies) - {"default"} != set(auth.token_policies or auth.policies) - {"default"}:
        raise InvalidRequest("policies have changed, not renewing")
    config = await get_config(s)
    if config is None or not CONTAINER_RE.fullmatch(cid):
        raise InvalidRequest("not renewing: the container cannot be checked")
    try:
        info = await inspect(b.engines.client(config.engine_socket, b.engine_timeout), cid)
    except EngineUnavailable as e:
        raise EngineGatewayError(f"container engine unavailable: {e}") from None
    state = (info or {}).get("State")
    if info is None or not isinstance(state, dict) or state.get("Running") is not True:
        raise InvalidRequest("the container is no longer running, not renewing")
    _labels_match(info, role)
