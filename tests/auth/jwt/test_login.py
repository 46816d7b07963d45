"""JWT login: PEM keys and JWKS, each algorithm, the claim checks and Vault's wording for refusals."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests.auth.conftest import Vault

from strongroom.auth.jwt import keys as keys_module

from .conftest import Keys, Provider, claims, public_pem, sign

ISS = "https://issuer.example"


async def _setup(vault: Vault, keys: Keys, **role: Any) -> None:
    await vault.done("POST", "auth/jwt/config", {
        "jwt_validation_pubkeys": [public_pem(keys.rsa), public_pem(keys.ec), public_pem(keys.ed)],
        "bound_issuer": ISS})
    body = {"role_type": "jwt", "user_claim": "email", "bound_audiences": "strongroom",
            "token_policies": "reader", "token_ttl": "1h", **role}
    await vault.done("POST", "auth/jwt/role/r", body)


async def _login(vault: Vault, jwt: str, role: str = "r") -> dict[str, Any]:
    return dict((await vault.ok("POST", "auth/jwt/login", {"role": role, "jwt": jwt}, token=None))["auth"])


async def _refused(vault: Vault, jwt: str, status: int = 400, role: str = "r") -> str:
    errors = await vault.fails(status, "POST", "auth/jwt/login", {"role": role, "jwt": jwt}, token=None)
    return errors[0]


async def test_login_with_each_algorithm(vault: Vault, keys: Keys) -> None:
    await _setup(vault, keys, claim_mappings={"email": "mail", "/nested/team": "team"})
    c = claims(nested={"team": "blue"})
    for key, alg in ((keys.rsa, "RS256"), (keys.rsa, "RS384"), (keys.rsa, "RS512"), (keys.rsa, "PS256"),
                     (keys.ec, "ES256"), (keys.ed, "EdDSA")):
        auth = await _login(vault, sign(c, key, alg))
        assert auth["policies"] == ["default", "reader"], alg
        assert auth["metadata"] == {"role": "r", "mail": "alice@example.com", "team": "blue"}
        assert auth["lease_duration"] == 3600
    look = (await vault.ok("GET", "auth/token/lookup-self", token=auth["client_token"]))["data"]
    assert look["path"] == "auth/jwt/login" and look["display_name"] == "jwt-alice-example-com"


async def test_none_and_hmac_algorithms_are_refused(vault: Vault, keys: Keys) -> None:
    await _setup(vault, keys)
    expected = ("error validating token: error verifying token signature: no known key successfully "
                "validated the token signature")
    assert await _refused(vault, sign(claims(), None, "none")) == expected
    # HS256 keyed with the PEM text of a configured public key: the algorithm-confusion attack.
    assert await _refused(vault, sign(claims(), public_pem(keys.rsa).encode(), "HS256")) == expected


async def test_bad_signature_and_foreign_key(vault: Vault, keys: Keys) -> None:
    await _setup(vault, keys)
    good = sign(claims(), keys.rsa)
    head, body, sig = good.split(".")
    forged = sign(claims(sub="root"), keys.rsa).split(".")[1]
    expected = ("error validating token: error verifying token signature: no known key successfully "
                "validated the token signature")
    assert await _refused(vault, f"{head}.{forged}.{sig}") == expected
    assert await _refused(vault, sign(claims(), keys.other_rsa)) == expected
    # An RS256 signature presented as PS256 or ES256 does not verify either.
    assert await _refused(vault, f"{head}.{body}.{sig}".replace(head, sign(claims(), keys.rsa, "ES256").split(".")[0]))


async def test_registered_claims(vault: Vault, keys: Keys) -> None:
    await _setup(vault, keys, bound_subject="user-1")
    k = keys.rsa
    assert await _refused(vault, sign(claims(exp=1000, iat=900, nbf=900), k)) == (
        "error validating token: invalid expiration time (exp) claim: token is expired")
    assert await _refused(vault, sign(claims(aud="someone-else"), k)) == (
        "error validating token: invalid audience (aud) claim: audience claim does not match any expected audience")
    assert await _refused(vault, sign(claims(iss="https://evil.example"), k)) == (
        "error validating token: invalid issuer (iss) claim")
    assert await _refused(vault, sign(claims(sub="user-2"), k)) == "error validating token: invalid subject (sub) claim"
    future = claims()
    future.update(nbf=future["nbf"] + 3600, iat=future["iat"] + 3600, exp=future["exp"] + 7200)
    assert await _refused(vault, sign(future, k)) == (
        "error validating token: invalid not before (nbf) claim: token not yet valid")
    assert await _refused(vault, sign(claims(iat=None, nbf=None, exp=None), k)) == (
        "error validating token: no issued at (iat), not before (nbf), or expiration time (exp) claims in token")
    # Within the default 60 s clock skew an expired token still passes; a leeway of -1 disables it.
    now = claims()["iat"]
    recent = claims(iat=now - 100, nbf=now - 100, exp=now - 30)
    assert (await _login(vault, sign(recent, k)))["client_token"]
    await vault.done("POST", "auth/jwt/role/r", {"role_type": "jwt", "clock_skew_leeway": -1})
    assert "token is expired" in await _refused(vault, sign(recent, k))
    # A token with an audience, against a role that binds none.
    await vault.done("POST", "auth/jwt/role/r2", {"role_type": "jwt", "user_claim": "sub", "bound_subject": "user-1"})
    assert await _refused(vault, sign(claims(), k), role="r2") == (
        "audience claim found in JWT but no audiences bound to the role")
    assert (await _login(vault, sign(claims(aud=None), k), role="r2"))["metadata"] == {"role": "r2"}


async def test_bound_claims_string_and_glob(vault: Vault, keys: Keys) -> None:
    await _setup(vault, keys, bound_claims={"groups": ["admins", "ops"], "env": "prod"})
    k = keys.rsa
    assert (await _login(vault, sign(claims(groups=["dev", "ops"], env="prod"), k)))["client_token"]
    assert await _refused(vault, sign(claims(groups=["dev"], env="prod"), k)) == (
        'error validating claims: claim "groups" does not match any associated bound claim values')
    assert await _refused(vault, sign(claims(groups=["ops"]), k)) == 'error validating claims: claim "env" is missing'
    # String matching is literal: a "*" means a star.
    await vault.done("POST", "auth/jwt/role/r", {"role_type": "jwt", "bound_claims": {"repo": "org/*"}})
    assert "does not match" in await _refused(vault, sign(claims(repo="org/app"), k))
    await vault.done("POST", "auth/jwt/role/r", {"role_type": "jwt", "bound_claims_type": "glob"})
    assert (await vault.ok("GET", "auth/jwt/role/r"))["data"]["bound_claims"] == {"repo": "org/*"}
    assert (await _login(vault, sign(claims(repo="org/app"), k)))["client_token"]
    assert "does not match" in await _refused(vault, sign(claims(repo="other/app"), k))
    await vault.done("POST", "auth/jwt/role/r", {"role_type": "jwt", "bound_claims_type": "glob",
                                                 "bound_claims": {"repo": "org/*/main", "ref": ["*-release", "v*"]}})
    assert (await _login(vault, sign(claims(repo="org/app/main", ref="v1.2"), k)))["client_token"]
    assert "does not match" in await _refused(vault, sign(claims(repo="org/app/dev", ref="v1.2"), k))
    # Glob bound claims must be strings.
    errors = await vault.fails(400, "POST", "auth/jwt/role/r", {"role_type": "jwt", "bound_claims_type": "glob",
                                                                 "bound_claims": {"n": [1]}})
    assert errors == ["claim is not a string: 1"]


async def test_user_claim_groups_claim_and_mapping_errors(vault: Vault, keys: Keys) -> None:
    await _setup(vault, keys, user_claim="preferred_username", groups_claim="groups")
    k = keys.rsa
    assert await _refused(vault, sign(claims(groups=["a"]), k)) == 'claim "preferred_username" not found in token'
    assert await _refused(vault, sign(claims(preferred_username=7, groups=["a"]), k)) == (
        'claim "preferred_username" could not be converted to string')
    assert await _refused(vault, sign(claims(preferred_username="al"), k)) == '"groups" claim not found in token'
    assert await _refused(vault, sign(claims(preferred_username="al", groups={"a": 1}), k)) == (
        '"groups" claim could not be converted to string list')
    assert (await _login(vault, sign(claims(preferred_username="al", groups="solo"), k)))["client_token"]
    await vault.done("POST", "auth/jwt/role/r", {"role_type": "jwt", "claim_mappings": {"groups": "g"}})
    assert await _refused(vault, sign(claims(preferred_username="al", groups=["a"]), k)) == (
        "error converting claim 'groups' to string")


async def test_login_request_errors(vault: Vault, keys: Keys) -> None:
    assert await vault.fails(400, "POST", "auth/jwt/login", {"role": "r", "jwt": "x"}, token=None) == [
        "could not load configuration"]
    await _setup(vault, keys, token_bound_cidrs="10.0.0.0/8")
    assert await vault.fails(400, "POST", "auth/jwt/login", {"jwt": "x"}, token=None) == ["missing role"]
    assert await vault.fails(400, "POST", "auth/jwt/login", {"role": "nope", "jwt": "x"}, token=None) == [
        'role "nope" could not be found']
    assert await vault.fails(400, "POST", "auth/jwt/login", {"role": "r"}, token=None) == ["missing token"]
    # The in-process client is not within the role's token_bound_cidrs: 403, before any verification.
    assert await vault.fails(403, "POST", "auth/jwt/login", {"role": "r", "jwt": "x"}, token=None) == [
        "permission denied"]
    await vault.done("POST", "auth/jwt/role/r", {"role_type": "jwt", "token_bound_cidrs": ""})
    assert await _refused(vault, "x") == ("error validating token: error verifying token signature: "
                                          "go-jose/go-jose: compact JWS format must have three parts")
    assert await _refused(vault, "e30." + "A" * 70_000 + ".") == (
        "error validating token: error verifying token signature: token is too large")
    for junk in ("a.b.c", "!!.??.**", "e30.W10.", "W10.e30.", "e30.e30."):
        assert (await _refused(vault, junk)).startswith("error validating token: error verifying token signature: ")
    await vault.done("POST", "auth/jwt/role/o", {"user_claim": "sub", "allowed_redirect_uris": "http://x/cb"})
    assert await _refused(vault, sign(claims(), keys.rsa), role="o") == "role with oidc role_type is not allowed"
    # default_role stands in for a missing role.
    cfg = (await vault.ok("GET", "auth/jwt/config"))["data"]
    await vault.done("POST", "auth/jwt/config", {"jwt_validation_pubkeys": cfg["jwt_validation_pubkeys"],
                                                 "bound_issuer": ISS, "default_role": "r"})
    ok = await vault.ok("POST", "auth/jwt/login", {"jwt": sign(claims(), keys.rsa)}, token=None)
    assert ok["auth"]["metadata"]["role"] == "r"


async def test_supported_algs_restrict(vault: Vault, keys: Keys) -> None:
    await _setup(vault, keys)
    await vault.done("POST", "auth/jwt/config", {"jwt_validation_pubkeys": [public_pem(keys.ec)],
                                                 "jwt_supported_algs": "ES256", "bound_issuer": ISS})
    assert (await _login(vault, sign(claims(), keys.ec, "ES256")))["client_token"]
    assert "unexpected algorithm" in await _refused(vault, sign(claims(), keys.rsa, "RS256"))


# -- JWKS -----------------------------------------------------------------------------------------
async def _jwks_setup(vault: Vault, provider: Provider) -> None:
    await vault.done("POST", "auth/jwt/config", {"jwks_url": f"{provider.url}/keys", "bound_issuer": ISS})
    await vault.done("POST", "auth/jwt/role/r", {"role_type": "jwt", "user_claim": "sub",
                                                 "bound_audiences": "strongroom", "token_policies": "p"})


async def test_jwks_login_cache_and_rotation(vault: Vault, keys: Keys, provider: Provider,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    await _jwks_setup(vault, provider)
    provider.jwks_hits = 0
    for _ in range(3):
        assert (await _login(vault, sign(claims(), keys.rsa, kid="k1")))["policies"] == ["default", "p"]
    assert provider.jwks_hits == 1  # fetched once, then cached
    # Unknown kids: refused, and refetches are rate-limited (at most one per interval).
    for _ in range(5):
        assert await _refused(vault, sign(claims(), keys.ec, "ES256", kid="k9")) == (
            "error validating token: error verifying token signature: failed to verify id token signature")
    assert provider.jwks_hits <= 2
    # The provider rotates to a new key: a token with the new kid makes the cache refetch.
    monkeypatch.setattr(keys_module, "MIN_REFETCH_INTERVAL", 0.0)
    provider.signing = [("k2", keys.ec)]
    assert (await _login(vault, sign(claims(), keys.ec, "ES256", kid="k2")))["client_token"]
    # The rotated-out key no longer verifies.
    assert "failed to verify" in await _refused(vault, sign(claims(), keys.rsa, kid="k1"))


async def test_config_validation(vault: Vault, keys: Keys, provider: Provider) -> None:
    assert await vault.fails(404, "GET", "auth/jwt/config") == []
    one_of = ("exactly one of 'jwt_validation_pubkeys', 'jwks_url', 'jwks_pairs', 'oidc_discovery_url', or "
              "'provider_config' must be set")
    assert await vault.fails(400, "POST", "auth/jwt/config", {}) == [one_of]
    assert await vault.fails(400, "POST", "auth/jwt/config", {"jwks_url": f"{provider.url}/keys",
                                                              "jwt_validation_pubkeys": public_pem(keys.rsa)}) == [one_of]
    errs = await vault.fails(400, "POST", "auth/jwt/config", {"jwt_validation_pubkeys": "not a key"})
    assert errs == ["error parsing public key: data does not contain any valid public keys"]
    errs = await vault.fails(400, "POST", "auth/jwt/config", {"jwks_url": f"{provider.url}/missing"})
    assert errs == ["error checking jwks URL"]
    # A provider answering an oversized document is refused, not buffered.
    assert await vault.fails(400, "POST", "auth/jwt/config", {"jwks_url": f"{provider.url}/huge"}) == [
        "error checking jwks URL"]
    errs = await vault.fails(400, "POST", "auth/jwt/config", {"oidc_discovery_url": provider.url,
                                                              "oidc_client_id": "x"})
    assert errs == ["both 'oidc_client_id' and 'oidc_client_secret' must be set for OIDC"]
    errs = await vault.fails(400, "POST", "auth/jwt/config", {"oidc_discovery_url": provider.url + "/other"})
    assert errs[0].startswith("error checking oidc discovery URL")
    errs = await vault.fails(400, "POST", "auth/jwt/config", {"jwks_url": f"{provider.url}/keys",
                                                              "jwt_supported_algs": "HS256"})
    assert errs == ['invalid jwt_supported_algs: unsupported signing algorithm "HS256"']
    await vault.done("POST", "auth/jwt/config", {"oidc_discovery_url": provider.url, "oidc_client_id": "c",
                                                 "oidc_client_secret": "hush", "default_role": "Dev"})
    data = (await vault.ok("GET", "auth/jwt/config"))["data"]
    assert "oidc_client_secret" not in data and "hush" not in str(data)
    assert data["oidc_client_id"] == "c" and data["default_role"] == "dev" and data["oidc_discovery_url"] == provider.url


async def test_jwt_via_discovery(vault: Vault, keys: Keys, provider: Provider) -> None:
    """A jwt role on a mount configured by discovery (no client id): keys come from the provider."""
    await vault.done("POST", "auth/jwt/config", {"oidc_discovery_url": provider.url, "bound_issuer": provider.url})
    await vault.done("POST", "auth/jwt/role/r", {"role_type": "jwt", "user_claim": "sub", "bound_audiences": "x"})
    assert (await _login(vault, sign(claims(iss=provider.url, aud="x"), keys.rsa, kid="k1")))["client_token"]
    assert "invalid issuer" in await _refused(vault, sign(claims(aud="x"), keys.rsa, kid="k1"))


async def test_jwks_and_discovery_over_tls_with_ca_pem(vault: Vault, keys: Keys, tls_provider: tuple[Provider, str]) -> None:
    provider, ca = tls_provider
    # Without the CA the provider's self-signed certificate is not trusted.
    assert await vault.fails(400, "POST", "auth/jwt/config", {"jwks_url": f"{provider.url}/keys"}) == [
        "error checking jwks URL"]
    errs = await vault.fails(400, "POST", "auth/jwt/config", {"oidc_discovery_url": provider.url})
    assert errs[0].startswith("error checking oidc discovery URL")
    await vault.done("POST", "auth/jwt/config", {"jwks_url": f"{provider.url}/keys", "jwks_ca_pem": ca,
                                                 "bound_issuer": ISS})
    await vault.done("POST", "auth/jwt/role/r", {"role_type": "jwt", "user_claim": "sub", "bound_audiences": "strongroom"})
    assert (await _login(vault, sign(claims(), keys.rsa, kid="k1")))["client_token"]
    await vault.done("POST", "auth/jwt/config", {"oidc_discovery_url": provider.url, "oidc_discovery_ca_pem": ca})
    assert (await _login(vault, sign(claims(iss=provider.url), keys.rsa, kid="k1")))["client_token"]


async def test_concurrent_logins_share_one_jwks_fetch(vault: Vault, keys: Keys, provider: Provider) -> None:
    await _jwks_setup(vault, provider)
    provider.jwks_hits = 0
    tokens = [sign(claims(sub=f"u{i}"), keys.rsa, kid="k1") for i in range(8)]
    results = await asyncio.gather(*[_login(vault, t) for t in tokens])
    assert all(r["client_token"] for r in results) and provider.jwks_hits == 1
