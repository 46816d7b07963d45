"""What every ACME endpoint shares: the directory a request came through (its scope), JWS
authentication, and answers: raw JSON or problem documents with a fresh ``Replay-Nonce`` and the
directory's ``Link: <directory>;rel="index"``. Also ``directory`` and ``new-nonce``.

Every endpoint but ``directory`` and ``new-nonce`` takes a JWS POST (jws.py); :func:`endpoint` wraps
one: scope, verification (signature, then the single-use nonce), problem documents.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from strongroom.engines.pki.acme import jws as jwslib
from strongroom.engines.pki.acme import store
from strongroom.engines.pki.acme.config import CLUSTER_PATH_REQUIRED, AcmeConfig, load_config
from strongroom.engines.pki.acme.problems import AcmeProblem, malformed, unauthorized
from strongroom.engines.pki.acme.state import AcmeState, state_of
from strongroom.framework import FieldData, Handler, Op, Request, Response

if TYPE_CHECKING:
    from strongroom.engines.pki.acme.ca import AcmeCA

JOSE = "application/jose+json"
#: Seconds a client is asked to wait before polling a validation in progress again.
RETRY_AFTER = 1
ID = r"[A-Za-z0-9_-]{1,64}"
NAME = r"\w(?:[\w\-.@]*\w)?"
SCOPE = re.compile(rf"^(?:issuer/(?P<issuer>{NAME})/)?(?:roles/(?P<role>{NAME})/)?acme/")


class _Disabled(Exception):
    """ACME is not enabled on this mount: answered 404 as in Vault."""


@dataclass(frozen=True, slots=True)
class Scope:
    """The directory a request came through and what it implies."""

    base: str  # ".../v1/pki/[issuer/REF/][roles/ROLE/]acme/"
    prefix: str  # "", "roles/R/", "issuer/I/", "issuer/I/roles/R/"
    issuer_ref: str
    role_name: str
    url: str  # the request's own URL (what the JWS "url" must say)
    config: AcmeConfig

    def link(self, kind: str, ident: str = "") -> str:
        return f"{self.base}{kind}/{ident}" if ident else f"{self.base}{kind}"


async def resolve_scope(b: AcmeCA, req: Request) -> Scope:
    assert req.storage is not None
    cfg = await load_config(req.storage)
    if not cfg.enabled:
        raise _Disabled()
    m = SCOPE.match(req.path)
    assert m is not None
    cluster = (await b.cluster_path(req)).rstrip("/")
    if not cluster:
        raise AcmeProblem("serverInternal", CLUSTER_PATH_REQUIRED)
    issuer, role = m.group("issuer") or "", m.group("role") or ""
    if issuer and "*" not in cfg.allowed_issuers and issuer not in cfg.allowed_issuers:
        raise unauthorized(f"issuer {issuer!r} is not allowed to be used with ACME (allowed_issuers)")
    if role:
        if "*" not in cfg.allowed_roles and role not in cfg.allowed_roles:
            raise unauthorized(f"role {role!r} is not allowed to be used with ACME (allowed_roles)")
    else:
        policy = cfg.role_policy()
        if policy is None:
            raise unauthorized("the default directory policy is forbid: use a role's ACME directory")
        role = policy
    prefix = m.group(0)[: -len("acme/")]
    return Scope(base=f"{cluster}/{prefix}acme/", prefix=prefix, issuer_ref=issuer or "default",
                 role_name=role, url=f"{cluster}/{req.path}", config=cfg)


def acme_headers(state: AcmeState, scope: Scope | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    h = {"Replay-Nonce": state.new_nonce()}
    if scope is not None:
        h["Link"] = f'<{scope.base}directory>;rel="index"'
    if extra:
        if "Link" in extra and "Link" in h:
            extra = {**extra, "Link": f"{h['Link']}, {extra['Link']}"}
        h.update(extra)
    return h


def json_response(state: AcmeState, scope: Scope, body: dict[str, Any], status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    return Response(raw_body=orjson.dumps(body), raw_content_type="application/json", raw_status=status,
                    headers=acme_headers(state, scope, headers))


def problem_response(state: AcmeState, scope: Scope | None, p: AcmeProblem) -> Response:
    return Response(raw_body=p.body(), raw_content_type="application/problem+json", raw_status=p.status,
                    headers=acme_headers(state, scope))


def _disabled() -> Response:
    return Response(raw_body=orjson.dumps({"errors": ["ACME feature is disabled"]}), raw_status=404)


@dataclass(slots=True)
class Signed:
    """A verified ACME request: its payload (None: POST-as-GET) and the account that signed it
    (None when signed with a bare jwk: new-account, revoke-cert by certificate key)."""

    jws: jwslib.Jws
    payload: Any
    account: dict[str, Any] | None
    jwk: dict[str, str]


Endpoint = Callable[["AcmeCA", Request, Scope, Signed, AcmeState], Awaitable[Response]]


async def _authenticate(req: Request, scope: Scope, state: AcmeState, *, jwk: bool, kid: bool) -> Signed:
    assert req.storage is not None
    if req.content_type != JOSE:
        raise AcmeProblem("malformed", f"Content-Type must be {JOSE}", 415)
    jws = jwslib.parse(req.data)
    header = jws.header
    if header["url"] != scope.url:
        raise unauthorized("the JWS url does not match the request URL")
    account = None
    if "jwk" in header:
        if not jwk:
            raise malformed("this request must be signed with the account's key id (kid), not a jwk")
        key_jwk = jwslib.canonical_jwk(header["jwk"])
    else:
        if not kid:
            raise malformed("this request must carry the account's key (jwk), not a kid")
        kid_url = header["kid"]
        account_id = kid_url.rsplit("/", 1)[-1]
        if kid_url != scope.base + "account/" + account_id or not re.fullmatch(ID, account_id):
            raise AcmeProblem("accountDoesNotExist", "no account with this key id in this directory")
        account = await store.get(req.storage, store.ACCOUNTS + account_id)
        if account is None or account["directory"] != scope.prefix:
            raise AcmeProblem("accountDoesNotExist", "no account with this key id in this directory")
        key_jwk = account["jwk"]
    jwslib.verify(jws, jwslib.jwk_public_key(key_jwk))
    nonce = header.get("nonce")
    if not isinstance(nonce, str) or not state.consume_nonce(nonce):
        raise AcmeProblem("badNonce", "the nonce is missing, already used, expired or not from this server")
    if account is not None and account["status"] != "valid":
        raise unauthorized(f"account is {account['status']}")
    if account is not None and scope.config.eab_policy == "always-required" and not account.get("eab"):
        raise unauthorized("eab_policy always-required: this account was created without external account binding")
    return Signed(jws, jws.payload(), account, key_jwk)


def endpoint(*, jwk: bool = False, kid: bool = True) -> Callable[[Endpoint], Handler[AcmeCA]]:
    """A JWS-authenticated ACME endpoint: scope, verification, problem documents, nonces."""

    def wrap(fn: Endpoint) -> Handler[AcmeCA]:
        @functools.wraps(fn)
        async def handler(b: AcmeCA, req: Request, d: FieldData) -> Response:
            state = state_of(b)
            scope = None
            try:
                scope = await resolve_scope(b, req)
                signed = await _authenticate(req, scope, state, jwk=jwk, kid=kid)
                return await fn(b, req, scope, signed, state)
            except _Disabled:
                return _disabled()
            except AcmeProblem as p:
                return problem_response(state, scope, p)

        return handler

    return wrap


def payload_object(signed: Signed) -> dict[str, Any]:
    if not isinstance(signed.payload, dict):
        raise malformed("the payload must be a JSON object")
    return signed.payload


def object_id(req: Request) -> str:
    """The ID in ``.../acme/KIND/ID[/...]`` (the path table guarantees its shape)."""
    m = SCOPE.match(req.path)
    assert m is not None
    return req.path[m.end():].split("/")[1]


def owned(obj: dict[str, Any] | None, signed: Signed, what: str) -> dict[str, Any]:
    assert signed.account is not None
    if obj is None:
        raise AcmeProblem("malformed", f"no such {what}", 404)
    if obj["account"] != signed.account["id"]:
        raise unauthorized(f"this {what} belongs to another account")
    return obj


# -- directory and nonces ---------------------------------------------------------------------------

async def directory(b: AcmeCA, req: Request, d: FieldData) -> Response:
    state = state_of(b)
    try:
        scope = await resolve_scope(b, req)
    except _Disabled:
        return _disabled()
    except AcmeProblem as p:
        return problem_response(state, None, p)
    body = {"newNonce": scope.link("new-nonce"), "newAccount": scope.link("new-account"),
            "newOrder": scope.link("new-order"), "revokeCert": scope.link("revoke-cert"),
            "keyChange": scope.link("key-change"),
            "meta": {"externalAccountRequired": scope.config.eab_policy != "not-required"}}
    return Response(raw_body=orjson.dumps(body), raw_status=200)


async def new_nonce(b: AcmeCA, req: Request, d: FieldData) -> Response:
    state = state_of(b)
    try:
        scope = await resolve_scope(b, req)
    except _Disabled:
        return _disabled()
    except AcmeProblem as p:
        return problem_response(state, None, p)
    # HEAD answers 200, GET 204 (RFC 8555 §7.2).
    return Response(status=200 if req.operation is Op.HEADER else 0, headers=acme_headers(state, scope))
