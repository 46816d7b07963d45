"""The OIDC authorization-code flow: oidc/auth_url starts it, oidc/callback finishes it.

auth_url (role, redirect_uri, client_nonce) checks the redirect against the role's
allowed_redirect_uris (loopback addresses match on any port, RFC 8252), then remembers a pending
request under a random ``state`` with a random ``nonce`` and a PKCE verifier, and answers the
provider's authorization URL. As in Vault, a redirect that is not allowed gets ``auth_url: ""``,
not an error, since the path is unauthenticated.

callback (state, code, client_nonce) takes the pending request out (each state works once, for 10
minutes), posts the code (with the PKCE verifier and the client secret) to the provider's token
endpoint, and verifies the returned ID token: signature by the provider's JWKS, iss = the discovery
issuer, aud holding the client id (and a bound audience when the role has some), the nonce, the time
claims. Then the role's claim checks run and the token is issued as by login.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from strongroom.auth.jwt.keys import FetchError
from strongroom.auth.jwt.login import check_cidrs, issue, verify_jwt
from strongroom.auth.jwt.store import Role
from strongroom.auth.jwt.verify import Expected, TokenError
from strongroom.errors import InvalidRequest
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response

if TYPE_CHECKING:
    from strongroom.auth.jwt import JWTBackend

LOGIN_FAILED = "OpenBao login failed."
NOT_OIDC_FLOW = "OIDC login is not configured for this mount"
REQUEST_TIMEOUT = 600.0
MAX_PENDING = 10_000
_EXCHANGE = "Provider.Exchange: "
_VERIFY = f"{_EXCHANGE}id_token failed verification: Provider.VerifyIDToken: "


@dataclass(slots=True)
class PendingRequest:
    role: str
    redirect_uri: str
    nonce: str
    code_verifier: str
    client_nonce: str
    expires: float


def paths() -> list[Path[JWTBackend]]:
    return [
        Path("oidc/auth_url", fields={
            "role": Field(FieldType.LOWERCASE_STRING, "The role to issue an OIDC authorization URL against."),
            "redirect_uri": Field(FieldType.STRING, "The OAuth redirect_uri to use in the authorization URL."),
            "client_nonce": Field(FieldType.STRING, "Optional client-provided nonce that must match during "
                                  "callback, if present."),
        }, operations={Op.UPDATE: auth_url}, unauthenticated=True,
            synopsis="Request an authorization URL to start an OIDC login flow."),
        Path("oidc/callback", fields={
            "state": Field(FieldType.STRING, "", query=True),
            "code": Field(FieldType.STRING, "", query=True, sensitive=True),
            "id_token": Field(FieldType.STRING, "", sensitive=True),
            "client_nonce": Field(FieldType.STRING, "", query=True),
        }, operations={Op.READ: callback, Op.UPDATE: callback}, unauthenticated=True,
            synopsis="Callback endpoint to complete an OIDC login."),
    ]


def valid_redirect(uri: str, allowed: list[str]) -> bool:
    """Exact match, or for a loopback address the same URI on any port (RFC 8252 section 7.3)."""
    if uri in allowed:
        return True
    try:
        parts = urlsplit(uri)
        host = parts.hostname or ""
        if host != "localhost":
            ipaddress.ip_address(host)
            if not ipaddress.ip_address(host).is_loopback:
                return False
        for a in allowed:
            ap = urlsplit(a)
            if (ap.scheme, ap.hostname, ap.path, ap.query) == (parts.scheme, parts.hostname, parts.path, parts.query):
                return True
    except ValueError:
        return False
    return False


def _go_quote(text: str) -> str:
    """The message as Go's %q shows it (OpenBao quotes the exchange error this way)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _pkce_challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


async def auth_url(b: JWTBackend, req: Request, d: FieldData) -> Response | None:
    empty = Response(data={"auth_url": ""})
    store = await b.store(req)
    config = await store.config()
    if config is None:
        raise InvalidRequest("could not load configuration")
    if config.auth_type != "oidc_flow":
        raise InvalidRequest(NOT_OIDC_FLOW)
    role_name: str = d.get("role") or config.default_role
    if not role_name:
        raise InvalidRequest("missing role")
    redirect_uri: str = d.get("redirect_uri")
    if not redirect_uri:
        raise InvalidRequest("missing redirect_uri")
    role = await store.role(role_name)
    if role is None:
        raise InvalidRequest(f'role "{role_name}" could not be found')
    if not valid_redirect(redirect_uri, role.allowed_redirect_uris):
        return empty
    try:
        endpoint = (await b.keys.discovery(config)).get("authorization_endpoint")
    except FetchError:
        return empty
    if not isinstance(endpoint, str) or not endpoint:
        return empty
    state, nonce = "st_" + secrets.token_urlsafe(24), "n_" + secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(48)
    b.remember(state, PendingRequest(role=role.name, redirect_uri=redirect_uri, nonce=nonce, code_verifier=verifier,
                                     client_nonce=d.get("client_nonce"), expires=time.time() + REQUEST_TIMEOUT))
    scopes = ["openid", *[s for s in role.oidc_scopes if s and s != "openid"]]
    query = {"client_id": config.oidc_client_id, "code_challenge": _pkce_challenge(verifier),
             "code_challenge_method": "S256", "nonce": nonce, "redirect_uri": redirect_uri,
             "response_type": "code", "scope": " ".join(scopes), "state": state}
    if role.max_age:
        query["max_age"] = str(role.max_age)
    sep = "&" if "?" in endpoint else "?"
    return Response(data={"auth_url": f"{endpoint}{sep}{urlencode(query)}"})


async def _exchange(b: JWTBackend, req: Request, pending: PendingRequest, code: str, role: Role) -> dict[str, Any]:
    """Trade the code for an ID token and verify it; the verified claims (TokenError otherwise)."""
    store = await b.store(req)
    config = await store.config()
    if config is None:
        raise TokenError("could not load configuration")
    try:
        doc = await b.keys.discovery(config)
    except FetchError as e:
        raise TokenError(str(e)) from None
    endpoint = doc.get("token_endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        raise TokenError("provider has no token endpoint")
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": pending.redirect_uri,
            "code_verifier": pending.code_verifier}
    try:
        r, _, body = await b.keys.request_json("POST", endpoint, config.oidc_discovery_ca_pem, data=form,
                                            auth=(config.oidc_client_id, config.oidc_client_secret))
    except FetchError as e:
        raise TokenError(f"{_EXCHANGE}unable to exchange auth code with provider: {e}") from None
    if r.status_code != 200 or not isinstance(body, dict):
        detail = body.get("error") if isinstance(body, dict) else None
        shown = f'"{detail}"' if isinstance(detail, str) else f"{r.status_code} {r.reason_phrase}"
        raise TokenError(f"{_EXCHANGE}unable to exchange auth code with provider: oauth2: {shown}")
    id_token = body.get("id_token")
    if not isinstance(id_token, str) or not id_token:
        raise TokenError(f"{_EXCHANGE}id_token is missing from auth code exchange")
    auds = [a for a in (role.bound_audiences or [config.oidc_client_id]) if a]
    expected = Expected(issuer=config.oidc_discovery_url, audiences=auds, clock_skew_leeway=role.clock_skew_leeway,
                        expiration_leeway=role.expiration_leeway, not_before_leeway=role.not_before_leeway)
    try:
        claims = await verify_jwt(b, config, id_token, expected)
    except TokenError as e:
        msg = str(e)
        if msg.startswith("error verifying token signature: failed"):
            msg = "failed to verify signature: failed to verify id token signature: invalid signature"
        raise TokenError(f"{_VERIFY}invalid id_token: {msg}") from None
    got_nonce = claims.get("nonce")
    # SECURITY: the nonce binds the ID token to this browser login; compared in constant time.
    if not isinstance(got_nonce, str) or not hmac.compare_digest(got_nonce.encode(), pending.nonce.encode()):
        raise TokenError(f"{_VERIFY}invalid id_token nonce: invalid nonce")
    claims.pop("nonce", None)
    access_token = body.get("access_token")
    userinfo = doc.get("userinfo_endpoint")
    if isinstance(access_token, str) and access_token and isinstance(userinfo, str) and userinfo:
        await _merge_userinfo(b, userinfo, config.oidc_discovery_ca_pem, access_token, claims)
    return claims


async def _merge_userinfo(b: JWTBackend, url: str, ca_pem: str, access_token: str, claims: dict[str, Any]) -> None:
    """Add the provider's userinfo claims (as OpenBao does after a code exchange). Only an answer for
    the ID token's own subject is used; any failure leaves the ID token's claims as they are."""
    try:
        r, _, info = await b.keys.request_json("GET", url, ca_pem, headers={"Authorization": f"Bearer {access_token}"})
    except FetchError:
        return
    if r.status_code != 200 or not isinstance(info, dict) or info.get("sub") != claims.get("sub"):
        return
    claims.update(info)


async def callback(b: JWTBackend, req: Request, d: FieldData) -> Response | None:
    store = await b.store(req)
    if await store.config() is None:
        raise InvalidRequest(f"{LOGIN_FAILED} Could not load configuration")
    pending = b.take(d.get("state"))
    if pending is None:
        raise InvalidRequest(f"{LOGIN_FAILED} Expired or missing OAuth state.")
    client_nonce: str = d.get("client_nonce")
    if pending.client_nonce and not hmac.compare_digest(client_nonce.encode(), pending.client_nonce.encode()):
        raise InvalidRequest("invalid client_nonce")
    role = await store.role(pending.role)
    if role is None:
        raise InvalidRequest(f"{LOGIN_FAILED} Role could not be found")
    check_cidrs(req, role)
    code: str = d.get("code")
    if not code:
        raise InvalidRequest(f"{LOGIN_FAILED} No code or id_token received.")
    try:
        claims = await _exchange(b, req, pending, code, role)
    except TokenError as e:
        raise InvalidRequest(f"{LOGIN_FAILED} Error exchanging oidc code: {_go_quote(str(e))}.") from None
    if role.bound_subject and role.bound_subject != claims.get("sub"):
        raise InvalidRequest("sub claim does not match bound subject")
    return issue(req, role, claims)
