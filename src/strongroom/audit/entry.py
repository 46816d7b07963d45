"""Audit entries in Vault's JSON format, with sensitive values HMAC'd under the device's salt.

    {"time", "type": "request"|"response", "auth": {...}, "request": {...}, "response": {...}, "error"}

SECURITY: every string inside request and response ``data``, every client token, wrapping token
and (unless ``hmac_accessor=false``) accessor is replaced by ``hmac-sha256:<hex>`` computed with the
device's salt, unless the device was enabled with ``log_raw=true``. Numbers and booleans pass
through, as in Vault. Security events (Strongroom's ``"type": "security"``) carry no secrets by
contract (see core/security.py) and are written as they are.

Entries are built on every request, so this module works in bytes: each member (``auth``,
``request``, ``response``) is serialised once by orjson, and a line is those fragments joined. The
broker builds a request's ``auth`` and ``request`` members once and puts them in both its request
and its response entry (see core/audit/). Vault omits empty members (Go's ``omitempty``); here a
member is simply not added when its value is empty, in Vault's key order.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from strongroom.audit.mac import KeyedSha256
from strongroom.durations import rfc3339_ns as rfc3339_nano  # Vault's audit "time": Go's RFC3339Nano
from strongroom.durations import utc_seconds
from strongroom.errors import StrongroomError
from strongroom.logical import Auth, Request, Response, WrapInfo

HASH_PREFIX = "hmac-sha256:"
_MAX_TOKEN_MACS = 16384  # tokens whose HMACs a device keeps (~300 bytes each)

Mount = tuple[str, str, str]  # (mount_point, mount_type, mount_accessor)


@dataclass(frozen=True, slots=True)
class Hasher:
    salt: bytes
    log_raw: bool = False
    hmac_accessor: bool = True
    # HMAC-SHA256 keyed once with the salt (see strongroom.audit.mac).
    _hex: Callable[[bytes], str] = field(init=False, repr=False, compare=False)
    # A token's two HMACs (its own, its accessor's), by the token store's id of it: they appear in
    # both members of both entries of every request the token makes. See token_macs.
    _tokens: dict[str, tuple[str, str]] = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hex", KeyedSha256(self.salt).hexdigest)

    def hash(self, value: str) -> str:
        """What ``sys/audit-hash`` returns: HMAC-SHA256 of ``value`` keyed with the salt."""
        return HASH_PREFIX + self._hex(value.encode())

    def secret(self, value: str) -> str:
        """A token, or any value that is always sensitive; "" stays "" (nothing to hide)."""
        return value if self.log_raw or not value else self.hash(value)

    def accessor(self, value: str) -> str:
        return value if not self.hmac_accessor else self.secret(value)

    def token_macs(self, token_id: str, token: str, accessor: str) -> tuple[str, str]:
        """``(secret(token), accessor(accessor))`` for the token whose token-store id (its HMAC under
        the token store's salt, never the token) is ``token_id``: computed once per token and kept.
        SECURITY: only that id and HMAC output are kept; with log_raw nothing is."""
        if self.log_raw or not token_id:
            return self.secret(token), self.accessor(accessor)
        kept = self._tokens.get(token_id)
        if kept is None:
            kept = self.secret(token), self.accessor(accessor)
            if len(self._tokens) >= _MAX_TOKEN_MACS:
                self._tokens.clear()  # a bound, not a policy: the next requests refill it
            self._tokens[token_id] = kept
        return kept

    def data(self, value: Any) -> Any:
        """Every string in a JSON-like value, recursively; keys, numbers and booleans unchanged."""
        if self.log_raw:
            return value
        return _hashed(self._hex, value)


def _hashed(mac: Callable[[bytes], str], value: Any) -> Any:
    """Hasher.data without log_raw: exact types first (the common case), then subclasses."""
    kind = type(value)
    if kind is str:
        return HASH_PREFIX + mac(value.encode())
    if kind is dict:
        return {k if type(k) is str else str(k): _hashed(mac, v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [_hashed(mac, v) for v in value]
    if kind is int or kind is bool or kind is float or value is None:
        return value
    if isinstance(value, str):
        return HASH_PREFIX + mac(value.encode())
    if isinstance(value, dict):
        return {str(k): _hashed(mac, v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_hashed(mac, v) for v in value]
    return value


# -- members ------------------------------------------------------------------------------------
_DEFAULT_CALLER = orjson.dumps({"token_type": "default"})
_ROOT_NAMESPACE = {"id": "root"}


def caller_member(req: Request, h: Hasher) -> bytes:
    """The ``auth`` member: who made the request (Vault's audit auth of the request's token)."""
    entry = req.token_entry
    if entry is None:
        return _DEFAULT_CALLER
    out: dict[str, Any] = {}
    token, accessor = h.token_macs(getattr(entry, "id", ""), req.client_token, getattr(entry, "accessor", ""))
    _put(out, "client_token", token)
    _put(out, "accessor", accessor)
    _put(out, "display_name", getattr(entry, "display_name", ""))
    policies = getattr(entry, "policies", [])
    if policies:
        policies = policies if type(policies) is list else list(policies)
        out["policies"] = out["token_policies"] = policies
    meta = getattr(entry, "meta", None)
    if meta:
        out["metadata"] = meta if type(meta) is dict else dict(meta)
    _put(out, "entity_id", getattr(entry, "entity_id", ""))
    _put(out, "token_type", getattr(entry, "type", "service"))
    _put(out, "token_ttl", getattr(entry, "ttl", 0))
    issue = getattr(entry, "issue_time", 0.0) or getattr(entry, "creation_time", 0)
    if issue:
        out["token_issue_time"] = utc_seconds(int(issue)) + "Z"
    return orjson.dumps(out)


def request_member(req: Request, h: Hasher, mount: Mount | None) -> bytes:
    """The ``request`` member. ``mount``: the mount of the request's full path, if any.
    Every member here is a str or an int, so "empty" is plain falsiness (see _put)."""
    mount_point, mount_type, mount_accessor = mount or (req.mount_point, req.mount_type, req.mount_accessor)
    out: dict[str, Any] = {"id": req.id} if req.id else {}
    out["operation"] = req.operation.value
    if mount_point:
        out["mount_point"] = mount_point
    if mount_type:
        out["mount_type"] = mount_type
    if mount_accessor:
        out["mount_accessor"] = mount_accessor
    entry = req.token_entry
    if entry is not None and req.client_token:
        # authenticate() set both from the entry looked up by this very token (core/pipeline.py).
        token, accessor = h.token_macs(getattr(entry, "id", ""), req.client_token, req.client_token_accessor)
        out["client_token"] = token
        if accessor:
            out["client_token_accessor"] = accessor
    else:
        if req.client_token:
            out["client_token"] = h.secret(req.client_token)
        if req.client_token_accessor:
            out["client_token_accessor"] = h.accessor(req.client_token_accessor)
    out["namespace"] = _ROOT_NAMESPACE
    path = req.full_path or req.path
    if path:
        out["path"] = path
    if req.data:
        _put(out, "data", h.data(req.data))
    conn = req.connection
    if conn.remote_addr:
        out["remote_address"] = conn.remote_addr
    if conn.remote_port:
        out["remote_port"] = conn.remote_port
    if req.wrap_ttl:
        out["wrap_ttl"] = req.wrap_ttl
    return orjson.dumps(out)


def _request_edges(request_id: str, addr: str, port: int) -> tuple[bytes, bytes]:
    """What request_member puts before and after everything else for this id and peer (no wrap_ttl)."""
    head = b'{"id":%s,' % orjson.dumps(request_id) if request_id else b"{"
    tail = b',"remote_address":%s' % orjson.dumps(addr) if addr else b""
    if port:
        tail += b',"remote_port":%d' % port
    return head, tail + b"}"


# A member request_member puts after ``data`` (a JSON string never holds ``,"`` unescaped, so the
# last ``,"`` of a member starts its last member, or one nested in ``data``, which ends in "}").
_LAST_MEMBER = re.compile(rb',"(?:remote_address|remote_port|wrap_ttl)":(?:-?\d+|"(?:[^"\\]|\\.)*")')


def strip_request(member: bytes, request_id: str, addr: str, port: int) -> bytes | None:
    """The part of a request member that does not change from one request to the next (its id and
    peer removed), for a cached read's entries; None when ``member`` is not of that shape."""
    head, tail = _request_edges(request_id, addr, port)
    if not request_id or len(member) <= len(head) + len(tail) or not member.startswith(head) \
            or not member.endswith(tail):
        return None
    middle = member[len(head):-len(tail)]
    # The edges end with the peer given. Without one (or with only its address or port), they do
    # not cover a wrap_ttl or another peer left at the end of the member: splicing a peer after
    # those would not give request_member's bytes.
    last = middle.rfind(b',"')
    if last >= 0 and _LAST_MEMBER.fullmatch(middle, last):
        return None
    return middle


def splice_request(middle: bytes, request_id: str, addr: str, port: int) -> bytes:
    """The inverse of :func:`strip_request`: byte for byte what request_member would build."""
    head, tail = _request_edges(request_id, addr, port)
    return head + middle + tail


def response_member(resp: Response | None, h: Hasher, mount: Mount | None) -> bytes:
    """The ``response`` member (an empty response when the request failed)."""
    if resp is None:
        resp = Response()
    out: dict[str, Any] = {}
    if mount is not None:
        _put(out, "mount_point", mount[0])
        _put(out, "mount_type", mount[1])
        _put(out, "mount_accessor", mount[2])
    if resp.auth is not None:
        _put(out, "auth", _auth(resp.auth, h))
    if resp.secret is not None and resp.secret.lease_id:
        out["secret"] = {"lease_id": resp.secret.lease_id}
    if resp.raw_body is not None:
        _put(out, "data", _raw_data(resp.raw_body, h))
    elif resp.data is not None:
        _put(out, "data", h.data(resp.data))
    _put(out, "redirect", resp.redirect)
    if resp.wrap_info is not None:
        _put(out, "wrap_info", _wrap_info(resp.wrap_info, h))
    if resp.warnings:
        out["warnings"] = list(resp.warnings)
    return orjson.dumps(out)


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    """Vault's omitempty: None, "", 0, False, [] and {} are left out."""
    if value not in _EMPTY:
        out[key] = value


_EMPTY: tuple[Any, ...] = (None, "", 0, [], {}, False)


def _auth(a: Auth, h: Hasher) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _put(out, "client_token", h.secret(a.client_token))
    _put(out, "accessor", h.accessor(a.accessor))
    _put(out, "display_name", a.display_name)
    _put(out, "policies", list(a.policies))
    _put(out, "token_policies", list(a.token_policies or a.policies))
    _put(out, "identity_policies", list(a.identity_policies))
    if a.metadata:
        _put(out, "metadata", h.data(dict(a.metadata)))
    _put(out, "entity_id", a.entity_id)
    _put(out, "token_type", a.token_type)
    _put(out, "token_ttl", a.lease_duration or a.ttl)
    _put(out, "num_uses", a.num_uses)
    return out


def _wrap_info(w: WrapInfo, h: Hasher) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _put(out, "ttl", w.ttl)
    _put(out, "token", h.secret(w.token))
    _put(out, "accessor", h.accessor(w.accessor))
    _put(out, "creation_time", w.creation_time)
    _put(out, "creation_path", w.creation_path)
    _put(out, "wrapped_accessor", h.accessor(w.wrapped_accessor))
    return out


def _raw_data(body: bytes, h: Hasher) -> Any:
    """A raw response (sys/wrapping/unwrap, sys/health): its JSON hashed like data; otherwise the
    whole body hashed as one string."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {"raw_body": h.secret(body.decode("utf-8", "replace"))}
    return h.data(parsed)


# -- lines --------------------------------------------------------------------------------------
def _now() -> str:
    return rfc3339_nano(time.time_ns())


def now() -> bytes:
    """An entry's "time", as :func:`line` writes it."""
    return _now().encode()


def line(kind: bytes, caller: bytes, request: bytes, response: bytes | None = None,
         error: StrongroomError | None = None, prefix: bytes = b"", at: bytes = b"") -> bytes:
    """One request (``response`` None) or response entry from its members, as a device writes it:
    ``prefix``, then the JSON object, no newline. ``at``: its time (:func:`now`), if not now."""
    parts = [prefix, b'{"time":"', at or _now().encode(), b'","type":"', kind, b'","auth":', caller,
             b',"request":', request]
    if response is not None:
        parts += (b',"response":', response)
    if error is not None:
        parts += (b',"error":', orjson.dumps(error.message or type(error).__name__))
    parts.append(b"}")
    return b"".join(parts)


def request_line(req: Request, h: Hasher, *, error: StrongroomError | None = None,
                 mount: Mount | None = None, prefix: bytes = b"") -> bytes:
    return line(b"request", caller_member(req, h), request_member(req, h, mount), error=error, prefix=prefix)


def response_line(req: Request, resp: Response | None, err: StrongroomError | None, h: Hasher, *,
                  mount: Mount | None = None, prefix: bytes = b"") -> bytes:
    return line(b"response", caller_member(req, h), request_member(req, h, mount),
                response_member(resp, h, mount), err, prefix)


def request_entry(req: Request, h: Hasher, *, error: StrongroomError | None = None,
                  mount: Mount | None = None) -> dict[str, Any]:
    """:func:`request_line` as a dict (for tests and tools)."""
    return dict(orjson.loads(request_line(req, h, error=error, mount=mount)))


def response_entry(req: Request, resp: Response | None, err: StrongroomError | None, h: Hasher, *,
                   mount: Mount | None = None) -> dict[str, Any]:
    """:func:`response_line` as a dict (for tests and tools)."""
    return dict(orjson.loads(response_line(req, resp, err, h, mount=mount)))


def event_entry(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """Strongroom's own entry type for security events (tamper alarms, quarantine)."""
    return {"time": _now(), "type": "security", "event": kind, **{k: v for k, v in data.items() if k not in ("time", "type")}}


def encode(entry: dict[str, Any], prefix: str = "") -> bytes:
    """One entry as the bytes a device writes, without the newline (``prefix`` first, as Vault's)."""
    return prefix.encode() + orjson.dumps(entry)
