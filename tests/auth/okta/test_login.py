"""The okta auth method in process: config, group/user maps, login against the local Okta org
(groups through the API token with pagination, transaction states, MFA TOTP and push, bypass),
Okta down, and renewal re-checking."""

from __future__ import annotations

import time

from tests.auth.conftest import Vault
from tests.auth.okta.fakeokta import FakeOkta, Person

from strongroom.auth.okta import OktaBackend
from strongroom.auth.okta.config import BYPASS_WARNING


async def _configure(ov: Vault, okta: FakeOkta, **extra: object) -> None:
    r = await ov.call("POST", "auth/okta/config", {"org_name": "acme", "base_url": okta.url,
                                                   "api_token": okta.api_token, **extra})
    assert r.status_code in (200, 204), r.text


def _backend(ov: Vault) -> OktaBackend:
    b = ov.core.router.match("auth/okta/login/x")[0].backend
    assert isinstance(b, OktaBackend)
    return b


async def test_config_write_read_never_shows_api_token(ov: Vault, okta: FakeOkta) -> None:
    await ov.fails(404, "GET", "auth/okta/config")
    assert await ov.fails(400, "POST", "auth/okta/config", {"api_token": "x"}) == ["org_name is missing"]
    await _configure(ov, okta, token_policies="base", ttl="1h")
    body = await ov.ok("GET", "auth/okta/config")
    data = body["data"]
    assert data["org_name"] == data["organization"] == "acme" and data["base_url"] == okta.url
    assert data["token_policies"] == ["base"] and data["token_ttl"] == 3600 and data["bypass_okta_mfa"] is False
    assert okta.api_token not in str(body) and "api_token" not in data and "token" not in data
    body = await ov.ok("POST", "auth/okta/config", {"bypass_okta_mfa": True})  # a merge, with Vault's warning
    assert body["warnings"] == [BYPASS_WARNING]
    data = (await ov.ok("GET", "auth/okta/config"))["data"]
    assert data["bypass_okta_mfa"] is True and data["org_name"] == "acme"
    await ov.fails(400, "POST", "auth/okta/config", {"base_url": "not a domain/"})
    await ov.fails(400, "POST", "auth/okta/config", {"token_ttl": "2h", "token_max_ttl": "1h"})


async def test_groups_and_users_maps(ov: Vault) -> None:
    await ov.fails(404, "LIST", "auth/okta/groups")
    await ov.done("POST", "auth/okta/groups/Engineering", {"policies": "eng, shared"})
    await ov.done("POST", "auth/okta/users/Alice", {"policies": "mine", "groups": "local1"})
    assert (await ov.ok("GET", "auth/okta/groups/engineering"))["data"] == {"policies": ["eng", "shared"]}
    assert (await ov.ok("GET", "auth/okta/users/alice"))["data"] == {"groups": ["local1"], "policies": ["mine"]}
    assert (await ov.ok("LIST", "auth/okta/groups"))["data"]["keys"] == ["engineering"]
    assert (await ov.ok("LIST", "auth/okta/users"))["data"]["keys"] == ["alice"]
    await ov.done("DELETE", "auth/okta/users/alice")
    await ov.fails(404, "GET", "auth/okta/users/alice")


async def test_login_policies_from_okta_groups_local_groups_and_user(ov: Vault, okta: FakeOkta) -> None:
    okta.add(Person("alice", "pw-1", groups=["Everyone", "Engineering", "Ops", "Audit", "Last"]))  # 3 pages of 2
    await _configure(ov, okta, token_policies="base", token_ttl="20m")
    await ov.done("POST", "auth/okta/groups/engineering", {"policies": "eng"})
    await ov.done("POST", "auth/okta/groups/last", {"policies": "from-page-3"})
    await ov.done("POST", "auth/okta/groups/local1", {"policies": "loc"})
    await ov.done("POST", "auth/okta/users/alice", {"policies": "mine", "groups": "local1"})
    body = await ov.ok("POST", "auth/okta/login/alice", {"password": "pw-1"}, token=None)
    auth = body["auth"]
    assert auth["policies"] == ["base", "default", "eng", "from-page-3", "loc", "mine"]
    assert auth["metadata"]["username"] == "alice" and auth["metadata"]["policies"] == "eng,from-page-3,loc,mine"
    assert set(auth["metadata"]) == {"username", "policies"} and "pw-1" not in str(auth)
    assert auth["lease_duration"] == 1200
    assert len([r for r in okta.requests if "/groups" in r]) == 3
    me = (await ov.ok("GET", "auth/token/lookup-self", token=auth["client_token"]))["data"]
    assert me["display_name"] == "okta-alice"


async def test_refusals_with_okta_wording(ov: Vault, okta: FakeOkta) -> None:
    errs = await ov.fails(400, "POST", "auth/okta/login/alice", {"password": "x"}, token=None)
    assert errs == ["Okta auth method not configured"]
    okta.add(Person("alice", "pw-1"))
    okta.add(Person("locked", "pw", status="LOCKED_OUT"))
    okta.add(Person("expired", "pw", status="PASSWORD_EXPIRED"))
    okta.add(Person("enroll", "pw", status="MFA_ENROLL"))
    okta.add(Person("warned", "pw", status="PASSWORD_WARN"))
    await _configure(ov, okta)
    errs = await ov.fails(400, "POST", "auth/okta/login/alice", {"password": "wrong"}, token=None)
    assert errs == ["Okta auth failed: the API returned an error: Authentication failed (code=E0000004)"]
    for who in ("locked", "expired"):
        assert await ov.fails(400, "POST", f"auth/okta/login/{who}", {"password": "pw"}, token=None) == [
            "okta authentication failed"]
    errs = await ov.fails(400, "POST", "auth/okta/login/enroll", {"password": "pw"}, token=None)
    assert errs == ["okta authentication failed: you must complete MFA enrollment to continue"]
    body = await ov.ok("POST", "auth/okta/login/warned", {"password": "pw"}, token=None)
    assert body["warnings"][0] == "Your Okta password is in warning state and needs to be changed soon."
    assert "no Okta groups found" in body["warnings"][1]
    errs = await ov.fails(400, "POST", "auth/okta/login/alice", {"password": "pw-1", "provider": "duo"}, token=None)
    assert errs == ["provider DUO is not among the supported ones [GOOGLE OKTA]"]
    await _configure(ov, okta, token_bound_cidrs="10.9.9.0/24")
    okta.requests.clear()
    await ov.fails(403, "POST", "auth/okta/login/alice", {"password": "pw-1"}, token=None)
    assert not okta.requests


async def test_mfa_totp_push_and_bypass(ov: Vault, okta: FakeOkta) -> None:
    okta.add(Person("t", "pw", status="MFA_REQUIRED", totp="123456"))
    okta.add(Person("p", "pw", status="MFA_REQUIRED", push=["WAITING", "WAITING", "SUCCESS"]))
    okta.add(Person("r", "pw", status="MFA_REQUIRED", push=["WAITING", "REJECTED"]))
    okta.add(Person("none", "pw", status="MFA_REQUIRED"))
    await _configure(ov, okta)
    _backend(ov).poll_interval = 0.01
    errs = await ov.fails(400, "POST", "auth/okta/login/t", {"password": "pw"}, token=None)
    assert errs == ["'totp' passcode parameter is required to perform MFA"]
    errs = await ov.fails(400, "POST", "auth/okta/login/t", {"password": "pw", "totp": "000000"}, token=None)
    assert "Invalid Passcode/Answer (code=E0000068)" in errs[0]
    await ov.ok("POST", "auth/okta/login/t", {"password": "pw", "totp": "123456"}, token=None)
    await ov.ok("POST", "auth/okta/login/p", {"password": "pw"}, token=None)
    assert len([r for r in okta.requests if r.startswith("POST /api/v1/authn/factors/opf")]) == 3
    errs = await ov.fails(400, "POST", "auth/okta/login/r", {"password": "pw"}, token=None)
    assert errs == ["multi-factor authentication denied"]
    errs = await ov.fails(400, "POST", "auth/okta/login/none", {"password": "pw"}, token=None)
    assert errs == ["Okta Verify Push or TOTP or Google TOTP factor is required in order to perform MFA"]
    await _configure(ov, okta, bypass_okta_mfa=True)
    await ov.ok("POST", "auth/okta/login/none", {"password": "pw"}, token=None)
    await ov.fails(400, "POST", "auth/okta/login/none", {"password": "bad"}, token=None)  # password still checked


async def test_without_api_token_no_group_lookup(ov: Vault, okta: FakeOkta) -> None:
    okta.add(Person("alice", "pw-1", groups=["Engineering"]))
    await ov.done("POST", "auth/okta/config", {"org_name": "acme", "base_url": okta.url})
    await ov.done("POST", "auth/okta/groups/engineering", {"policies": "eng"})
    auth = (await ov.ok("POST", "auth/okta/login/alice", {"password": "pw-1"}, token=None))["auth"]
    assert auth["policies"] == ["default"] and not [r for r in okta.requests if "/groups" in r]


async def test_okta_down_or_slow_fails_within_deadline(ov: Vault, okta: FakeOkta) -> None:
    okta.add(Person("alice", "pw-1"))
    await _configure(ov, okta)
    _backend(ov).api_timeout = 0.3
    okta.delay = 2.0
    start = time.monotonic()
    errs = await ov.fails(500, "POST", "auth/okta/login/alice", {"password": "pw-1"}, token=None)
    assert time.monotonic() - start < 1.5 and "did not answer within 0.3s" in errs[0]
    okta.delay = 0.0
    await ov.done("POST", "auth/okta/config", {"base_url": "http://127.0.0.1:1"})
    errs = await ov.fails(500, "POST", "auth/okta/login/alice", {"password": "pw-1"}, token=None)
    assert errs[0].startswith("Okta auth failed: POST http://127.0.0.1:1/api/v1/authn: ConnectError")


async def test_renew_rechecks_password_and_policies(ov: Vault, okta: FakeOkta) -> None:
    person = okta.add(Person("alice", "pw-1", groups=["Engineering"]))
    await _configure(ov, okta, token_ttl="1h")
    await ov.done("POST", "auth/okta/groups/engineering", {"policies": "eng"})
    token = (await ov.ok("POST", "auth/okta/login/alice", {"password": "pw-1"}, token=None))["auth"]["client_token"]
    await ov.ok("POST", "auth/token/renew-self", {}, token=token)
    person.groups = []  # removed from the Okta group
    errs = await ov.fails(400, "POST", "auth/token/renew-self", {}, token=token)
    assert errs == ["policies have changed, not renewing"]
    person.groups = ["Engineering"]
    await ov.ok("POST", "auth/token/renew-self", {}, token=token)
    person.password = "pw-2"  # password changed in Okta
    errs = await ov.fails(400, "POST", "auth/token/renew-self", {}, token=token)
    assert "Authentication failed" in errs[0]


async def test_api_token_with_control_characters_refused(ov: Vault, okta: FakeOkta) -> None:
    errs = await ov.fails(400, "POST", "auth/okta/config", {"org_name": "acme", "api_token": "sec\r\nret"})
    assert "sec" not in errs[0]
    await ov.fails(404, "GET", "auth/okta/config")  # nothing half-written
