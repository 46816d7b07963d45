"""ACME accounts (RFC 8555 §7.3): new-account (with external account binding), account/KID
(read, contact update, deactivation) and key-change. One account per key, bound to the directory
it was created in."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

from strongroom.engines.pki.acme import jws as jwslib
from strongroom.engines.pki.acme import store
from strongroom.engines.pki.acme.eab import EAB, check_binding
from strongroom.engines.pki.acme.endpoint import (
    Scope,
    Signed,
    acme_headers,
    endpoint,
    json_response,
    object_id,
    payload_object,
)
from strongroom.engines.pki.acme.problems import AcmeProblem, malformed, unauthorized
from strongroom.engines.pki.acme.state import AcmeState
from strongroom.framework import Request, Response

if TYPE_CHECKING:
    from strongroom.engines.pki.acme.ca import AcmeCA

MAX_CONTACTS = 10


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


@endpoint(jwk=True, kid=False)
async def new_account(b: AcmeCA, req: Request, scope: Scope, signed: Signed, state: AcmeState) -> Response:
    assert req.storage is not None
    payload = payload_object(signed)
    thumb = jwslib.thumbprint(signed.jwk)
    async with state.locks.lock_for(store.ACCOUNT_KEYS + thumb):
        existing = await store.get(req.storage, store.ACCOUNT_KEYS + thumb)
        if existing is not None:
            account = await store.get(req.storage, store.ACCOUNTS + existing["kid"])
            if account is not None:
                return json_response(state, scope, _account_body(scope, account),
                                     headers={"Location": scope.link("account", account["id"])})
        if payload.get("onlyReturnExisting") is True:
            raise AcmeProblem("accountDoesNotExist", "no account exists with this key")
        contact = _contacts(payload, [])
        if "externalAccountBinding" not in payload and scope.config.eab_policy != "not-required":
            raise AcmeProblem("externalAccountRequired", "this ACME directory requires external account binding")
        # Accounts are created one at a time per mount (rare), so a binding checked here is still
        # unused when it is consumed: two keys racing for one binding cannot both get it.
        async with state.create_lock:
            eab_id = ""
            if "externalAccountBinding" in payload:
                eab_id = await check_binding(req.storage, payload["externalAccountBinding"],
                                             url=scope.link("new-account"), directory=f"{scope.prefix}acme/",
                                             account_jwk=signed.jwk)
            account_id = str(uuid.uuid4())
            account = {"id": account_id, "status": "valid", "contact": contact, "jwk": signed.jwk,
                       "thumbprint": thumb, "directory": scope.prefix, "created": state.clock(), "eab": eab_id,
                       "terms_of_service_agreed": payload.get("termsOfServiceAgreed") is True}
            await store.put(req.storage, store.ACCOUNTS + account_id, account)
            await store.put(req.storage, store.ACCOUNT_KEYS + thumb, {"kid": account_id})
            if eab_id:  # a binding serves one account
                await req.storage.delete(EAB + eab_id)
    return json_response(state, scope, _account_body(scope, account), 201,
                         headers={"Location": scope.link("account", account_id)})


@endpoint()
async def account(b: AcmeCA, req: Request, scope: Scope, signed: Signed, state: AcmeState) -> Response:
    assert req.storage is not None and signed.account is not None
    acct = signed.account
    if object_id(req) != acct["id"]:
        raise unauthorized("the request is signed by another account than the one in the URL")
    if signed.payload is not None:
        payload = payload_object(signed)
        async with state.locks.lock_for(store.ACCOUNTS + acct["id"]):
            acct = await store.get(req.storage, store.ACCOUNTS + acct["id"]) or acct
            if "status" in payload:
                if payload["status"] != "deactivated":
                    raise malformed("an account's status can only be changed to deactivated")
                acct["status"] = "deactivated"
            if "contact" in payload:
                acct["contact"] = _contacts(payload, [])
            await store.put(req.storage, store.ACCOUNTS + acct["id"], acct)
    return json_response(state, scope, _account_body(scope, acct), headers={"Location": scope.link("account", acct["id"])})


@endpoint()
async def key_change(b: AcmeCA, req: Request, scope: Scope, signed: Signed, state: AcmeState) -> Response:
    """RFC 8555 §7.3.5: the payload is a JWS signed by the new key naming the account and old key."""
    assert req.storage is not None and signed.account is not None
    acct = signed.account
    inner = jwslib.parse(payload_object(signed))
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
                            headers=acme_headers(state, scope, {"Location": scope.link("account", taken["kid"])}))
        old_thumb = acct["thumbprint"]
        acct["jwk"], acct["thumbprint"] = new_jwk, new_thumb
        await store.put(req.storage, store.ACCOUNT_KEYS + new_thumb, {"kid": acct["id"]})
        await store.put(req.storage, store.ACCOUNTS + acct["id"], acct)
        await req.storage.delete(store.ACCOUNT_KEYS + old_thumb)
    return json_response(state, scope, _account_body(scope, acct), headers={"Location": scope.link("account", acct["id"])})
