"""Login MFA's parts on their own: the pending-login table (single use, expiry, bound), the TOTP
guard (replay, attempt window), the header/payload parsers, and the store reloading from the
barrier (setup after a seal, invalidation from another node)."""

from __future__ import annotations

import pyotp
import pytest
from tests.auth.conftest import Vault

from strongroom.core.identity.mfa.config import TOTPSecret, multierror, parse_factors, parse_header, parse_payload
from strongroom.core.identity.mfa.pending import PendingLogin, PendingLogins
from strongroom.core.identity.mfa.totp import BAD_CREDENTIALS, MFAFailure, TOTPGuard, _go_seconds
from strongroom.errors import InvalidRequest
from strongroom.logical import Auth


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _login(rid: str, created: float) -> PendingLogin:
    return PendingLogin(rid, Auth(entity_id="e"), "auth/userpass/login/a", "auth/userpass/", "acc", "1.2.3.4", created)


def test_pending_logins_single_use_expiring_bounded() -> None:
    clock = Clock()
    p = PendingLogins(clock, ttl=300, limit=3)
    p.put(_login("a", clock()))
    got = p.take("a")
    assert got is not None and got.auth.entity_id == "e"
    assert p.take("a") is None  # single use
    p.put_back(got)  # a failed validation gives it back...
    clock.t += 301
    assert p.take("a") is None  # ...until it expires
    for rid in ("b", "c", "d", "e"):
        p.put(_login(rid, clock()))
    assert len(p) == 3 and p.take("b") is None and p.take("e") is not None  # the oldest went first
    clock.t += 301
    p.prune()
    assert len(p) == 0


def test_totp_guard_replay_and_attempt_window() -> None:
    mono, wall = Clock(), Clock()
    wall.t = 1_700_000_000.0
    key = pyotp.random_base32()
    secret = TOTPSecret(key=key, issuer="I", period=30, digits=6, algorithm="SHA1", skew=1)
    code = pyotp.TOTP(key).at(wall.t)
    guard = TOTPGuard(mono, lambda: wall.t)
    guard.check(code, secret, "m", "e", 5)
    with pytest.raises(MFAFailure, match=BAD_CREDENTIALS):
        guard.check(code, secret, "m", "e", 5)  # replay
    guard.check(code, secret, "m", "other-entity", 5)  # another entity's equal code is its own
    mono.t += 30 * 3
    wall.t += 30 * 3
    with pytest.raises(MFAFailure, match=BAD_CREDENTIALS):
        guard.check(code, secret, "m", "e", 5)  # no longer valid (expired), though no longer "used"
    for bad in ("12345", " 12345", "abcdef"):
        with pytest.raises(MFAFailure, match=BAD_CREDENTIALS):
            guard.check(bad, secret, "m", "e", 5)
    now = pyotp.TOTP(key).at(wall.t)
    wrong = "000000" if now != "000000" else "111111"
    for _ in range(3):  # the expired code and "abcdef" were attempts 1 and 2 of this window (the others
        # were refused by their form before counting)
        with pytest.raises(MFAFailure, match=BAD_CREDENTIALS):
            guard.check(wrong, secret, "m", "e", 5)
    with pytest.raises(MFAFailure, match="maximum TOTP validation attempts 6 exceeded the allowed attempts 5"):
        guard.check(now, secret, "m", "e", 5)  # even the right code, until the window ends
    mono.t += 30
    guard.check(now, secret, "m", "e", 5)


def test_go_seconds_and_multierror() -> None:
    assert _go_seconds(30, 1) == "30.000000002s" and _go_seconds(30, 0) == "30s"
    assert _go_seconds(90, 1) == "1m30.000000002s" and _go_seconds(3600, 0) == "1h0m0s"
    assert multierror(["a"]) == "1 error occurred:\n\t* a\n\n"
    assert multierror(["a", "b"]) == "2 errors occurred:\n\t* a\n\t* b\n\n"


def test_parsers() -> None:
    assert parse_header("") == {} and parse_header("m:123") == {"m": ["123"]} and parse_header("push") == {"push": []}
    assert parse_header("m:a:b") == {"m": ["a:b"]}
    for bad in (":1", "m:"):
        with pytest.raises(InvalidRequest):
            parse_header(bad)
    assert parse_payload({"m": ["1"], "n": None, "o": [123]}) == {"m": ["1"], "n": [], "o": ["123"]}
    for bad_payload in ({"m": "1"}, {"m": [{"x": 1}]}, ["m"]):
        with pytest.raises(InvalidRequest, match="invalid mfa payload"):
            parse_payload(bad_payload)
    assert parse_factors(["", "123456"]) == "123456" and parse_factors(["passcode=42"]) == "42"
    assert parse_factors([]) == ""
    for creds, msg in ((["1", "2"], "multiple passcodes"), (["passcode="], "invalid passcode"),
                       (["x=1"], "invalid MFA cred")):
        with pytest.raises(ValueError, match=msg):
            parse_factors(creds)


async def test_store_reloads_from_the_barrier_and_forgets_pending_on_seal(vault: Vault) -> None:
    v = vault
    await v.done("POST", "auth/userpass/users/alice", {"password": "pw"})
    eid = (await v.ok("POST", "auth/userpass/login/alice", {"password": "pw"}, token=None))["auth"]["entity_id"]
    mid = (await v.ok("POST", "identity/mfa/method/totp", {"issuer": "Acme"}))["data"]["method_id"]
    url = (await v.ok("POST", "identity/mfa/method/totp/admin-generate", {"method_id": mid, "entity_id": eid}))
    totp = pyotp.parse_uri(url["data"]["url"])
    await v.done("POST", "identity/mfa/login-enforcement/e", {"mfa_method_ids": [mid], "identity_entity_ids": [eid]})
    held = await v.ok("POST", "auth/userpass/login/alice", {"password": "pw"}, token=None)
    mfa = v.core.mfa
    await mfa.deactivate()  # what a seal does: configuration and every pending login gone from memory
    assert not mfa.methods and not mfa.enforcements and len(mfa.pending) == 0
    await mfa.setup()  # the next unseal reads them back from the barrier
    assert list(mfa.methods) == [mid] and list(mfa.enforcements) == ["e"]
    old_id = held["auth"]["mfa_requirement"]["mfa_request_id"]
    assert await v.fails(400, "POST", "sys/mfa/validate", {"mfa_request_id": old_id, "mfa_payload": {mid: ["1"]}},
                         token=None) == ["invalid request ID"]
    req_id = (await v.ok("POST", "auth/userpass/login/alice", {"password": "pw"}, token=None))["auth"][
        "mfa_requirement"]["mfa_request_id"]
    done = await v.ok("POST", "sys/mfa/validate", {"mfa_request_id": req_id, "mfa_payload": {mid: [totp.now()]}},
                      token=None)
    assert done["auth"]["entity_id"] == eid
    # invalidation (a write by another node): a deleted enforcement is forgotten
    await mfa._storage.delete("enforcement/e")
    await v.core.invalidate("core/login-mfa/enforcement/e")
    assert mfa.enforcements == {}
    assert (await v.ok("POST", "auth/userpass/login/alice", {"password": "pw"}, token=None))["auth"]["client_token"]
