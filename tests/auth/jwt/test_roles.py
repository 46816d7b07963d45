"""role/<name> CRUD and validation; plus the pure helpers (glob, JWKS parsing, claim pointers)."""

from __future__ import annotations

import pytest
from tests.auth.conftest import Vault

from strongroom.auth.jwt.verify import b64url_decode, get_claim, glob_match, parse_jwks

from .conftest import Keys, Provider, jwk


async def test_role_crud_and_read_shape(vault: Vault) -> None:
    assert await vault.fails(404, "LIST", "auth/jwt/role") == []
    await vault.done("POST", "auth/jwt/role/Dev", {
        "role_type": "jwt", "user_claim": "sub", "bound_audiences": "a,b", "bound_claims": {"team": ["x", "y"]},
        "claim_mappings": "email=mail", "clock_skew_leeway": "2m", "expiration_leeway": -1, "policies": "p1",
        "ttl": "1h"})
    data = (await vault.ok("GET", "auth/jwt/role/dev"))["data"]
    assert data["role_type"] == "jwt" and data["bound_audiences"] == ["a", "b"]
    assert data["bound_claims"] == {"team": ["x", "y"]} and data["claim_mappings"] == {"email": "mail"}
    assert data["clock_skew_leeway"] == 120 and data["expiration_leeway"] == -1 and data["not_before_leeway"] == 0
    assert data["token_policies"] == ["p1"] and data["policies"] == ["p1"] and data["token_ttl"] == 3600
    assert data["allowed_redirect_uris"] is None and data["oidc_scopes"] is None
    assert data["bound_claims_type"] == "string" and data["callback_mode"] == "client"
    # A write merges: fields not sent keep their values.
    await vault.done("POST", "auth/jwt/role/dev", {"role_type": "jwt", "bound_subject": "s"})
    data = (await vault.ok("GET", "auth/jwt/role/dev"))["data"]
    assert data["bound_subject"] == "s" and data["bound_audiences"] == ["a", "b"] and data["role_type"] == "jwt"
    # As in OpenBao, a write without role_type means oidc, which needs allowed_redirect_uris.
    assert await vault.fails(400, "POST", "auth/jwt/role/dev", {"bound_subject": "t"}) == [
        "'allowed_redirect_uris' must be set if 'role_type' is 'oidc' or unspecified."]
    assert (await vault.ok("GET", "auth/jwt/role/dev"))["data"]["bound_subject"] == "s"
    assert (await vault.ok("LIST", "auth/jwt/role"))["data"]["keys"] == ["dev"]
    await vault.done("DELETE", "auth/jwt/role/DEV")
    assert await vault.fails(404, "GET", "auth/jwt/role/dev") == []


async def test_role_validation(vault: Vault) -> None:
    async def refused(body: dict[str, object]) -> str:
        return (await vault.fails(400, "POST", "auth/jwt/role/r", body))[0]

    base = {"role_type": "jwt", "user_claim": "sub", "bound_subject": "s"}
    assert await refused({**base, "role_type": "saml"}) == "invalid 'role_type': saml"
    assert await refused({"role_type": "jwt", "bound_subject": "s"}) == "a user claim must be defined on the role"
    assert await refused({"role_type": "jwt", "user_claim": "sub"}) == (
        "must have at least one bound constraint when creating/updating a role")
    assert await refused({**base, "bound_claims_type": "regex"}) == "invalid 'bound_claims_type': regex"
    assert await refused({**base, "claim_mappings": {"a": "role"}}) == (
        'metadata key "role" is reserved and may not be a mapping destination')
    assert await refused({**base, "claim_mappings": {"a": "m", "b": "m"}}) == (
        'multiple keys are mapped to metadata key "m"')
    assert await refused({**base, "token_ttl": "2h", "token_max_ttl": "1h"}) == (
        "'token_ttl' cannot be greater than 'token_max_ttl'")
    assert await refused({"user_claim": "sub"}) == (
        "'allowed_redirect_uris' must be set if 'role_type' is 'oidc' or unspecified.")
    # Nothing was stored by any of these.
    assert await vault.fails(404, "GET", "auth/jwt/role/r") == []


async def test_jwks_ca_pem_is_checked(vault: Vault, provider: Provider) -> None:
    errs = await vault.fails(400, "POST", "auth/jwt/config", {"jwks_url": f"{provider.url}/keys",
                                                              "jwks_ca_pem": "not a pem"})
    assert errs == ["error checking jwks_ca_pem"]


async def test_oidc_mount_type(vault: Vault) -> None:
    await vault.done("POST", "sys/auth/oidc", {"type": "oidc"})
    auths = (await vault.ok("GET", "sys/auth"))["data"]
    assert auths["oidc/"]["type"] == "oidc"
    await vault.done("POST", "auth/oidc/role/r", {"user_claim": "sub", "allowed_redirect_uris": "http://localhost/cb"})
    assert (await vault.ok("GET", "auth/oidc/role/r"))["data"]["role_type"] == "oidc"


def test_glob() -> None:
    assert glob_match("*", "") and glob_match("a*", "abc") and glob_match("*c", "abc") and glob_match("a*c", "ac")
    assert glob_match("a*b*c", "axxbyyc") and not glob_match("a*b*c", "axxc")
    assert not glob_match("ab*ba", "aba")  # prefix and suffix may not overlap
    assert not glob_match("a?c", "abc") and glob_match("a?c", "a?c")  # only * is special
    assert not glob_match("abc", "abcd")


def test_jwks_parsing_skips_unusable_keys(keys: Keys) -> None:
    doc = {"keys": [jwk(keys.rsa, "r"), jwk(keys.ec, "e"), jwk(keys.ed, "d"),
                    {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
                    {**jwk(keys.rsa, "enc"), "use": "enc"},
                    {"kty": "RSA", "kid": "broken", "n": 5},
                    "junk"]}
    parsed = parse_jwks(doc)
    assert sorted(parsed) == ["d", "e", "r"]


def test_claim_pointers() -> None:
    c = {"a": {"b/c": [10, "x"]}, "n": 3.0, "t": True}
    assert get_claim(c, "/a/b~1c/1") == "x" and get_claim(c, "/a/b~1c/0") == "10"
    assert get_claim(c, "/a/missing") is None and get_claim(c, "n") == "3" and get_claim(c, "t") is True


def test_base64url_is_strict() -> None:
    assert b64url_decode("") == b"" and b64url_decode("e30") == b"{}"
    for bad in ("e30=", "e3 0", "e3+0", "e3/0", "e30!", "a"):
        with pytest.raises(ValueError):
            b64url_decode(bad)
