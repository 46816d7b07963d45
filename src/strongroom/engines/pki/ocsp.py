"""The OCSP responder (RFC 6960): ``ocsp/<base64 request>`` (GET) and ``ocsp`` (POST,
Content-Type application/ocsp-request). Answers are signed by the issuer named in the request
(its key hash), so ``openssl ocsp -issuer CA`` verifies them with no delegated responder."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from strongroom.durations import parse_duration
from strongroom.engines.pki import crypto
from strongroom.engines.pki.state import LoadedIssuer
from strongroom.engines.pki.store import REVOKED_PREFIX, get_json, serial_key
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response

if TYPE_CHECKING:
    from strongroom.engines.pki import PkiBackend

CONTENT_TYPE = "application/ocsp-response"


def paths() -> list[Path[PkiBackend]]:
    return [
        Path(r"ocsp", operations={Op.UPDATE: ocsp_post}, unauthenticated=True, synopsis="OCSP responder (POST)."),
        Path(r"ocsp/(?P<req>.+)", fields={"req": Field(FieldType.STRING)}, operations={Op.READ: ocsp_get},
             unauthenticated=True, synopsis="OCSP responder (GET)."),
    ]


def _fail(status: ocsp.OCSPResponseStatus, http: int) -> Response:
    body = ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)
    return Response(raw_body=body, raw_content_type=CONTENT_TYPE, raw_status=http)


async def ocsp_get(b: PkiBackend, req: Request, d: FieldData) -> Response:
    text = d.get("req")
    try:
        der = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_" if "-" in text or "_" in text else None)
    except (binascii.Error, ValueError):
        return _fail(ocsp.OCSPResponseStatus.MALFORMED_REQUEST, 400)
    return await answer(b, req, der)


async def ocsp_post(b: PkiBackend, req: Request, d: FieldData) -> Response:
    if req.raw_body is None:
        return _fail(ocsp.OCSPResponseStatus.MALFORMED_REQUEST, 400)
    return await answer(b, req, req.raw_body)


def _spki_bits(pub: crypto.PublicKey) -> bytes:
    """The subjectPublicKey BIT STRING contents of a key (what issuerKeyHash hashes)."""
    der = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    pos = 1 + _len_size(der, 1)  # into the outer SEQUENCE
    pos += 1 + _len_size(der, pos + 1) + _len(der, pos + 1)  # skip AlgorithmIdentifier
    start = pos + 1 + _len_size(der, pos + 1)  # BIT STRING contents
    return der[start + 1:start + _len(der, pos + 1)]  # minus the unused-bits octet


def _len_size(der: bytes, pos: int) -> int:
    return 1 if der[pos] < 0x80 else 1 + (der[pos] & 0x7F)


def _len(der: bytes, pos: int) -> int:
    if der[pos] < 0x80:
        return der[pos]
    n = der[pos] & 0x7F
    return int.from_bytes(der[pos + 1:pos + 1 + n], "big")


_HASHES = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}


def _find_issuer(issuers: list[LoadedIssuer], one: ocsp.OCSPRequest) -> LoadedIssuer | None:
    h = _HASHES.get(one.hash_algorithm.name)
    if h is None:
        return None
    for iss in issuers:
        bits = _spki_bits(crypto.public_key_of(iss.cert))
        if h(bits).digest() == one.issuer_key_hash and \
                h(iss.cert.subject.public_bytes()).digest() == one.issuer_name_hash:
            return iss
    return None


async def answer(b: PkiBackend, req: Request, der: bytes) -> Response:
    try:
        request = ocsp.load_der_ocsp_request(der)
    except ValueError:
        return _fail(ocsp.OCSPResponseStatus.MALFORMED_REQUEST, 400)
    snap = await b.snapshot(req)
    if snap.crl.ocsp_disable:
        return _fail(ocsp.OCSPResponseStatus.UNAUTHORIZED, 401)
    signers = [i for i in snap.issuers.values() if i.key is not None and "ocsp-signing" in i.entry.usage.split(",")]
    issuer = _find_issuer(signers, request)
    status, rev_time = ocsp.OCSPCertStatus.UNKNOWN, None
    if issuer is None:
        # Not one of ours: "unknown", signed by the default issuer (as OpenBao answers).
        default = snap.issuers.get(snap.default_issuer)
        if default is None or default not in signers:
            return _fail(ocsp.OCSPResponseStatus.UNAUTHORIZED, 401)
        issuer = default
    else:
        # OpenBao's rule: a serial under one of our issuers is good unless revoked (no_store
        # certificates are never in the store, so the store cannot be asked whether it exists).
        status = ocsp.OCSPCertStatus.GOOD
        serial = crypto.format_serial(request.serial_number)
        revoked = await get_json(b.storage(req), REVOKED_PREFIX + serial_key(serial))
        if revoked is not None and revoked.get("issuer_id", issuer.id) in (issuer.id, ""):
            status, rev_time = ocsp.OCSPCertStatus.REVOKED, crypto.to_datetime(float(revoked["revocation_time"]))
    assert issuer.key is not None
    now = crypto.to_datetime(b.system.now())
    this_update = now - dt.timedelta(seconds=60)
    next_update = now + dt.timedelta(seconds=parse_duration(snap.crl.ocsp_expiry) or 43200)
    builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
        issuer_name_hash=request.issuer_name_hash, issuer_key_hash=request.issuer_key_hash,
        serial_number=request.serial_number, algorithm=_alg(request.hash_algorithm.name), cert_status=status,
        this_update=this_update, next_update=next_update, revocation_time=rev_time,
        revocation_reason=x509.ReasonFlags.unspecified if rev_time is not None else None,
    ).responder_id(ocsp.OCSPResponderEncoding.HASH, issuer.cert).certificates([issuer.cert])
    for ext in request.extensions:
        if isinstance(ext.value, x509.OCSPNonce):
            builder = builder.add_extension(ext.value, critical=False)
    signed = builder.sign(issuer.key, crypto.hash_for(issuer.key))
    return Response(raw_body=signed.public_bytes(serialization.Encoding.DER), raw_content_type=CONTENT_TYPE,
                    raw_status=200)


def _alg(name: str) -> hashes.HashAlgorithm:
    return {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}.get(
        name, hashes.SHA1())
