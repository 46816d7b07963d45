"""Real clients over mutual TLS: hvac's cert auth API and `bao login -method=cert`."""

from __future__ import annotations

import json
from collections.abc import Iterator

import hvac
import pytest

from .conftest import CertServer


@pytest.fixture
def srv(cert_server: CertServer) -> Iterator[CertServer]:
    s = cert_server
    s.root("POST", "auth/cert/config", {"disable_binding": False})
    for name in s.root("LIST", "auth/cert/certs").json().get("data", {}).get("keys") or []:
        s.root("DELETE", f"auth/cert/certs/{name}")
    yield s


def test_hvac_manages_roles_and_logs_in(srv: CertServer) -> None:
    ca = str(srv.pki.dir / "ca.pem")
    admin = hvac.Client(url=srv.addr, token=srv.root_token, verify=ca)
    admin.auth.cert.create_ca_certificate_role("web", certificate=srv.pki.pem("ca"),
                                               allowed_common_names="*.example.com", token_policies=["web"],
                                               token_ttl=900)
    role = admin.auth.cert.read_ca_certificate_role("web")["data"]
    assert role["allowed_common_names"] == ["*.example.com"] and role["token_policies"] == ["web"]
    assert admin.auth.cert.list_certificate_roles()["data"]["keys"] == ["web"]

    cert, key = srv.pki.pair("web")
    client = hvac.Client(url=srv.addr, verify=ca)
    result = client.auth.cert.login(name="web", cert_pem=cert, key_pem=key)
    assert result["auth"]["token_policies"] == ["default", "web"]
    assert result["auth"]["metadata"]["common_name"] == "web.example.com"
    assert client.is_authenticated()
    assert client.lookup_token()["data"]["ttl"] <= 900

    other = hvac.Client(url=srv.addr, verify=ca)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="no chain matching all constraints"):
        other.auth.cert.login(cert_pem=srv.pki.pair("plain")[0], key_pem=srv.pki.pair("plain")[1])
    admin.auth.cert.delete_certificate_role("web")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid certificate"):
        other.auth.cert.login(cert_pem=cert, key_pem=key)


def test_bao_login_method_cert(srv: CertServer) -> None:
    assert srv.root("POST", "auth/cert/certs/web", {"certificate": srv.pki.pem("ca"), "token_policies": "web",
                                                     "allowed_dns_sans": "*.example.com"}).status_code == 204
    cert, key = srv.pki.pair("web")
    ca = str(srv.pki.dir / "ca.pem")
    out = srv.server.bao("login", "-method=cert", "-format=json", "-no-store", f"-ca-cert={ca}",
                         f"-client-cert={cert}", f"-client-key={key}", "name=web", token="")
    assert out.returncode == 0, out.stderr
    auth = json.loads(out.stdout)["auth"]
    assert auth["token_policies"] == ["default", "web"] and auth["metadata"]["cert_name"] == "web"
    # Renewal through the CLI presents the certificate again (binding), and fails without it.
    renew = srv.server.bao("token", "renew", "-format=json", f"-ca-cert={ca}", f"-client-cert={cert}",
                           f"-client-key={key}", token=auth["client_token"])
    assert renew.returncode == 0, renew.stderr
    renew = srv.server.bao("token", "renew", f"-ca-cert={ca}", token=auth["client_token"])
    assert renew.returncode != 0 and "no client certificate found" in renew.stderr

    plain, plain_key = srv.pki.pair("plain")
    out = srv.server.bao("login", "-method=cert", "-no-store", f"-ca-cert={ca}", f"-client-cert={plain}",
                         f"-client-key={plain_key}", token="")
    assert out.returncode != 0 and "no chain matching all constraints" in out.stderr
