"""Revocation at login and renewal: CRLs registered at crls/<name> and OCSP, against our own pki
engine mounted in the same real server (its `pki/ocsp` responder and `pki/crl`), over mutual TLS."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from cryptography import x509

from tests.compat.conftest import free_port

from .conftest import CertServer

NO_MATCH = "no chain matching all constraints could be found for this login certificate"


@dataclass
class PkiCerts:
    srv: CertServer
    root_pem: str
    serials: dict[str, str]  # name -> the pki's hex serial

    @property
    def ocsp_url(self) -> str:
        return f"{self.srv.addr}/v1/pki/ocsp"

    def issue(self, name: str) -> None:
        r = self.srv.root("POST", "pki/issue/client", {"common_name": f"{name}.example.com"})
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        (self.srv.pki.dir / f"pki-{name}.pem").write_text(data["certificate"] + "\n")
        (self.srv.pki.dir / f"pki-{name}.key").write_text(data["private_key"] + "\n")
        self.serials[name] = data["serial_number"]

    def revoke(self, name: str) -> None:
        assert self.srv.root("POST", "pki/revoke", {"serial_number": self.serials[name]}).status_code == 200

    def decimal(self, name: str) -> str:
        return str(int(self.serials[name].replace(":", ""), 16))

    def role(self, **fields: object) -> None:
        body = {"certificate": self.root_pem, "token_policies": "pki-users", **fields}
        r = self.srv.root("POST", "auth/cert/certs/pki", body)
        assert r.status_code == 204, r.text


@pytest.fixture(scope="module")
def pki_certs(cert_server: CertServer) -> Iterator[PkiCerts]:
    s = cert_server
    assert s.root("POST", "sys/mounts/pki", {"type": "pki"}).status_code == 204
    root = s.root("POST", "pki/root/generate/internal", {"common_name": "revocation root", "ttl": "48h",
                                                          "key_type": "ec"}).json()["data"]["certificate"]
    assert s.root("POST", "pki/roles/client", {"allow_any_name": True, "client_flag": True, "server_flag": False,
                                               "key_type": "ec", "ttl": "2h"}).status_code in (200, 204)
    yield PkiCerts(s, root, {})
    s.root("DELETE", "sys/mounts/pki")


@pytest.fixture
def pk(pki_certs: PkiCerts) -> Iterator[PkiCerts]:
    s = pki_certs.srv
    for name in s.root("LIST", "auth/cert/certs").json().get("data", {}).get("keys") or []:
        s.root("DELETE", f"auth/cert/certs/{name}")
    s.root("POST", "auth/cert/config", {"disable_binding": False})
    yield pki_certs
    for name in s.root("LIST", "auth/cert/crls").json().get("data", {}).get("keys") or []:
        s.root("DELETE", f"auth/cert/crls/{name}")


def _refused(r: object, error: str = NO_MATCH) -> None:
    import httpx
    assert isinstance(r, httpx.Response)
    assert r.status_code == 400 and r.json()["errors"] == [error], r.text
    assert "auth" not in r.json()


def test_ocsp_good_logs_in_revoked_is_refused(pk: PkiCerts) -> None:
    pk.issue("alice")
    pk.issue("bob")
    pk.revoke("bob")
    pk.role(ocsp_enabled=True, ocsp_servers_override=pk.ocsp_url, ocsp_ca_certificates=pk.srv.pki.pem("ca"))
    r = pk.srv.login("pki-alice")
    assert r.status_code == 200, r.text
    assert r.json()["auth"]["token_policies"] == ["default", "pki-users"]
    _refused(pk.srv.login("pki-bob"))
    # The same role without OCSP lets the revoked certificate in: the refusal was OCSP's.
    pk.role(ocsp_enabled=False)
    assert pk.srv.login("pki-bob").status_code == 200


def test_ocsp_from_the_certificates_aia(pk: PkiCerts) -> None:
    assert pk.srv.root("POST", "pki/config/urls", {"ocsp_servers": pk.ocsp_url}).status_code in (200, 204)
    try:
        pk.issue("aia-good")
        pk.issue("aia-bad")
        pk.revoke("aia-bad")
    finally:
        pk.srv.root("POST", "pki/config/urls", {"ocsp_servers": ""})
    pk.role(ocsp_enabled=True, ocsp_ca_certificates=pk.srv.pki.pem("ca"))
    assert pk.srv.login("pki-aia-good").status_code == 200
    _refused(pk.srv.login("pki-aia-bad"))


def test_ocsp_answers_are_cached_until_config_changes_and_renewal_rechecks(pk: PkiCerts) -> None:
    pk.issue("carol")
    pk.role(ocsp_enabled=True, ocsp_servers_override=pk.ocsp_url, ocsp_ca_certificates=pk.srv.pki.pem("ca"))
    token = pk.srv.login("pki-carol").json()["auth"]["client_token"]
    pk.revoke("carol")
    # The responder's "good" holds until its nextUpdate (12h): the cached answer is used.
    assert pk.srv.login("pki-carol").status_code == 200
    # Writing the config starts a new cache (as Vault re-creates its OCSP client): asked again.
    assert pk.srv.root("POST", "auth/cert/config", {"ocsp_cache_size": 50}).status_code == 204
    _refused(pk.srv.login("pki-carol"))
    r = pk.srv.call("POST", "auth/token/renew-self", {}, cert="pki-carol", token=token)
    _refused(r)
    pk.srv.root("POST", "auth/cert/config", {"ocsp_cache_size": 100})


def test_unreachable_responder_refuses_unless_fail_open(pk: PkiCerts) -> None:
    pk.issue("dave")
    dead = f"http://127.0.0.1:{free_port()}/ocsp"
    pk.role(ocsp_enabled=True, ocsp_servers_override=dead, ocsp_max_retries=1)
    r = pk.srv.login("pki-dave")
    assert r.status_code == 400, r.text
    error = r.json()["errors"][0]
    assert error.startswith(NO_MATCH + "; additionally got errors during verification: 1 error occurred:")
    assert dead in error
    pk.role(ocsp_fail_open=True)
    assert pk.srv.login("pki-dave").status_code == 200
    # fail open is about errors only: a "revoked" answer still refuses.
    pk.revoke("dave")
    pk.role(ocsp_servers_override=f"{dead},{pk.ocsp_url}", ocsp_ca_certificates=pk.srv.pki.pem("ca"))
    _refused(pk.srv.login("pki-dave"))


def test_query_all_servers_any_revoked_wins(pk: PkiCerts) -> None:
    pk.issue("erin")
    pk.revoke("erin")
    dead = f"http://127.0.0.1:{free_port()}/ocsp"
    # Every server is asked; one unreachable (and fail open) does not outweigh one saying revoked.
    pk.role(ocsp_enabled=True, ocsp_servers_override=f"{pk.ocsp_url},{dead}", ocsp_max_retries=0,
            ocsp_ca_certificates=pk.srv.pki.pem("ca"), ocsp_query_all_servers=True, ocsp_fail_open=True)
    _refused(pk.srv.login("pki-erin"))


def test_responder_refusing_to_answer_is_an_error(pk: PkiCerts) -> None:
    pk.issue("frank")
    assert pk.srv.root("POST", "pki/config/crl", {"ocsp_disable": True}).status_code in (200, 204)
    try:
        pk.role(ocsp_enabled=True, ocsp_servers_override=pk.ocsp_url, ocsp_ca_certificates=pk.srv.pki.pem("ca"),
                ocsp_max_retries=0)
        r = pk.srv.login("pki-frank")
        assert r.status_code == 400 and "additionally got errors during verification" in r.json()["errors"][0]
    finally:
        pk.srv.root("POST", "pki/config/crl", {"ocsp_disable": False})


def test_no_responder_url_fails_closed(pk: PkiCerts) -> None:
    pk.issue("gina")  # no AIA: the pki has no ocsp_servers configured
    pk.role(ocsp_enabled=True)
    r = pk.srv.login("pki-gina")
    assert r.status_code == 400 and "no OCSP responder URL" in r.json()["errors"][0]


def test_role_ocsp_fields_are_validated(pk: PkiCerts) -> None:
    s = pk.srv
    for body, error in (({"ocsp_ca_certificates": "junk"}, "failed to parse ocsp_ca_certificates"),
                        ({"ocsp_servers_override": "ftp://x"}, "invalid OCSP server URL: ftp://x"),
                        ({"ocsp_max_retries": -1}, "ocsp_max_retries can not be a negative number")):
        r = s.root("POST", "auth/cert/certs/v", {"certificate": pk.root_pem, **body})
        assert r.status_code == 400 and r.json()["errors"] == [error], r.text
    assert s.root("GET", "auth/cert/certs/v").status_code == 404
    pk.role(ocsp_enabled=True, ocsp_servers_override="http://a/ocsp,http://b/ocsp", ocsp_this_update_max_age="1h")
    data = s.root("GET", "auth/cert/certs/pki").json()["data"]
    assert data["ocsp_enabled"] is True and data["ocsp_servers_override"] == ["http://a/ocsp", "http://b/ocsp"]
    assert data["ocsp_this_update_max_age"] == 3600 and data["ocsp_max_retries"] == 4


# -- CRLs ---------------------------------------------------------------------------------------


def _crl_pem(pk: PkiCerts) -> str:
    r = pk.srv.call("GET", "pki/crl/pem")
    assert r.status_code == 200
    return r.text


def test_registered_crl_refuses_revoked_certificates(pk: PkiCerts) -> None:
    s = pk.srv
    pk.issue("hank")
    pk.issue("ivy")
    pk.revoke("ivy")
    pk.role()
    assert s.login("pki-ivy").status_code == 200  # no CRL registered yet
    assert s.root("PUT", "auth/cert/crls/PkiCRL", {"crl": _crl_pem(pk)}).status_code == 204
    data = s.root("GET", "auth/cert/crls/pkicrl").json()["data"]
    assert pk.decimal("ivy") in data["serials"] and data["serials"][pk.decimal("ivy")] == {}
    assert "cdp" not in data
    assert s.root("LIST", "auth/cert/crls").json()["data"]["keys"] == ["pkicrl"]
    _refused(s.login("pki-ivy"))
    assert s.login("pki-hank").status_code == 200
    assert s.root("DELETE", "auth/cert/crls/pkicrl").status_code == 204
    assert s.login("pki-ivy").status_code == 200
    r = s.root("GET", "auth/cert/crls/pkicrl")
    assert r.status_code == 400 and r.json()["errors"] == ["no such CRL pkicrl"]
    r = s.root("DELETE", "auth/cert/crls/pkicrl")
    assert r.status_code == 400 and r.json()["errors"] == ["no such CRL pkicrl"]


def test_crl_as_der_and_bad_input(pk: PkiCerts) -> None:
    import base64
    s = pk.srv
    der = s.call("GET", "pki/crl").content
    x509.load_der_x509_crl(der)
    assert s.root("PUT", "auth/cert/crls/der", {"crl": base64.b64encode(der).decode()}).status_code == 204
    assert s.root("GET", "auth/cert/crls/der").status_code == 200
    for body, error in (({"crl": "junk"}, "failed to parse CRL"), ({}, "one of 'crl' or 'url' must be provided"),
                        ({"url": ""}, "empty CRL url")):
        r = s.root("PUT", "auth/cert/crls/bad", body)
        assert r.status_code == 400 and r.json()["errors"][0].startswith(error), r.text
    assert s.root("GET", "auth/cert/crls/bad").status_code == 400
    assert s.call("PUT", "auth/cert/crls/x", {"crl": _crl_pem(pk)}).status_code == 403  # needs a token


def test_crl_from_a_distribution_point_url(pk: PkiCerts) -> None:
    s = pk.srv
    pk.issue("jack")
    pk.revoke("jack")
    der = s.call("GET", "pki/crl").content

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "application/pkix-crl")
            self.send_header("Content-Length", str(len(der)))
            self.end_headers()
            self.wfile.write(der)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/pki.crl"
        assert s.root("PUT", "auth/cert/crls/cdp", {"url": url}).status_code == 204
    finally:
        httpd.shutdown()
        httpd.server_close()
    data = s.root("GET", "auth/cert/crls/cdp").json()["data"]
    assert data["cdp"]["url"] == url and data["cdp"]["valid_until"]
    assert pk.decimal("jack") in data["serials"]
    pk.role()
    _refused(s.login("pki-jack"))
    r = s.root("PUT", "auth/cert/crls/gone", {"url": url})  # the server is down now
    assert r.status_code == 400 and "error fetching CRL" in r.json()["errors"][0]


def test_bao_login_method_cert_with_ocsp(pk: PkiCerts) -> None:
    pk.issue("kim")
    pk.issue("lee")
    pk.revoke("lee")
    pk.role(ocsp_enabled=True, ocsp_servers_override=pk.ocsp_url, ocsp_ca_certificates=pk.srv.pki.pem("ca"))
    ca = str(pk.srv.pki.dir / "ca.pem")
    for name, ok in (("kim", True), ("lee", False)):
        cert, key = pk.srv.pki.pair(f"pki-{name}")
        out = pk.srv.server.bao("login", "-method=cert", "-format=json", "-no-store", f"-ca-cert={ca}",
                                f"-client-cert={cert}", f"-client-key={key}", "name=pki", token="")
        if ok:
            assert out.returncode == 0, out.stderr
            assert json.loads(out.stdout)["auth"]["token_policies"] == ["default", "pki-users"]
        else:
            assert out.returncode != 0 and NO_MATCH in out.stderr and "client_token" not in out.stdout
