"""The ACME server on the real pki engine (not the ACME tests' stand-in CA): an ACME order signed by
the mount's issuer, listed in certs, revoked onto the CRL, answered by OCSP, tidied; and certbot
getting a certificate from it over a real socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tests.engines.pki.acme import jose
from tests.engines.pki.acme.challenge import ChallengeServer
from tests.engines.pki.acme.jose import AcmeClient
from tests.engines.pki.acme.test_clients import check_live, free_port, run_certbot

from strongroom.engines.pki import PkiBackend
from strongroom.engines.pki.acme import state_of
from strongroom.http.app import App
from strongroom.http.server import HttpServer
from strongroom.testing import unsealed_core


@dataclass
class Served:
    url: str
    admin: httpx.AsyncClient
    http: httpx.AsyncClient
    backend: PkiBackend

    @property
    def directory(self) -> str:
        return f"{self.url}/v1/pki/acme/directory"


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    """Strongroom on 127.0.0.1 with a real pki mount: an EC root, a cluster path, ACME enabled."""
    async with unsealed_core() as (core, token):
        server = HttpServer(App(core), asyncio.get_running_loop())
        port = free_port()
        await server.start("127.0.0.1", port)
        url = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(base_url=url, headers={"X-Vault-Token": token}) as admin, \
                    httpx.AsyncClient(base_url=url) as http:
                assert (await admin.post("/v1/sys/mounts/pki", json={"type": "pki"})).status_code == 204
                r = await admin.post("/v1/pki/root/generate/internal", json={"common_name": "ACME Root",
                                                                              "key_type": "ec"})
                assert r.status_code == 200, r.text
                assert (await admin.post("/v1/pki/config/cluster", json={"path": f"{url}/v1/pki"})).is_success
                r = await admin.post("/v1/pki/config/acme", json={"enabled": True})
                assert r.status_code == 200, r.text
                hit = core.router.match("pki/")
                assert hit is not None and isinstance(hit[0].backend, PkiBackend)
                yield Served(url, admin, http, hit[0].backend)
        finally:
            await server.stop(grace=1)


def csr_for(names: list[str]) -> tuple[bytes, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.DER), key


async def ready_order(s: Served, client: AcmeClient, cs: ChallengeServer, names: list[str]) -> dict[str, Any]:
    await s.admin.post("/v1/pki/config/acme", json={"http_challenge_port": cs.port})
    r = await client.post(client.dir["newOrder"], {"identifiers": [{"type": "dns", "value": n} for n in names]})
    assert r.status_code == 201, r.text
    order_url = r.headers["location"]
    for authz_url in r.json()["authorizations"]:
        chal = (await client.post(authz_url, None)).json()["challenges"][0]
        cs.answers[chal["token"]] = f"{chal['token']}.{jose.thumbprint(client.key)}"
        assert (await client.post(chal["url"], {})).status_code == 200
    await state_of(s.backend).settled()
    order = (await client.post(order_url, None)).json()
    assert order["status"] == "ready", order
    return order


async def test_an_acme_order_is_a_pki_certificate(served: Served) -> None:
    cs = ChallengeServer()
    try:
        client = AcmeClient(served.http, served.directory, ec.generate_private_key(ec.SECP256R1()))
        await client.load()
        await client.register()
        names = ["www.example.localhost", "api.example.localhost"]
        order = await ready_order(served, client, cs, names)
        csr, key = csr_for(names)
        r = await client.post(order["finalize"], {"csr": jose.b64(csr)})
        assert r.status_code == 200 and r.json()["status"] == "valid", r.text
        chain = x509.load_pem_x509_certificates((await client.post(r.json()["certificate"], None)).content)
    finally:
        cs.server.shutdown()
        cs.server.server_close()
    leaf, root = chain
    ca = x509.load_der_x509_certificate((await served.http.get("/v1/pki/ca")).content)
    assert root == ca and leaf.public_key() == key.public_key()
    leaf.verify_directly_issued_by(ca)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(san.get_values_for_type(x509.DNSName)) == sorted(names)
    serial = leaf.serial_number.to_bytes(20, "big").lstrip(b"\0").hex(":")
    assert serial in (await served.admin.request("LIST", "/v1/pki/certs")).json()["data"]["keys"]
    # revoked through ACME: on the pki CRL
    der = leaf.public_bytes(serialization.Encoding.DER)
    r = await client.post(f"{served.url}/v1/pki/acme/revoke-cert", {"certificate": jose.b64(der)})
    assert r.status_code == 200, r.text
    crl = x509.load_der_x509_crl((await served.http.get("/v1/pki/crl")).content)
    assert crl.get_revoked_certificate_by_serial_number(leaf.serial_number) is not None
    assert (await served.admin.get(f"/v1/pki/cert/{serial}")).json()["data"]["revocation_time"] > 0
    # tidy_acme reaches ACME's orders (nothing has ended yet: nothing deleted)
    r = await served.admin.post("/v1/pki/tidy", json={"tidy_acme": True})
    assert r.status_code == 202
    status = (await served.admin.get("/v1/pki/tidy-status")).json()["data"]
    assert status["tidy_acme"] is True and status["acme_orders_deleted_count"] == 0


async def test_certbot_gets_a_certificate_from_the_pki_engine(served: Served, tmp_path: Path) -> None:
    domain = "certbot-pki.localhost"
    code, out = await run_certbot(served, tmp_path, domain)  # type: ignore[arg-type]
    assert code == 0, out
    check_live(tmp_path, domain)
    leaf = x509.load_pem_x509_certificate((tmp_path / "config" / "live" / domain / "cert.pem").read_bytes())
    ca = x509.load_der_x509_certificate((await served.http.get("/v1/pki/ca")).content)
    leaf.verify_directly_issued_by(ca)
