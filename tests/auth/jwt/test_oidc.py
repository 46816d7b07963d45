"""The OIDC authorization-code flow against the local provider: auth_url, the provider's redirect,
callback exchanging the code and verifying the ID token; and each way it must fail."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from tests.auth.conftest import Vault

from strongroom.auth.jwt import oidc as oidc_module

from .conftest import Keys, Provider

REDIRECT = "http://localhost:8250/oidc/callback"


async def _setup(vault: Vault, provider: Provider, **role: Any) -> None:
    await vault.done("POST", "auth/jwt/config", {
        "oidc_discovery_url": provider.url, "oidc_client_id": provider.client_id,
        "oidc_client_secret": provider.client_secret, "default_role": "web"})
    body = {"user_claim": "email", "groups_claim": "groups", "allowed_redirect_uris": [REDIRECT, "https://app/cb"],
            "oidc_scopes": "profile,email", "claim_mappings": {"sub": "subject"}, "token_policies": "dev",
            **role}
    await vault.done("POST", "auth/jwt/role/web", body)


async def _auth_url(vault: Vault, redirect: str = REDIRECT, **extra: Any) -> str:
    body = {"role": "web", "redirect_uri": redirect, **extra}
    return str((await vault.ok("POST", "auth/jwt/oidc/auth_url", body, token=None))["data"]["auth_url"])


def _browser(auth_url: str) -> dict[str, str]:
    """What the user's browser does: follow auth_url; the provider redirects back with code and state."""
    r = httpx.get(auth_url, follow_redirects=False)
    assert r.status_code == 302
    loc = urlsplit(r.headers["location"])
    return {k: v[0] for k, v in parse_qs(loc.query).items()}


async def _callback(vault: Vault, params: dict[str, str]) -> httpx.Response:
    return await vault.client.get(f"/v1/auth/jwt/oidc/callback?{urlencode(params)}")


async def test_authorization_code_flow(vault: Vault, provider: Provider) -> None:
    await _setup(vault, provider)
    url = await _auth_url(vault, client_nonce="cn-1")
    u = urlsplit(url)
    q = {k: v[0] for k, v in parse_qs(u.query).items()}
    assert f"{u.scheme}://{u.netloc}{u.path}" == f"{provider.url}/authorize"
    assert q["client_id"] == provider.client_id and q["redirect_uri"] == REDIRECT and q["response_type"] == "code"
    assert q["scope"] == "openid profile email" and q["code_challenge_method"] == "S256"
    assert len(q["state"]) >= 20 and len(q["nonce"]) >= 20 and q["state"] != q["nonce"]
    back = _browser(url)
    r = await _callback(vault, {**back, "client_nonce": "cn-1"})
    assert r.status_code == 200, r.text
    auth = r.json()["auth"]
    assert auth["policies"] == ["default", "dev"]
    assert auth["metadata"] == {"role": "web", "subject": "alice"}
    look = (await vault.ok("GET", "auth/token/lookup-self", token=auth["client_token"]))["data"]
    assert look["display_name"] == "jwt-alice-example-com"
    # What reached the token endpoint: the code, our redirect, the PKCE verifier; the secret as Basic auth.
    form = provider.token_requests[-1]
    assert form["grant_type"] == "authorization_code" and form["redirect_uri"] == REDIRECT and form["code_verifier"]
    assert "client_secret" not in form
    # A state works once.
    r = await _callback(vault, {**back, "client_nonce": "cn-1"})
    assert r.status_code == 400 and r.json()["errors"] == ["OpenBao login failed. Expired or missing OAuth state."]


async def test_callback_refusals(vault: Vault, provider: Provider, keys: Keys) -> None:
    await _setup(vault, provider)

    async def fails(**tamper: Any) -> str:
        provider.tamper = tamper
        back = _browser(await _auth_url(vault))
        r = await _callback(vault, back)
        provider.tamper = {}
        assert r.status_code == 400, r.text
        return str(r.json()["errors"][0])

    prefix = 'OpenBao login failed. Error exchanging oidc code: "Provider.Exchange: '
    verify = prefix + "id_token failed verification: Provider.VerifyIDToken: "
    assert await fails(nonce="not-the-nonce") == verify + 'invalid id_token nonce: invalid nonce".'
    assert await fails(aud="another-client") == verify + (
        'invalid id_token: invalid audience (aud) claim: audience claim does not match any expected audience".')
    assert await fails(iss="https://evil.example") == verify + 'invalid id_token: invalid issuer (iss) claim".'
    now = int(time.time())
    assert await fails(exp=now - 3600, iat=now - 7200) == verify + (
        'invalid id_token: invalid expiration time (exp) claim: token is expired".')
    provider.sign_with = keys.other_rsa
    assert await fails() == verify + (
        'invalid id_token: failed to verify signature: failed to verify id token signature: invalid signature".')
    provider.sign_with = None
    # A client_nonce given to auth_url must come back to callback.
    back = _browser(await _auth_url(vault, client_nonce="mine"))
    r = await _callback(vault, {**back, "client_nonce": "other"})
    assert r.status_code == 400 and r.json()["errors"] == ["invalid client_nonce"]
    # A code the provider never issued; a missing code.
    back = _browser(await _auth_url(vault))
    r = await _callback(vault, {**back, "code": "forged"})
    assert r.status_code == 400 and r.json()["errors"] == [
        prefix + 'unable to exchange auth code with provider: oauth2: \\"invalid_grant\\"".']
    back = _browser(await _auth_url(vault))
    r = await _callback(vault, {"state": back["state"]})
    assert r.json()["errors"] == ["OpenBao login failed. No code or id_token received."]
    # A wrong client secret is refused by the provider.
    await vault.done("POST", "auth/jwt/config", {"oidc_discovery_url": provider.url, "oidc_client_id": provider.client_id,
                                                 "oidc_client_secret": "wrong"})
    back = _browser(await _auth_url(vault))
    r = await _callback(vault, back)
    assert r.status_code == 400 and '\\"invalid_client\\"' in r.json()["errors"][0]


async def test_bound_claims_and_subject_on_oidc_role(vault: Vault, provider: Provider) -> None:
    await _setup(vault, provider, bound_claims_type="glob", bound_claims={"email": "*@example.com"})
    assert (await _callback(vault, _browser(await _auth_url(vault)))).status_code == 200
    provider.user_claims["email"] = "mallory@evil.example"
    r = await _callback(vault, _browser(await _auth_url(vault)))
    assert r.json()["errors"] == [('error validating claims: claim "email" does not match any associated bound '
                                   "claim values")]
    provider.user_claims["email"] = "alice@example.com"
    await vault.done("POST", "auth/jwt/role/web", {"bound_subject": "bob", "bound_claims_type": "glob"})
    r = await _callback(vault, _browser(await _auth_url(vault)))
    assert r.json()["errors"] == ["sub claim does not match bound subject"]


async def test_auth_url_checks(vault: Vault, provider: Provider, keys: Keys) -> None:
    r = await vault.fails(400, "POST", "auth/jwt/oidc/auth_url", {"role": "web", "redirect_uri": REDIRECT}, token=None)
    assert r == ["could not load configuration"]
    await vault.done("POST", "auth/jwt/config", {"jwks_url": f"{provider.url}/keys"})
    r = await vault.fails(400, "POST", "auth/jwt/oidc/auth_url", {"role": "web", "redirect_uri": REDIRECT}, token=None)
    assert r == ["OIDC login is not configured for this mount"]
    await _setup(vault, provider)
    assert await vault.fails(400, "POST", "auth/jwt/oidc/auth_url", {"role": "web"}, token=None) == [
        "missing redirect_uri"]
    assert await vault.fails(400, "POST", "auth/jwt/oidc/auth_url", {"role": "nope", "redirect_uri": REDIRECT},
                             token=None) == ['role "nope" could not be found']
    # Not an allowed redirect: an empty auth_url, no error (the path is unauthenticated).
    assert await _auth_url(vault, "https://evil.example/cb") == ""
    assert await _auth_url(vault, "https://app/cb/extra") == ""
    assert await _auth_url(vault, "https://app/cb")
    # Loopback redirects match on any port (RFC 8252); other hosts do not.
    assert await _auth_url(vault, "http://localhost:39999/oidc/callback")
    assert await _auth_url(vault, "http://127.0.0.1:8250/oidc/callback") == ""
    # default_role serves when no role is named.
    r2 = await vault.ok("POST", "auth/jwt/oidc/auth_url", {"redirect_uri": REDIRECT}, token=None)
    assert r2["data"]["auth_url"].startswith(provider.url)
    # An oidc role needs allowed_redirect_uris.
    assert await vault.fails(400, "POST", "auth/jwt/role/x", {"user_claim": "sub"}) == [
        "'allowed_redirect_uris' must be set if 'role_type' is 'oidc' or unspecified."]


async def test_pending_logins_expire_and_are_bounded(vault: Vault, provider: Provider,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    await _setup(vault, provider)
    expired = "OpenBao login failed. Expired or missing OAuth state."
    monkeypatch.setattr(oidc_module, "REQUEST_TIMEOUT", -1.0)
    r = await _callback(vault, _browser(await _auth_url(vault)))
    assert r.status_code == 400 and r.json()["errors"] == [expired]
    monkeypatch.setattr(oidc_module, "REQUEST_TIMEOUT", 600.0)
    # At most MAX_PENDING logins wait; the oldest make room for new ones.
    monkeypatch.setattr(oidc_module, "MAX_PENDING", 2)
    first, second, third = [_browser(await _auth_url(vault)) for _ in range(3)]
    assert (await _callback(vault, first)).json()["errors"] == [expired]
    assert (await _callback(vault, second)).status_code == 200
    assert (await _callback(vault, third)).status_code == 200


async def test_userinfo_claims_are_merged(vault: Vault, provider: Provider) -> None:
    await _setup(vault, provider, claim_mappings={"department": "dept", "sub": "subject"})
    provider.userinfo = {"sub": "alice", "department": "eng"}
    auth = (await _callback(vault, _browser(await _auth_url(vault)))).json()["auth"]
    assert auth["metadata"] == {"role": "web", "subject": "alice", "dept": "eng"}
    # Userinfo about another subject is ignored.
    provider.userinfo = {"sub": "mallory", "department": "root"}
    auth = (await _callback(vault, _browser(await _auth_url(vault)))).json()["auth"]
    assert auth["metadata"] == {"role": "web", "subject": "alice"}
