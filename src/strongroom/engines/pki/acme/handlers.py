"""The ACME endpoints (RFC 8555 §7) under a pki mount, in Vault's four directory flavours.

Every endpoint but ``directory`` and ``new-nonce`` takes a JWS POST (jws.py). Answers are raw JSON
(not Vault's envelope) with a fresh ``Replay-Nonce`` and a ``Link: <directory>;rel="index"``;
errors are problem documents (problems.py). Objects belong to the account that created them: any
other account gets ``unauthorized``. An order's status is derived from its authorizations when read
(pending -> ready once all are valid, invalid once one is), so a background validation only
writes its authorization.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from strongroom.engines.pki.acme import jws as jwslib
from strongroom.engines.pki.acme import store
from strongroom.engines.pki.acme.config import CLUSTER_PATH_REQUIRED, AcmeConfig, load_config
from strongroom.engines.pki.acme.eab import EAB, check_binding
from strongroom.engines.pki.acme.problems import AcmeProblem, malformed, unauthorized
from strongroom.engines.pki.acme.state import AcmeState, state_of
from strongroom.engines.pki.acme.validate import run_challenge
from strongroom.errors import StrongroomError
from strongroom.framework import FieldData, Handler, Op, Path, Request, Response
from strongroom.logical import Storage

if TYPE_CHECKING:
    from strongroom.engines.pki.acme.ca import AcmeCA

JOSE = "application/jose+json"
ORDER_TTL = 24 * 3600.0
MAX_IDENTIFIERS = 100
MAX_CONTACTS = 10
#: Seconds a client is asked to wait before polling a validation in progress again.
RETRY_AFTER = 1
_ID = r"[A-Za-z0-9_-]{1,64}"
_NAME = r"\w(?:[\w\-.@]*\w)?"
_SCOPE = re.compile(rf"^(?:issuer/(?P<issuer>{_NAME})/)?(?:roles/(?P<role>{_NAME})/)?acme/")
_DNS_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_REVOCATION_REASONS = {0, 1, 2, 3, 4, 5, 6, 8, 9, 10}


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


async def _scope(b: AcmeCA, req: Request) -> Scope:
    assert req.storage is not None
    cfg = await load_config(req.storage)
    if not cfg.enabled:
        raise _Disabled()
    m = _SCOPE.match(req.path)
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


def _headers(state: AcmeState, scope: Scope | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    h = {"Replay-Nonce": state.new_nonce()}
    if scope is not None:
        h["Link"] = f'<{scope.base}directory>;rel="index"'
    if extra:
        if "Link" in extra and "Link" in h:
            extra = {**extra, "Link": f"{h['Link']}, {extra['Link']}"}
        h.update(extra)
    return h


def _json(state: AcmeState, scope: Scope, body: dict[str, Any], status: int = 200,
          headers: dict[str, str] | None = None) -> Response:
    return Response(raw_body=orjson.dumps(body), raw_content_type="application/json", raw_status=status,
                    headers=_headers(state, scope, headers))


def _problem(state: AcmeState, scope: Scope | None, p: AcmeProblem) -> Response:
    return Response(raw_body=p.body(), raw_content_type="application/problem+json", raw_status=p.status,
                    headers=_headers(state, scope))


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
        if not kid_url.startswith(scope.base + "account/") or not re.fullmatch(_ID, account_id):
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
                scope = await _scope(b, req)
                signed = await _authenticate(req, scope, state, jwk=jwk, kid=kid)
                return await fn(b, req, scope, signed, state)
            except _Disabled:
                return _disabled()
            except AcmeProblem as p:
                return _problem(state, scope, p)

        return handler

    return wrap


# -- directory and nonces ---------------------------------------------------------------------------

async def directory(b: AcmeCA, req: Request, d: FieldData) -> Response:
    state = state_of(b)
    try:
        scope = await _scope(b, req)
    except _Disabled:
        return _disabled()
    except AcmeProblem as p:
        return _problem(state, None, p)
    body = {"newNonce": scope.link("new-nonce"), "newAccount": scope.link("new-account"),
            "newOrder": scope.link("new-order"), "revokeCert": scope.link("revoke-cert"),
            "keyChange": scope.link("key-change"),
            "meta": {"externalAccountRequired": scope.config.eab_policy != "not-required"}}
    return Response(raw_body=orjson.dumps(body), raw_status=200)


async def new_nonce(b: AcmeCA, req: Request, d: FieldData) -> Response:
    state = state_of(b)
    try:
        scope = await _scope(b, req)
    except _Disabled:
        return _disabled()
    except AcmeProblem as p:
        return _problem(state, None, p)
    # HEAD answers 200, GET 204 (RFC 8555 §7.2).
    return Response(status=200 if req.operation is Op.HEADER else 0, headers=_headers(state, scope))


# -- accounts ---------------------------------------------------------------------------------------

def _contacts(payload: dict[str, Any], default: list[str]) -> list[str]:
    contact = payload.get("contact", default)
    if not isinstance(contact, list) or len(contact) > MAX_CONTACTS or not all(isinstance(c, str) for c in contact):
        raise malformed("contact must be a list of at most 10 mailto: URLs")
    for c in contact:
        if not c.startswith("mailto:"):
            raise AcmeProblem("unsupportedContact", f"only mailto: contacts are supported, not {c[:64]!r}")
        addr = c.removeprefix("mailto:")
        if not re.fullmatch(r"[^@\s,?]{1,64}@[A-Za-z0-9.-]{1,253}", addr):
            raise AcmeProblem("invalidContact", f"invalid email address {addr[:64]!r}")
    return list(contact)


def _account_body(scope: Scope, account: dict[str, Any]) -> dict[str, Any]:
    return {"status": account["status"], "contact": account["contact"],
            "orders": scope.link("account", account["id"]) + "/orders",
            "createdAt": store.rfc3339(account["created"])}


def _payload_object(signed: Signed) -> dict[str, Any]:
    if not isinstance(signed.payload, dict):
        raise malformed("the payload must be a JSON object")
    return signed.payload


@endpoint(jwk=True, kid=False)
async def new_account(b: AcmeCA, req: Request, scope: Scope, signed: Signed, state: AcmeState) -> Response:
    assert req.storage is not None
    payload = _payload_object(signed)
    thumb = jwslib.thumbprint(signed.jwk)
    async with state.locks.lock_for(store.ACCOUNT_KEYS + thumb):
        existing = await store.get(req.storage, store.ACCOUNT_KEYS + thumb)
        if existing is not None:
            account = await store.get(req.storage, store.ACCOUNTS + existing["kid"])
            if account is not None:
                return _json(state, scope, _account_body(scope, account),
                             headers={"Location": scope.link("account", account["id"])})
        if payload.get("onlyReturnExisting") is True:
            raise AcmeProblem("accountDoesNotExist", "no account exists with this key")
        contact = _contacts(payload, [])
        eab_id = ""
        if "externalAccountBinding" in payload:
            eab_id = await check_binding(req.storage, payload["externalAccountBinding"],
                                         url=scope.link("new-account"), directory=f"{scope.prefix}acme/",
                                         account_jwk=signed.jwk)
        elif scope.config.eab_policy != "not-required":
            raise AcmeProblem("externalAccountRequired", "this ACME directory requires external account binding")
        account_id = str(uuid.uuid4())
        account = {"id": account_id, "status": "valid", "contact": contact, "jwk": signed.jwk,
                   "thumbprint": thumb, "directory": scope.prefix, "created": state.clock(), "eab": eab_id,
                   "terms_of_service_agreed": payload.get("termsOfServiceAgreed") is True}
        await store.put(req.storage, store.ACCOUNTS + account_id, account)
        await store.put(req.storage, store.ACCOUNT_KEYS + thumb, {"kid": account_id})
        if eab_id:  # a binding serves one account
            await req.storage.delete(EAB + eab_id)
    return _json(state, scope, _account_body(scope, account), 201,
                 headers={"Location": scope.link("account", account_id)})


def _object_id(req: Request) -> str:
    """The ID in ``.../acme/KIND/ID[/...]`` (the path table guarantees its shape)."""
    m = _SCOPE.match(req.path)
    assert m is not None
    return req.path[m.end():].split("/")[1]


@endpoint()
async def account(b: AcmeCA, req: Request, scope: Scope, signed: Signed, state: AcmeState) -> Response:
    assert req.storage is not None and signed.account is not None
    acct = signed.account
    if _object_id(req) != acct["id"]:
        raise unauthorized("the request is signed by another account than the one in the URL")
    if signed.payload is not None:
        payload = _payload_object(signed)
        async with state.locks.lock_for(store.ACCOUNTS + acct["id"]):
            acct = await store.get(req.storage, store.ACCOUNTS + acct["id"]) or acct
            if "status" in payload:
                if payload["status"] != "deactivated":
                    raise malformed("an account's status can only be changed to deactivated")
                acct["status"] = "deactivated"
            if "contact" in payload:
                acct["contact"] = _contacts(payload, [])
            await store.put(req.storage, store.ACCOUNTS + acct["id"], acct)
    return _json(state, scope, _account_body(scope, acct), headers={"Location": scope.link("account", acct["id"])})


@endpoint()
async def key_change(b: AcmeCA, req: Request, scope: Scope, signed: Signed, state: AcmeState) -> Response:
    """RFC 8555 §7.3.5: the payload is a JWS signed by the new key naming the account and old key."""
    assert req.storage is not None and signed.account is not None
    acct = signed.account
    inner = jwslib.parse(_payload_object(signed))
    if "jwk" not in inner.header or "nonce" in inner.header:
        raise malformed("the inner JWS must carry the new key as jwk and no nonce")
    if inner.header["url"] != signed.jws.header["url"]:
        raise malformed("the inner JWS url differs from the outer one")
    new_jwk = jwslib.canonical_jwk(inner.header["jwk"])
    jwslib.verify(inner, jwslib.jwk_public_key(new_jwk))
    body = inner.payload()
    if not isinstance(body, dict) or body.get("account") != scope.link("account", acct["id"]):
        raise malformed("the inner payload's account is not the signing account")
    old = body.get("oldKey")
    if jwslib.thumbprint(jwslib.canonical_jwk(old)) != acct["thumbprint"]:
        raise unauthorized("oldKey is not the account's current key")
    new_thumb = jwslib.thumbprint(new_jwk)
    async with state.locks.lock_for(store.ACCOUNT_KEYS + new_thumb):
        taken = await store.get(req.storage, store.ACCOUNT_KEYS + new_thumb)
        if taken is not None:
            return Response(raw_body=AcmeProblem("malformed", "the new key is already in use by an account").body(),
                            raw_content_type="application/problem+json", raw_status=409,
                            headers=_headers(state, scope, {"Location": scope.link("account", taken["kid"])}))
        old_thumb = acct["thumbprint"]
        acct["jwk"], acct["thumbprint"] = new_jwk, new_thumb
        await store.put(req.storage, store.ACCOUNT_KEYS + new_thumb, {"kid": acct["id"]})
        await store.put(req.storage, store.ACCOUNTS + acct["id"], acct)
        await req.storage.delete(store.ACCOUNT_KEYS + old_thumb)
    return _json(state, scope, _account_body(scope, acct), headers={"Location": scope.link("account", acct["id"])})


# -- orders and authorizations ----------------------------------------------------------------------

def _identifier(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str) or not isinstance(raw.get("value"), str):
        raise malformed("each identifier must be an object with a type and a value")
    kind, value = raw["type"], raw["value"]
    if kind == "ip":
        try:
            return {"type": "ip", "value": str(ipaddress.ip_address(value))}
        except ValueError:
            raise malformed(f"{value[:64]!r} is not an IP address") from None
    if kind != "dns":
        raise AcmeProblem("unsupportedIdentifier", f"identifier type {kind[:32]!r} is not supported (dns, ip)")
    name = value.lower().rstrip(".") if value.endswith(".") and not value.endswith("..") else value.lower()
    base = name.removeprefix("*.")  # a wildcard: validated on its base domain, with dns-01 only
    if len(name) > 253 or not all(_DNS_LABEL.match(label) for label in base.split(".")):
        raise AcmeProblem("rejectedIdentifier", f"{value[:64]!r} is not a valid DNS name")
    try:
        ipaddress.ip_address(base)
    except ValueError:
        return {"type": "dns", "value": name}
    raise AcmeProblem("rejectedIdentifier", f"{name!r} is an IP address: use an ip identifier")


def _owned(obj: dict[str, Any] | None, signed: Signed, what: str) -> dict[str, Any]:
    assert signed.account is not None
    if obj is None:
        raise AcmeProblem("malformed", f"no such {what}", 404)
    if obj["account"] != signed.account["id"]:
        raise unauthorized(f"this {what} belongs to another account")
    return obj


async def _order_status(storage: Storage, order: dict[str, Any], now: float) -> str:
    if order["status"] in ("valid", "invalid"):
        return str(order["status"])
    if order["expires"] <= now:
        return "invalid"
    statuses = []
    for authz_id in order["authorizations"]:
        authz = await store.get(storage, store.AUTHZ + authz_id)
        statuses.append(_authz_status(authz, now) if authz else "invalid")
    if any(s != "valid" and s != "pending" for s in statuses):
        return "invalid"
    return "ready" if all(s == "valid" for s in statuses) else "pending"


def _authz_status(authz: dict[str, Any], now: float) -> str:
    status = str(authz["status"])
    if status in ("pending", "valid") and authz["expires"] <= now:
        return "expired"
    return status


async def _order_body(storage: Storage, scope: Scope, order: dict[str, Any], now: float) -> dict[str, Any]:
    status = await _order_status(storage, order, now)
    body: dict[str, Any] = {
        "status": status, "expires": store.rfc3339(order["expires"]), "identifiers": order["identifiers"],
        "authorizations": [scope.link("authorization", a) for a in order["authorizations"]],
        "finalize": scope.link("order", order["id"]) + "/finalize",
    }
    if status == "valid":
        body["certificate"] = scope.link("order", order["id"]) + "/cert"
    if order.get("error"):
        body["error"] = order["error"]
    return body


def _check_order_scope(order: dict[str, Any], scope: Scope) -> None:
    if order["directory"] != scope.prefix:
        raise unauthorized("this order belongs to another ACME directory")


@endpoint()
async def new_order(b: AcmeCA, req: Request, scope: Scope, signed: Signed, state: AcmeState) -> Response:
    assert req.storage is not None and signed.account is not None
    payload = _payload_object(signed)
    if "notBefore" in payload or "notAfter" in payload:
        raise malformed("notBefore and notAfter are not supported")
    raw = payload.get("identifiers")
    if not isinstance(raw, list) or not raw or len(raw) > MAX_IDENTIFIERS:
        raise malformed(f"identifiers must be a list of 1 to {MAX_IDENTIFIERS} identifiers")
    identifiers: list[dict[str, str]] = []
    for item in raw:
        ident = _identifier(item)
        if ident not in identifiers:
            identifiers.append(ident)
    now = state.clock()
    expires = now + ORDER_TTL
    account_id = signed.account["id"]
    order_id = str(uuid.uuid4())
    authz_ids = []
    for ident in identifiers:
        authz_id = str(uuid.uuid4())
        kinds = _challenge_kinds(ident)
        authz = {"id": authz_id, "account": account_id, "order": order_id, "identifier": ident,
                 "status": "pending", "expires": expires, "directory": scope.prefix,
                 "challenges": [{"type": k, "token": secrets.token_urlsafe(32), "status": "pending"} for k in kinds]}
        await store.put(req.storage, store.AUTHZ + authz_id, authz)
        authz_ids.append(authz_id)
    order = {"id": order_id, "account": account_id, "status": "pending", "expires": expires,
             "identifiers": identifiers, "authorizations": authz_ids, "directory": scope.prefix,
             "created": now}
    await store.put(req.storage, store.ORDERS + order_id, order)
    await req.storage.put(f"{store.ACCOUNT_ORDERS}{account_id}/{order_id}", b"")
    return _json(state, scope, await _order_body(req.storage, scope, order, now), 201,
                 headers={"Location": scope.link("order", order_id)})


@endpoint()
async def list_orders(b: AcmeCA, req: Request, scope: Scope, signed: Signed, state: AcmeState) -> Response:
    assert req.storage is not None and signed.account is not None
    if "/account/" in req.path and _object_id(req) != signed.account["id"]:
        raise unauthorized("the request is signed by another account than the one in the URL")
    ids = await req.storage.list(f"{store.ACCOUNT_ORDERS}{signed.account['id']}/")
    return _json(state, scope, {"orders": [scope.link("order", i) for i in sorted(ids)]})


@endpoint()
async def get_order(b: AcmeCA, req: Request, scope: Scope, signed: Signed, state: AcmeState) -> Response:
    assert req.storage is not None
    order = _owned(await store.get(req.storage, store.ORDERS + _object_id(req)), signed, "order")
    _check_order_scope(order, scope)
    return _json(state, scope, await _order_body(req.storage, scope, order, state.clock()),
                 headers={"Location": scope.link("order", order["id"])})


def _challenge_body(scope: Scope, authz: dict[str, Any], chal: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"type": chal["type"], "url": scope.link("challenge", authz["id"]) + "/" + chal["type"],
                            "token": chal["token"], "status": chal["status"]}
    if "validated" in chal:
        body["validated"] = store.rfc3339(chal["validated"])
    if "error" in chal:
        body["error"] = chal["error"]
    return body


def _challenge_kinds(ident: dict[str, str]) -> list[str]:
    """http-01 for IP addresses, dns-01 for wildcards, both for other names."""
    if ident["type"] == "ip":
        return ["http-01"]
    if ident["value"].startswith("*."):
        return ["dns-01"]
    return ["http-01", "dns-01"]


def _authz_body(scope: Scope, authz: dict[str, Any], now: float) -> dict[str, Any]:
    ident = authz["identifier"]
    wildcard = ident["type"] == "dns" and ident["value"].startswith("*.")
    if wildcard:  # RFC 8555 §7.1.4: the authorization names the base domain and says wildcard
        ident = {"type": "dns", "value": ident["value"][2:]}
    return {"identifier": ident, "status": _authz_status(authz, now), "wildcard": wildcard,
            "expires": store.rfc3339(authz["expires"]),
            "challenges": [_challenge_body(scope, authz, c) for c in authz["challenges"]]}


@endpoint()
async def authorization(b: AcmeCA, req: Request, scope: Scope, signed: Signed, state: AcmeState) -> Response:
    assert req.storage is not None
    key = store.AUTHZ + _object_id(req)
    now = state.clock()
    async with state.locks.lock_for(key):
        authz = _owned(await store.get(req.storage, key), signed, "authorization")
        _check_order_scope(authz, scope)
        if signed.payload is not None:
            payload = _payload_object(signed)
            if payload.get("status") != "deactivated":
                raise malformed("an authorization's status can only be changed to deactivated")
            if _authz_status(authz, now) not in ("pending", "valid"):
                raise malformed(f"the authorization is {_authz_status(authz, now)}")
            authz["status"] = "deactivated"
            await store.put(req.storage, key, authz)
    body = _authz_body(scope, authz, now)
    busy = body["status"] == "pending" and any(c["status"] == "processing" for c in body["challenges"])
    return _json(state, scope, body, headers={"Retry-After": str(RETRY_AFTER)} if busy else None)


@endpoint()
async def challenge(b: AcmeCA, req: Request, scope: Scope, signed: Signed, state: AcmeState) -> Response:
    assert req.storage is not None and signed.account is not None
    authz_id = _object_id(req)
    key = store.AUTHZ + authz_id
    start = False
    async with state.locks.lock_for(key):
        authz = _owned(await store.get(req.storage, key), signed, "authorization")
        _check_order_scope(authz, scope)
        kind = req.path.rsplit("/", 1)[-1]
        chal = next((c for c in authz["challenges"] if c["type"] == kind), None)
        if chal is None:
            raise AcmeProblem("malformed", f"this authorization has no {kind} challenge", 404)
        if signed.payload is not None:
            _payload_object(signed)
            status = _authz_status(authz, state.clock())
            if chal["status"] == "pending":
                if status != "pending":
                    raise malformed(f"the authorization is {status}")
                chal["status"] = "processing"
                await store.put(req.storage, key, authz)
                start = True
    if start:
        state.spawn(run_challenge(req.storage, state, authz_id, kind, signed.account["thumbprint"], scope.config),
                    name=f"acme-{kind}-{authz_id}")
    headers = {"Link": f'<{scope.link("authorization", authz_id)}>;rel="up"'}
    if chal["status"] == "processing":
        headers["Retry-After"] = str(RETRY_AFTER)
    return _json(state, scope, _challenge_body(scope, authz, chal), headers=headers)


# -- finalize, certificate, revocation --------------------------------------------------------------

def _csr_names(csr: x509.CertificateSigningRequest) -> set[tuple[str, str]]:
    names: set[tuple[str, str]] = set()
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names |= {("dns", n.lower()) for n in san.get_values_for_type(x509.DNSName)}
        names |= {("ip", str(ip)) for ip in san.get_values_for_type(x509.IPAddress)}
    except x509.ExtensionNotFound:
        pass
    for attr in csr.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME):
        cn = str(attr.value).lower()
        try:
            names.add(("ip", str(ipaddress.ip_address(cn))))
        except ValueError:
            names.add(("dns", cn))
    return names


def _spki(key: Any) -> bytes:
    return bytes(key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))


@endpoint()
async def finalize(b: AcmeCA, req: Request, scope: Scope, signed: Signed, state: AcmeState) -> Response:
    assert req.storage is not None and signed.account is not None
    key = store.ORDERS + _object_id(req)
    payload = _payload_object(signed)
    async with state.locks.lock_for(key):
        order = _owned(await store.get(req.storage, key), signed, "order")
        _check_order_scope(order, scope)
        status = await _order_status(req.storage, order, state.clock())
        if status != "ready":
            raise AcmeProblem("orderNotReady", f"the order is {status}, not ready")
        csr_der = jwslib.b64d(payload.get("csr"), "csr")
        try:
            csr = x509.load_der_x509_csr(csr_der)
            valid = csr.is_signature_valid
            csr_key = csr.public_key()
        except ValueError as e:
            raise AcmeProblem("badCSR", f"cannot parse the CSR: {e}") from None
        if not valid:
            raise AcmeProblem("badCSR", "the CSR's signature is invalid")
        wanted = {(i["type"], i["value"]) for i in order["identifiers"]}
        if _csr_names(csr) != wanted:
            raise AcmeProblem("badCSR", "the CSR's names are not exactly the order's identifiers")
        if _spki(csr_key) == _spki(jwslib.jwk_public_key(signed.account["jwk"])):
            raise AcmeProblem("badCSR", "the CSR's key must not be the account key")
        try:
            issued = await b.acme_issue(req, csr_der, [i["value"] for i in order["identifiers"]],
                                        issuer_ref=scope.issuer_ref, role_name=scope.role_name)
        except StrongroomError as e:
            if e.status_code >= 500:
                raise AcmeProblem("serverInternal", f"issuing the certificate failed: {e.message}") from None
            order["status"] = "invalid"
            order["error"] = {"type": "urn:ietf:params:acme:error:badCSR", "detail": e.message, "status": 400}
            await store.put(req.storage, key, order)
            raise AcmeProblem("badCSR", f"the CA refused the certificate: {e.message}") from None
        try:  # the serial as the certificate says it, whatever notation the CA reports it in
            serial = x509.load_pem_x509_certificate(issued.certificate_pem.encode()).serial_number
        except ValueError:
            raise AcmeProblem("serverInternal", "the CA returned an unreadable certificate") from None
        order["status"] = "valid"
        order["certificate"] = issued.certificate_pem
        order["chain"] = list(issued.chain_pem)
        order["serial_number"] = format(serial, "x")
        await store.put(req.storage, store.serial_key(serial),
                        {"account": signed.account["id"], "order": order["id"], "revoked": False})
        await store.put(req.storage, key, order)
    return _json(state, scope, await _order_body(req.storage, scope, order, state.clock()),
                 headers={"Location": scope.link("order", order["id"])})


def _pem(text: str) -> str:
    return text.strip() + "\n"


@endpoint()
async def certificate(b: AcmeCA, req: Request, scope: Scope, signed: Signed, state: AcmeState) -> Response:
    assert req.storage is not None
    order = _owned(await store.get(req.storage, store.ORDERS + _object_id(req)), signed, "order")
    _check_order_scope(order, scope)
    if order["status"] != "valid":
        raise AcmeProblem("orderNotReady", "the order has no certificate yet")
    if signed.payload is not None:
        raise malformed("fetch the certificate with POST-as-GET (an empty payload)")
    pem = "".join(_pem(c) for c in [order["certificate"], *order["chain"]])
    return Response(raw_body=pem.encode(), raw_content_type="application/pem-certificate-chain", raw_status=200,
                    headers=_headers(state, scope))


@endpoint(jwk=True, kid=True)
async def revoke_cert(b: AcmeCA, req: Request, scope: Scope, signed: Signed, state: AcmeState) -> Response:
    assert req.storage is not None
    payload = _payload_object(signed)
    der = jwslib.b64d(payload.get("certificate"), "certificate")
    reason = payload.get("reason", 0)
    if not isinstance(reason, int) or isinstance(reason, bool) or reason not in _REVOCATION_REASONS:
        raise AcmeProblem("badRevocationReason", f"unsupported revocation reason {reason!r}")
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        raise malformed("certificate is not a DER X.509 certificate") from None
    key = store.serial_key(cert.serial_number)
    async with state.locks.lock_for(key):
        record = await store.get(req.storage, key)
        if record is None:
            raise unauthorized("this certificate was not issued through ACME on this mount")
        order = await store.get(req.storage, store.ORDERS + record["order"])
        if order is None or order.get("certificate", "").strip() != cert.public_bytes(
                serialization.Encoding.PEM).decode().strip():
            raise unauthorized("this certificate was not issued through ACME on this mount")
        if signed.account is not None:
            if signed.account["id"] != record["account"]:
                raise unauthorized("the certificate was issued to another account")
        elif _spki(cert.public_key()) != _spki(jwslib.jwk_public_key(signed.jwk)):
            raise unauthorized("the request is signed neither by the issuing account nor by the certificate's key")
        if record["revoked"]:
            raise AcmeProblem("alreadyRevoked", "the certificate is already revoked")
        try:
            await b.acme_revoke(req, der)
        except StrongroomError as e:
            if e.status_code >= 500:
                raise AcmeProblem("serverInternal", f"revoking the certificate failed: {e.message}") from None
            raise malformed(e.message) from None
        record["revoked"] = True
        await store.put(req.storage, key, record)
    return Response(raw_body=b"", raw_status=200, headers=_headers(state, scope))


# -- the path table ---------------------------------------------------------------------------------

PREFIXES = ["", f"roles/(?P<role>{_NAME})/", f"issuer/(?P<issuer_ref>{_NAME})/",
            f"issuer/(?P<issuer_ref>{_NAME})/roles/(?P<role>{_NAME})/"]

ENDPOINTS: list[tuple[str, dict[Op, Handler[AcmeCA]], str]] = [
    ("directory", {Op.READ: directory}, "The ACME directory (RFC 8555 §7.1.1)."),
    ("new-nonce", {Op.READ: new_nonce, Op.HEADER: new_nonce}, "A fresh anti-replay nonce."),
    ("new-account", {Op.UPDATE: new_account}, "Create or find an ACME account."),
    (f"account/{_ID}", {Op.UPDATE: account}, "Read, update or deactivate an ACME account."),
    ("key-change", {Op.UPDATE: key_change}, "Roll over an account's key."),
    ("new-order", {Op.UPDATE: new_order}, "Create an order for a certificate."),
    ("orders", {Op.UPDATE: list_orders}, "The signing account's orders."),
    (f"account/{_ID}/orders", {Op.UPDATE: list_orders}, "An account's orders (its orders URL)."),
    (f"order/{_ID}", {Op.UPDATE: get_order}, "An order."),
    (f"order/{_ID}/finalize", {Op.UPDATE: finalize}, "Finalize an order with a CSR."),
    (f"order/{_ID}/cert", {Op.UPDATE: certificate}, "Download an order's certificate chain."),
    (f"authorization/{_ID}", {Op.UPDATE: authorization}, "An authorization."),
    (f"challenge/{_ID}/(?:http-01|dns-01)", {Op.UPDATE: challenge}, "Answer an http-01 or dns-01 challenge."),
    ("revoke-cert", {Op.UPDATE: revoke_cert}, "Revoke a certificate issued through ACME."),
]


def acme_endpoint_paths() -> list[Path[AcmeCA]]:
    return [Path(f"{prefix}acme/{suffix}", operations=ops, unauthenticated=True, synopsis=synopsis)
            for prefix in PREFIXES for suffix, ops, synopsis in ENDPOINTS]
