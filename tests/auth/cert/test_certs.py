"""certs/<name> and config: the shapes OpenBao answers with, merges, validation."""

from __future__ import annotations

from .conftest import CertServer


def test_write_read_list_delete(cert_server: CertServer) -> None:
    s = cert_server
    body = {"certificate": s.pki.pem("ca"), "token_policies": "web,ops", "token_ttl": "10m",
            "allowed_common_names": "*.example.com"}
    assert s.root("POST", "auth/cert/certs/Shape", body).status_code == 204
    data = s.root("GET", "auth/cert/certs/shape").json()["data"]
    assert data == {
        "allowed_common_names": ["*.example.com"], "allowed_dns_sans": None, "allowed_email_sans": None,
        "allowed_names": None, "allowed_organizational_units": None, "allowed_uri_sans": None,
        "certificate": s.pki.pem("ca"), "display_name": "shape", "required_extensions": None,
        "ocsp_enabled": False, "ocsp_ca_certificates": "", "ocsp_servers_override": None, "ocsp_fail_open": False,
        "ocsp_query_all_servers": False, "ocsp_max_retries": 4, "ocsp_this_update_max_age": 0,
        "token_bound_cidrs": [], "token_explicit_max_ttl": 0, "token_max_ttl": 0, "token_no_default_policy": False,
        "token_num_uses": 0, "token_period": 0, "token_policies": ["web", "ops"], "token_strictly_bind_ip": False,
        "token_ttl": 600, "token_type": "default"}
    assert "shape" in s.root("LIST", "auth/cert/certs").json()["data"]["keys"]
    # A write merges: what is not sent stays.
    assert s.root("POST", "auth/cert/certs/shape", {"allowed_dns_sans": "a.example.com,b.example.com",
                                                     "display_name": "shown"}).status_code == 204
    data = s.root("GET", "auth/cert/certs/shape").json()["data"]
    assert data["allowed_dns_sans"] == ["a.example.com", "b.example.com"] and data["display_name"] == "shown"
    assert data["allowed_common_names"] == ["*.example.com"] and data["token_ttl"] == 600
    assert s.root("DELETE", "auth/cert/certs/shape").status_code == 204
    assert s.root("GET", "auth/cert/certs/shape").status_code == 404


def test_bad_input_is_refused_and_nothing_stored(cert_server: CertServer) -> None:
    s = cert_server
    for body in ({"certificate": "junk"}, {"certificate": ""}, {}):
        r = s.root("POST", "auth/cert/certs/bad", body)
        assert r.status_code == 400 and r.json()["errors"] == ["failed to parse certificate"], r.text
    r = s.root("POST", "auth/cert/certs/bad", {"certificate": s.pki.pem("ca"), "required_extensions": "junk"})
    assert r.status_code == 400 and "oid:value" in r.json()["errors"][0]
    r = s.root("POST", "auth/cert/certs/bad", {"certificate": s.pki.pem("ca"), "token_ttl": "2h",
                                                "token_max_ttl": "1h"})
    assert r.status_code == 400
    assert s.root("GET", "auth/cert/certs/bad").status_code == 404


def test_config(cert_server: CertServer) -> None:
    s = cert_server
    assert s.root("POST", "auth/cert/config", {"enable_identity_alias_metadata": True}).status_code == 204
    assert s.root("GET", "auth/cert/config").json()["data"] == {"disable_binding": False,
                                                                "enable_identity_alias_metadata": True,
                                                                "ocsp_cache_size": 100}
    for size in (1, 100001):
        r = s.root("POST", "auth/cert/config", {"ocsp_cache_size": size})
        assert r.status_code == 400 and r.json()["errors"] == ["invalid cache size, must be >= 2 and <= 100000"]
    assert s.root("POST", "auth/cert/config", {"ocsp_cache_size": 7}).status_code == 204
    assert s.root("GET", "auth/cert/config").json()["data"]["ocsp_cache_size"] == 7
    assert s.root("POST", "auth/cert/config", {"ocsp_cache_size": 100}).status_code == 204
    assert s.root("POST", "auth/cert/config", {"enable_identity_alias_metadata": False}).status_code == 204


def test_login_and_renew_need_no_token_but_management_does(cert_server: CertServer) -> None:
    s = cert_server
    assert s.call("GET", "auth/cert/certs/x").status_code == 403
    assert s.call("POST", "auth/cert/certs/x", {"certificate": s.pki.pem("ca")}).status_code == 403
