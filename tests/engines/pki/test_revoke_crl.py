"""pki: revoke, the certificate store, CRLs (rebuilt on revoke and periodically), config/crl|urls|cluster,
tidy; and the raw HTTP answers (content types, no token needed) through the real app."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from tests.engines.conftest import Mount
from tests.engines.pki.conftest import cert, error_of, mount, openssl_verify

from strongroom.framework import Op
from strongroom.testing import app_client, unsealed_core


class Clock:
    def __init__(self) -> None:
        import time

        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def crl_of(raw: bytes) -> x509.CertificateRevocationList:
    return x509.load_der_x509_crl(raw)


async def crl(m: Mount, path: str = "crl") -> x509.CertificateRevocationList:
    resp = await m.call(Op.READ, path)
    assert resp is not None and resp.raw_body is not None and resp.raw_content_type == "application/pkix-crl"
    return crl_of(resp.raw_body)


async def test_revoke_puts_the_serial_on_a_fresh_crl(pki: Mount, tmp_path: Path) -> None:
    root = cert((await pki.ok(Op.READ, "issuer/default"))["certificate"])
    before = await crl(pki)
    assert before.is_signature_valid(root.public_key()) and len(before) == 0  # type: ignore[arg-type]
    d = await pki.ok(Op.UPDATE, "issue/web", {"common_name": "a.example.com"})
    other = await pki.ok(Op.UPDATE, "issue/web", {"common_name": "b.example.com"})
    r = await pki.ok(Op.UPDATE, "revoke", {"serial_number": d["serial_number"]})
    assert r["state"] == "revoked" and r["revocation_time"] > 0 and r["revocation_time_rfc3339"].endswith("Z")
    again = await pki.ok(Op.UPDATE, "revoke", {"serial_number": d["serial_number"].upper()})
    assert again["revocation_time"] == r["revocation_time"]
    after = await crl(pki)
    assert after.is_signature_valid(root.public_key())  # type: ignore[arg-type]
    num = after.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert num > before.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    leaf = cert(d["certificate"])
    assert after.get_revoked_certificate_by_serial_number(leaf.serial_number) is not None
    assert after.get_revoked_certificate_by_serial_number(cert(other["certificate"]).serial_number) is None
    read = await pki.ok(Op.READ, f"cert/{d['serial_number']}")
    assert read["revocation_time"] == r["revocation_time"] and read["certificate"] == d["certificate"]
    assert read["issuer_id"] == (await pki.ok(Op.READ, "issuer/default"))["issuer_id"]
    assert (await pki.ok(Op.READ, f"cert/{other['serial_number']}"))["revocation_time"] == 0
    assert (await pki.ok(Op.LIST, "certs/revoked/"))["keys"] == [d["serial_number"]]
    # openssl sees it too: the chain verifies, and with -crl_check the revoked leaf fails
    pem = (await pki.call(Op.READ, "crl/pem"))
    assert pem is not None and pem.raw_content_type == "application/x-pem-file" and pem.raw_body is not None
    (tmp_path / "crl.pem").write_bytes(pem.raw_body + b"\n")
    chain = d["ca_chain"]
    good = openssl_verify(tmp_path, other["certificate"], chain, "-crl_check", "-CRLfile", str(tmp_path / "crl.pem"))
    assert good.returncode == 0, good.stderr
    bad = openssl_verify(tmp_path, d["certificate"], chain, "-crl_check", "-CRLfile", str(tmp_path / "crl.pem"))
    assert bad.returncode != 0 and "revoked" in (bad.stdout + bad.stderr)


async def test_revoke_by_pem_and_errors(pki: Mount) -> None:
    d = await pki.ok(Op.UPDATE, "issue/web", {"common_name": "a.example.com"})
    assert (await pki.ok(Op.UPDATE, "revoke", {"certificate": d["certificate"]}))["state"] == "revoked"
    assert await error_of(pki, Op.UPDATE, "revoke", {"serial_number": "01:02"}) == (
        400, "certificate with serial 01:02 not found.")
    assert await error_of(pki, Op.UPDATE, "revoke", {}) == (
        400, "The serial number or certificate to revoke must be provided.")
    assert await error_of(pki, Op.UPDATE, "revoke", {"serial_number": d["serial_number"],
                                                     "certificate": d["certificate"]}) == (
        400, "Must provide either the certificate or the serial to revoke; not both.")
    assert (await error_of(pki, Op.UPDATE, "revoke", {"serial_number": "zz"}))[0] == 400
    root = await pki.ok(Op.READ, "issuer/default")
    status, msg = await error_of(pki, Op.UPDATE, "revoke", {"certificate": root["certificate"]})
    assert status == 400 and "to its own CRL is not allowed" in msg
    # a certificate from another CA is refused
    other = await mount()
    await other.ok(Op.UPDATE, "root/generate/internal", {"common_name": "Other", "key_type": "ec", "ttl": "8760h"})
    await other.ok(Op.UPDATE, "roles/any", {"allow_any_name": True, "key_type": "ec"})
    foreign = await other.ok(Op.UPDATE, "issue/any", {"common_name": "x"})
    assert (await error_of(pki, Op.UPDATE, "revoke", {"certificate": foreign["certificate"]}))[0] == 400
    assert (await error_of(pki, Op.READ, "cert/01:02"))[0] == 404


async def test_crl_rebuilt_by_periodic_before_it_expires() -> None:
    clock = Clock()
    m = await mount(clock=clock)
    await m.ok(Op.UPDATE, "root/generate/internal", {"common_name": "R", "key_type": "ec"})
    await m.ok(Op.UPDATE, "config/crl", {"expiry": "24h"})
    first = await crl(m)
    await m.backend.periodic(clock.now)
    assert await crl(m) == first  # still fresh: untouched
    clock.now += 13 * 3600  # within the 12h grace period of the 24h expiry
    await m.backend.periodic(clock.now)
    fresh = await crl(m)
    assert fresh.next_update_utc is not None and first.next_update_utc is not None
    assert fresh.next_update_utc > first.next_update_utc
    assert fresh.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number > \
        first.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


async def test_config_endpoints_and_aia(pki: Mount) -> None:
    assert await pki.ok(Op.READ, "config/urls") == {"crl_distribution_points": [], "delta_crl_distribution_points": [],
                                                    "enable_templating": False, "issuing_certificates": [],
                                                    "ocsp_servers": []}
    assert (await pki.ok(Op.READ, "config/crl"))["expiry"] == "72h"
    assert await pki.ok(Op.READ, "config/cluster") == {"aia_path": "", "path": ""}
    await pki.ok(Op.UPDATE, "config/cluster", {"path": "http://127.0.0.1:8200/v1/pki"})
    assert await pki.backend.cluster_path(pki.request(Op.READ, "x")) == "http://127.0.0.1:8200/v1/pki"  # type: ignore[attr-defined]
    assert (await error_of(pki, Op.UPDATE, "config/urls", {"ocsp_servers": "{{cluster_path}}/ocsp"}))[0] == 400
    await pki.ok(Op.UPDATE, "config/urls", {"ocsp_servers": "{{cluster_path}}/ocsp", "enable_templating": True,
                                            "crl_distribution_points": "http://127.0.0.1:8200/v1/pki/crl"})
    leaf = cert((await pki.ok(Op.UPDATE, "issue/web", {"common_name": "a.example.com"}))["certificate"])
    aia = leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [a.access_location.value for a in aia] == ["http://127.0.0.1:8200/v1/pki/ocsp"]
    cdp = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name is not None and cdp[0].full_name[0].value == "http://127.0.0.1:8200/v1/pki/crl"
    assert (await error_of(pki, Op.UPDATE, "config/crl", {"expiry": "soon"}))[0] == 400
    await pki.ok(Op.UPDATE, "config/crl", {"disable": True})
    d = await pki.ok(Op.UPDATE, "issue/web", {"common_name": "a.example.com"})
    await pki.ok(Op.UPDATE, "revoke", {"serial_number": d["serial_number"]})
    assert len(await crl(pki)) == 0  # disabled: an empty CRL


async def test_tidy_drops_expired_certificates() -> None:
    clock = Clock()
    m = await mount(clock=clock)
    await m.ok(Op.UPDATE, "root/generate/internal", {"common_name": "R", "key_type": "ec", "ttl": "8760h"})
    await m.ok(Op.UPDATE, "roles/r", {"allow_any_name": True, "key_type": "ec"})
    short = await m.ok(Op.UPDATE, "issue/r", {"common_name": "short", "ttl": "1h"})
    gone = await m.ok(Op.UPDATE, "issue/r", {"common_name": "revoked", "ttl": "1h"})
    keep = await m.ok(Op.UPDATE, "issue/r", {"common_name": "long", "ttl": "720h"})
    await m.ok(Op.UPDATE, "revoke", {"serial_number": gone["serial_number"]})
    clock.now += 2 * 3600
    resp = await m.call(Op.UPDATE, "tidy", {"tidy_cert_store": True, "tidy_revoked_certs": True})
    assert resp is not None and resp.status == 202 and "Tidy operation successfully started" in resp.warnings[0]
    keys = (await m.ok(Op.LIST, "certs/"))["keys"]
    assert short["serial_number"] in keys  # within the 72h safety buffer
    clock.now += 4 * 24 * 3600
    await m.call(Op.UPDATE, "tidy", {"tidy_cert_store": True, "tidy_revoked_certs": True})
    keys = (await m.ok(Op.LIST, "certs/"))["keys"]
    assert short["serial_number"] not in keys and gone["serial_number"] not in keys
    assert keep["serial_number"] in keys
    assert len(await crl(m)) == 0  # the expired revoked cert left the CRL
    status = await m.ok(Op.READ, "tidy-status")
    assert status["state"] == "Finished" and status["cert_store_deleted_count"] == 2
    nothing = await m.call(Op.UPDATE, "tidy", {})
    assert nothing is not None and nothing.status == 202 and "no tidy operations were set" in nothing.warnings[0]


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with unsealed_core() as (core, token), app_client(core, token) as c:
        assert (await c.post("/v1/sys/mounts/pki", json={"type": "pki"})).status_code == 204
        r = await c.post("/v1/pki/root/generate/internal", json={"common_name": "Root", "key_type": "ec",
                                                                           "ttl": "8760h"})
        assert r.status_code == 200, r.text
        yield c


async def test_raw_endpoints_over_http_without_a_token(http: httpx.AsyncClient) -> None:
    anon = {"X-Vault-Token": ""}
    r = await http.get("/v1/pki/ca", headers=anon)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pkix-cert"
    root = x509.load_der_x509_certificate(r.content)
    r = await http.get("/v1/pki/ca/pem", headers=anon)
    assert r.headers["content-type"] == "application/pem-certificate-chain"
    assert x509.load_pem_x509_certificate(r.content) == root
    r = await http.get("/v1/pki/crl", headers=anon)
    assert r.headers["content-type"] == "application/pkix-crl"
    assert x509.load_der_x509_crl(r.content).is_signature_valid(root.public_key())  # type: ignore[arg-type]
    r = await http.get("/v1/pki/crl/pem", headers=anon)
    assert r.headers["content-type"] == "application/x-pem-file" and r.content.startswith(b"-----BEGIN X509 CRL")
    r = await http.get("/v1/pki/ca_chain", headers=anon)
    assert r.status_code == 200 and x509.load_pem_x509_certificate(r.content) == root
    r = await http.get("/v1/pki/issuer/default/der", headers=anon)
    assert x509.load_der_x509_certificate(r.content) == root
    r = await http.get("/v1/pki/issuer/default/json", headers=anon)
    assert r.json()["data"]["certificate"].startswith("-----BEGIN CERTIFICATE")
    assert (await http.request("LIST", "/v1/pki/issuers", headers=anon)).status_code == 200
    assert (await http.get("/v1/pki/cert/ca_chain", headers=anon)).status_code == 200
    # but issuing needs a token
    assert (await http.post("/v1/pki/roles/r", json={"allow_any_name": True}, headers=anon)).status_code == 403
    assert (await http.post("/v1/pki/roles/r", json={"allow_any_name": True, "key_type": "ec"})).status_code == 200
    d = (await http.post("/v1/pki/issue/r", json={"common_name": "x", "ttl": "1h"})).json()["data"]
    r = await http.get(f"/v1/pki/cert/{d['serial_number']}/raw", headers=anon)
    assert r.headers["content-type"] == "application/pkix-cert"
    assert x509.load_der_x509_certificate(r.content) == x509.load_pem_x509_certificate(d["certificate"].encode())
    r = await http.get(f"/v1/pki/cert/{d['serial_number']}", headers=anon)
    assert r.status_code == 200 and r.json()["data"]["certificate"] == d["certificate"]
    assert (await http.request("LIST", "/v1/pki/certs")).json()["data"]["keys"]
    r = await http.post("/v1/pki/revoke", json={"serial_number": d["serial_number"]})
    assert r.status_code == 200 and r.json()["data"]["state"] == "revoked"
    r = await http.get("/v1/pki/crl", headers=anon)
    assert len(x509.load_der_x509_crl(r.content)) == 1
    # OCSP over HTTP: POST with the raw DER body, and GET with the URL-encoded base64 request
    leaf = x509.load_pem_x509_certificate(d["certificate"].encode())
    der = ocsp.OCSPRequestBuilder().add_certificate(leaf, root, hashes.SHA1()).build().public_bytes(
        serialization.Encoding.DER)
    r = await http.post("/v1/pki/ocsp", content=der, headers={**anon, "Content-Type": "application/ocsp-request"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/ocsp-response"
    assert ocsp.load_der_ocsp_response(r.content).certificate_status is ocsp.OCSPCertStatus.REVOKED
    r = await http.get("/v1/pki/ocsp/" + quote(base64.b64encode(der).decode(), safe=""), headers=anon)
    assert r.status_code == 200 and ocsp.load_der_ocsp_response(r.content).certificate_status is \
        ocsp.OCSPCertStatus.REVOKED


async def test_generate_lease_revoking_the_lease_revokes_the_cert(http: httpx.AsyncClient) -> None:
    assert (await http.post("/v1/pki/roles/leased", json={"allow_any_name": True, "key_type": "ec",
                                                          "generate_lease": True, "ttl": "1h"})).status_code == 200
    body = (await http.post("/v1/pki/issue/leased", json={"common_name": "x"})).json()
    assert body["lease_id"].startswith("pki/issue/leased/") and body["renewable"] is False
    assert 3500 < body["lease_duration"] <= 3600
    serial = body["data"]["serial_number"]
    plain = (await http.post("/v1/pki/roles/plain", json={"allow_any_name": True, "key_type": "ec"})).json()
    assert plain["data"]["generate_lease"] is False
    assert (await http.post("/v1/pki/issue/plain", json={"common_name": "y", "ttl": "1h"})).json()["lease_id"] == ""
    r = await http.put("/v1/sys/leases/revoke", json={"lease_id": body["lease_id"]})
    assert r.status_code == 204, r.text
    cert_read = (await http.get(f"/v1/pki/cert/{serial}")).json()["data"]
    assert cert_read["revocation_time"] > 0


async def test_auto_tidy_runs_from_periodic() -> None:
    clock = Clock()
    m = await mount(clock=clock)
    await m.ok(Op.UPDATE, "root/generate/internal", {"common_name": "R", "key_type": "ec", "ttl": "8760h"})
    await m.ok(Op.UPDATE, "roles/r", {"allow_any_name": True, "key_type": "ec"})
    short = await m.ok(Op.UPDATE, "issue/r", {"common_name": "short", "ttl": "1h"})
    assert (await m.ok(Op.READ, "config/auto-tidy"))["enabled"] is False
    assert (await error_of(m, Op.UPDATE, "config/auto-tidy", {"enabled": True}))[0] == 400
    cfg = await m.ok(Op.UPDATE, "config/auto-tidy", {"enabled": True, "tidy_cert_store": True,
                                                      "interval_duration": "1h", "safety_buffer": "1s"})
    assert cfg["interval_duration"] == 3600 and cfg["page_size"] == 1000
    clock.now += 3 * 3600
    await m.backend.periodic(clock.now)
    assert short["serial_number"] not in (await m.ok(Op.LIST, "certs/"))["keys"]
    status = await m.ok(Op.READ, "tidy-status")
    assert status["state"] == "Finished" and status["cert_store_deleted_count"] == 1
    assert status["last_auto_tidy_finished"]
    again = await m.ok(Op.UPDATE, "issue/r", {"common_name": "again", "ttl": "1h"})
    clock.now += 3 * 3600
    await m.backend.periodic(clock.now)  # the interval has passed again: tidies again
    assert again["serial_number"] not in (await m.ok(Op.LIST, "certs/"))["keys"]
    third = await m.ok(Op.UPDATE, "issue/r", {"common_name": "third", "ttl": "1m"})
    clock.now += 1800
    await m.backend.periodic(clock.now)  # expired, but within the interval: nothing yet
    assert third["serial_number"] in (await m.ok(Op.LIST, "certs/"))["keys"]
    clock.now += 1860
    await m.backend.periodic(clock.now)
    assert third["serial_number"] not in (await m.ok(Op.LIST, "certs/"))["keys"]


async def test_delta_crl_points_at_the_complete_one(pki: Mount) -> None:
    d = await pki.ok(Op.UPDATE, "issue/web", {"common_name": "a.example.com"})
    await pki.ok(Op.UPDATE, "revoke", {"serial_number": d["serial_number"]})
    full = await crl(pki)
    resp = await pki.call(Op.READ, "crl/delta")
    assert resp is not None and resp.raw_body is not None and resp.raw_content_type == "application/pkix-crl"
    delta = crl_of(resp.raw_body)
    base_number = full.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert delta.extensions.get_extension_for_class(x509.DeltaCRLIndicator).value.crl_number == base_number
    assert delta.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == base_number + 1
    root = cert((await pki.ok(Op.READ, "issuer/default"))["certificate"])
    assert delta.is_signature_valid(root.public_key()) and len(delta) == 0  # type: ignore[arg-type]
    pem = await pki.call(Op.READ, "issuer/root/crl/delta/pem")
    assert pem is not None and pem.raw_body is not None and pem.raw_body.startswith(b"-----BEGIN X509 CRL")
    assert (await pki.ok(Op.READ, "issuer/root/crl/delta"))["crl"].startswith("-----BEGIN X509 CRL")
    assert (await pki.ok(Op.READ, "cert/delta-crl"))["certificate"].startswith("-----BEGIN X509 CRL")
    assert (await pki.ok(Op.READ, "cert/ca"))["certificate"] == root.public_bytes(
        serialization.Encoding.PEM).decode().strip()
    # the next complete CRL takes a number past the delta's
    await pki.ok(Op.READ, "crl/rotate")
    assert (await crl(pki)).extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == base_number + 2
