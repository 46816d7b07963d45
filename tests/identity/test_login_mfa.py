"""Login MFA (Vault 1.10+) through the HTTP API of an in-process server: TOTP methods,
enrolment, login enforcements by mount, entity and group, the two-phase login (mfa_requirement,
sys/mfa/validate), the single-phase X-Vault-MFA header, and the refusals with Vault's wording."""

from __future__ import annotations

import json
from typing import Any

import pyotp
import pytest
from tests.auth.conftest import Vault
from tests.identity.conftest import accessor

from strongroom.core import CoreConfig
from strongroom.core.audit import AuditConfig
from strongroom.testing import asgi_client, unsealed_core

BAD = "MFA credentials not supplied or incorrect"


async def _setup(v: Vault, **method: Any) -> tuple[str, str, pyotp.TOTP]:
    """alice in userpass with an entity, a TOTP method, alice enrolled. (method_id, entity_id, totp)"""
    await v.done("POST", "auth/userpass/users/alice", {"password": "pw", "token_policies": "p1"})
    eid = (await v.ok("POST", "auth/userpass/login/alice", {"password": "pw"}, token=None))["auth"]["entity_id"]
    mid = (await v.ok("POST", "identity/mfa/method/totp",
                      {"issuer": "Acme", "method_name": "mytotp", **method}))["data"]["method_id"]
    gen = (await v.ok("POST", "identity/mfa/method/totp/admin-generate", {"method_id": mid, "entity_id": eid}))["data"]
    assert gen["url"].startswith(f"otpauth://totp/Acme:{eid}?")
    parsed = pyotp.parse_uri(gen["url"])
    assert isinstance(parsed, pyotp.TOTP)
    return mid, eid, parsed


async def _enforce(v: Vault, mid: str, **bound: Any) -> None:
    await v.done("POST", "identity/mfa/login-enforcement/e1", {"mfa_method_ids": [mid], **bound})


async def _held(v: Vault, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return await v.ok("POST", "auth/userpass/login/alice", {"password": "pw"}, token=None, headers=headers)


async def test_method_crud_list_and_vault_errors(vault: Vault) -> None:
    v = vault
    assert await v.fails(400, "POST", "identity/mfa/method/totp", {}) == ["issuer must be set"]
    for body, msg in (({"digits": 7}, "digits can only be 6 or 8"), ({"skew": 2}, "skew must be 0 or 1"),
                      ({"algorithm": "MD5"}, "unrecognized algorithm"), ({"period": 0}, "period must be greater than zero"),
                      ({"key_size": 0}, "key_size must be greater than zero"),
                      ({"max_validation_attempts": -1}, "max_validation_attempts must be greater than zero")):
        assert await v.fails(400, "POST", "identity/mfa/method/totp", {"issuer": "I", **body}) == [msg]
    mid = (await v.ok("POST", "identity/mfa/method/totp", {"issuer": "Acme", "method_name": "m1"}))["data"]["method_id"]
    want = {"algorithm": "SHA1", "digits": 6, "id": mid, "issuer": "Acme", "key_size": 20, "max_validation_attempts": 5,
            "name": "m1", "namespace_id": "root", "namespace_path": "", "period": 30, "qr_size": 200, "skew": 1,
            "type": "totp"}
    assert (await v.ok("GET", f"identity/mfa/method/totp/{mid}"))["data"] == want
    assert (await v.ok("GET", f"identity/mfa/method/{mid}"))["data"] == want
    for path in ("identity/mfa/method/totp", "identity/mfa/method"):
        listed = (await v.ok("LIST", path))["data"]
        assert listed == {"keys": [mid], "key_info": {mid: want}}
    # the same name again finds the same method (Vault), and every write re-applies the defaults
    again = await v.ok("POST", "identity/mfa/method/totp", {"issuer": "Other", "method_name": "m1", "digits": 8})
    assert again["data"]["method_id"] == mid
    await v.done("POST", f"identity/mfa/method/totp/{mid}", {"issuer": "I3", "period": "1m"})
    read = (await v.ok("GET", f"identity/mfa/method/totp/{mid}"))["data"]
    assert (read["issuer"], read["period"], read["digits"], read["name"]) == ("I3", 60, 6, "m1")
    # an unknown id: update is a no-op (204), read 404
    ghost = "0d6f5f59-85c3-c51b-6c00-ad139df9d09f"
    await v.done("POST", f"identity/mfa/method/totp/{ghost}", {"issuer": "x"})
    await v.fails(404, "GET", f"identity/mfa/method/totp/{ghost}")
    # a method an enforcement uses cannot go
    await _enforce(v, mid, auth_method_types=["userpass"])
    errs = await v.fails(400, "DELETE", f"identity/mfa/method/totp/{mid}")
    assert errs[0].startswith("methodID is still used by an enforcement configuration with ID: ")
    await v.done("DELETE", "identity/mfa/login-enforcement/e1")
    await v.done("DELETE", f"identity/mfa/method/totp/{mid}")
    await v.fails(404, "GET", f"identity/mfa/method/totp/{mid}")
    await v.fails(404, "LIST", "identity/mfa/method")


async def test_enforcement_crud_and_validation(vault: Vault) -> None:
    v = vault
    mid, eid, _ = await _setup(v)
    acc = await accessor(v)
    e1 = "identity/mfa/login-enforcement/e1"
    assert await v.fails(400, "POST", e1, {"mfa_method_ids": [mid]}) == [
        "One of auth_method_accessors, auth_method_types, identity_group_ids, identity_entity_ids must be specified"]
    assert await v.fails(400, "POST", e1, {"auth_method_accessors": [acc]}) == ["missing method ids"]
    for body, msg in (({"mfa_method_ids": ["x"], "auth_method_accessors": [acc]}, "one of the provided method ids doesn't exist"),
                      ({"mfa_method_ids": [mid], "auth_method_accessors": ["bad"]}, "one of the auth method accessors provided is invalid"),
                      ({"mfa_method_ids": [mid], "auth_method_types": ["ldap"]}, "one of the auth method types provided is invalid"),
                      ({"mfa_method_ids": [mid], "identity_group_ids": ["nope"]}, "one of the provided group ids doesn't exist"),
                      ({"mfa_method_ids": [mid], "identity_entity_ids": ["nope"]}, "one of the provided entity ids doesn't exist")):
        assert await v.fails(400, "POST", e1, body) == [msg]
    await v.fails(404, "GET", e1)
    await v.done("POST", e1, {"mfa_method_ids": mid, "auth_method_accessors": acc})
    data = (await v.ok("GET", e1))["data"]
    assert data == {"auth_method_accessors": [acc], "auth_method_types": [], "id": data["id"], "identity_entity_ids": [],
                    "identity_group_ids": [], "mfa_method_ids": [mid], "name": "e1", "namespace_id": "root",
                    "namespace_path": ""}
    await v.done("POST", e1, {"mfa_method_ids": [mid], "identity_entity_ids": [eid]})  # the others are kept
    data2 = (await v.ok("GET", e1))["data"]
    assert data2["id"] == data["id"] and data2["auth_method_accessors"] == [acc] and data2["identity_entity_ids"] == [eid]
    assert (await v.ok("LIST", "identity/mfa/login-enforcement"))["data"] == {"keys": ["e1"], "key_info": {"e1": data2}}
    await v.done("DELETE", e1)
    await v.done("DELETE", e1)
    await v.fails(404, "LIST", "identity/mfa/login-enforcement")


async def test_two_phase_login_then_validate(vault: Vault) -> None:
    v = vault
    mid, eid, totp = await _setup(v)
    await _enforce(v, mid, auth_method_accessors=[await accessor(v)])
    tokens_before = (await v.ok("LIST", "auth/token/accessors"))["data"]["keys"]
    held = await _held(v)
    assert (await v.ok("LIST", "auth/token/accessors"))["data"]["keys"] == tokens_before  # no token minted
    req_id = held["auth"]["mfa_requirement"]["mfa_request_id"]
    assert held["auth"] == {
        "client_token": "", "accessor": "", "policies": None, "metadata": None, "lease_duration": 0, "renewable": False,
        "entity_id": "", "token_type": "default", "orphan": False, "num_uses": 0,
        "mfa_requirement": {"mfa_request_id": req_id, "mfa_constraints": {
            "e1": {"any": [{"type": "totp", "id": mid, "uses_passcode": True, "name": "mytotp"}]}}}}
    assert held["warnings"] == ["A login request was issued that is subject to MFA validation. Please make sure to "
                                "validate the login by sending another request to mfa/validate endpoint."]
    # wrong code: 403 with Vault's wording, the login stays pending
    errs = await v.fails(403, "POST", "sys/mfa/validate", {"mfa_request_id": req_id, "mfa_payload": {mid: ["000000"]}},
                         token=None)
    assert errs == [f"failed to satisfy enforcement e1. error: 2 errors occurred:\n\t* {BAD}\n\t* login MFA validation "
                    f"failed for methodID: [{mid}]\n\n"]
    # no credentials for the method at all
    errs = await v.fails(403, "POST", "sys/mfa/validate", {"mfa_request_id": req_id, "mfa_payload": {"other": ["1"]}},
                         token=None)
    assert errs == ["failed to satisfy enforcement e1. error: failed to sanitize MFA creds, 1 error occurred:\n\t* failed "
                    f"to find MFA credentials associated with an MFA method ID {mid}, method name mytotp\n\n"]
    # the right code, by method name: the token, with the login's policies and entity
    code = totp.now()
    done = await v.ok("POST", "sys/mfa/validate", {"mfa_request_id": req_id, "mfa_payload": {"mytotp": [code]}},
                      token=None)
    auth = done["auth"]
    assert auth["client_token"] and auth["entity_id"] == eid and auth["policies"] == ["default", "p1"]
    assert auth["mfa_requirement"] is None and auth["metadata"] == {"username": "alice"}
    looked = await v.ok("GET", "auth/token/lookup-self", token=auth["client_token"])
    assert looked["data"]["path"] == "auth/userpass/login/alice" and looked["data"]["entity_id"] == eid
    # the request id is spent; the same code is refused on a new login (replay)
    assert await v.fails(400, "POST", "sys/mfa/validate", {"mfa_request_id": req_id, "mfa_payload": {mid: [code]}},
                         token=None) == ["invalid request ID"]
    req2 = (await _held(v))["auth"]["mfa_requirement"]["mfa_request_id"]
    errs = await v.fails(403, "POST", "sys/mfa/validate", {"mfa_request_id": req2, "mfa_payload": {mid: [code]}},
                         token=None)
    assert BAD in errs[0]


async def test_validate_bad_input(vault: Vault) -> None:
    v = vault
    assert await v.fails(400, "POST", "sys/mfa/validate", {"mfa_payload": {"a": ["1"]}}, token=None) == [
        "missing request ID"]
    assert await v.fails(400, "POST", "sys/mfa/validate", {"mfa_request_id": "nope", "mfa_payload": {"a": ["1"]}},
                         token=None) == ["invalid request ID"]
    assert await v.fails(400, "POST", "sys/mfa/validate", {"mfa_request_id": "nope", "mfa_payload": {"a": "1"}},
                         token=None) == ["invalid mfa payload"]
    await v.fails(400, "POST", "sys/mfa/validate", {"mfa_request_id": "nope", "mfa_payload": "zz"}, token=None)


async def test_attempts_are_limited(vault: Vault) -> None:
    v = vault
    mid, _, totp = await _setup(v, max_validation_attempts=2)
    await _enforce(v, mid, auth_method_types=["userpass"])
    req_id = (await _held(v))["auth"]["mfa_requirement"]["mfa_request_id"]
    wrong = "000000" if totp.now() != "000000" else "000001"
    body = {"mfa_request_id": req_id, "mfa_payload": {mid: [wrong]}}
    for _ in range(2):
        assert BAD in (await v.fails(403, "POST", "sys/mfa/validate", body, token=None))[0]
    errs = await v.fails(403, "POST", "sys/mfa/validate", {"mfa_request_id": req_id, "mfa_payload": {mid: [totp.now()]}},
                         token=None)
    assert ("maximum TOTP validation attempts 3 exceeded the allowed attempts 2. Please try again in "
            "30.000000002s seconds") in errs[0]


async def test_single_phase_header(vault: Vault) -> None:
    v = vault
    mid, eid, totp = await _setup(v)
    await _enforce(v, mid, identity_entity_ids=[eid])
    code = totp.now()
    done = await _held(v, headers={"X-Vault-MFA": f"{mid}:{code}"})
    assert done["auth"]["client_token"] and done["auth"]["entity_id"] == eid
    # replayed, wrong, by name: 403 permission denied, no token
    assert await v.fails(403, "POST", "auth/userpass/login/alice", {"password": "pw"}, token=None,
                         headers={"X-Vault-MFA": f"mytotp:{code}"}) == ["permission denied"]
    # malformed header: Vault's 400
    for value, what in ((":123456", "missing method name or ID"), ("mytotp:", "missing method value")):
        assert await v.fails(400, "POST", "auth/userpass/login/alice", {"password": "pw"}, token=None,
                             headers={"X-Vault-MFA": value}) == [
            f'failed to parse X-Vault-MFA header: invalid data in header "X-Vault-MFA"; {what}']
    # a header on a login no enforcement matches: a warning, and the token
    await v.done("DELETE", "identity/mfa/login-enforcement/e1")
    free = await _held(v, headers={"X-Vault-MFA": f"{mid}:{code}"})
    assert free["auth"]["client_token"]
    assert free["warnings"] == ["Found MFA header but failed to find MFA Enforcement Config"]


async def test_enforcement_by_group_and_self_enrolment(vault: Vault) -> None:
    v = vault
    await v.done("POST", "auth/userpass/users/bob", {"password": "pw"})
    first = (await v.ok("POST", "auth/userpass/login/bob", {"password": "pw"}, token=None))["auth"]
    gid = (await v.ok("POST", "identity/group", {"name": "humans", "member_entity_ids": [first["entity_id"]]}))["data"]["id"]
    mid = (await v.ok("POST", "identity/mfa/method/totp", {"issuer": "Acme", "qr_size": 0}))["data"]["method_id"]
    # self-enrolment with bob's own token; root's token has no entity
    await v.done("POST", "sys/policies/acl/default", {"policy": 'path "identity/mfa/method/totp/generate" '
                                                               '{ capabilities = ["update"] }\n'
                                                               'path "auth/token/lookup-self" { capabilities = ["read"] }'})
    assert await v.fails(400, "POST", "identity/mfa/method/totp/generate", {"method_id": mid}) == ["missing entityID"]
    assert await v.fails(400, "POST", "identity/mfa/method/totp/generate", {}, token=first["client_token"]) == [
        "missing method ID"]
    gen = (await v.ok("POST", "identity/mfa/method/totp/generate", {"method_id": mid}, token=first["client_token"]))
    assert gen["data"]["barcode"] == ""
    totp = pyotp.parse_uri(gen["data"]["url"])
    again = await v.ok("POST", "identity/mfa/method/totp/generate", {"method_id": mid}, token=first["client_token"])
    assert again["data"] is None and again["warnings"] == ['Entity already has a secret for MFA method ""']
    await v.done("POST", "identity/mfa/login-enforcement/humans", {"mfa_method_ids": [mid], "identity_group_ids": [gid]})
    held = await v.ok("POST", "auth/userpass/login/bob", {"password": "pw"}, token=None)
    req_id = held["auth"]["mfa_requirement"]["mfa_request_id"]
    assert list(held["auth"]["mfa_requirement"]["mfa_constraints"]) == ["humans"]
    done = await v.ok("POST", "sys/mfa/validate", {"mfa_request_id": req_id, "mfa_payload": {mid: [totp.now()]}},
                      token=None)
    assert done["auth"]["entity_id"] == first["entity_id"]
    # admin-destroy: the secret is gone, so validation cannot succeed
    await v.done("POST", "identity/mfa/method/totp/admin-destroy", {"method_id": mid, "entity_id": first["entity_id"]})
    req2 = (await v.ok("POST", "auth/userpass/login/bob", {"password": "pw"}, token=None))["auth"]["mfa_requirement"]
    errs = await v.fails(403, "POST", "sys/mfa/validate",
                         {"mfa_request_id": req2["mfa_request_id"], "mfa_payload": {mid: ["123456"]}}, token=None)
    assert "not present in entity" in errs[0]


async def test_admin_generate_errors_and_secret_never_read_back(vault: Vault) -> None:
    v = vault
    mid, eid, totp = await _setup(v)
    assert await v.fails(400, "POST", "identity/mfa/method/totp/admin-generate", {"method_id": mid, "entity_id": "x"}) == [
        "invalid entity ID"]
    assert await v.fails(400, "POST", "identity/mfa/method/totp/admin-generate", {"method_id": "nope", "entity_id": eid}) == [
        'configuration for method ID "nope" does not exist']
    again = await v.ok("POST", "identity/mfa/method/totp/admin-generate", {"method_id": mid, "entity_id": eid})
    assert again["warnings"] == ['Entity already has a secret for MFA method "mytotp"'] and again["data"] is None
    assert await v.fails(400, "POST", "identity/mfa/method/totp/admin-destroy", {"method_id": mid}) == ["missing entity ID"]
    # the key is stored through the barrier only: not in any physical value
    raw = b"".join(v.core.physical._data.values())
    assert raw and totp.secret.encode() not in raw
    import base64
    assert base64.b32decode(totp.secret + "=" * (-len(totp.secret) % 8)) not in raw


@pytest.mark.parametrize("skew", [0, 1])
async def test_expired_code_refused(vault: Vault, skew: int) -> None:
    v = vault
    mid, _, totp = await _setup(v, skew=skew)
    await _enforce(v, mid, auth_method_types=["userpass"])
    req_id = (await _held(v))["auth"]["mfa_requirement"]["mfa_request_id"]
    import time
    old = totp.at(time.time() - 30 * (skew + 2))
    if old in {totp.at(time.time() + d) for d in (-30, 0, 30)}:
        pytest.skip("the old code happens to equal a current one")
    errs = await v.fails(403, "POST", "sys/mfa/validate", {"mfa_request_id": req_id, "mfa_payload": {mid: [old]}},
                         token=None)
    assert BAD in errs[0]


async def test_validate_is_audited_without_secrets(tmp_path: Any) -> None:
    async with unsealed_core(config=CoreConfig(audit=AuditConfig(allow_api_creation=True))) as (core, _), \
            asgi_client(core) as client:
        v = Vault(core, client)
        log = tmp_path / "audit.log"
        await v.done("PUT", "sys/audit/file", {"type": "file", "options": {"file_path": str(log)}})
        await v.done("POST", "sys/auth/userpass", {"type": "userpass"})
        mid, _, totp = await _setup(v)
        await _enforce(v, mid, auth_method_types=["userpass"])
        req_id = (await _held(v))["auth"]["mfa_requirement"]["mfa_request_id"]
        code = totp.now()
        done = await v.ok("POST", "sys/mfa/validate", {"mfa_request_id": req_id, "mfa_payload": {mid: [code]}},
                          token=None)
        entries = [json.loads(line) for line in log.read_text().splitlines()]
        validate = [e for e in entries if e["request"]["path"] == "sys/mfa/validate"]
        assert [e["type"] for e in validate] == ["request", "response"]
        assert validate[1]["response"]["auth"]["entity_id"]
        text = log.read_text()
        assert done["auth"]["client_token"] not in text and f'"{code}"' not in text and totp.secret not in text
