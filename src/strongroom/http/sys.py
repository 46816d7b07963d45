"""The sys/ endpoints that must work while sealed or uninitialised: init, seal-status, unseal, seal,
health, leader, step-down. Each handler returns (status, JSON body). sys/seal and sys/step-down
need a token with sudo and take the pipeline's steps (see ``act``)."""

from __future__ import annotations

import base64
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from strongroom import __version__
from strongroom.barrier.seal import parse_key_share
from strongroom.core.pipeline import handle_action
from strongroom.errors import InvalidRequest, StrongroomError, UnsupportedOperation
from strongroom.framework.fields import Field, FieldData, FieldType
from strongroom.http.logical import Peer, parse_body, to_request

if TYPE_CHECKING:
    from strongroom.core import Core

Handler = Callable[["Core", str, dict[str, str], dict[str, str], bytes], Awaitable[tuple[int, Any]]]


async def init(core: Core, method: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> tuple[int, Any]:
    if method == "GET":
        return 200, {"initialized": await core.initialized()}
    if method not in ("PUT", "POST"):
        raise UnsupportedOperation()
    d = FieldData(parse_body(body), {
        "secret_shares": Field(FieldType.INT), "secret_threshold": Field(FieldType.INT),
        "pgp_keys": Field(FieldType.COMMA_STRING_SLICE), "root_token_pgp_key": Field(FieldType.STRING),
        "stored_shares": Field(FieldType.INT), "recovery_shares": Field(FieldType.INT),
        "recovery_threshold": Field(FieldType.INT), "recovery_pgp_keys": Field(FieldType.COMMA_STRING_SLICE),
    })
    if d.get("pgp_keys") or d.get("root_token_pgp_key") or d.get("recovery_pgp_keys"):
        raise InvalidRequest("PGP-encrypted key shares are not supported yet")
    shares, threshold = d.get("secret_shares"), d.get("secret_threshold")
    result = await core.initialize(shares, threshold)
    return 200, {
        "keys": [k.hex() for k in result.keys],
        "keys_base64": [base64.b64encode(k).decode() for k in result.keys],
        "root_token": result.root_token,
    }


async def seal_status(core: Core, method: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> tuple[int, Any]:
    return 200, await core.seal_status()


async def unseal(core: Core, method: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> tuple[int, Any]:
    if method not in ("PUT", "POST"):
        raise UnsupportedOperation()
    d = FieldData(parse_body(body), {"key": Field(FieldType.STRING), "reset": Field(FieldType.BOOL),
                                     "migrate": Field(FieldType.BOOL)})
    if d.get("migrate"):
        raise InvalidRequest("seal migration is not supported: this server has only the Shamir seal")
    key = parse_key_share(d.get("key")) if d.has("key") and d.get("key") else None
    await core.unseal(key, reset=d.get("reset"))
    return 200, await core.seal_status()


async def _seal(core: Core) -> None:
    await core.seal()


async def _step_down(core: Core) -> None:
    # Without HA a single node is always active: nothing to step down from. With HA the active
    # gives the lock up (a standby never gets here: http/app.py redirects it to the active).
    if core.ha is not None:
        await core.ha.step_down()


# Sealed-safe endpoints that act with a token's authority: the whole request goes through the
# pipeline's steps (core/pipeline.py handle_action: token, CIDRs, uses, sudo, audit) before acting.
ACTIONS: dict[str, Callable[[Core], Awaitable[None]]] = {
    "sys/seal": _seal,
    "sys/step-down": _step_down,
}


async def act(core: Core, path: str, method: str, query_string: str, headers: dict[str, str], body: bytes,
              request_id: str, peer: Peer) -> tuple[int, Any]:
    """sys/seal and sys/step-down (``path`` one of ACTIONS): 204 once done."""
    if method not in ("PUT", "POST"):
        raise UnsupportedOperation()
    req = to_request(method, path, query_string, body, headers, request_id, peer)
    await handle_action(core, req, lambda: ACTIONS[path](core))
    return 204, None


async def leader(core: Core, method: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> tuple[int, Any]:
    core.require_unsealed()
    if core.ha is None:
        return 200, {"ha_enabled": False}  # what Vault answers without an HA storage backend
    is_self, address = core.ha.leader()
    is_self = is_self and core.serving_active
    return 200, {
        "ha_enabled": True, "is_self": is_self, "active_time": core.ha.active_time if is_self else "0001-01-01T00:00:00Z",
        "leader_address": address,
        "leader_cluster_address": await core.ha.leader_cluster_address() if address else "",
        "performance_standby": False, "performance_standby_last_remote_wal": 0,
    }


def _code(query: dict[str, str], name: str, default: int) -> int:
    if name not in query:
        return default
    try:
        return int(query[name])
    except ValueError:
        raise InvalidRequest(f"bad code value {query[name]!r} for {name}") from None


async def health(core: Core, method: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> tuple[int, Any]:
    """sys/health: the status code carries the state so load balancers need not parse the body."""
    initialized = await core.initialized()
    sealed = core.sealed  # sealed until post-unseal has finished, as every request sees it
    standby = not sealed and not core.serving_active  # with HA: unsealed but not the active node
    if not initialized:
        status = _code(query, "uninitcode", 501)
    elif sealed:
        status = _code(query, "sealedcode", 503)
    elif standby and not _flag(query, "standbyok"):
        status = _code(query, "standbycode", 429)
    else:
        status = _code(query, "activecode", 200)
    # Validate the codes we did not use too, so a typo is reported rather than ignored.
    for name, default in (("drsecondarycode", 472), ("performancestandbycode", 473), ("standbycode", 429),
                          ("haunhealthycode", 474), ("removedcode", 530)):
        _code(query, name, default)
    data: dict[str, Any] = {
        "initialized": initialized, "sealed": sealed, "standby": standby or (sealed and initialized),
        "performance_standby": False, "replication_performance_mode": "disabled",
        "replication_dr_mode": "disabled", "server_time_utc": int(time.time()), "version": __version__,
    }
    if not sealed:
        data["cluster_name"] = core.cluster_name
        data["cluster_id"] = core.cluster_id
    return status, data


def _flag(query: dict[str, str], name: str) -> bool:
    return query.get(name, "").lower() in ("", "1", "true", "t") if name in query else False


# The methods each sealed-safe endpoint answers (OpenBao's); any other is 405. A LIST reaches the
# app as a GET with ?list=true (http/wire.py), so that GET is taken for the LIST it most likely
# was; OpenBao, which tells the two apart, answers a GET with ?list=true as a GET.
_READ, _WRITE = frozenset({"GET"}), frozenset({"PUT", "POST"})
_TRUE = frozenset({"1", "true", "t", "yes", "y"})  # as http/logical.py reads ?list=
METHODS: dict[str, frozenset[str]] = {
    "sys/init": _READ | _WRITE,
    "sys/seal-status": _READ,
    "sys/unseal": _WRITE,
    "sys/seal": _WRITE,
    "sys/health": frozenset({"GET", "HEAD"}),
    "sys/leader": _READ,
    "sys/step-down": _WRITE,
}


def check_method(path: str, method: str, query: dict[str, str]) -> None:
    allowed = METHODS.get(path)
    if allowed is None:
        return
    listing = method == "LIST" or (method in ("GET", "HEAD") and query.get("list", "").lower() in _TRUE)
    if listing or method not in allowed:
        raise UnsupportedOperation()


ROUTES: dict[str, Handler] = {
    "sys/init": init,
    "sys/seal-status": seal_status,
    "sys/unseal": unseal,
    "sys/health": health,
    "sys/leader": leader,
}


def error_body(err: StrongroomError) -> bytes:
    return orjson.dumps({"errors": err.messages})
