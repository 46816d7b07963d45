"""One real Strongroom server on a TLS listener for the module (client certificates are requested,
not verified, the listener's default), the cert method mounted at cert/, and a small PKI made here
with `cryptography`: a root CA, an intermediate, another CA, and client certificates of every kind
the tests need, each written as <name>.pem / <name>.key in the PKI directory."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.compat.conftest import RunningServer, free_port

NOW = datetime.datetime.now(datetime.UTC)
EXT_OID = "1.2.3.4.5"


class Pki:
    def __init__(self, root: Path) -> None:
        self.dir = root
        self.keys: dict[str, ec.EllipticCurvePrivateKey] = {}
        self.certs: dict[str, x509.Certificate] = {}

    def issue(self, name: str, cn: str, issuer: str | None = None, *, ca: bool = False, days: float = 1,
              start: datetime.timedelta = datetime.timedelta(minutes=5), ous: tuple[str, ...] = (),
              sans: list[x509.GeneralName] | None = None, eku: list[x509.ObjectIdentifier] | None = None,
              extra: list[x509.ExtensionType] | None = None, chain: tuple[str, ...] = ()) -> x509.Certificate:
        key = ec.generate_private_key(ec.SECP256R1())
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
        attrs += [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou) for ou in ous]
        subject = x509.Name(attrs)
        issuer_cert = self.certs[issuer] if issuer else None
        b = (x509.CertificateBuilder().subject_name(subject)
             .issuer_name(issuer_cert.subject if issuer_cert else subject).public_key(key.public_key())
             .serial_number(x509.random_serial_number()).not_valid_before(NOW - start)
             .not_valid_after(NOW - start + datetime.timedelta(days=days))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
        if issuer_cert is not None:
            b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.keys[issuer].public_key()), critical=False)  # type: ignore[arg-type]
        if ca:
            b = b.add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                              data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                              crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        if eku:
            b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
        for ext in extra or []:
            b = b.add_extension(ext, critical=False)
        cert = b.sign(self.keys[issuer] if issuer else key, hashes.SHA256())
        self.keys[name], self.certs[name] = key, cert
        pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in [cert, *(self.certs[n] for n in chain)])
        (self.dir / f"{name}.pem").write_bytes(pem)
        (self.dir / f"{name}.key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        return cert

    def pem(self, name: str) -> str:
        return self.certs[name].public_bytes(serialization.Encoding.PEM).decode()

    def pair(self, name: str) -> tuple[str, str]:
        return str(self.dir / f"{name}.pem"), str(self.dir / f"{name}.key")


def utf8(value: str) -> bytes:
    raw = value.encode()
    return bytes([0x0C, len(raw)]) + raw


def make_pki(root: Path) -> Pki:
    p = Pki(root)
    p.issue("ca", "test root CA", ca=True, days=10)
    p.issue("server", "127.0.0.1", "ca", sans=[x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
            eku=[ExtendedKeyUsageOID.SERVER_AUTH])
    p.issue("web", "web.example.com", "ca", ous=("eng",), eku=[ExtendedKeyUsageOID.CLIENT_AUTH],
            sans=[x509.DNSName("web.example.com"), x509.RFC822Name("ops@example.com"),
                  x509.UniformResourceIdentifier("spiffe://example.com/web")],
            extra=[x509.UnrecognizedExtension(x509.ObjectIdentifier(EXT_OID), utf8("team-blue"))])
    p.issue("plain", "plain.example.org", "ca")  # no SANs, no OU, no EKU: still a client certificate
    p.issue("expired", "web.example.com", "ca", start=datetime.timedelta(days=3), days=1)
    p.issue("server-only", "web.example.com", "ca", eku=[ExtendedKeyUsageOID.SERVER_AUTH])
    p.issue("other-ca", "another CA", ca=True)
    p.issue("foreign", "web.example.com", "other-ca")
    p.issue("intermediate", "test intermediate CA", "ca", ca=True)
    p.issue("deep", "deep.example.com", "intermediate", chain=("intermediate",))
    p.issue("self", "self-signed client")
    p.issue("self2", "self-signed client")
    return p


@dataclass
class CertServer:
    server: RunningServer
    pki: Pki
    root_token: str

    @property
    def addr(self) -> str:
        return self.server.addr

    def client(self, cert: str | None = None) -> httpx.Client:
        ctx = ssl.create_default_context(cafile=str(self.pki.dir / "ca.pem"))
        if cert:
            ctx.load_cert_chain(*self.pki.pair(cert))
        return httpx.Client(base_url=f"{self.addr}/v1/", verify=ctx, timeout=10)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, *, cert: str | None = None,
             token: str | None = None) -> httpx.Response:
        headers = {"X-Vault-Token": token} if token else {}
        with self.client(cert) as c:
            return c.request(method, path, json=body, headers=headers)

    def root(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return self.call(method, path, body, token=self.root_token)

    def login(self, cert: str | None, name: str = "") -> httpx.Response:
        return self.call("POST", "auth/cert/login", {"name": name} if name else {}, cert=cert)


@contextlib.contextmanager
def running_cert_server(d: Path) -> Iterator[CertServer]:
    """A PKI made in ``d`` and a server on a TLS listener with that PKI's server certificate,
    initialised (1 share), unsealed, auth/cert mounted; stopped on exit."""
    pki = make_pki(d)
    port = free_port()
    cfg = d / "server.hcl"
    cfg.write_text(f'storage "inmem" {{}}\nlog_level = "warning"\n'
                   f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n'
                   f'  tls_cert_file = "{d}/server.pem"\n  tls_key_file = "{d}/server.key"\n}}\n')
    server = RunningServer(cfg, f"https://127.0.0.1:{port}", d)
    server.verify = ssl.create_default_context(cafile=str(d / "ca.pem"))
    server.start()
    try:
        with httpx.Client(base_url=f"{server.addr}/v1/", verify=server.verify) as c:
            init = c.put("sys/init", json={"secret_shares": 1, "secret_threshold": 1}).json()
            assert c.put("sys/unseal", json={"key": init["keys"][0]}).json()["sealed"] is False
            server.root_token = init["root_token"]
            r = c.post("sys/auth/cert", json={"type": "cert"}, headers={"X-Vault-Token": init["root_token"]})
            assert r.status_code == 204, r.text
        yield CertServer(server, pki, init["root_token"])
    finally:
        server.stop()


@pytest.fixture(scope="package")
def cert_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CertServer]:
    with running_cert_server(tmp_path_factory.mktemp("cert-auth")) as s:
        yield s
