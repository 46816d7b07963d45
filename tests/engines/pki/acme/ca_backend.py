"""A test CA implementing AcmeCA with `cryptography`, mounted as a tiny backend with ACME's paths.

Root (EC P-256) -> leaf, issued from the CSR's key for exactly the identifiers ACME validated. The
mount's cluster path comes from ``config/cluster`` (as pki's does). Revocations are recorded so a
test can see them; ``refuse`` names an identifier the CA refuses (as a role would).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from strongroom.engines.pki.acme import AcmeIssued, acme_deactivate, acme_paths
from strongroom.errors import InvalidRequest
from strongroom.framework import (
    Backend,
    BackendConfig,
    Field,
    FieldData,
    FieldType,
    Op,
    Path,
    Request,
    Response,
)

TYPE = "acme-test-ca"
REFUSED = "refused.localhost"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class TestCABackend(Backend):
    def __init__(self, config: BackendConfig) -> None:
        super().__init__(config, [*acme_paths(), Path("config/cluster", operations={Op.UPDATE: write_cluster},
                                                        fields={"path": Field(FieldType.STRING)})])
        now = dt.datetime.now(dt.UTC)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.root = (x509.CertificateBuilder().subject_name(_name("ACME test root")).issuer_name(_name("ACME test root"))
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                                    critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.root_pem = self.root.public_bytes(serialization.Encoding.PEM).decode()
        self.issued: list[tuple[str, str, str]] = []  # (serial, issuer_ref, role_name)
        self.revoked: list[int] = []

    async def cluster_path(self, req: Request) -> str:
        assert req.storage is not None
        raw = await req.storage.get("config/cluster")
        return raw.decode() if raw else ""

    async def acme_issue(self, req: Request, csr_der: bytes, identifiers: Sequence[str], *,
                         issuer_ref: str = "default", role_name: str = "") -> AcmeIssued:
        if REFUSED in identifiers:
            raise InvalidRequest(f"{REFUSED} is not an allowed domain")
        csr = x509.load_der_x509_csr(csr_der)
        sans: list[x509.GeneralName] = []
        for ident in identifiers:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(ident)))
            except ValueError:
                sans.append(x509.DNSName(ident))
        now = dt.datetime.now(dt.UTC)
        serial = x509.random_serial_number()
        cert = (x509.CertificateBuilder().subject_name(_name(identifiers[0])).issuer_name(self.root.subject)
                .public_key(csr.public_key()).serial_number(serial)
                .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(hours=2))
                .add_extension(x509.SubjectAlternativeName(sans), critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .sign(self.key, hashes.SHA256()))
        colon = ":".join(f"{b:02x}" for b in serial.to_bytes(20, "big").lstrip(b"\0"))
        self.issued.append((colon, issuer_ref, role_name))
        return AcmeIssued(cert.public_bytes(serialization.Encoding.PEM).decode(), [self.root_pem], colon)

    async def acme_revoke(self, req: Request, cert_der: bytes) -> None:
        self.revoked.append(x509.load_der_x509_certificate(cert_der).serial_number)

    async def deactivate(self) -> None:
        await acme_deactivate(self)
        await super().deactivate()


async def write_cluster(b: TestCABackend, req: Request, d: FieldData) -> Response | None:
    assert req.storage is not None
    await req.storage.put("config/cluster", str(d.get("path")).encode())
    return None
