"""What the broker keeps between entries: each enabled device's writers (:class:`_Active`), the
auth and request members one request's two entries share (:class:`_Built`), and a cached read's
entries minus what changes per request (:class:`Replay`), with the functions that build them
(and a security event's data as logged)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from strongroom.audit import AuditDevice, CommonOptions
from strongroom.audit.entry import Hasher, Mount, caller_member, line, now, request_member, splice_request
from strongroom.core.audit.table import AuditEntry
from strongroom.logical import Request


@dataclass(slots=True)
class _Active:
    entry: AuditEntry
    device: AuditDevice
    common: CommonOptions
    hasher: Hasher
    prefix: bytes
    # The device's synchronous writer (True: recorded; False: use ``write``), if it has one.
    inline: Callable[[bytes], bool] | None
    # The same for several entries at once (one write), if the device has it, and whether it
    # would write them now (see FileDevice.ready_inline).
    inline_lines: Callable[[Sequence[bytes]], bool] | None
    inline_ready: Callable[[], bool] | None
    # Queues entries for the device's one write per event-loop turn (FileDevice.stage_lines).
    stage: Callable[[Sequence[bytes], Callable[[bool], None]], bool] | None
    # Serialises ``write`` for devices that cannot take concurrent writes (sockets).
    lock: asyncio.Lock | None


@dataclass(slots=True)
class _Built:
    """The members log_request built for one request, for log_response to reuse: the same caller
    and request appear in both entries. SECURITY: only HMAC'd output and identities are kept, never
    a token or a plaintext value, and only until the request's response entry (bounded by
    _MAX_BUILT when that never comes)."""

    request_id: str
    key: tuple[Any, ...]
    actives: tuple[_Active, ...]
    members: list[tuple[bytes, bytes | None]]  # per device: auth member, request member (None: rebuild)


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _flat_items(data: dict[str, Any]) -> tuple[tuple[str, Any], ...] | None:
    """``data``'s items when every value is immutable (a str, number, bool or None: nothing a backend
    could change in place), else None. Kept on the request itself (Request.audit_items), so the
    broker holds no request value: the request member is reused if the data still holds the very
    same objects (:func:`_unchanged`)."""
    scalars = _SCALARS
    for v in data.values():
        if type(v) not in scalars:
            return None
    return tuple(data.items())


def _unchanged(data: dict[str, Any], items: tuple[tuple[str, Any], ...]) -> bool:
    """``data`` holds exactly ``items`` (the same objects under the same keys)."""
    if len(data) != len(items):
        return False
    missing = _SCALARS  # never a value in data
    for k, v in items:
        if data.get(k, missing) is not v:
            return False
    return True


_MAX_BUILT = 1024


@dataclass(frozen=True, slots=True)
class Replay:
    """A cached read's audit entries minus what changes per request (see core/readcache.py):
    per device, its auth member, its request member without id and peer (in two parts: up to its
    path, and from there), its response member. The auth member and the first request part are
    the same for many replays and shared between them (AuditBroker._share); ``size`` counts only
    the bytes this replay holds on its own. SECURITY: HMAC'd output only, like _Built."""

    actives: tuple[_Active, ...]
    members: tuple[tuple[bytes, bytes, bytes, bytes], ...]
    size: int = 0


# Byte strings shared by kept replays (see Replay): at most this many, forgotten all at once when
# full (sharing saves memory; it never decides what is written).
_SHARED_MAX = 4096


def _fingerprint(req: Request, mount: Mount | None) -> tuple[Any, ...]:
    """Everything outside ``req.data`` that the auth and request members are built from: if any of
    it changed while the backend ran (sys/wrapping/wrap sets wrap_ttl; routing sets mount_point),
    the members are built again rather than reused."""
    return (req.operation, req.full_path or req.path, req.wrap_ttl,
            mount or (req.mount_point, req.mount_type, req.mount_accessor), id(req.token_entry),
            id(req.client_token), id(req.client_token_accessor), req.connection.remote_addr,
            req.connection.remote_port)


def _replayed(active: _Active, members: tuple[bytes, bytes, bytes, bytes], request_id: str, addr: str,
              port: int) -> tuple[bytes, bytes]:
    """A replay's request and response entries for one device (one time for both: they are
    written together)."""
    caller, start, rest, response = members
    request = splice_request(start + rest, request_id, addr, port)
    at = now()
    return (line(b"request", caller, request, prefix=active.prefix, at=at),
            line(b"response", caller, request, response, None, active.prefix, at))


def _fresh_members(req: Request, mount: Mount | None,
                   actives: tuple[_Active, ...]) -> list[tuple[bytes, bytes]]:
    """The auth and request members of ``req`` for each device, built now."""
    return [(caller_member(req, a.hasher), request_member(req, a.hasher, mount)) for a in actives]


def _hash_accessors(data: dict[str, Any], h: Hasher) -> dict[str, Any]:
    """Accessors in an event are HMAC'd like everywhere else in the log (unless hmac_accessor=false)."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        if "accessor" in k and isinstance(v, str):
            out[k] = h.accessor(v)
        elif "accessor" in k and isinstance(v, list):
            out[k] = [h.accessor(x) if isinstance(x, str) else x for x in v]
        else:
            out[k] = v
    return out
