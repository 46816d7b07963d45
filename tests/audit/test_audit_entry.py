"""Vault's audit entry format and the HMAC of sensitive values."""

from __future__ import annotations

import hashlib
import hmac

import orjson

from strongroom.audit.entry import Hasher, event_entry, request_entry, response_entry
from strongroom.errors import PermissionDenied
from strongroom.logical import Auth, Connection, LeaseInfo, Operation, Request, Response, WrapInfo

SALT = b"s" * 32


def _h(value: str) -> str:
    return "hmac-sha256:" + hmac.new(SALT, value.encode(), hashlib.sha256).hexdigest()


def _req() -> Request:
    return Request(Operation.UPDATE, "secret/data/app", {"data": {"password": "hunter2", "n": 3, "ok": True}},
                   id="req-1", client_token="hvs.TOKEN", client_token_accessor="ACC",
                   connection=Connection("10.0.0.1", 5555), wrap_ttl=60)


def test_request_strings_tokens_and_accessors_are_hmacd() -> None:
    e = request_entry(_req(), Hasher(SALT), mount=("secret/", "kv", "kv_1"))
    assert e["type"] == "request" and e["time"].endswith("Z")
    r = e["request"]
    assert r["data"] == {"data": {"password": _h("hunter2"), "n": 3, "ok": True}}
    assert r["client_token"] == _h("hvs.TOKEN") and r["client_token_accessor"] == _h("ACC")
    assert r["namespace"] == {"id": "root"} and r["path"] == "secret/data/app"
    assert (r["mount_point"], r["mount_type"], r["remote_address"], r["remote_port"]) == ("secret/", "kv", "10.0.0.1", 5555)
    assert r["wrap_ttl"] == 60
    assert b"hunter2" not in orjson.dumps(e) and b"hvs.TOKEN" not in orjson.dumps(e)


def test_log_raw_and_hmac_accessor_false() -> None:
    raw = request_entry(_req(), Hasher(SALT, log_raw=True))["request"]
    assert raw["data"]["data"]["password"] == "hunter2" and raw["client_token"] == "hvs.TOKEN"
    plain = request_entry(_req(), Hasher(SALT, hmac_accessor=False))["request"]
    assert plain["client_token_accessor"] == "ACC" and plain["client_token"] == _h("hvs.TOKEN")


def test_response_auth_secret_and_wrap_info() -> None:
    resp = Response(data={"k": "v"}, secret=LeaseInfo(lease_id="db/creds/x/1"),
                    auth=Auth(policies=["default"], client_token="hvs.NEW", accessor="A2", lease_duration=30),
                    wrap_info=WrapInfo(token="hvs.WRAP", accessor="WA", ttl=60, creation_path="x"))
    e = response_entry(_req(), resp, None, Hasher(SALT))
    r = e["response"]
    assert r["data"] == {"k": _h("v")} and r["secret"] == {"lease_id": "db/creds/x/1"}
    assert r["auth"]["client_token"] == _h("hvs.NEW") and r["auth"]["accessor"] == _h("A2")
    assert r["auth"]["policies"] == ["default"] and r["auth"]["token_ttl"] == 30
    assert r["wrap_info"]["token"] == _h("hvs.WRAP") and r["wrap_info"]["ttl"] == 60
    assert "error" not in e


def test_errors_and_raw_bodies() -> None:
    e = response_entry(_req(), None, PermissionDenied(), Hasher(SALT))
    assert e["error"] == "permission denied"
    assert request_entry(_req(), Hasher(SALT), error=PermissionDenied())["error"] == "permission denied"
    unwrap = Response(raw_body=b'{"data":{"password":"hunter2"}}')
    assert response_entry(_req(), unwrap, None, Hasher(SALT))["response"]["data"] == {"data": {"password": _h("hunter2")}}
    opaque = Response(raw_body=b"not json")
    assert response_entry(_req(), opaque, None, Hasher(SALT))["response"]["data"] == {"raw_body": _h("not json")}


def test_security_events_keep_their_kind() -> None:
    e = event_entry("wrapping-token-reuse", {"type": "wrapping-token-reuse", "time": "t", "accessor": "A"})
    assert e["type"] == "security" and e["event"] == "wrapping-token-reuse" and e["accessor"] == "A"


def test_token_hmacs_are_kept_per_token_id_and_never_the_token() -> None:
    """A token's HMACs are computed once per token-store id, equal the uncached ones, and only
    HMAC output is kept (nothing with log_raw)."""
    from types import SimpleNamespace

    h = Hasher(SALT)
    entry = SimpleNamespace(id="tok-id-1", accessor="ACC", display_name="app", policies=["default"])
    req = _req()
    req.token_entry = entry  # type: ignore[assignment]
    first = request_entry(req, h)["request"]
    assert first["client_token"] == _h("hvs.TOKEN") and first["client_token_accessor"] == _h("ACC")
    assert h._tokens == {"tok-id-1": (_h("hvs.TOKEN"), _h("ACC"))}
    h._tokens["tok-id-1"] = ("KEPT", "KEPT-ACC")  # the next entries are answered from the memo
    again = response_entry(req, Response(data={}), None, h)
    assert again["request"]["client_token"] == "KEPT" and again["auth"]["client_token"] == "KEPT"
    assert again["request"]["client_token_accessor"] == "KEPT-ACC"
    assert request_entry(_req(), h)["request"]["client_token"] == _h("hvs.TOKEN")  # no entry: no memo
    raw = Hasher(SALT, log_raw=True)
    assert request_entry(req, raw)["request"]["client_token"] == "hvs.TOKEN" and raw._tokens == {}
