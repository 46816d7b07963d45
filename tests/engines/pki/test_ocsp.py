"""pki: the OCSP responder, in process (GET and POST), answers verified with cryptography."""

from __future__ import annotations

import base64
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from tests.engines.conftest import Mount
from tests.engines.pki.conftest import cert

from strongroom.framework import Op


def ocsp_request(leaf: x509.Certificate, issuer: x509.Certificate, algorithm: hashes.HashAlgorithm | None = None,
                 nonce: bytes | None = None) -> bytes:
    b = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, algorithm or hashes.SHA1())
    if nonce is not None:
        b = b.add_extension(x509.OCSPNonce(nonce), critical=False)
    return b.build().public_bytes(serialization.Encoding.DER)


async def post(m: Mount, der: bytes) -> tuple[int, ocsp.OCSPResponse]:
    resp = await m.call(Op.UPDATE, "ocsp", raw_body=der, content_type="application/ocsp-request")
    assert resp is not None and resp.raw_body is not None and resp.raw_content_type == "application/ocsp-response"
    return resp.raw_status, ocsp.load_der_ocsp_response(resp.raw_body)


def check_signed(answer: ocsp.OCSPResponse, issuer: x509.Certificate) -> None:
    pub = issuer.public_key()
    assert isinstance(pub, ec.EllipticCurvePublicKey)
    assert answer.signature_hash_algorithm is not None
    pub.verify(answer.signature, answer.tbs_response_bytes, ec.ECDSA(answer.signature_hash_algorithm))


async def test_good_revoked_and_unknown(pki: Mount) -> None:
    root = cert((await pki.ok(Op.READ, "issuer/default"))["certificate"])
    good = await pki.ok(Op.UPDATE, "issue/web", {"common_name": "a.example.com"})
    bad = await pki.ok(Op.UPDATE, "issue/web", {"common_name": "b.example.com"})
    await pki.ok(Op.UPDATE, "revoke", {"serial_number": bad["serial_number"]})

    nonce = os.urandom(16)
    status, answer = await post(pki, ocsp_request(cert(good["certificate"]), root, nonce=nonce))
    assert status == 200 and answer.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert answer.serial_number == cert(good["certificate"]).serial_number
    assert answer.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce
    assert answer.next_update_utc is not None and answer.this_update_utc < answer.next_update_utc
    check_signed(answer, root)

    _, answer = await post(pki, ocsp_request(cert(bad["certificate"]), root, hashes.SHA256()))
    assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_time_utc is not None
    check_signed(answer, root)

    # a serial this mount never stored, under its issuer: good unless revoked (OpenBao's rule: no_store)
    stranger = (x509.CertificateBuilder().subject_name(root.subject).issuer_name(root.subject)
                .public_key(root.public_key()).serial_number(12345)  # type: ignore[arg-type]
                .not_valid_before(root.not_valid_before_utc).not_valid_after(root.not_valid_after_utc)
                .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256()))
    _, answer = await post(pki, ocsp_request(stranger, root))
    assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD


async def test_get_form_and_bad_requests(pki: Mount) -> None:
    root = cert((await pki.ok(Op.READ, "issuer/default"))["certificate"])
    good = await pki.ok(Op.UPDATE, "issue/web", {"common_name": "a.example.com"})
    der = ocsp_request(cert(good["certificate"]), root)
    resp = await pki.call(Op.READ, "ocsp/" + base64.b64encode(der).decode())
    assert resp is not None and resp.raw_body is not None and resp.raw_status == 200
    assert ocsp.load_der_ocsp_response(resp.raw_body).certificate_status is ocsp.OCSPCertStatus.GOOD
    # garbage: malformedRequest with 400, as OpenBao
    status, answer = await post(pki, b"garbage")
    assert status == 400 and answer.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    resp = await pki.call(Op.READ, "ocsp/!!!")
    assert resp is not None and resp.raw_status == 400
    resp = await pki.call(Op.UPDATE, "ocsp", {"x": 1})  # a JSON body is no OCSP request
    assert resp is not None and resp.raw_status == 400
    # an issuer this mount does not hold: "unknown", signed by the default issuer
    other = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "Other")])
    foreign = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(other.public_key())
               .serial_number(1).not_valid_before(root.not_valid_before_utc)
               .not_valid_after(root.not_valid_after_utc).sign(other, hashes.SHA256()))
    status, answer = await post(pki, ocsp_request(foreign, foreign))
    assert status == 200 and answer.certificate_status is ocsp.OCSPCertStatus.UNKNOWN
    check_signed(answer, root)
    await pki.ok(Op.UPDATE, "config/crl", {"ocsp_disable": True})
    status, answer = await post(pki, der)
    assert answer.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED
