"""The OCSP answer checks (ocsp.check_response) on responses built here with `cryptography`:
who may sign, the nonce, the times, which certificate the answer is about."""

from __future__ import annotations

import datetime
import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from strongroom.auth.cert.ocsp import OcspError, check_response
from strongroom.auth.cert.store import OcspSettings

from .conftest import Pki

NOW = datetime.datetime.now(datetime.UTC)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    p = Pki(tmp_path_factory.mktemp("ocsp"))
    p.issue("ca", "ocsp test CA", ca=True)
    p.issue("leaf", "leaf.example.com", "ca")
    p.issue("other", "other.example.com", "ca")
    p.issue("rogue-ca", "rogue CA", ca=True)
    p.issue("delegate", "ocsp responder", "ca", eku=[ExtendedKeyUsageOID.OCSP_SIGNING])
    p.issue("no-eku", "not a responder", "ca", eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
    p.issue("rogue-delegate", "rogue responder", "rogue-ca", eku=[ExtendedKeyUsageOID.OCSP_SIGNING])
    return p


def respond(pki: Pki, about: str = "leaf", signer: str = "ca", *, status: ocsp.OCSPCertStatus = ocsp.OCSPCertStatus.GOOD,
            nonce: bytes | None = None, this_update: datetime.datetime | None = None,
            next_update: datetime.timedelta | None = datetime.timedelta(hours=1)) -> bytes:
    this = this_update or NOW - datetime.timedelta(minutes=1)
    revoked = status == ocsp.OCSPCertStatus.REVOKED
    b = ocsp.OCSPResponseBuilder().add_response(
        cert=pki.certs[about], issuer=pki.certs["ca"], algorithm=hashes.SHA1(), cert_status=status,
        this_update=this, next_update=this + next_update if next_update else None,
        revocation_time=this if revoked else None,
        revocation_reason=x509.ReasonFlags.key_compromise if revoked else None,
    ).responder_id(ocsp.OCSPResponderEncoding.HASH, pki.certs[signer])
    if signer != "ca":
        b = b.certificates([pki.certs[signer]])
    if nonce is not None:
        b = b.add_extension(x509.OCSPNonce(nonce), critical=False)
    return b.sign(pki.keys[signer], hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def check(pki: Pki, der: bytes, nonce: bytes = b"", settings: OcspSettings | None = None,
          extra: list[x509.Certificate] | None = None) -> tuple[bool, bool]:
    st = check_response(der, pki.certs["leaf"], pki.certs["ca"], nonce, extra or [], settings or OcspSettings(), NOW)
    return st.good, st.revoked


def test_signed_by_the_issuer_good_and_revoked(pki: Pki) -> None:
    assert check(pki, respond(pki)) == (True, False)
    assert check(pki, respond(pki, status=ocsp.OCSPCertStatus.REVOKED)) == (False, True)
    assert check(pki, respond(pki, status=ocsp.OCSPCertStatus.UNKNOWN)) == (False, False)


def test_delegated_responder_needs_the_issuers_signature_and_the_eku(pki: Pki) -> None:
    assert check(pki, respond(pki, signer="delegate")) == (True, False)
    for signer in ("no-eku", "rogue-delegate", "rogue-ca"):
        with pytest.raises(OcspError, match="not signed by the issuer or a delegated responder"):
            check(pki, respond(pki, signer=signer))
    # A responder issued by one of the role's ocsp_ca_certificates is accepted.
    assert check(pki, respond(pki, signer="rogue-delegate"), extra=[pki.certs["rogue-ca"]]) == (True, False)


def test_a_tampered_signature_is_refused(pki: Pki) -> None:
    der = bytearray(respond(pki))
    der[-3] ^= 0x01
    with pytest.raises(OcspError):
        check(pki, bytes(der))


def test_nonce_must_match_when_echoed(pki: Pki) -> None:
    mine = os.urandom(16)
    assert check(pki, respond(pki, nonce=mine), nonce=mine) == (True, False)
    assert check(pki, respond(pki), nonce=mine) == (True, False)  # not echoed (caching responders)
    with pytest.raises(OcspError, match="nonce"):
        check(pki, respond(pki, nonce=os.urandom(16)), nonce=mine)


def test_times(pki: Pki) -> None:
    with pytest.raises(OcspError, match="invalid validity"):
        check(pki, respond(pki, this_update=NOW - datetime.timedelta(days=2)))  # nextUpdate passed
    with pytest.raises(OcspError, match="invalid validity"):
        check(pki, respond(pki, this_update=NOW + datetime.timedelta(hours=1)))  # from the future
    old = respond(pki, this_update=NOW - datetime.timedelta(hours=2), next_update=None)
    assert check(pki, old) == (True, False)
    with pytest.raises(OcspError, match="older than the maximum allowed age"):
        check(pki, old, settings=OcspSettings(this_update_max_age=3600))


def test_an_answer_about_another_certificate_or_garbage_is_refused(pki: Pki) -> None:
    with pytest.raises(OcspError, match="does not cover the certificate"):
        check(pki, respond(pki, about="other"))
    with pytest.raises(OcspError, match="error parsing OCSP response"):
        check(pki, b"\x30\x03junk")
    unauthorized = ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
    with pytest.raises(OcspError, match="unauthorized"):
        check(pki, unauthorized.public_bytes(serialization.Encoding.DER))
