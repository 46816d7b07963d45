"""The byte-building entry code writes exactly what the straightforward dict-building version wrote.

``_Reference`` below is that version (dicts, then one orjson.dumps), kept as the oracle: every
entry shape the server produces must come out byte for byte the same from both, so the
optimisation can never drift from Vault's format. SECURITY: the reference HMACs with hmac.new, so
this also pins the one-shot HMAC to the same values.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson
import pytest

from strongroom.audit import entry as audit_entry
from strongroom.audit.entry import Hasher, request_line, response_line, rfc3339_nano
from strongroom.errors import InvalidRequest, PermissionDenied, StrongroomError
from strongroom.logical import Auth, Connection, LeaseInfo, Operation, Request, Response, WrapInfo

SALT = b"s" * 32
TIME = "2024-05-01T10:20:30.123456789Z"


class _Reference:
    """The dict-building entry code as it was before the byte-building rewrite."""

    def __init__(self, h: Hasher) -> None:
        self.h = h

    def hash(self, value: str) -> str:
        return "hmac-sha256:" + hmac.new(self.h.salt, value.encode(), hashlib.sha256).hexdigest()

    def secret(self, value: str) -> str:
        return value if self.h.log_raw or not value else self.hash(value)

    def accessor(self, value: str) -> str:
        return value if not self.h.hmac_accessor else self.secret(value)

    def data(self, value: Any) -> Any:
        if self.h.log_raw:
            return value
        if isinstance(value, str):
            return self.hash(value)
        if isinstance(value, dict):
            return {str(k): self.data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(v) for v in value]
        return value

    @staticmethod
    def drop_empty(d: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in d.items() if v not in (None, "", 0, [], {}, False) or k == "namespace"}

    def caller(self, req: Request) -> dict[str, Any]:
        entry = req.token_entry
        if entry is None:
            return {"token_type": "default"}
        issue = getattr(entry, "issue_time", 0.0) or getattr(entry, "creation_time", 0)
        return self.drop_empty({
            "client_token": self.secret(req.client_token),
            "accessor": self.accessor(getattr(entry, "accessor", "")),
            "display_name": getattr(entry, "display_name", ""),
            "policies": list(getattr(entry, "policies", [])),
            "token_policies": list(getattr(entry, "policies", [])),
            "metadata": dict(getattr(entry, "meta", {}) or {}),
            "entity_id": getattr(entry, "entity_id", ""),
            "token_type": getattr(entry, "type", "service"),
            "token_ttl": getattr(entry, "ttl", 0),
            "token_issue_time": datetime.fromtimestamp(int(issue), UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if issue else "",
        })

    def request(self, req: Request, mount: tuple[str, str, str] | None) -> dict[str, Any]:
        mount_point, mount_type, mount_accessor = mount or (req.mount_point, req.mount_type, req.mount_accessor)
        return self.drop_empty({
            "id": req.id, "operation": req.operation.value, "mount_point": mount_point,
            "mount_type": mount_type, "mount_accessor": mount_accessor,
            "client_token": self.secret(req.client_token),
            "client_token_accessor": self.accessor(req.client_token_accessor),
            "namespace": {"id": "root"}, "path": req.full_path or req.path,
            "data": self.data(req.data) if req.data else None,
            "remote_address": req.connection.remote_addr, "remote_port": req.connection.remote_port,
            "wrap_ttl": req.wrap_ttl,
        })

    def auth(self, a: Auth) -> dict[str, Any]:
        return self.drop_empty({
            "client_token": self.secret(a.client_token), "accessor": self.accessor(a.accessor),
            "display_name": a.display_name, "policies": list(a.policies),
            "token_policies": list(a.token_policies or a.policies),
            "identity_policies": list(a.identity_policies),
            "metadata": self.data(dict(a.metadata)) if a.metadata else None,
            "entity_id": a.entity_id, "token_type": a.token_type, "token_ttl": a.lease_duration or a.ttl,
            "num_uses": a.num_uses,
        })

    def response(self, resp: Response, mount: tuple[str, str, str] | None) -> dict[str, Any]:
        mount_point, mount_type, mount_accessor = mount or ("", "", "")
        data: Any = None
        if resp.raw_body is not None:
            try:
                data = self.data(orjson.loads(resp.raw_body))
            except orjson.JSONDecodeError:
                data = {"raw_body": self.secret(resp.raw_body.decode("utf-8", "replace"))}
        elif resp.data is not None:
            data = self.data(resp.data)
        w = resp.wrap_info
        return self.drop_empty({
            "mount_point": mount_point, "mount_type": mount_type, "mount_accessor": mount_accessor,
            "auth": self.auth(resp.auth) if resp.auth is not None else None,
            "secret": {"lease_id": resp.secret.lease_id} if resp.secret is not None and resp.secret.lease_id else None,
            "data": data, "redirect": resp.redirect,
            "wrap_info": self.drop_empty({
                "ttl": w.ttl, "token": self.secret(w.token), "accessor": self.accessor(w.accessor),
                "creation_time": w.creation_time, "creation_path": w.creation_path,
                "wrapped_accessor": self.accessor(w.wrapped_accessor)}) if w is not None else None,
            "warnings": list(resp.warnings),
        })

    def request_line(self, req: Request, error: StrongroomError | None, mount: Any, prefix: str) -> bytes:
        out: dict[str, Any] = {"time": TIME, "type": "request", "auth": self.caller(req),
                               "request": self.request(req, mount)}
        if error is not None:
            out["error"] = error.message or type(error).__name__
        return prefix.encode() + orjson.dumps(out)

    def response_line(self, req: Request, resp: Response | None, err: StrongroomError | None, mount: Any,
                      prefix: str) -> bytes:
        out: dict[str, Any] = {"time": TIME, "type": "response", "auth": self.caller(req),
                               "request": self.request(req, mount),
                               "response": self.response(resp if resp is not None else Response(), mount)}
        if err is not None:
            out["error"] = err.message or type(err).__name__
        return prefix.encode() + orjson.dumps(out)


@dataclass
class _Token:
    accessor: str = "acc-1"
    display_name: str = "token"
    policies: list[str] = field(default_factory=lambda: ["default", "dev"])
    meta: dict[str, str] = field(default_factory=dict)
    entity_id: str = ""
    type: str = "service"
    ttl: int = 3600
    issue_time: float = 1714558830.7
    creation_time: int = 1714558830


class _Color(enum.Enum):
    RED = "red"


class _Name(str):
    pass


def _requests() -> list[Request]:
    nested = {"data": {"password": "hunter2", "n": 3, "ok": True, "f": 1.5, "none": None,
                       "list": ["a", 1, ["b", {"c": "d"}]], "tuple": ("x", 2), 7: "int key",
                       _Color.RED: "enum key", "sub": _Name("subclass"), "empty": "", "zero": 0},
              "options": {"cas": 0}}
    return [
        Request(Operation.READ, "secret/data/app", id="r1", client_token="hvs.T",
                client_token_accessor="ACC", connection=Connection("10.0.0.1", 5555), token_entry=_Token()),
        Request(Operation.UPDATE, "secret/data/app", nested, id="r2", client_token="hvs.T", wrap_ttl=60,
                connection=Connection("::1", 0), token_entry=_Token(meta={"role": "web"}, entity_id="e1")),
        Request(Operation.CREATE, "auth/userpass/login/bob", {"password": "pw"}, id="r3",
                connection=Connection("127.0.0.1", 9)),
        Request(Operation.LIST, "sys/policies/acl", id="", client_token="hvs.R", full_path="sys/policies/acl",
                token_entry=_Token(policies=["root"], issue_time=0.0, creation_time=0, ttl=0, type="")),
        Request(Operation.DELETE, "data/x", id="r5", full_path="kv/data/x", mount_point="kv/", mount_type="kv",
                mount_accessor="kv_1", token_entry=_Token(policies=[], meta={}, issue_time=0.0)),
        Request(Operation.READ, 'quote"and\\slash/é', {"k": ['"', "\n", "é", "\u2028"]}, id="r6",
                token_entry=_Token(display_name='we"ird\n')),
    ]


def _responses() -> list[Response | None]:
    return [
        None,
        Response(),
        Response(data={"data": {"password": "hunter2", "user": "bob"},
                       "metadata": {"version": 3, "destroyed": False, "custom_metadata": None}}),
        Response(data={}, warnings=["w1", 'w"2']),
        Response(secret=LeaseInfo(lease_id="db/creds/x/1"), data={"username": "u"}),
        Response(secret=LeaseInfo(lease_id="")),
        Response(auth=Auth(policies=["default"], token_policies=["default", "x"], identity_policies=["i"],
                           client_token="hvs.NEW", accessor="A2", lease_duration=30, num_uses=2,
                           metadata={"user": "bob"}, entity_id="e", token_type="service", display_name="d")),
        Response(auth=Auth()),
        Response(wrap_info=WrapInfo(token="hvs.WRAP", accessor="WA", ttl=60, creation_path="x",
                                    creation_time="2024-05-01T10:20:30Z", wrapped_accessor="WX")),
        Response(raw_body=b'{"data":{"password":"hunter2"},"n":[1,"two"]}'),
        Response(raw_body=b"not json \xff"),
        Response(redirect="https://elsewhere/", status=307),
    ]


HASHERS = [Hasher(SALT), Hasher(SALT, log_raw=True), Hasher(SALT, hmac_accessor=False)]
MOUNTS: list[tuple[str, str, str] | None] = [None, ("secret/", "kv", "kv_1234")]
ERRORS: list[StrongroomError | None] = [None, PermissionDenied(), InvalidRequest('bad "input"')]


def _outcome(build: Any) -> bytes | str:
    """What ``build()`` gives, or the type of error it raises (log_raw data with non-string keys
    cannot be serialised, by either version)."""
    try:
        return bytes(build())
    except TypeError as e:
        return type(e).__name__


@pytest.fixture(autouse=True)
def _fixed_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_entry, "_now", lambda: TIME)


@pytest.mark.parametrize("h", HASHERS, ids=["hmac", "log_raw", "no_hmac_accessor"])
def test_request_lines_are_byte_identical(h: Hasher) -> None:
    ref = _Reference(h)
    for req in _requests():
        for mount in MOUNTS:
            for err in ERRORS:
                for prefix in ("", "AUDIT: "):
                    assert _outcome(partial(request_line, req, h, error=err, mount=mount, prefix=prefix.encode())) == \
                        _outcome(partial(ref.request_line, req, err, mount, prefix))


@pytest.mark.parametrize("h", HASHERS, ids=["hmac", "log_raw", "no_hmac_accessor"])
def test_response_lines_are_byte_identical(h: Hasher) -> None:
    ref = _Reference(h)
    for req in _requests():
        for resp in _responses():
            for mount in MOUNTS:
                for err in ERRORS[:2]:
                    assert _outcome(partial(response_line, req, resp, err, h, mount=mount, prefix=b"p")) == \
                        _outcome(partial(ref.response_line, req, resp, err, mount, "p"))


def test_no_secret_reaches_a_line_unhashed() -> None:
    h = Hasher(SALT)
    for req in _requests():
        for resp in _responses():
            out = request_line(req, h) + response_line(req, resp, None, h)
            for secret in (b"hunter2", b"hvs.T", b"hvs.NEW", b"hvs.WRAP", b"hvs.R", b"pw"):
                assert secret not in out


@pytest.mark.parametrize("ns", [0, 1, 10, 999_999_999, 1_714_558_830_000_000_000, 1_714_558_830_123_456_789,
                                1_714_558_830_100_000_000, 1_714_558_830_000_000_001])
def test_rfc3339_nano_matches_go(ns: int) -> None:
    secs, frac = divmod(ns, 1_000_000_000)
    text = datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    digits = f"{frac:09d}".rstrip("0")
    assert rfc3339_nano(ns) == (f"{text}.{digits}Z" if digits else f"{text}Z")


def test_hash_is_hmac_sha256_of_the_salt() -> None:
    for value in ("", "x", "hvs.TOKEN", "é" * 100):
        assert Hasher(SALT).hash(value) == "hmac-sha256:" + hmac.new(SALT, value.encode(), hashlib.sha256).hexdigest()
