"""ACME orders (RFC 8555 §7.4-7.6): new-order, the account's orders, order/ID, authorizations,
challenges (validated in the background, validate.py), finalize, certificate download, revoke-cert.

Objects belong to the account that created them: any other account gets ``unauthorized``. An
order's status is derived from its authorizations when read (pending -> ready once all are valid,
invalid once one is), so a background validation only writes its authorization.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import uuid
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from strongroom.engines.pki.acme import jws as jwslib
from strongroom.engines.pki.acme import store
from strongroom.engines.pki.acme.endpoint import (
    RETRY_AFTER,
    Scope,
    Signed,
    acme_headers,
    endpoint,
    json_response,
    object_id,
    owned,
    payload_object,
)
from strongroom.engines.pki.acme.problems import AcmeProblem, malformed, unauthorized
from strongroom.engines.pki.acme.state import AcmeState
from strongroom.engines.pki.acme.validate import run_challenge
from strongroom.errors import StrongroomError
from strongroom.framework import Request, Response
from strongroom.logical import Storage

if TYPE_CHECKING:
    from strongroom.engines.pki.acme.ca import AcmeCA

ORDER_TTL = 24 * 3600.0
MAX_IDENTIFIERS = 100
_DNS_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_REVOCATION_REASONS = {0, 1, 2, 3, 4, 5, 6, 8, 9, 10}


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
    payload = payload_object(signed)
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
    return json_response(state, scope, await _order_body(req.storage, scope, order, now), 201,
                         headers={"Location": scope.link("order", order_id)})


@endpoint()
async def list_orders(b: AcmeCA, req: Request, scope: Scope, signed: Signed, state: AcmeState) -> Response:
    assert req.storage is not None and signed.account is not None
    if "/account/" in req.path and object_id(req) != signed.account["id"]:
        raise unauthorized("the request is signed by another account than the one in the URL")
    ids = await req.storage.list(f"{store.ACCOUNT_ORDERS}{signed.account['id']}/")
    return json_response(state, scope, {"orders": [scope.link("order", i) for i in sorted(ids)]})


@endpoint()
async def get_order(b: AcmeCA, req: Request, scope: Scope, signed: Signed, state: AcmeState) -> Response:
    assert req.storage is not None
    order = owned(await store.get(req.storage, store.ORDERS + object_id(req)), signed, "order")
    _check_order_scope(order, scope)
    return json_response(state, scope, await _order_body(req.storage, scope, order, state.clock()),
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
    """http-01 and tls-alpn-01 for IP addresses, dns-01 only for wildcards, all three for other names."""
    if ident["type"] == "ip":
        return ["http-01", "tls-alpn-01"]
    if ident["value"].startswith("*."):
        return ["dns-01"]
    return ["http-01", "dns-01", "tls-alpn-01"]


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
    key = store.AUTHZ + object_id(req)
    now = state.clock()
    async with state.locks.lock_for(key):
        authz = owned(await store.get(req.storage, key), signed, "authorization")
        _check_order_scope(authz, scope)
        if signed.payload is not None:
            payload = payload_object(signed)
            if payload.get("status") != "deactivated":
                raise malformed("an authorization's status can only be changed to deactivated")
            if _authz_status(authz, now) not in ("pending", "valid"):
                raise malformed(f"the authorization is {_authz_status(authz, now)}")
            authz["status"] = "deactivated"
            await store.put(req.storage, key, authz)
    body = _authz_body(scope, authz, now)
    busy = body["status"] == "pending" and any(c["status"] == "processing" for c in body["challenges"])
    return json_response(state, scope, body, headers={"Retry-After": str(RETRY_AFTER)} if busy else None)


@endpoint()
async def challenge(b: AcmeCA, req: Request, scope: Scope, signed: Signed, state: AcmeState) -> Response:
    assert req.storage is not None and signed.account is not None
    authz_id = object_id(req)
    key = store.AUTHZ + authz_id
    start = False
    async with state.locks.lock_for(key):
        authz = owned(await store.get(req.storage, key), signed, "authorization")
        _check_order_scope(authz, scope)
        kind = req.path.rsplit("/", 1)[-1]
        chal = next((c for c in authz["challenges"] if c["type"] == kind), None)
        if chal is None:
            raise AcmeProblem("malformed", f"this authorization has no {kind} challenge", 404)
        if signed.payload is not None:
            payload_object(signed)
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
    return json_response(state, scope, _challenge_body(scope, authz, chal), headers=headers)


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
    key = store.ORDERS + object_id(req)
    payload = payload_object(signed)
    async with state.locks.lock_for(key):
        order = owned(await store.get(req.storage, key), signed, "order")
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
    return json_response(state, scope, await _order_body(req.storage, scope, order, state.clock()),
                         headers={"Location": scope.link("order", order["id"])})


def _pem(text: str) -> str:
    return text.strip() + "\n"


@endpoint()
async def certificate(b: AcmeCA, req: Request, scope: Scope, signed: Signed, state: AcmeState) -> Response:
    assert req.storage is not None
    order = owned(await store.get(req.storage, store.ORDERS + object_id(req)), signed, "order")
    _check_order_scope(order, scope)
    if order["status"] != "valid":
        raise AcmeProblem("orderNotReady", "the order has no certificate yet")
    if signed.payload is not None:
        raise malformed("fetch the certificate with POST-as-GET (an empty payload)")
    pem = "".join(_pem(c) for c in [order["certificate"], *order["chain"]])
    return Response(raw_body=pem.encode(), raw_content_type="application/pem-certificate-chain", raw_status=200,
                    headers=acme_headers(state, scope))


@endpoint(jwk=True, kid=True)
async def revoke_cert(b: AcmeCA, req: Request, scope: Scope, signed: Signed, state: AcmeState) -> Response:
    assert req.storage is not None
    payload = payload_object(signed)
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
    return Response(raw_body=b"", raw_status=200, headers=acme_headers(state, scope))
