"""pki through the clients users have: the bao CLI, hvac and `openssl ocsp`, against a real
Strongroom server process (one for the module: starting one costs seconds)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import hvac
import hvac.exceptions
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tests.compat.conftest import RunningServer, sqlite_server_process
from tests.engines.pki.conftest import openssl


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # A CA outlives the 32-day default: raise the system max (core caps every mount's max TTL by it).
    s = sqlite_server_process(tmp_path_factory.mktemp("pki-server"), top='max_lease_ttl = "87600h"\n')
    s.start()
    init = httpx.put(f"{s.addr}/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1}).json()
    s.root_token, s.keys = init["root_token"], init["keys"]
    httpx.put(f"{s.addr}/v1/sys/unseal", json={"key": init["keys"][0]}).raise_for_status()
    out = s.bao("secrets", "enable", "pki")
    assert out.returncode == 0, out.stderr
    assert s.bao("secrets", "tune", "-max-lease-ttl=87600h", "pki").returncode == 0
    yield s
    s.stop()


def test_bao_cli_root_role_issue(server: RunningServer, tmp_path: Path) -> None:
    out = server.bao("write", "-format=json", "pki/root/generate/internal", "common_name=example.com",
                     "ttl=87600h", "key_type=ec", "issuer_name=root-2026")
    assert out.returncode == 0, out.stderr
    root = json.loads(out.stdout)["data"]
    assert root["issuer_name"] == "root-2026" and root["certificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert server.bao("write", "pki/config/urls", f"issuing_certificates={server.addr}/v1/pki/ca",
                      f"crl_distribution_points={server.addr}/v1/pki/crl",
                      f"ocsp_servers={server.addr}/v1/pki/ocsp").returncode == 0
    out = server.bao("write", "pki/roles/web", "allowed_domains=example.com", "allow_subdomains=true",
                     "max_ttl=72h", "key_type=ec")
    assert out.returncode == 0, out.stderr
    listed = server.bao("list", "-format=json", "pki/roles")
    assert json.loads(listed.stdout) == ["web"]
    out = server.bao("write", "-format=json", "pki/issue/web", "common_name=www.example.com", "ttl=24h")
    assert out.returncode == 0, out.stderr
    leaf = json.loads(out.stdout)["data"]
    assert leaf["private_key_type"] == "ec" and leaf["ca_chain"] == [root["certificate"]]
    field = server.bao("write", "-field=serial_number", "pki/issue/web", "common_name=api.example.com")
    assert field.returncode == 0 and field.stdout.strip().count(":") == 19
    bad = server.bao("write", "pki/issue/web", "common_name=evil.org")
    assert bad.returncode == 2 and "common name evil.org not allowed by this role" in bad.stderr
    (tmp_path / "root.pem").write_text(root["certificate"] + "\n")
    (tmp_path / "leaf.pem").write_text(leaf["certificate"] + "\n")
    v = subprocess.run([openssl(), "verify", "-CAfile", str(tmp_path / "root.pem"), str(tmp_path / "leaf.pem")],
                       capture_output=True, text=True, timeout=30, check=False)
    assert v.returncode == 0, v.stderr
    # ocsp through openssl: good, then revoked after `bao write pki/revoke`
    good = _openssl_ocsp(server, tmp_path)
    assert "leaf.pem: good" in good.stdout and "Response verify OK" in good.stderr, good
    out = server.bao("write", "pki/revoke", f"serial_number={leaf['serial_number']}")
    assert out.returncode == 0, out.stderr
    revoked = _openssl_ocsp(server, tmp_path)
    assert "leaf.pem: revoked" in revoked.stdout and "Response verify OK" in revoked.stderr, revoked
    crl = x509.load_der_x509_crl(httpx.get(f"{server.addr}/v1/pki/crl").content)
    assert crl.get_revoked_certificate_by_serial_number(
        x509.load_pem_x509_certificate(leaf["certificate"].encode()).serial_number) is not None


def _openssl_ocsp(server: RunningServer, tmp: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([openssl(), "ocsp", "-url", f"{server.addr}/v1/pki/ocsp", "-issuer", str(tmp / "root.pem"),
                           "-CAfile", str(tmp / "root.pem"), "-cert", str(tmp / "leaf.pem")],
                          capture_output=True, text=True, timeout=30, check=False)


def test_hvac_pki_methods(server: RunningServer) -> None:
    client = hvac.Client(url=server.addr, token=server.root_token)
    client.sys.enable_secrets_engine("pki", path="hv", config={"max_lease_ttl": "87600h"})
    root = client.secrets.pki.generate_root("internal", "Hvac Root", extra_params={"ttl": "8760h",
                                                                                   "key_type": "ec"},
                                            mount_point="hv")["data"]
    client.secrets.pki.create_or_update_role("svc", {"allowed_domains": "svc.internal", "allow_subdomains": True,
                                                     "key_type": "ec", "max_ttl": "1h"}, mount_point="hv")
    assert client.secrets.pki.read_role("svc", mount_point="hv")["data"]["max_ttl"] == 3600
    issued = client.secrets.pki.generate_certificate("svc", "a.svc.internal", mount_point="hv")["data"]
    assert issued["issuing_ca"] == root["certificate"]
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "b.svc.internal")]))
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode())
    signed = client.secrets.pki.sign_certificate("svc", csr, "b.svc.internal", mount_point="hv")["data"]
    assert x509.load_pem_x509_certificate(signed["certificate"].encode()).public_key() == key.public_key()
    with pytest.raises(hvac.exceptions.InvalidRequest, match="not allowed by this role"):
        client.secrets.pki.generate_certificate("svc", "x.other", mount_point="hv")
    serials = client.secrets.pki.list_certificates(mount_point="hv")["data"]["keys"]
    assert issued["serial_number"] in serials and signed["serial_number"] in serials
    assert client.secrets.pki.read_certificate(issued["serial_number"], mount_point="hv")["data"]["certificate"] \
        == issued["certificate"]
    client.secrets.pki.revoke_certificate(issued["serial_number"], mount_point="hv")
    crl = x509.load_pem_x509_crl(client.secrets.pki.read_crl(mount_point="hv").encode())
    assert len(crl) == 1
    assert client.secrets.pki.read_ca_certificate(mount_point="hv").strip() == root["certificate"]
    assert root["certificate"] in client.secrets.pki.read_ca_certificate_chain(mount_point="hv")
    issuers = client.secrets.pki.list_issuers(mount_point="hv")["data"]["keys"]
    assert issuers == [root["issuer_id"]]
    assert client.secrets.pki.read_issuer(root["issuer_id"], mount_point="hv")["data"]["issuer_id"] == \
        root["issuer_id"]
    # intermediate: CSR, signed by the root of another mount, imported
    client.sys.enable_secrets_engine("pki", path="hv-int", config={"max_lease_ttl": "8760h"})
    csr_int = client.secrets.pki.generate_intermediate("internal", "Hvac Intermediate",
                                                       extra_params={"key_type": "ec"},
                                                       mount_point="hv-int")["data"]["csr"]
    int_cert = client.secrets.pki.sign_intermediate(csr_int, "Hvac Intermediate", extra_params={"ttl": "4380h"},
                                                    mount_point="hv")["data"]["certificate"]
    client.secrets.pki.set_signed_intermediate(int_cert, mount_point="hv-int")
    client.secrets.pki.create_or_update_role("leaf", {"allow_any_name": True, "key_type": "ec"},
                                             mount_point="hv-int")
    leaf = client.secrets.pki.generate_certificate("leaf", "deep.internal", extra_params={"ttl": "1h"},
                                                   mount_point="hv-int")["data"]
    assert leaf["issuing_ca"] == int_cert and leaf["ca_chain"] == [int_cert]
    resp = client.secrets.pki.tidy(extra_params={"tidy_cert_store": True}, mount_point="hv")
    assert resp.status_code == 202


def test_hvac_config_and_issuer_methods(server: RunningServer) -> None:
    client = hvac.Client(url=server.addr, token=server.root_token)
    client.sys.enable_secrets_engine("pki", path="hv2", config={"max_lease_ttl": "87600h"})
    pki = client.secrets.pki
    root = pki.generate_root("internal", "Second Root", extra_params={"ttl": "8760h", "key_type": "ec",
                                                                      "issuer_name": "r2"}, mount_point="hv2")["data"]
    pki.set_urls({"ocsp_servers": [f"{server.addr}/v1/hv2/ocsp"]}, mount_point="hv2")
    assert pki.read_urls(mount_point="hv2")["data"]["ocsp_servers"] == [f"{server.addr}/v1/hv2/ocsp"]
    pki.set_crl_configuration(expiry="48h", mount_point="hv2")
    assert pki.read_crl_configuration(mount_point="hv2")["data"]["expiry"] == "48h"
    assert pki.rotate_crl(mount_point="hv2")["data"]["success"] is True
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "verbatim.internal")]))
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode())
    signed = pki.sign_verbatim(csr, extra_params={"ttl": "1h"}, mount_point="hv2")["data"]
    leaf = x509.load_pem_x509_certificate(signed["certificate"].encode())
    aia = leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [a.access_location.value for a in aia] == [f"{server.addr}/v1/hv2/ocsp"]
    assert pki.update_issuer("r2", extra_params={"issuer_name": "r3"}, mount_point="hv2")["data"][
        "issuer_name"] == "r3"
    pki.create_or_update_role("tmp", {"allow_any_name": True}, mount_point="hv2")
    assert pki.list_roles(mount_point="hv2")["data"]["keys"] == ["tmp"]
    pki.delete_role("tmp", mount_point="hv2")
    with pytest.raises(hvac.exceptions.InvalidPath):
        pki.list_roles(mount_point="hv2")
    revoked = pki.revoke_issuer("r3", mount_point="hv2")
    assert revoked["data"]["revoked"] is True and revoked["warnings"]
    pki.delete_issuer(root["issuer_id"], mount_point="hv2")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="unable to find PKI issuer"):
        pki.read_issuer(root["issuer_id"], mount_point="hv2")


def test_bao_pki_health_check_reads_the_mount(server: RunningServer) -> None:
    """`bao pki health-check` walks many endpoints (it crashed on an empty LIST answered 200)."""
    out = server.bao("pki", "health-check", "-format=json", "pki")
    assert "panic" not in out.stderr, out.stderr
    report = json.loads(out.stdout)
    statuses = {r["status"] for r in report["crl_validity_period"] if "/crl/delta" not in r["endpoint"]}
    assert statuses == {"ok"}, report["crl_validity_period"]
    # the web role allows localhost next to allowed_domains: flagged, as OpenBao flags it
    assert [(r["status"], r["endpoint"]) for r in report["role_allows_localhost"]] == [
        ("warning", "/pki/roles/web")]


def test_everything_survives_a_restart(server: RunningServer) -> None:
    """Last in this module: the issuers, keys, roles, certificates and CRLs are in the barrier."""
    client = hvac.Client(url=server.addr, token=server.root_token)
    before = client.secrets.pki.list_certificates(mount_point="hv")["data"]["keys"]
    crl_before = httpx.get(f"{server.addr}/v1/hv/crl").content
    server.stop()
    server.start()
    httpx.put(f"{server.addr}/v1/sys/unseal", json={"key": server.keys[0]}).raise_for_status()
    assert client.secrets.pki.list_certificates(mount_point="hv")["data"]["keys"] == before
    assert httpx.get(f"{server.addr}/v1/hv/crl").content == crl_before
    leaf = client.secrets.pki.generate_certificate("svc", "after.svc.internal", mount_point="hv")["data"]
    root = x509.load_pem_x509_certificate(leaf["issuing_ca"].encode())
    x509.load_pem_x509_certificate(leaf["certificate"].encode()).verify_directly_issued_by(root)
