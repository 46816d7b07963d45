"""The hooks the ACME server calls on the pki backend: acme_issue, acme_revoke, cluster_path."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from tests.engines.conftest import Mount
from tests.engines.pki.conftest import cert

from strongroom.engines.pki import AcmeIssued, PkiBackend
from strongroom.errors import InvalidRequest
from strongroom.framework import Op


def csr_der(cn: str, dns: list[str], ips: list[str] = (), key: Any = None) -> bytes:  # type: ignore[assignment]
    key = key or ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    b = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else []))
    if names:
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def backend(m: Mount) -> PkiBackend:
    assert isinstance(m.backend, PkiBackend)
    return m.backend


async def test_acme_issue_signs_validated_identifiers(pki: Mount) -> None:
    b = backend(pki)
    req = pki.request(Op.UPDATE, "acme/finalize")
    out = await b.acme_issue(req, csr_der("a.example.org", ["a.example.org", "b.example.org"], ["192.0.2.7"]),
                             ["b.example.org", "a.example.org", "192.0.2.7"])
    assert isinstance(out, AcmeIssued)
    leaf = cert(out.certificate_pem)
    leaf.verify_directly_issued_by(cert(out.chain_pem[0]))
    assert out.chain_pem == [(await pki.ok(Op.READ, "issuer/default"))["certificate"].strip()]
    assert out.serial_number in (await pki.ok(Op.LIST, "certs/"))["keys"]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"a.example.org", "b.example.org"}
    assert ExtendedKeyUsageOID.SERVER_AUTH in leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    # mount TTLs (the default, 32 days here)
    assert (leaf.not_valid_after_utc - leaf.not_valid_before_utc).days == 32
    # no CN: SANs alone
    out = await b.acme_issue(req, csr_der("", ["c.example.org"]), ["c.example.org"])
    assert cert(out.certificate_pem).subject == x509.Name([])


@pytest.mark.parametrize(("cn", "dns", "ids"), [
    ("a.example.org", ["a.example.org", "extra.example.org"], ["a.example.org"]),  # a name not validated
    ("a.example.org", ["a.example.org"], ["a.example.org", "b.example.org"]),  # a validated name missing
    ("other.example.org", ["a.example.org"], ["a.example.org"]),  # CN not among them
])
async def test_acme_issue_refuses_names_that_differ(pki: Mount, cn: str, dns: list[str], ids: list[str]) -> None:
    with pytest.raises(InvalidRequest):
        await backend(pki).acme_issue(pki.request(Op.UPDATE, "x"), csr_der(cn, dns), ids)
    assert len((await pki.ok(Op.LIST, "certs/"))["keys"]) == 1  # the root only


async def test_acme_issue_with_a_role_and_weak_keys(pki: Mount) -> None:
    b = backend(pki)
    req = pki.request(Op.UPDATE, "x")
    out = await b.acme_issue(req, csr_der("a.example.com", ["a.example.com"]), ["a.example.com"], role_name="web")
    leaf = cert(out.certificate_pem)
    assert (leaf.not_valid_after_utc - leaf.not_valid_before_utc).total_seconds() <= 72 * 3600 + 30
    with pytest.raises(InvalidRequest, match="not allowed by this role"):
        await b.acme_issue(req, csr_der("a.example.org", ["a.example.org"]), ["a.example.org"], role_name="web")
    with pytest.raises(InvalidRequest, match="unknown role"):
        await b.acme_issue(req, csr_der("a.example.com", ["a.example.com"]), ["a.example.com"], role_name="nope")
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(InvalidRequest, match="unsafe"):
        await b.acme_issue(req, csr_der("a.example.org", ["a.example.org"], key=weak), ["a.example.org"])
    with pytest.raises(InvalidRequest):
        await b.acme_issue(req, b"not a csr", ["a.example.org"])
    with pytest.raises(InvalidRequest, match="unable to find PKI issuer"):
        await b.acme_issue(req, csr_der("a.example.org", ["a.example.org"]), ["a.example.org"], issuer_ref="nope")


async def test_acme_revoke_and_cluster_path(pki: Mount) -> None:
    b = backend(pki)
    req = pki.request(Op.UPDATE, "x")
    out = await b.acme_issue(req, csr_der("a.example.org", ["a.example.org"]), ["a.example.org"])
    der = cert(out.certificate_pem).public_bytes(serialization.Encoding.DER)
    await b.acme_revoke(req, der)
    assert (await pki.ok(Op.READ, f"cert/{out.serial_number}"))["revocation_time"] > 0
    crl_resp = await pki.call(Op.READ, "crl")
    assert crl_resp is not None and crl_resp.raw_body is not None
    assert len(x509.load_der_x509_crl(crl_resp.raw_body)) == 1
    await b.acme_revoke(req, der)  # again: already revoked, fine
    other = ec.generate_private_key(ec.SECP256R1())
    stranger = cert((await pki.ok(Op.UPDATE, "issue/web", {"common_name": "z.example.com"}))["certificate"])
    forged = (x509.CertificateBuilder().subject_name(stranger.subject).issuer_name(stranger.issuer)
              .public_key(other.public_key()).serial_number(stranger.serial_number)
              .not_valid_before(stranger.not_valid_before_utc).not_valid_after(stranger.not_valid_after_utc)
              .sign(other, hashes.SHA256()))
    with pytest.raises(InvalidRequest, match="not found"):  # same serial, not the certificate we issued
        await b.acme_revoke(req, forged.public_bytes(serialization.Encoding.DER))
    with pytest.raises(InvalidRequest):
        await b.acme_revoke(req, b"junk")
    assert await b.cluster_path(req) == ""
    await pki.ok(Op.UPDATE, "config/cluster", {"path": "https://vault.example:8200/v1/pki"})
    assert await b.cluster_path(req) == "https://vault.example:8200/v1/pki"


async def test_acme_issue_truncates_at_the_issuer_expiry(pki: Mount) -> None:
    """ACME clients cannot choose a TTL: "err" acts as "truncate" for them, as OpenBao does."""
    short = await pki.ok(Op.UPDATE, "root/generate/internal", {"common_name": "Short", "key_type": "ec",
                                                                "ttl": "1h", "issuer_name": "short"})
    out = await backend(pki).acme_issue(pki.request(Op.UPDATE, "x"), csr_der("a.example.org", ["a.example.org"]),
                                        ["a.example.org"], issuer_ref="short")
    assert cert(out.certificate_pem).not_valid_after_utc == cert(short["certificate"]).not_valid_after_utc
    with pytest.raises(InvalidRequest, match="beyond the expiration"):  # the API keeps "err"
        await pki.call(Op.UPDATE, "issuer/short/sign-verbatim", {"csr": x509.load_der_x509_csr(
            csr_der("a.example.org", ["a.example.org"])).public_bytes(serialization.Encoding.PEM).decode()})
