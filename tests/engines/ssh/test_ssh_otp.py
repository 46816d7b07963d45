"""ssh engine, OTP mode: creds within the role's CIDRs, verify exactly once, lease revocation, lookup."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import Op
from strongroom.logical import LeaseInfo


@pytest.fixture
async def ssh(make_mount: Any) -> Any:
    m = await make_mount("ssh")
    await m.call(Op.UPDATE, "roles/otp", {"key_type": "otp", "default_user": "bob", "cidr_list": "10.0.0.0/8",
                                          "exclude_cidr_list": "10.9.0.0/16", "allowed_users": "carol"})
    return m


async def test_creds_and_verify_once(ssh: Any) -> None:
    resp = await ssh.call(Op.UPDATE, "creds/otp", {"ip": "10.1.2.3"})
    data = resp.data
    assert data["username"] == "bob" and data["ip"] == "10.1.2.3" and data["key_type"] == "otp"
    assert data["port"] == 22 and len(data["key"]) == 36
    assert resp.secret is not None and resp.secret.renewable is False
    assert data["key"] not in repr(resp.secret.internal_data)  # the lease keeps only the HMAC
    stored = [await ssh.storage.get(k) for k in await ssh.storage.list("")]
    assert not any(data["key"].encode() in (v or b"") for v in stored)  # nor does storage

    verified = await ssh.ok(Op.UPDATE, "verify", {"otp": data["key"]})
    assert verified == {"ip": "10.1.2.3", "role_name": "otp", "username": "bob"}
    with pytest.raises(InvalidRequest, match="OTP not found"):
        await ssh.call(Op.UPDATE, "verify", {"otp": data["key"]})
    with pytest.raises(InvalidRequest, match="OTP not found"):
        await ssh.call(Op.UPDATE, "verify", {"otp": "not-an-otp"})
    with pytest.raises(InvalidRequest, match="OTP not found"):
        await ssh.call(Op.UPDATE, "verify", {})
    assert ssh.backend.is_unauthenticated("verify")


async def test_concurrent_verifies_accept_once(ssh: Any) -> None:
    key = (await ssh.ok(Op.UPDATE, "creds/otp", {"ip": "10.1.2.3"}))["key"]
    results = await asyncio.gather(*(ssh.call(Op.UPDATE, "verify", {"otp": key}) for _ in range(8)),
                                   return_exceptions=True)
    assert sum(1 for r in results if not isinstance(r, Exception)) == 1


async def test_revoking_the_lease_kills_the_otp(ssh: Any) -> None:
    resp = await ssh.call(Op.UPDATE, "creds/otp", {"ip": "10.1.2.3", "username": "carol"})
    secret: LeaseInfo = resp.secret
    await ssh.backend.handle(ssh.request(Op.REVOKE, "creds/otp", secret=secret))
    with pytest.raises(InvalidRequest, match="OTP not found"):
        await ssh.call(Op.UPDATE, "verify", {"otp": resp.data["key"]})


async def test_creds_rules(ssh: Any) -> None:
    cases = [({"ip": "11.1.2.3"}, "Error validating IP: IP does not belong to role"),
             ({"ip": "10.9.1.1"}, "Error validating IP: IP does not belong to role"),  # excluded
             ({"ip": "nonsense"}, 'Invalid IP "nonsense"'),
             ({}, "Missing ip"),
             ({"ip": "10.1.2.3", "username": "eve"},
              "Username has to be either in allowed users list or has to be a default username")]
    for body, message in cases:
        with pytest.raises(InvalidRequest, match=message):
            await ssh.call(Op.UPDATE, "creds/otp", body)
    with pytest.raises(InvalidRequest, match='Role "nope" not found'):
        await ssh.call(Op.UPDATE, "creds/nope", {"ip": "10.1.2.3"})
    await ssh.call(Op.UPDATE, "roles/ca", {"key_type": "ca", "allow_user_certificates": True})
    with pytest.raises(InvalidRequest, match="IP does not belong to role"):
        await ssh.call(Op.UPDATE, "creds/ca", {"ip": "10.1.2.3"})
    assert await ssh.storage.list("otp/") == []
    carol = await ssh.ok(Op.UPDATE, "creds/otp", {"ip": "10.1.2.3", "username": "carol"})
    assert carol["username"] == "carol"


async def test_lookup(ssh: Any) -> None:
    await ssh.call(Op.UPDATE, "roles/wide", {"key_type": "otp", "default_user": "x", "cidr_list": "0.0.0.0/0"})
    assert (await ssh.ok(Op.UPDATE, "lookup", {"ip": "10.1.2.3"}))["roles"] == ["otp", "wide"]
    assert (await ssh.ok(Op.UPDATE, "lookup", {"ip": "10.9.2.3"}))["roles"] == ["wide"]
    assert (await ssh.ok(Op.UPDATE, "lookup", {"ip": "::1"}))["roles"] is None
    with pytest.raises(InvalidRequest, match="Invalid IP"):
        await ssh.call(Op.UPDATE, "lookup", {"ip": "x"})
    with pytest.raises(InvalidRequest, match="Missing ip"):
        await ssh.call(Op.UPDATE, "lookup", {})


async def test_zero_address_roles(ssh: Any) -> None:
    await ssh.call(Op.UPDATE, "roles/any", {"key_type": "otp", "default_user": "u", "exclude_cidr_list": "10.9.0.0/16"})
    with pytest.raises(InvalidRequest, match="IP does not belong to role"):
        await ssh.call(Op.UPDATE, "creds/any", {"ip": "1.2.3.4"})
    with pytest.raises(NotFound):
        await ssh.call(Op.READ, "config/zeroaddress")
    with pytest.raises(InvalidRequest, match='Role "nope" does not exist'):
        await ssh.call(Op.UPDATE, "config/zeroaddress", {"roles": "any,nope"})
    with pytest.raises(InvalidRequest, match="Missing roles"):
        await ssh.call(Op.UPDATE, "config/zeroaddress", {})
    await ssh.call(Op.UPDATE, "config/zeroaddress", {"roles": "any"})
    assert await ssh.ok(Op.READ, "config/zeroaddress") == {"roles": ["any"]}
    assert (await ssh.ok(Op.UPDATE, "creds/any", {"ip": "1.2.3.4"}))["username"] == "u"
    with pytest.raises(InvalidRequest, match="IP does not belong to role"):  # the exclusions still hold
        await ssh.call(Op.UPDATE, "creds/any", {"ip": "10.9.0.1"})
    assert (await ssh.ok(Op.UPDATE, "lookup", {"ip": "1.2.3.4"}))["roles"] == ["any"]
    await ssh.call(Op.DELETE, "roles/any")  # leaves the list with its role
    with pytest.raises(NotFound):
        await ssh.call(Op.READ, "config/zeroaddress")
