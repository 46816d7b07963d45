"""Audit entries in Vault's JSON format, with sensitive values HMAC'd under the device's salt.

    {"time", "type": "request"|"response", "auth": {...}, "request": {...}, "response": {...}, "error"}

SECURITY: every string inside request and response ``data``, every client token, wrapping token
and (unless ``hmac_accessor=false``) accessor is replaced by ``hmac-sha256:<hex>`` computed with the
device's salt, unless the device was enabled with ``log_raw=true``. Numbers and booleans pass
through, as in Vault. Security events (Strongroom's ``"type": "security"``) carry no secrets by
contract (see core/security.py) and are written as they are.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from strongroom.errors import StrongroomError
from strongroom.logical import Auth, Request, Response, WrapInfo

HASH_PREFIX = "hmac-sha256:"


def rfc3339_nano(ns: int) -> str:
    """Go's RFC3339Nano in UTC, as Vault's audit ``time`` field."""
    secs, frac = divmod(ns, 1_000_000_000)
    text = datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    digits = f"{frac:09d}".rstrip("0")
    return f"{text}.{digits}Z" if digits else f"{text}Z"


@dataclass(frozen=True, slots=True)
class Hasher:
    salt: bytes
    log_raw: bool = False
    hmac_accessor: bool = True
    # HMAC keyed once with the salt; each hash works on a copy (saves the key schedule per value).
    _keyed: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_keyed", hmac.new(self.salt, digestmod=hashlib.sha256))

    def hash(self, value: str) -> str:
        """What ``sys/audit-hash`` returns: HMAC-SHA256 of ``value`` keyed with the salt."""
        mac = self._keyed.copy()
        mac.update(value.encode())
        return HASH_PREFIX + str(mac.hexdigest())

    def secret(self, value: str) -> str:
        """A token, or any value that is always sensitive; "" stays "" (nothing to hide)."""
        return value if self.log_raw or not value else self.hash(value)

    def accessor(self, value: str) -> str:
        return value if not self.hmac_accessor else self.secret(value)

    def data(self, value: Any) -> Any:
        """Every string in a JSON-like value, recursively; keys, numbers and booleans unchanged."""
        if self.log_raw:
            return value
        if isinstance(value, str):
            return self.hash(value)
        if isinstance(value, dict):
            return {str(k): self.data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(v) for v in value]
        return value


def _drop_empty(d: dict[str, Any]) -> dict[str, Any]:
    """Vault omits empty members (Go's omitempty)."""
    return {k: v for k, v in d.items() if v not in (None, "", 0, [], {}, False) or k in _KEEP}


_KEEP = frozenset({"namespace"})


def _caller(req: Request, h: Hasher) -> dict[str, Any]:
    """The ``auth`` member: who made the request (Vault's audit auth of the request's token)."""
    entry = req.token_entry
    if entry is None:
        return {"token_type": "default"}
    issue = getattr(entry, "issue_time", 0.0) or getattr(entry, "creation_time", 0)
    out = {
        "client_token": h.secret(req.client_token),
        "accessor": h.accessor(getattr(entry, "accessor", "")),
        "display_name": getattr(entry, "display_name", ""),
        "policies": list(getattr(entry, "policies", [])),
        "token_policies": list(getattr(entry, "policies", [])),
        "metadata": dict(getattr(entry, "meta", {}) or {}),
        "entity_id": getattr(entry, "entity_id", ""),
        "token_type": getattr(entry, "type", "service"),
        "token_ttl": getattr(entry, "ttl", 0),
        "token_issue_time": datetime.fromtimestamp(int(issue), UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if issue else "",
    }
    return _drop_empty(out)


def _request(req: Request, h: Hasher, mount: tuple[str, str, str] | None) -> dict[str, Any]:
    mount_point, mount_type, mount_accessor = mount or (req.mount_point, req.mount_type, req.mount_accessor)
    out = {
        "id": req.id,
        "operation": req.operation.value,
        "mount_point": mount_point,
        "mount_type": mount_type,
        "mount_accessor": mount_accessor,
        "client_token": h.secret(req.client_token),
        "client_token_accessor": h.accessor(req.client_token_accessor),
        "namespace": {"id": "root"},
        "path": req.full_path or req.path,
        "data": h.data(req.data) if req.data else None,
        "remote_address": req.connection.remote_addr,
        "remote_port": req.connection.remote_port,
        "wrap_ttl": req.wrap_ttl,
    }
    return _drop_empty(out)


def _auth(a: Auth, h: Hasher) -> dict[str, Any]:
    return _drop_empty({
        "client_token": h.secret(a.client_token),
        "accessor": h.accessor(a.accessor),
        "display_name": a.display_name,
        "policies": list(a.policies),
        "token_policies": list(a.token_policies or a.policies),
        "identity_policies": list(a.identity_policies),
        "metadata": h.data(dict(a.metadata)) if a.metadata else None,
        "entity_id": a.entity_id,
        "token_type": a.token_type,
        "token_ttl": a.lease_duration or a.ttl,
        "num_uses": a.num_uses,
    })


def _wrap_info(w: WrapInfo, h: Hasher) -> dict[str, Any]:
    return _drop_empty({
        "ttl": w.ttl, "token": h.secret(w.token), "accessor": h.accessor(w.accessor),
        "creation_time": w.creation_time, "creation_path": w.creation_path,
        "wrapped_accessor": h.accessor(w.wrapped_accessor),
    })


def _raw_data(body: bytes, h: Hasher) -> Any:
    """A raw response (sys/wrapping/unwrap, sys/health): its JSON hashed like data; otherwise the
    whole body hashed as one string."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {"raw_body": h.secret(body.decode("utf-8", "replace"))}
    return h.data(parsed)


def _response(resp: Response, h: Hasher, mount: tuple[str, str, str] | None) -> dict[str, Any]:
    mount_point, mount_type, mount_accessor = mount or ("", "", "")
    data: Any = None
    if resp.raw_body is not None:
        data = _raw_data(resp.raw_body, h)
    elif resp.data is not None:
        data = h.data(resp.data)
    return _drop_empty({
        "mount_point": mount_point,
        "mount_type": mount_type,
        "mount_accessor": mount_accessor,
        "auth": _auth(resp.auth, h) if resp.auth is not None else None,
        "secret": {"lease_id": resp.secret.lease_id} if resp.secret is not None and resp.secret.lease_id else None,
        "data": data,
        "redirect": resp.redirect,
        "wrap_info": _wrap_info(resp.wrap_info, h) if resp.wrap_info is not None else None,
        "warnings": list(resp.warnings),
    })


def _now() -> str:
    return rfc3339_nano(time.time_ns())


def request_entry(req: Request, h: Hasher, *, error: StrongroomError | None = None,
                  mount: tuple[str, str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"time": _now(), "type": "request", "auth": _caller(req, h),
                           "request": _request(req, h, mount)}
    if error is not None:
        out["error"] = error.message or type(error).__name__
    return out


def response_entry(req: Request, resp: Response | None, err: StrongroomError | None, h: Hasher, *,
                   mount: tuple[str, str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"time": _now(), "type": "response", "auth": _caller(req, h),
                           "request": _request(req, h, mount)}
    out["response"] = _response(resp if resp is not None else Response(), h, mount)
    if err is not None:
        out["error"] = err.message or type(err).__name__
    return out


def event_entry(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """Strongroom's own entry type for security events (tamper alarms, quarantine)."""
    return {"time": _now(), "type": "security", "event": kind, **{k: v for k, v in data.items() if k not in ("time", "type")}}


def encode(entry: dict[str, Any], prefix: str = "") -> bytes:
    """One entry as the bytes a device writes, without the newline (``prefix`` first, as Vault's)."""
    return prefix.encode() + orjson.dumps(entry)
