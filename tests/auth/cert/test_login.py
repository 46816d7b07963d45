"""Login over real mutual TLS with httpx: which certificates log in, as which role, with what token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .conftest import EXT_OID, CertServer


@pytest.fixture
def roles(cert_server: CertServer) -> Iterator[CertServer]:
    s = cert_server
    for name in [*(s.root("LIST", "auth/cert/certs").json().get("data", {}).get("keys") or [])]:
        s.root("DELETE", f"auth/cert/certs/{name}")
    assert s.root("POST", "auth/cert/config", {"disable_binding": False}).status_code == 204
    assert s.root("POST", "auth/cert/certs/web", {"certificate": s.pki.pem("ca"), "token_policies": "web,ops",
                                                    "token_ttl": "10m", "allowed_common_names": "*.example.com",
                                                    "display_name": "webapp"}).status_code == 204
    yield s


def test_no_certificate_is_refused_with_openbaos_words(roles: CertServer) -> None:
    r = roles.login(None)
    assert r.status_code == 400 and r.json()["errors"] == ["no client certificate found"]


def test_a_certificate_from_the_trusted_ca_logs_in(roles: CertServer) -> None:
    r = roles.login("web")
    assert r.status_code == 200, r.text
    auth = r.json()["auth"]
    leaf = roles.pki.certs["web"]
    assert auth["policies"] == ["default", "ops", "web"] and auth["token_policies"] == ["default", "ops", "web"]
    assert auth["lease_duration"] == 600 and auth["renewable"] is True
    md = auth["metadata"]
    assert md["cert_name"] == "web" and md["common_name"] == "web.example.com"
    assert md["serial_number"] == str(leaf.serial_number)
    skid = leaf.extensions.get_extension_for_class(__import__("cryptography").x509.SubjectKeyIdentifier).value.digest
    assert md["subject_key_id"] == ":".join(f"{b:02x}" for b in skid)
    assert md["authority_key_id"] and md["authority_key_id"].count(":") == 19
    look = roles.call("GET", "auth/token/lookup-self", token=auth["client_token"]).json()["data"]
    assert look["display_name"] == "cert-webapp" and look["path"] == "auth/cert/login"


@pytest.mark.parametrize(("cert", "error"), [
    ("foreign", "invalid certificate or no client certificate supplied"),        # another CA
    ("expired", "invalid certificate or no client certificate supplied"),        # out of its dates
    ("server-only", "invalid certificate or no client certificate supplied"),    # EKU without clientAuth
    ("self", "invalid certificate or no client certificate supplied"),           # nobody trusts it
    ("plain", "no chain matching all constraints could be found for this login certificate"),  # wrong CN
])
def test_untrusted_or_unmatched_certificates_are_refused(roles: CertServer, cert: str, error: str) -> None:
    r = roles.login(cert)
    assert r.status_code == 400 and r.json()["errors"] == [error], r.text


def test_a_chain_through_an_intermediate_is_verified(roles: CertServer) -> None:
    assert roles.login("deep").status_code == 200  # presents deep + intermediate; the role trusts the root
    assert roles.root("POST", "auth/cert/certs/inter", {"certificate": roles.pki.pem("intermediate"),
                                                         "token_policies": "inter"}).status_code == 204
    r = roles.login("deep", name="inter")
    assert r.status_code == 200 and r.json()["auth"]["metadata"]["cert_name"] == "inter"
    assert roles.login("web", name="inter").status_code == 400  # the root's leaf is not under the intermediate


def test_a_role_trusting_the_client_certificate_itself(roles: CertServer) -> None:
    assert roles.root("POST", "auth/cert/certs/mine", {"certificate": roles.pki.pem("self"),
                                                        "policies": "mine"}).status_code == 204
    r = roles.login("self")
    assert r.status_code == 200 and r.json()["auth"]["token_policies"] == ["default", "mine"]
    assert roles.login("self2").status_code == 400  # same subject, another key: not the trusted certificate


def test_name_picks_the_role(roles: CertServer) -> None:
    assert roles.root("POST", "auth/cert/certs/second", {"certificate": roles.pki.pem("ca"),
                                                          "token_policies": "second"}).status_code == 204
    r = roles.login("web", name="second")
    assert r.status_code == 200 and r.json()["auth"]["token_policies"] == ["default", "second"]
    r = roles.login("plain", name="web")
    assert r.status_code == 400
    assert roles.login("web", name="nosuch").status_code == 400


@pytest.mark.parametrize(("field", "good", "bad"), [
    ("allowed_names", "ops@*", "nobody@*"),
    ("allowed_common_names", "web.*", "db.*"),
    ("allowed_dns_sans", "*.example.com", "*.example.net"),
    ("allowed_email_sans", "*@example.com", "*@example.net"),
    ("allowed_uri_sans", "spiffe://example.com/*", "spiffe://other/*"),
    ("allowed_organizational_units", "eng", "sales"),
    ("required_extensions", f"{EXT_OID}:team-*", f"{EXT_OID}:team-red"),
])
def test_each_constraint(roles: CertServer, field: str, good: str, bad: str) -> None:
    s = roles
    assert s.root("POST", "auth/cert/certs/c", {"certificate": s.pki.pem("ca"), field: good}).status_code == 204
    assert s.login("web", name="c").status_code == 200
    assert s.login("plain", name="c").status_code == 400  # lacks what the constraint looks at
    assert s.root("POST", "auth/cert/certs/c", {field: bad}).status_code == 204
    r = s.login("web", name="c")
    assert r.status_code == 400
    assert r.json()["errors"] == ["no chain matching all constraints could be found for this login certificate"]


def test_bound_cidrs_apply_to_the_login(roles: CertServer) -> None:
    assert roles.root("POST", "auth/cert/certs/web", {"token_bound_cidrs": "10.0.0.0/8"}).status_code == 204
    assert roles.login("web").status_code == 403
    assert roles.root("POST", "auth/cert/certs/web", {"token_bound_cidrs": "127.0.0.0/8"}).status_code == 204
    assert roles.login("web").status_code == 200


# -- renewal ------------------------------------------------------------------------------------
def _renew(s: CertServer, token: str, cert: str | None) -> int:
    return s.call("POST", "auth/token/renew-self", {}, cert=cert, token=token).status_code


def test_renewal_rechecks_the_certificate(roles: CertServer) -> None:
    token = roles.login("web").json()["auth"]["client_token"]
    assert _renew(roles, token, "web") == 200
    assert _renew(roles, token, None) == 400      # no certificate on the renewing connection
    assert _renew(roles, token, "foreign") == 400  # not trusted any more / another identity
    assert _renew(roles, token, "self") == 400
    r = roles.call("POST", "auth/token/renew-self", {}, cert=None, token=token)
    assert r.json()["errors"] == ["no client certificate found"]


def test_renewal_refused_when_the_role_changed_or_went(roles: CertServer) -> None:
    token = roles.login("web").json()["auth"]["client_token"]
    assert roles.root("POST", "auth/cert/certs/web", {"token_policies": "web"}).status_code == 204
    r = roles.call("POST", "auth/token/renew-self", {}, cert="web", token=token)
    assert r.status_code == 400 and r.json()["errors"] == ["policies have changed, not renewing"]
    token = roles.login("web").json()["auth"]["client_token"]
    assert roles.root("POST", "auth/cert/certs/web", {"allowed_common_names": "db.*"}).status_code == 204
    assert _renew(roles, token, "web") == 400  # the certificate no longer meets the role's constraints
    assert roles.root("POST", "auth/cert/certs/web", {"allowed_common_names": ""}).status_code == 204
    assert _renew(roles, token, "web") == 200
    assert roles.root("DELETE", "auth/cert/certs/web").status_code == 204
    assert _renew(roles, token, "web") == 400


def test_disable_binding_renews_without_a_certificate(roles: CertServer) -> None:
    token = roles.login("web").json()["auth"]["client_token"]
    assert roles.root("POST", "auth/cert/config", {"disable_binding": True}).status_code == 204
    assert roles.root("GET", "auth/cert/config").json()["data"] == {
        "disable_binding": True, "enable_identity_alias_metadata": False, "ocsp_cache_size": 100}
    assert _renew(roles, token, None) == 200
    roles.root("DELETE", "auth/cert/certs/web")
    assert _renew(roles, token, None) == 400  # the role is still required
