"""keys/NAME/csr and keys/NAME/set-certificate: a CSR a CA signs, the chain kept with the version."""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from strongroom.framework import Op

from .conftest import Transit


def make_ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def issue(ca_key: Any, ca: x509.Certificate, csr: x509.CertificateSigningRequest, leaf: bool = True) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(ca.subject)
               .public_key(csr.public_key()).serial_number(2).not_valid_before(now)
               .not_valid_after(now + datetime.timedelta(days=1)))
    if not leaf:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    return builder.sign(ca_key, hashes.SHA256())


def pem(*certs: x509.Certificate) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


@pytest.mark.parametrize("key_type", ["ecdsa-p384", "ed25519", "rsa-2048"])
async def test_csr_signed_by_a_ca_then_the_chain_is_kept(transit: Transit, key_type: str, tmp_path: Path) -> None:
    await transit.write("keys/k", {"type": key_type, "exportable": True})
    template = (x509.CertificateSigningRequestBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "svc.example.com")]))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName("svc.example.com")]), critical=False)
                .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256()))
    out = await transit.write("keys/k/csr", {"csr": template.public_bytes(serialization.Encoding.PEM).decode()})
    assert out["name"] == "k" and out["type"] == key_type
    csr = x509.load_pem_x509_csr(out["csr"].encode())
    assert csr.is_signature_valid
    assert csr.subject == template.subject
    assert csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName) == ["svc.example.com"]
    # openssl agrees the CSR is signed by the key.
    (tmp_path / "req.pem").write_text(out["csr"])
    check = subprocess.run(["openssl", "req", "-in", str(tmp_path / "req.pem"), "-verify", "-noout"],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    ca_key, ca = make_ca()
    leaf = issue(ca_key, ca, csr)
    chain = pem(leaf, ca)
    data = await transit.write("keys/k/set-certificate", {"certificate_chain": chain})
    assert data == {"name": "k", "type": key_type, "certificate_chain": chain}
    shown = (await transit.read("keys/k"))["keys"]["1"]["certificate_chain"]
    assert shown == chain.strip()
    assert (await transit.read("export/certificate-chain/k/1"))["keys"]["1"] == chain.strip()
    assert (await transit.stored("k"))["keys"]["1"]["certificate_chain"] is not None


async def test_certificate_errors(transit: Transit) -> None:
    await transit.write("keys/e", {"type": "ecdsa-p256"})
    await transit.write("keys/a")
    await transit.write("keys/d", {"type": "ed25519", "derived": True})
    ca_key, ca = make_ca()
    csr = x509.load_pem_x509_csr((await transit.write("keys/e/csr"))["csr"].encode())
    other_csr = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
                 .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256()))
    prefix = "failed to persist certificate chain: "
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("keys/a/csr", {}, "key type 'aes256-gcm96' does not support signing"),
        ("keys/d/csr", {}, "operation not supported for keys with derivation enabled"),
        ("keys/nokey/csr", {}, "key with provided name 'nokey' not found"),
        ("keys/e/csr", {"csr": "nope"}, "could not decode PEM CSR"),
        ("keys/e/set-certificate", {"certificate_chain": ""},
         "provided certificate chain did not contain any valid PEM encoded certificate"),
        ("keys/e/set-certificate", {"certificate_chain": "junk"},
         "could not decode a PEM block in the certificate chain"),
        ("keys/e/set-certificate", {"certificate_chain": pem(ca)},
         prefix + "certificate in the first element is not a valid leaf certificate"),
        ("keys/e/set-certificate", {"certificate_chain": pem(issue(ca_key, ca, csr), issue(ca_key, ca, csr))},
         prefix + "certificate in the last element is not a valid CA certificate"),
        ("keys/e/set-certificate", {"certificate_chain": pem(issue(ca_key, ca, other_csr), ca)},
         prefix + "leaf certificate public key does not match the selected key version"),
    ]
    for path, body, msg in cases:
        assert await transit.fails(path, body) == msg, (path, body)
    assert (await transit.read("keys/e"))["keys"]["1"]["certificate_chain"] == ""
    err = await transit.error(Op.READ, "export/certificate-chain/e/1")
    assert err.message == "selected key version does not have a certificate chain imported"
