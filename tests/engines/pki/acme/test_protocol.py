"""ACME protocol against the test CA, in process: directory, nonces, accounts, orders, challenges,
finalize, download, revocation, and the errors clients must get (RFC 8555 problem documents)."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from tests.engines.pki.acme import jose
from tests.engines.pki.acme.ca_backend import REFUSED
from tests.engines.pki.acme.challenge import ChallengeServer, DnsServer
from tests.engines.pki.acme.conftest import BASE, Env
from tests.engines.pki.acme.jose import AcmeClient

from strongroom.engines.pki.acme import state_of

PROBLEM = "application/problem+json"


def problem(r: Any, kind: str, status: int) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"] == PROBLEM
    doc: dict[str, Any] = r.json()
    assert doc["type"] == f"urn:ietf:params:acme:error:{kind}", doc
    return doc


def csr_for(names: list[str], key: Any = None) -> tuple[bytes, Any]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.DER), key


async def ready_order(env: Env, client: AcmeClient, cs: ChallengeServer, names: list[str]) -> dict[str, Any]:
    """new-order for ``names``, every http-01 challenge answered and validated: the order, ready."""
    await env.admin.post("/v1/pki/config/acme", json={"http_challenge_port": cs.port})
    r = await client.post(client.dir["newOrder"], {"identifiers": [{"type": "dns", "value": n} for n in names]})
    assert r.status_code == 201, r.text
    order_url = r.headers["location"]
    for authz_url in r.json()["authorizations"]:
        authz = (await client.post(authz_url, None)).json()
        chal = authz["challenges"][0]
        cs.answers[chal["token"]] = f"{chal['token']}.{jose.thumbprint(client.key)}"
        r2 = await client.post(chal["url"], {})
        assert r2.status_code == 200 and r2.json()["status"] == "processing"
        assert f'<{authz_url}>;rel="up"' in r2.headers["link"]
    await state_of(env.backend).settled()
    order = (await client.post(order_url, None)).json()
    assert order["status"] == "ready", order
    order["url"] = order_url
    return order


async def test_directory_and_nonces(env: Env) -> None:
    r = await env.http.get("/v1/pki/acme/directory")
    assert r.status_code == 200
    d = r.json()
    assert d["newNonce"] == f"{BASE}/acme/new-nonce" and d["newOrder"] == f"{BASE}/acme/new-order"
    assert d["meta"] == {"externalAccountRequired": False}
    r = await env.http.get("/v1/pki/roles/web/acme/directory")
    assert r.json()["newAccount"] == f"{BASE}/roles/web/acme/new-account"
    r = await env.http.get("/v1/pki/issuer/ca1/roles/web/acme/directory")
    assert r.json()["newAccount"] == f"{BASE}/issuer/ca1/roles/web/acme/new-account"
    head = await env.http.head("/v1/pki/acme/new-nonce")
    get = await env.http.get("/v1/pki/acme/new-nonce")
    assert head.status_code == 200 and get.status_code == 204
    assert head.headers["replay-nonce"] != get.headers["replay-nonce"]
    assert head.headers["link"] == f'<{BASE}/acme/directory>;rel="index"'


async def test_disabled_by_default_and_config(env: Env) -> None:
    r = await env.admin.get("/v1/pki/config/acme")
    assert r.json()["data"]["enabled"] is True
    await env.admin.post("/v1/pki/config/acme", json={"enabled": False})
    r = await env.http.get("/v1/pki/acme/directory")
    assert r.status_code == 404 and r.json() == {"errors": ["ACME feature is disabled"]}
    assert (await env.http.head("/v1/pki/acme/new-nonce")).status_code == 404
    r = await env.admin.post("/v1/pki/config/acme", json={"default_directory_policy": "nope"})
    assert r.status_code == 400 and "invalid default directory policy" in r.json()["errors"][0]
    r = await env.admin.post("/v1/pki/config/acme", json={"eab_policy": "sometimes"})
    assert r.status_code == 400 and "invalid eab policy" in r.json()["errors"][0]
    data = (await env.admin.get("/v1/pki/config/acme")).json()["data"]
    assert data == {"enabled": False, "allowed_issuers": ["*"], "allowed_roles": ["*"], "allow_role_ext_key_usage": False,
                    "default_directory_policy": "sign-verbatim", "dns_resolver": "", "eab_policy": "not-required",
                    "http_challenge_port": 0, "tls_challenge_port": 0}
    # Unauthenticated callers cannot configure ACME.
    assert (await env.http.post("/v1/pki/config/acme", json={"enabled": True})).status_code == 403


async def test_enabling_needs_a_cluster_path(env: Env) -> None:
    await env.admin.post("/v1/pki/config/cluster", json={"path": ""})
    r = await env.admin.post("/v1/pki/config/acme", json={"enabled": True})
    assert r.status_code == 400
    assert r.json()["errors"] == ["ACME feature requires local cluster 'path' field configuration to be set"]


@pytest.mark.parametrize("key", [ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP384R1()),
                                 rsa.generate_private_key(65537, 2048), ed25519.Ed25519PrivateKey.generate()],
                         ids=["ES256", "ES384", "RS256", "EdDSA"])
async def test_account_with_each_algorithm(env: Env, key: Any) -> None:
    c = AcmeClient(env.http, f"{BASE}/acme/directory", key)
    await c.load()
    r = await c.post(c.dir["newAccount"], {"contact": ["mailto:a@example.com"], "termsOfServiceAgreed": True},
                     use_jwk=True)
    assert r.status_code == 201, r.text
    assert r.headers["location"].startswith(f"{BASE}/acme/account/")
    assert r.json()["status"] == "valid" and r.json()["contact"] == ["mailto:a@example.com"]
    assert r.headers["replay-nonce"]
    again = await c.post(c.dir["newAccount"], {}, use_jwk=True)  # same key: the same account, 200
    assert again.status_code == 200 and again.headers["location"] == r.headers["location"]
    c.kid = r.headers["location"]
    assert (await c.post(c.kid, None)).json()["status"] == "valid"


async def test_only_return_existing_and_contacts(env: Env) -> None:
    c = env.client()
    await c.load()
    problem(await c.post(c.dir["newAccount"], {"onlyReturnExisting": True}, use_jwk=True), "accountDoesNotExist", 400)
    problem(await c.post(c.dir["newAccount"], {"contact": ["tel:+1555"]}, use_jwk=True), "unsupportedContact", 400)
    problem(await c.post(c.dir["newAccount"], {"contact": ["mailto:not an email"]}, use_jwk=True),
            "invalidContact", 400)


async def test_bad_requests_get_acme_errors(env: Env) -> None:
    c = env.client()
    await c.load()
    await c.register()
    url = c.dir["newOrder"]
    order = {"identifiers": [{"type": "dns", "value": "a.example.com"}]}
    # A nonce used twice, a nonce never issued, no nonce.
    nonce = await c.nonce()
    assert (await c.post(url, order, nonce=nonce)).status_code == 201
    doc = problem(await c.post(url, order, nonce=nonce), "badNonce", 400)
    assert "nonce" in doc["detail"]
    problem(await c.post(url, order, nonce="bm90LWlzc3VlZA"), "badNonce", 400)
    # A tampered payload: the signature no longer verifies.
    jws = jose.sign(c.key, {"alg": "ES256", "nonce": await c.nonce(), "url": url, "kid": c.kid}, order)
    jws["payload"] = jose.b64(json.dumps({"identifiers": [{"type": "dns", "value": "evil.example"}]}).encode())
    problem(await c.post(url, None, body=jws), "malformed", 400)
    # Signed by another key than the account's.
    problem(await c.post(url, order, key=ec.generate_private_key(ec.SECP256R1())), "malformed", 400)
    # alg none / HS256, a url that is not this endpoint, both jwk and kid, an unknown account.
    doc = problem(await c.post(url, order, extra={"alg": "none"}), "badSignatureAlgorithm", 400)
    assert "ES256" in doc["algorithms"]
    problem(await c.post(url, order, extra={"alg": "HS256"}), "badSignatureAlgorithm", 400)
    problem(await c.post(url, order, extra={"url": f"{BASE}/acme/new-account"}), "unauthorized", 403)
    problem(await c.post(url, order, extra={"jwk": jose.jwk(c.key)}), "malformed", 400)
    problem(await c.post(url, order, kid=f"{BASE}/acme/account/00000000-0000-0000-0000-000000000000"),
            "accountDoesNotExist", 400)
    problem(await c.post(url, order, kid=f"{BASE}/acme/account/x/{c.kid.rsplit('/', 1)[-1]}"),
            "accountDoesNotExist", 400)
    # new-account must carry a jwk; other requests a kid.
    problem(await c.post(c.dir["newAccount"], {}), "malformed", 400)
    problem(await c.post(url, order, use_jwk=True), "malformed", 400)
    # Not JWS at all, wrong content type.
    problem(await env.http.post(url, json={"hello": 1}, headers={"Content-Type": "application/jose+json"}),
            "malformed", 400)
    r = await env.http.post(url, json=jose.sign(c.key, {"alg": "ES256", "nonce": await c.nonce(), "url": url,
                                                        "kid": c.kid}, order))
    problem(r, "malformed", 415)
    # Every error answer still hands out a fresh nonce.
    assert r.headers["replay-nonce"]
    # Unsupported identifiers.
    problem(await c.post(url, {"identifiers": [{"type": "dns", "value": "*.*.example.com"}]}), "rejectedIdentifier", 400)
    problem(await c.post(url, {"identifiers": [{"type": "email", "value": "a@b"}]}), "unsupportedIdentifier", 400)
    problem(await c.post(url, {"identifiers": [{"type": "dns", "value": "bad_name..x"}]}), "rejectedIdentifier", 400)
    problem(await c.post(url, {"identifiers": []}), "malformed", 400)
    # A weak RSA account key.
    weak = AcmeClient(env.http, c.directory_url, rsa.generate_private_key(65537, 1024))
    weak.dir = c.dir
    problem(await weak.post(c.dir["newAccount"], {}, use_jwk=True), "badPublicKey", 400)


async def test_expired_nonce(env: Env) -> None:
    c = env.client()
    await c.load()
    nonce = await c.nonce()
    state = state_of(env.backend)
    real = state.clock
    state.clock = lambda: real() + 3600
    try:
        problem(await c.post(c.dir["newAccount"], {}, use_jwk=True, nonce=nonce), "badNonce", 400)
    finally:
        state.clock = real


async def test_wrong_account_cannot_touch_another_accounts_objects(env: Env) -> None:
    alice, mallory = env.client(), env.client()
    for c in (alice, mallory):
        await c.load()
        await c.register()
    r = await alice.post(alice.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "alice.example.com"}]})
    order_url, authz_url = r.headers["location"], r.json()["authorizations"][0]
    chal_url = (await alice.post(authz_url, None)).json()["challenges"][0]["url"]
    problem(await mallory.post(order_url, None), "unauthorized", 403)
    problem(await mallory.post(authz_url, None), "unauthorized", 403)
    problem(await mallory.post(chal_url, {}), "unauthorized", 403)
    problem(await mallory.post(order_url + "/finalize", {"csr": "AA"}), "unauthorized", 403)
    problem(await mallory.post(alice.kid, None, kid=mallory.kid), "unauthorized", 403)
    # An account of one directory is unknown to another.
    role_dir = AcmeClient(env.http, f"{BASE}/roles/web/acme/directory", alice.key)
    await role_dir.load()
    problem(await role_dir.post(role_dir.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "x.example"}]},
                                kid=alice.kid), "accountDoesNotExist", 400)
    # A deactivated account can do nothing more.
    assert (await mallory.post(mallory.kid, {"status": "deactivated"})).json()["status"] == "deactivated"
    problem(await mallory.post(mallory.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "m.example"}]}),
            "unauthorized", 403)


async def test_full_order_http01(env: Env, challenge_server: ChallengeServer) -> None:
    c = env.client()
    await c.load()
    await c.register()
    names = ["www.example.localhost", "api.example.localhost"]
    order = await ready_order(env, c, challenge_server, names)
    # A CSR with other names than the order's, or with the account key, is refused.
    bad, _ = csr_for(["www.example.localhost"])
    problem(await c.post(order["finalize"], {"csr": jose.b64(bad)}), "badCSR", 400)
    same_key, _ = csr_for(names, key=c.key)
    problem(await c.post(order["finalize"], {"csr": jose.b64(same_key)}), "badCSR", 400)
    problem(await c.post(order["finalize"], {"csr": jose.b64(b"garbage")}), "badCSR", 400)
    csr, key = csr_for(names)
    r = await c.post(order["finalize"], {"csr": jose.b64(csr)})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "valid"
    cert_url = r.json()["certificate"]
    problem(await c.post(order["finalize"], {"csr": jose.b64(csr)}), "orderNotReady", 403)
    r = await c.post(cert_url, None)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pem-certificate-chain"
    chain = x509.load_pem_x509_certificates(r.content)
    assert len(chain) == 2
    leaf, root = chain
    leaf.verify_directly_issued_by(root)
    assert sorted(leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                  .get_values_for_type(x509.DNSName)) == sorted(names)
    assert leaf.public_key() == key.public_key()
    assert env.backend.issued[-1][1:] == ("default", "")
    listed = (await c.post(f"{BASE}/acme/orders", None)).json()["orders"]
    assert listed == [order["url"]]
    orders_url = (await c.post(c.kid, None)).json()["orders"]
    assert orders_url == f"{c.kid}/orders"
    assert (await c.post(orders_url, None)).json()["orders"] == [order["url"]]
    other = env.client()
    await other.load()
    await other.register()
    problem(await other.post(orders_url, None), "unauthorized", 403)
    # Revocation: by the account, once.
    der = leaf.public_bytes(serialization.Encoding.DER)
    r = await c.post(f"{BASE}/acme/revoke-cert", {"certificate": jose.b64(der), "reason": 4})
    assert r.status_code == 200, r.text
    assert env.backend.revoked == [leaf.serial_number]
    problem(await c.post(f"{BASE}/acme/revoke-cert", {"certificate": jose.b64(der)}), "alreadyRevoked", 400)


async def test_revoke_with_certificate_key_and_bad_reason(env: Env, challenge_server: ChallengeServer) -> None:
    c = env.client()
    await c.load()
    await c.register()
    order = await ready_order(env, c, challenge_server, ["rev.localhost"])
    csr, key = csr_for(["rev.localhost"])
    cert_url = (await c.post(order["finalize"], {"csr": jose.b64(csr)})).json()["certificate"]
    leaf = x509.load_pem_x509_certificates((await c.post(cert_url, None)).content)[0]
    der = jose.b64(leaf.public_bytes(serialization.Encoding.DER))
    url = f"{BASE}/acme/revoke-cert"
    problem(await c.post(url, {"certificate": der, "reason": 7}), "badRevocationReason", 400)
    stranger = ec.generate_private_key(ec.SECP256R1())
    problem(await c.post(url, {"certificate": der}, use_jwk=True, key=stranger), "unauthorized", 403)
    r = await c.post(url, {"certificate": der}, use_jwk=True, key=key)
    assert r.status_code == 200, r.text


async def test_failed_validation_makes_order_invalid(env: Env, challenge_server: ChallengeServer) -> None:
    c = env.client()
    await c.load()
    await c.register()
    await env.admin.post("/v1/pki/config/acme", json={"http_challenge_port": challenge_server.port})
    state_of(env.backend).http01_retry_delay = 0.01
    r = await c.post(c.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "wrong.localhost"}]})
    order_url, authz_url = r.headers["location"], r.json()["authorizations"][0]
    chal = (await c.post(authz_url, None)).json()["challenges"][0]
    challenge_server.answers[chal["token"]] = f"{chal['token']}.not-the-thumbprint"
    await c.post(chal["url"], {})
    await state_of(env.backend).settled()
    authz = (await c.post(authz_url, None)).json()
    assert authz["status"] == "invalid"
    assert authz["challenges"][0]["error"]["type"] == "urn:ietf:params:acme:error:incorrectResponse"
    assert (await c.post(order_url, None)).json()["status"] == "invalid"
    csr, _ = csr_for(["wrong.localhost"])
    problem(await c.post(order_url + "/finalize", {"csr": jose.b64(csr)}), "orderNotReady", 403)
    # Nothing listening: a connection problem.
    r = await c.post(c.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "nobody.localhost"}]})
    authz_url = r.json()["authorizations"][0]
    await env.admin.post("/v1/pki/config/acme", json={"http_challenge_port": 1})
    chal = (await c.post(authz_url, None)).json()["challenges"][0]
    await c.post(chal["url"], {})
    await state_of(env.backend).settled()
    err = (await c.post(authz_url, None)).json()["challenges"][0]["error"]
    assert err["type"] == "urn:ietf:params:acme:error:connection"


async def test_validation_does_not_block_requests(env: Env) -> None:
    """A challenge whose server never answers: the POST returns at once, validation runs behind."""
    hang = await asyncio.start_server(lambda r, w: asyncio.sleep(30), "127.0.0.1", 0)
    port = hang.sockets[0].getsockname()[1]
    c = env.client()
    await c.load()
    await c.register()
    await env.admin.post("/v1/pki/config/acme", json={"http_challenge_port": port})
    state = state_of(env.backend)
    state.http01_timeout, state.http01_attempts = 0.5, 1
    r = await c.post(c.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "slow.localhost"}]})
    authz_url = r.json()["authorizations"][0]
    chal = (await c.post(authz_url, None)).json()["challenges"][0]
    r = await asyncio.wait_for(c.post(chal["url"], {}), 0.4)
    assert r.json()["status"] == "processing"
    await state.settled()
    assert (await c.post(authz_url, None)).json()["status"] == "invalid"
    hang.close()


async def test_role_and_issuer_directories_and_policies(env: Env, challenge_server: ChallengeServer) -> None:
    c = AcmeClient(env.http, f"{BASE}/issuer/ca1/roles/web/acme/directory", ec.generate_private_key(ec.SECP256R1()))
    await c.load()
    await c.register()
    order = await ready_order(env, c, challenge_server, ["r.localhost"])
    csr, _ = csr_for(["r.localhost"])
    assert (await c.post(order["finalize"], {"csr": jose.b64(csr)})).status_code == 200
    assert env.backend.issued[-1][1:] == ("ca1", "web")
    # The CA refusing (a role's allowed_domains): badCSR, order invalid.
    order = await ready_order(env, c, challenge_server, [REFUSED])
    csr, _ = csr_for([REFUSED])
    doc = problem(await c.post(order["finalize"], {"csr": jose.b64(csr)}), "badCSR", 400)
    assert "not an allowed domain" in doc["detail"]
    assert (await c.post(order["url"], None)).json()["status"] == "invalid"
    # allowed_roles / allowed_issuers / forbid.
    await env.admin.post("/v1/pki/config/acme", json={"allowed_roles": ["other"], "allowed_issuers": ["ca2"],
                                                      "default_directory_policy": "forbid"})
    problem(await env.http.get("/v1/pki/roles/web/acme/directory"), "unauthorized", 403)
    problem(await env.http.get("/v1/pki/issuer/ca1/acme/directory"), "unauthorized", 403)
    problem(await env.http.get("/v1/pki/acme/directory"), "unauthorized", 403)
    assert (await env.http.get("/v1/pki/issuer/ca2/roles/other/acme/directory")).status_code == 200
    await env.admin.post("/v1/pki/config/acme", json={"allowed_roles": ["*"], "default_directory_policy": "role:web"})
    c2 = env.client()
    await c2.load()
    await c2.register()
    order = await ready_order(env, c2, challenge_server, ["d.localhost"])
    csr, _ = csr_for(["d.localhost"])
    assert (await c2.post(order["finalize"], {"csr": jose.b64(csr)})).status_code == 200
    assert env.backend.issued[-1][1:] == ("default", "web")


async def test_key_change(env: Env) -> None:
    c = env.client()
    await c.load()
    await c.register()
    new = ec.generate_private_key(ec.SECP256R1())
    url = c.dir["keyChange"]
    inner = jose.sign(new, {"alg": "ES256", "jwk": jose.jwk(new), "url": url},
                      {"account": c.kid, "oldKey": jose.jwk(c.key)})
    assert (await c.post(url, inner)).status_code == 200
    problem(await c.post(c.kid, None), "malformed", 400)  # the old key no longer signs for it
    r = await c.post(c.kid, None, key=new)
    assert r.status_code == 200
    r = await c.post(c.dir["newAccount"], {"onlyReturnExisting": True}, use_jwk=True, key=new)
    assert r.status_code == 200 and r.headers["location"] == c.kid


async def test_authorization_deactivation(env: Env) -> None:
    c = env.client()
    await c.load()
    await c.register()
    r = await c.post(c.dir["newOrder"], {"identifiers": [{"type": "ip", "value": "127.0.0.1"}]})
    order_url, authz_url = r.headers["location"], r.json()["authorizations"][0]
    assert r.json()["identifiers"] == [{"type": "ip", "value": "127.0.0.1"}]
    assert (await c.post(authz_url, {"status": "deactivated"})).json()["status"] == "deactivated"
    assert (await c.post(order_url, None)).json()["status"] == "invalid"
    problem(await c.post(authz_url, {"status": "valid"}), "malformed", 400)


async def test_ip_identifier_validated_over_http01(env: Env, challenge_server: ChallengeServer) -> None:
    c = env.client()
    await c.load()
    await c.register()
    await env.admin.post("/v1/pki/config/acme", json={"http_challenge_port": challenge_server.port})
    r = await c.post(c.dir["newOrder"], {"identifiers": [{"type": "ip", "value": "127.0.0.1"}]})
    order_url, authz_url = r.headers["location"], r.json()["authorizations"][0]
    chal = (await c.post(authz_url, None)).json()["challenges"][0]
    challenge_server.answers[chal["token"]] = f"{chal['token']}.{jose.thumbprint(c.key)}\n"  # trailing space is fine
    r = await c.post(chal["url"], {})
    assert r.headers["retry-after"] == "1"
    await state_of(env.backend).settled()
    authz = (await c.post(authz_url, None)).json()
    assert authz["status"] == "valid" and authz["challenges"][0]["validated"]
    assert (await c.post(order_url, None)).json()["status"] == "ready"
    # Answering again changes nothing (the challenge is no longer pending).
    assert (await c.post(chal["url"], {})).json()["status"] == "valid"


async def test_orders_and_authorizations_expire(env: Env) -> None:
    c = env.client()
    await c.load()
    await c.register()
    r = await c.post(c.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "late.localhost"}]})
    order_url, authz_url = r.headers["location"], r.json()["authorizations"][0]
    chal_url = (await c.post(authz_url, None)).json()["challenges"][0]["url"]
    state = state_of(env.backend)
    real = state.clock
    state.clock = lambda: real() + 25 * 3600
    try:
        c_nonce = await c.nonce()  # issued on the moved clock
        assert (await c.post(authz_url, None, nonce=c_nonce)).json()["status"] == "expired"
        assert (await c.post(order_url, None)).json()["status"] == "invalid"
        problem(await c.post(chal_url, {}), "malformed", 400)
    finally:
        state.clock = real


async def test_role_named_like_an_endpoint(env: Env) -> None:
    c = AcmeClient(env.http, f"{BASE}/roles/order/acme/directory", ec.generate_private_key(ec.SECP256R1()))
    await c.load()
    r = await c.register()
    assert r.headers["location"].startswith(f"{BASE}/roles/order/acme/account/")
    assert (await c.post(c.kid, None)).status_code == 200
    r = await c.post(c.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "o.localhost"}]})
    assert (await c.post(r.headers["location"], None)).json()["status"] == "pending"


def test_nonces_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from strongroom.engines.pki.acme import state as state_mod
    monkeypatch.setattr(state_mod, "MAX_NONCES", 5)
    s = state_mod.AcmeState()
    nonces = [s.new_nonce() for _ in range(20)]
    assert len(s.nonces) == 5
    assert not s.consume_nonce(nonces[0])  # the oldest went first
    assert s.consume_nonce(nonces[-1]) and not s.consume_nonce(nonces[-1])


async def test_tidy_deletes_ended_orders(env: Env, challenge_server: ChallengeServer) -> None:
    from strongroom.engines.pki.acme import acme_tidy
    storage = env.backend.system.storage
    c = env.client()
    await c.load()
    await c.register()
    pending = await c.post(c.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "old.localhost"}]})
    done = await ready_order(env, c, challenge_server, ["kept.localhost"])
    csr, _ = csr_for(["kept.localhost"])
    assert (await c.post(done["finalize"], {"csr": jose.b64(csr)})).status_code == 200
    now = state_of(env.backend).clock()
    assert await acme_tidy(storage, now) == 0  # nothing has ended yet
    # A day later plus the buffer: the pending order expired; the finalized one's certificate
    # (2 hours) too, so both go, with their authorizations and index entries.
    assert await acme_tidy(storage, now + 26 * 3600, safety_buffer=3600) == 2
    assert await storage.list("acme/orders/") == [] and await storage.list("acme/authz/") == []
    assert await storage.list("acme/serials/") == [] and await storage.list("acme/account-orders/") == []
    problem(await c.post(pending.headers["location"], None), "malformed", 404)
    assert await storage.list("acme/accounts/") != []  # accounts stay


async def test_background_validation_failure_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    from strongroom.engines.pki.acme.config import AcmeConfig
    from strongroom.engines.pki.acme.state import AcmeState
    from strongroom.engines.pki.acme.validate import run_challenge

    class Broken:
        async def get(self, key: str) -> bytes | None:
            raise RuntimeError("sealed")

    await run_challenge(Broken(), AcmeState(), "a1", "http-01", "thumb", AcmeConfig())  # type: ignore[arg-type]
    assert "recording the http-01 validation of authorization a1 failed: sealed" in caplog.text


def eab_binding(kid: str, hmac_key: str, url: str, account_key: Any, alg: str = "HS256") -> dict[str, str]:
    import hashlib
    import hmac as hmac_mod
    protected = jose.b64(json.dumps({"alg": alg, "kid": kid, "url": url}).encode())
    payload = jose.b64(json.dumps(jose.jwk(account_key)).encode())
    key = base64.urlsafe_b64decode(hmac_key + "=" * (-len(hmac_key) % 4))
    digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[alg]
    sig = hmac_mod.new(key, f"{protected}.{payload}".encode(), digest).digest()
    return {"protected": protected, "payload": payload, "signature": jose.b64(sig)}


async def test_external_account_binding(env: Env) -> None:
    early = env.client()
    await early.load()
    await early.register()  # before EAB is required
    await env.admin.post("/v1/pki/config/acme", json={"eab_policy": "new-account-required"})
    assert (await env.http.post("/v1/pki/acme/new-eab")).status_code == 403  # operators only
    r = await env.admin.post("/v1/pki/acme/new-eab")
    assert r.status_code == 200, r.text
    eab = r.json()["data"]
    assert eab["key_type"] == "hs" and eab["acme_directory"] == "acme/directory"
    assert eab["key"].startswith("vault-eab-0-")
    role_eab = (await env.admin.post("/v1/pki/roles/web/acme/new-eab")).json()["data"]
    assert role_eab["acme_directory"] == "roles/web/acme/directory"
    listed = (await env.admin.request("LIST", "/v1/pki/eab")).json()["data"]
    assert sorted(listed["keys"]) == sorted([eab["id"], role_eab["id"]])
    assert "key" not in listed["key_info"][eab["id"]]

    c = env.client()
    d = await c.load()
    assert d["meta"]["externalAccountRequired"] is True
    url = d["newAccount"]
    problem(await c.post(url, {}, use_jwk=True), "externalAccountRequired", 400)
    problem(await c.post(url, {"externalAccountBinding": eab_binding(eab["id"], "vault-eab-0-AAAA", url, c.key)},
                         use_jwk=True), "unauthorized", 403)  # wrong HMAC key
    other = ec.generate_private_key(ec.SECP256R1())
    problem(await c.post(url, {"externalAccountBinding": eab_binding(eab["id"], eab["key"], url, other)},
                         use_jwk=True), "unauthorized", 403)  # binds another key
    problem(await c.post(url, {"externalAccountBinding": eab_binding(role_eab["id"], role_eab["key"], url, c.key)},
                         use_jwk=True), "unauthorized", 403)  # another directory's binding
    r = await c.post(url, {"externalAccountBinding": eab_binding(eab["id"], eab["key"], url, c.key, "HS512")},
                     use_jwk=True)
    assert r.status_code == 201, r.text
    c.kid = r.headers["location"]
    # Used once: gone from the list, refused for a second account.
    assert (await env.admin.request("LIST", "/v1/pki/eab")).json()["data"]["keys"] == [role_eab["id"]]
    c2 = env.client()
    c2.dir = d
    problem(await c2.post(url, {"externalAccountBinding": eab_binding(eab["id"], eab["key"], url, c2.key)},
                          use_jwk=True), "unauthorized", 403)
    # new-account-required lets older accounts work; always-required does not.
    order = {"identifiers": [{"type": "dns", "value": "e.localhost"}]}
    assert (await early.post(early.dir["newOrder"], order)).status_code == 201
    await env.admin.post("/v1/pki/config/acme", json={"eab_policy": "always-required"})
    problem(await early.post(early.dir["newOrder"], order), "unauthorized", 403)
    assert (await c.post(d["newOrder"], order)).status_code == 201
    # Unused bindings can be deleted.
    assert (await env.admin.delete(f"/v1/pki/eab/{role_eab['id']}")).status_code == 204
    assert (await env.admin.delete(f"/v1/pki/eab/{role_eab['id']}")).status_code == 404
    assert (await env.admin.request("LIST", "/v1/pki/eab")).status_code == 404


def dns01_value(key_authorization: str) -> str:
    import hashlib
    return jose.b64(hashlib.sha256(key_authorization.encode()).digest())


async def test_dns01_and_wildcards(env: Env, dns_server: DnsServer) -> None:
    r = await env.admin.post("/v1/pki/config/acme", json={"dns_resolver": "not an ip"})
    assert r.status_code == 400 and "invalid dns_resolver" in r.json()["errors"][0]
    r = await env.admin.post("/v1/pki/config/acme", json={"dns_resolver": f"127.0.0.1:{dns_server.port}"})
    assert r.status_code == 200 and r.json()["data"]["dns_resolver"] == f"127.0.0.1:{dns_server.port}"
    c = env.client()
    await c.load()
    await c.register()
    names = ["*.example.org", "example.org", "api.example.net"]
    r = await c.post(c.dir["newOrder"], {"identifiers": [{"type": "dns", "value": n} for n in names]})
    assert r.status_code == 201, r.text
    order_url, authz_urls = r.headers["location"], r.json()["authorizations"]
    authzs = [(await c.post(u, None)).json() for u in authz_urls]
    wild = authzs[0]
    assert wild["identifier"] == {"type": "dns", "value": "example.org"} and wild["wildcard"] is True
    assert [ch["type"] for ch in wild["challenges"]] == ["dns-01"]  # wildcards: dns-01 only
    assert [ch["type"] for ch in authzs[1]["challenges"]] == ["http-01", "dns-01", "tls-alpn-01"]
    for authz in authzs:
        chal = next(ch for ch in authz["challenges"] if ch["type"] == "dns-01")
        name = "_acme-challenge." + authz["identifier"]["value"]
        dns_server.records.setdefault(name, []).append(dns01_value(f"{chal['token']}.{jose.thumbprint(c.key)}"))
        r = await c.post(chal["url"], {})
        assert r.status_code == 200 and r.json()["status"] == "processing", r.text
    await state_of(env.backend).settled()
    assert [(await c.post(u, None)).json()["status"] for u in authz_urls] == ["valid"] * 3
    assert (await c.post(order_url, None)).json()["status"] == "ready"
    csr, _ = csr_for(names)
    r = await c.post(order_url + "/finalize", {"csr": jose.b64(csr)})
    assert r.status_code == 200, r.text
    leaf = x509.load_pem_x509_certificates((await c.post(r.json()["certificate"], None)).content)[0]
    assert sorted(leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                  .get_values_for_type(x509.DNSName)) == sorted(names)
    # A wrong TXT value, and a name with no record: invalid, with the reason.
    state_of(env.backend).http01_retry_delay = 0.01
    r = await c.post(c.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "bad.example.org"},
                                                         {"type": "dns", "value": "none.example.org"}]})
    for url in r.json()["authorizations"]:
        authz = (await c.post(url, None)).json()
        chal = next(ch for ch in authz["challenges"] if ch["type"] == "dns-01")
        if authz["identifier"]["value"] == "bad.example.org":
            dns_server.records["_acme-challenge.bad.example.org"] = [dns01_value("someone else")]
        await c.post(chal["url"], {})
    await state_of(env.backend).settled()
    for url in r.json()["authorizations"]:
        authz = (await c.post(url, None)).json()
        assert authz["status"] == "invalid"
        err = next(ch for ch in authz["challenges"] if ch["type"] == "dns-01")["error"]
        assert err["type"] == "urn:ietf:params:acme:error:incorrectResponse"
    # An IP identifier has no dns-01 challenge.
    r = await c.post(c.dir["newOrder"], {"identifiers": [{"type": "ip", "value": "127.0.0.1"}]})
    authz_id = r.json()["authorizations"][0].rsplit("/", 1)[-1]
    problem(await c.post(f"{BASE}/acme/challenge/{authz_id}/dns-01", {}), "malformed", 404)


async def test_dns_resolver_unreachable(env: Env) -> None:
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # bound, never answers
        s.bind(("127.0.0.1", 0))
        await env.admin.post("/v1/pki/config/acme", json={"dns_resolver": f"127.0.0.1:{s.getsockname()[1]}"})
        state = state_of(env.backend)
        state.http01_timeout, state.http01_attempts = 0.3, 1
        c = env.client()
        await c.load()
        await c.register()
        r = await c.post(c.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "*.quiet.example"}]})
        url = r.json()["authorizations"][0]
        await c.post((await c.post(url, None)).json()["challenges"][0]["url"], {})
        await state.settled()
        err = (await c.post(url, None)).json()["challenges"][0]["error"]
        assert err["type"] == "urn:ietf:params:acme:error:dns"


class YieldingStorage:
    """Storage that gives the event loop away at every call, as durable storage does: concurrent
    requests interleave between their reads and writes."""

    def __init__(self) -> None:
        from strongroom.storage.inmem import InmemStorage
        self.inner = InmemStorage()

    async def get(self, key: str) -> bytes | None:
        await asyncio.sleep(0)
        return await self.inner.get(key)

    async def put(self, key: str, value: bytes) -> None:
        await asyncio.sleep(0)
        await self.inner.put(key, value)

    async def delete(self, key: str) -> None:
        await asyncio.sleep(0)
        await self.inner.delete(key)

    async def list(self, prefix: str) -> list[str]:
        await asyncio.sleep(0)
        return await self.inner.list(prefix)


async def test_a_binding_serves_one_account_even_when_raced() -> None:
    from tests.engines.pki.acme.ca_backend import TYPE, TestCABackend

    from strongroom.framework import BackendConfig, Op, Request
    from strongroom.framework.system import StaticSystemView

    storage = YieldingStorage()
    backend = TestCABackend(BackendConfig(mount_path="pki/", mount_type=TYPE, system=StaticSystemView(storage)))
    await backend.setup()
    await storage.put("config/cluster", b"http://x/v1/pki")
    await storage.put("config/acme", json.dumps({"enabled": True, "eab_policy": "new-account-required"}).encode())
    resp = await backend.handle(Request(Op.UPDATE, "acme/new-eab", storage=storage))
    assert resp is not None and resp.data is not None
    eab = resp.data
    url = "http://x/v1/pki/acme/new-account"
    state = state_of(backend)
    requests = []
    for _ in range(4):
        key = ec.generate_private_key(ec.SECP256R1())
        body = jose.sign(key, {"alg": "ES256", "nonce": state.new_nonce(), "url": url, "jwk": jose.jwk(key)},
                         {"externalAccountBinding": eab_binding(eab["id"], eab["key"], url, key)})
        requests.append(Request(Op.UPDATE, "acme/new-account", data=body, storage=storage,
                                content_type="application/jose+json"))
    answers = await asyncio.gather(*(backend.handle(r) for r in requests))
    assert sorted(a.raw_status for a in answers if a is not None) == [201, 403, 403, 403]


async def test_state_survives_seal_and_unseal_but_nonces_do_not(monkeypatch: pytest.MonkeyPatch) -> None:
    """Accounts and orders are in the mount's storage (through the barrier); nonces are in memory,
    so one issued before a seal is refused after (the client retries with a fresh one)."""
    from tests.engines.pki.acme import ca_backend

    from strongroom.core import Core
    from strongroom.engines import SECRETS_ENGINES
    from strongroom.storage.inmem import InmemStorage
    from strongroom.testing import app_client

    monkeypatch.setitem(SECRETS_ENGINES, ca_backend.TYPE, "tests.engines.pki.acme.ca_backend:TestCABackend")
    core = Core(InmemStorage())
    key, token = await core.dev_bootstrap("root")
    try:
        async with app_client(core, token) as admin, app_client(core) as http:
            await admin.post("/v1/sys/mounts/pki", json={"type": ca_backend.TYPE})
            await admin.post("/v1/pki/config/cluster", json={"path": BASE})
            await admin.post("/v1/pki/config/acme", json={"enabled": True})
            c = AcmeClient(http, f"{BASE}/acme/directory", ec.generate_private_key(ec.SECP256R1()))
            await c.load()
            await c.register()
            r = await c.post(c.dir["newOrder"], {"identifiers": [{"type": "dns", "value": "s.localhost"}]})
            order_url = r.headers["location"]
            stale = await c.nonce()
            await core.seal()
            await core.unseal(key)
            problem(await c.post(order_url, None, nonce=stale), "badNonce", 400)
            r = await c.post(order_url, None)
            assert r.status_code == 200 and r.json()["status"] == "pending"
            assert (await c.post(c.kid, None)).json()["status"] == "valid"
    finally:
        await core.seal()


async def test_tls_alpn01(env: Env, tmp_path: Path) -> None:
    from tests.engines.pki.acme.challenge import tls_alpn_cert, tls_alpn_server

    c = env.client()
    await c.load()
    await c.register()
    state = state_of(env.backend)
    state.http01_retry_delay = 0.01
    cases = [("good.localhost", {}, True, "valid"), ("127.0.0.1", {}, True, "valid"),
             ("wrong.localhost", {"digest_of": "another key authorization"}, True, "invalid"),
             ("lax.localhost", {"critical": False}, True, "invalid"), ("noalpn.localhost", {}, False, "invalid")]
    for ident, cert_opts, alpn, expected in cases:
        kind = "ip" if ident[0].isdigit() else "dns"
        r = await c.post(c.dir["newOrder"], {"identifiers": [{"type": kind, "value": ident}]})
        authz_url = r.json()["authorizations"][0]
        chal = next(ch for ch in (await c.post(authz_url, None)).json()["challenges"] if ch["type"] == "tls-alpn-01")
        key_auth = f"{chal['token']}.{jose.thumbprint(c.key)}"
        server = await tls_alpn_server(tls_alpn_cert(ident, key_auth, tmp=tmp_path, **cert_opts), alpn=alpn)
        try:
            await env.admin.post("/v1/pki/config/acme",
                                 json={"tls_challenge_port": server.sockets[0].getsockname()[1]})
            assert (await c.post(chal["url"], {})).json()["status"] == "processing"
            await state.settled()
        finally:
            server.close()
        authz = (await c.post(authz_url, None)).json()
        assert authz["status"] == expected, (ident, authz)
        if expected == "invalid":
            err = next(ch for ch in authz["challenges"] if ch["type"] == "tls-alpn-01")["error"]
            assert err["type"] == "urn:ietf:params:acme:error:incorrectResponse", err
