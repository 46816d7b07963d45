"""A CRL registered by URL is refetched by the periodic task once its nextUpdate has passed (and not
before); a failed refetch keeps the serials it had. In-process core, a small local HTTP server
serving CRLs made here with `cryptography`."""

from __future__ import annotations

import datetime
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from tests.auth.conftest import Vault

from .conftest import Pki

NOW = datetime.datetime.now(datetime.UTC)


class CrlServer:
    def __init__(self) -> None:
        self.body = b""
        self.status = 200
        self.hits = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                server.hits += 1
                self.send_response(server.status)
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/ca.crl"


@pytest.fixture
def crl_server() -> Iterator[CrlServer]:
    s = CrlServer()
    t = threading.Thread(target=s.httpd.serve_forever, daemon=True)
    t.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def make_crl(pki: Pki, serials: list[int], next_update: datetime.datetime) -> bytes:
    b = (x509.CertificateRevocationListBuilder().issuer_name(pki.certs["ca"].subject)
         .last_update(NOW - datetime.timedelta(hours=2)).next_update(next_update))
    for serial in serials:
        b = b.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(serial)
                                      .revocation_date(NOW - datetime.timedelta(hours=2)).build())
    return b.sign(pki.keys["ca"], hashes.SHA256()).public_bytes(serialization.Encoding.DER)


async def test_periodic_refetches_after_next_update(vault: Vault, crl_server: CrlServer, tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    pki.issue("ca", "crl CA", ca=True)
    await vault.done("POST", "sys/auth/cert", {"type": "cert"})
    crl_server.body = make_crl(pki, [11], NOW + datetime.timedelta(hours=1))
    await vault.done("PUT", "auth/cert/crls/ca", {"url": crl_server.url})
    data = (await vault.ok("GET", "auth/cert/crls/ca"))["data"]
    assert list(data["serials"]) == ["11"] and data["cdp"]["url"] == crl_server.url
    backend = vault.core.mounts.find("auth", "cert/").backend

    crl_server.body = make_crl(pki, [11, 22], NOW + datetime.timedelta(hours=3))
    await backend.periodic(NOW.timestamp())  # nextUpdate not reached: nothing fetched
    assert crl_server.hits == 1
    assert await backend.crl_serials(backend.system.storage) == frozenset({"11"})

    crl_server.status = 500
    await backend.periodic((NOW + datetime.timedelta(hours=2)).timestamp())  # due, but the fetch fails
    assert crl_server.hits == 2
    assert await backend.crl_serials(backend.system.storage) == frozenset({"11"})

    crl_server.status = 200
    await backend.periodic((NOW + datetime.timedelta(hours=2)).timestamp())
    assert crl_server.hits == 3
    assert await backend.crl_serials(backend.system.storage) == frozenset({"11", "22"})
    data = (await vault.ok("GET", "auth/cert/crls/ca"))["data"]
    assert sorted(data["serials"]) == ["11", "22"]
