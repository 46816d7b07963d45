"""login: a JWT the (fake) Kubernetes API accepts gets a token with the role's policies and
metadata; every other case is refused, and nothing is granted without the TokenReview answer."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from tests.auth.conftest import Vault
from tests.auth.kubernetes.conftest import REVIEW_PATH, Account, FakeKubeAPI, Signer, make_ca

from strongroom.auth.kubernetes import KubernetesBackend
from strongroom.auth.kubernetes.login import verify_signature
from strongroom.auth.kubernetes.review import ClientPool

LOGIN = "auth/kubernetes/login"


async def _setup(kv: Vault, api: FakeKubeAPI, *, reviewer: str | None = "reviewer-jwt", **extra: Any) -> None:
    body: dict[str, Any] = {"kubernetes_host": api.url, "kubernetes_ca_cert": api.ca_pem,
                            "disable_local_ca_jwt": True, **extra}
    if reviewer:
        body["token_reviewer_jwt"] = reviewer
    await kv.done("POST", "auth/kubernetes/config", body)
    await kv.done("POST", "auth/kubernetes/role/app", {
        "bound_service_account_names": "app,web-*", "bound_service_account_namespaces": "prod,team-*",
        "token_policies": "app-read", "token_ttl": "30m"})


async def test_login_success(kv: Vault, kube_api: FakeKubeAPI, signer: Signer) -> None:
    await _setup(kv, kube_api)
    acct = Account("prod", "app")
    jwt = kube_api.add(signer, acct)
    auth = (await kv.ok("POST", LOGIN, {"role": "app", "jwt": jwt}, token=None))["auth"]
    assert auth["policies"] == ["app-read", "default"] and auth["lease_duration"] == 1800
    assert auth["metadata"] == {"role": "app", "service_account_name": "app", "service_account_namespace": "prod",
                                "service_account_secret_name": "", "service_account_uid": acct.uid}
    looked = (await kv.ok("GET", "auth/token/lookup-self", token=auth["client_token"]))["data"]
    assert looked["display_name"] == "kubernetes-prod-app" and looked["path"] == "auth/kubernetes/login"
    # The API was asked exactly once, with the reviewer JWT as bearer and the token in the spec.
    (req,) = kube_api.requests
    assert req["bearer"] == "reviewer-jwt" and req["body"]["spec"]["token"] == jwt
    assert req["body"]["kind"] == "TokenReview" and req["body"]["apiVersion"] == "authentication.k8s.io/v1"
    assert req["body"]["spec"]["audiences"] == ["https://kubernetes.default.svc"]
    assert req["content_type"] == "application/json"


async def test_login_legacy_secret_token_and_glob_bindings(kv: Vault, kube_api: FakeKubeAPI, signer: Signer) -> None:
    await _setup(kv, kube_api)
    acct = Account("team-blue", "web-frontend")
    jwt = kube_api.add(signer, acct, legacy=True)
    auth = (await kv.ok("POST", LOGIN, {"role": "app", "jwt": jwt}, token=None))["auth"]
    assert auth["metadata"]["service_account_secret_name"] == "web-frontend-token-x1"
    assert auth["metadata"]["service_account_namespace"] == "team-blue"
    # "*" binds everything.
    await kv.done("POST", "auth/kubernetes/role/any", {"bound_service_account_names": "*",
                                                        "bound_service_account_namespaces": "*"})
    other = kube_api.add(signer, Account("elsewhere", "someone"))
    assert (await kv.ok("POST", LOGIN, {"role": "any", "jwt": other}, token=None))["auth"]["client_token"]


@pytest.mark.parametrize(("acct", "message"), [
    (Account("staging", "app"), "namespace not authorized"),
    (Account("team", "app"), "namespace not authorized"),       # "team-*" needs the dash
    (Account("xprod", "app"), "namespace not authorized"),
    (Account("prod", "db"), "service account name not authorized"),
    (Account("prod", "web"), "service account name not authorized"),
])
async def test_login_bindings_refused_before_review(kv: Vault, kube_api: FakeKubeAPI, signer: Signer,
                                                    acct: Account, message: str) -> None:
    await _setup(kv, kube_api)
    jwt = kube_api.add(signer, acct)
    assert await kv.fails(403, "POST", LOGIN, {"role": "app", "jwt": jwt}, token=None) == [message]
    assert kube_api.requests == []


async def test_login_unauthenticated_review(kv: Vault, kube_api: FakeKubeAPI, signer: Signer) -> None:
    """A JWT whose claims fit the role but which the API does not accept (forged, revoked)."""
    await _setup(kv, kube_api)
    forged = signer.projected(Account("prod", "app"))
    assert await kv.fails(403, "POST", LOGIN, {"role": "app", "jwt": forged}, token=None) == ["permission denied"]
    assert len(kube_api.requests) == 1


async def test_login_review_names_another_account(kv: Vault, kube_api: FakeKubeAPI, signer: Signer) -> None:
    """The claims say prod/app, but the API says the token belongs to someone else: refused."""
    await _setup(kv, kube_api)
    jwt = signer.projected(Account("prod", "app", uid="u-1"))
    kube_api.tokens[jwt] = (Account("prod", "app", uid="u-2"), ["https://kubernetes.default.svc"])
    await kv.fails(403, "POST", LOGIN, {"role": "app", "jwt": jwt}, token=None)
    kube_api.tokens[jwt] = (Account("kube-system", "app", uid="u-1"), ["https://kubernetes.default.svc"])
    await kv.fails(403, "POST", LOGIN, {"role": "app", "jwt": jwt}, token=None)


async def test_login_audience(kv: Vault, kube_api: FakeKubeAPI, signer: Signer) -> None:
    await _setup(kv, kube_api)
    await kv.done("POST", "auth/kubernetes/role/app", {"audience": "vault"})
    wrong = kube_api.add(signer, Account("prod", "app"), aud=["other"])
    assert await kv.fails(403, "POST", LOGIN, {"role": "app", "jwt": wrong}, token=None) == [
        "invalid audience (aud) claim: audience claim does not match any expected audience"]
    assert kube_api.requests == []
    good = kube_api.add(signer, Account("prod", "app"), aud=["vault", "other"])
    assert (await kv.ok("POST", LOGIN, {"role": "app", "jwt": good}, token=None))["auth"]["client_token"]
    assert kube_api.requests[-1]["body"]["spec"]["audiences"] == ["vault"]
    # The JWT claims the audience, but the API does not accept it for it: refused.
    liar = signer.projected(Account("prod", "app"), ["vault"])
    kube_api.tokens[liar] = (Account("prod", "app"), ["other"])
    await kv.fails(403, "POST", LOGIN, {"role": "app", "jwt": liar}, token=None)


async def test_login_bad_input(kv: Vault, kube_api: FakeKubeAPI, signer: Signer) -> None:
    await _setup(kv, kube_api)
    jwt = kube_api.add(signer, Account("prod", "app"))
    assert await kv.fails(400, "POST", LOGIN, {"jwt": jwt}, token=None) == ["missing role"]
    assert await kv.fails(400, "POST", LOGIN, {"role": "app"}, token=None) == ["missing jwt"]
    assert await kv.fails(400, "POST", LOGIN, {"role": "nope", "jwt": jwt}, token=None) == ['invalid role name "nope"']
    for junk in ("notajwt", "a.b.c", "e30.e30.", jwt + "\r\nX-Injected: 1", jwt.replace(".", " .", 1), jwt.split(".")[0] + ".W10." + jwt.split(".")[2]):
        await kv.fails(403, "POST", LOGIN, {"role": "app", "jwt": junk}, token=None)
    none_alg = signer.jwt({"kubernetes.io": {"namespace": "prod", "serviceaccount": {"name": "app", "uid": "u"}}},
                          alg="none")
    await kv.fails(403, "POST", LOGIN, {"role": "app", "jwt": none_alg}, token=None)
    no_uid = signer.jwt({"kubernetes.io": {"namespace": "prod", "serviceaccount": {"name": "app"}}})
    assert await kv.fails(403, "POST", LOGIN, {"role": "app", "jwt": no_uid}, token=None) == ["permission denied"]
    expired = signer.projected(Account("prod", "app"), exp=1000)
    await kv.fails(403, "POST", LOGIN, {"role": "app", "jwt": expired}, token=None)
    assert kube_api.requests == []
    # The JWT never appears in an error.
    errs = await kv.fails(403, "POST", LOGIN, {"role": "app", "jwt": signer.projected(Account("prod", "app"))},
                          token=None)
    assert all(jwt[:20] not in e for e in errs)


async def test_login_without_config(kv: Vault, kube_api: FakeKubeAPI, signer: Signer) -> None:
    await kv.done("POST", "auth/kubernetes/role/app", {"bound_service_account_names": "app",
                                                        "bound_service_account_namespaces": "prod"})
    jwt = kube_api.add(signer, Account("prod", "app"))
    assert await kv.fails(500, "POST", LOGIN, {"role": "app", "jwt": jwt}, token=None) == [
        "could not load backend configuration"]


async def test_login_uses_client_jwt_without_reviewer(kv: Vault, kube_api: FakeKubeAPI, signer: Signer) -> None:
    """No reviewer JWT: the client's own JWT is the bearer (Vault's behaviour); the API then
    refuses when that account may not create TokenReviews, and accepts when it may."""
    await _setup(kv, kube_api, reviewer=None)
    jwt = kube_api.add(signer, Account("prod", "app"))
    await kv.fails(403, "POST", LOGIN, {"role": "app", "jwt": jwt}, token=None)
    assert kube_api.requests[-1]["bearer"] == jwt
    kube_api.reviewers.add(jwt)
    assert (await kv.ok("POST", LOGIN, {"role": "app", "jwt": jwt}, token=None))["auth"]["client_token"]


async def test_login_wrong_reviewer_jwt(kv: Vault, kube_api: FakeKubeAPI, signer: Signer) -> None:
    await _setup(kv, kube_api, reviewer="stale-reviewer")
    jwt = kube_api.add(signer, Account("prod", "app"))
    assert await kv.fails(403, "POST", LOGIN, {"role": "app", "jwt": jwt}, token=None) == ["permission denied"]


async def test_login_pem_keys_verify_signature(kv: Vault, kube_api: FakeKubeAPI, signer: Signer) -> None:
    other = Signer()
    await _setup(kv, kube_api, pem_keys=[other.public_pem])
    jwt = kube_api.add(signer, Account("prod", "app"))
    await kv.fails(403, "POST", LOGIN, {"role": "app", "jwt": jwt}, token=None)
    assert kube_api.requests == []  # refused before any review
    await _setup(kv, kube_api, pem_keys=[other.public_pem, signer.public_pem])
    assert (await kv.ok("POST", LOGIN, {"role": "app", "jwt": jwt}, token=None))["auth"]["client_token"]


async def test_login_issuer_validation(kv: Vault, kube_api: FakeKubeAPI, signer: Signer) -> None:
    await _setup(kv, kube_api, disable_iss_validation=False, issuer="https://kubernetes.default.svc")
    projected = kube_api.add(signer, Account("prod", "app"))
    legacy = kube_api.add(signer, Account("prod", "app"), legacy=True)
    assert (await kv.ok("POST", LOGIN, {"role": "app", "jwt": projected}, token=None))["auth"]["client_token"]
    await kv.fails(403, "POST", LOGIN, {"role": "app", "jwt": legacy}, token=None)
    await _setup(kv, kube_api, disable_iss_validation=False)  # default issuer: kubernetes/serviceaccount
    assert (await kv.ok("POST", LOGIN, {"role": "app", "jwt": legacy}, token=None))["auth"]["client_token"]
    await kv.fails(403, "POST", LOGIN, {"role": "app", "jwt": projected}, token=None)


async def test_login_token_bound_cidrs(kv: Vault, kube_api: FakeKubeAPI, signer: Signer) -> None:
    await _setup(kv, kube_api)
    await kv.done("POST", "auth/kubernetes/role/app", {"token_bound_cidrs": "10.9.9.0/24"})
    jwt = kube_api.add(signer, Account("prod", "app"))
    await kv.fails(403, "POST", LOGIN, {"role": "app", "jwt": jwt}, token=None)
    assert kube_api.requests == []


async def test_login_ca_mismatch_is_a_tls_failure(kv: Vault, kube_api: FakeKubeAPI, signer: Signer) -> None:
    _, foreign = make_ca("someone-else")
    await _setup(kv, kube_api, kubernetes_ca_cert=foreign.public_bytes(serialization.Encoding.PEM).decode())
    jwt = kube_api.add(signer, Account("prod", "app"))
    errs = await kv.fails(502, "POST", LOGIN, {"role": "app", "jwt": jwt}, token=None)
    assert "TLS certificate verification failed" in errs[0]
    assert kube_api.requests == []  # the JWT never left over an unverified connection


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_login_reviewer_down(kv: Vault, kube_api: FakeKubeAPI, signer: Signer) -> None:
    await _setup(kv, kube_api, kubernetes_host=f"https://127.0.0.1:{_closed_port()}")
    jwt = kube_api.add(signer, Account("prod", "app"))
    errs = await kv.fails(502, "POST", LOGIN, {"role": "app", "jwt": jwt}, token=None)
    assert errs[0].startswith("lookup failed: could not connect to the Kubernetes API")


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server that accepts connections and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    yield int(srv.getsockname()[1])
    srv.close()


async def test_login_reviewer_hangs_deadline(kv: Vault, kube_api: FakeKubeAPI, signer: Signer,
                                             silent_server: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(KubernetesBackend, "review_timeout", 0.5)
    await _setup(kv, kube_api, kubernetes_host=f"https://127.0.0.1:{silent_server}")
    jwt = kube_api.add(signer, Account("prod", "app"))
    loop = asyncio.get_running_loop()
    start = loop.time()
    errs = await kv.fails(502, "POST", LOGIN, {"role": "app", "jwt": jwt}, token=None)
    assert loop.time() - start < 3 and "did not answer the TokenReview within 0.5s" in errs[0]


async def test_config_change_takes_effect_on_next_login(kv: Vault, kube_api: FakeKubeAPI, signer: Signer,
                                                        tmp_path: Any) -> None:
    """The pooled client belongs to a (host, CA): a new config is used by the very next login."""
    await _setup(kv, kube_api)
    jwt = kube_api.add(signer, Account("prod", "app"))
    assert (await kv.ok("POST", LOGIN, {"role": "app", "jwt": jwt}, token=None))["auth"]["client_token"]
    _, foreign = make_ca("someone-else")
    await _setup(kv, kube_api, kubernetes_ca_cert=foreign.public_bytes(serialization.Encoding.PEM).decode())
    await kv.fails(502, "POST", LOGIN, {"role": "app", "jwt": jwt}, token=None)
    await _setup(kv, kube_api)
    assert (await kv.ok("POST", LOGIN, {"role": "app", "jwt": jwt}, token=None))["auth"]["client_token"]


async def test_login_namespace_selector(kv: Vault, kube_api: FakeKubeAPI, signer: Signer) -> None:
    """A namespace not listed may be selected by its labels, read from the Kubernetes API."""
    await _setup(kv, kube_api)
    await kv.done("POST", "auth/kubernetes/role/app", {"bound_service_account_namespace_selector": json.dumps(
        {"matchLabels": {"stage": "prod"},
         "matchExpressions": [{"key": "team", "operator": "In", "values": ["red", "blue"]},
                              {"key": "frozen", "operator": "DoesNotExist"}]})})
    kube_api.namespaces.update({"shop": {"stage": "prod", "team": "red"}, "lab": {"stage": "dev", "team": "red"},
                                "old": {"stage": "prod", "team": "blue", "frozen": "yes"}})
    ok = kube_api.add(signer, Account("shop", "app"))
    assert (await kv.ok("POST", LOGIN, {"role": "app", "jwt": ok}, token=None))["auth"]["client_token"]
    lookup = kube_api.requests[0]
    assert lookup["path"] == "/api/v1/namespaces/shop" and lookup["bearer"] == "reviewer-jwt"
    for ns in ("lab", "old"):
        jwt = kube_api.add(signer, Account(ns, "app"))
        assert await kv.fails(403, "POST", LOGIN, {"role": "app", "jwt": jwt}, token=None) == [
            "namespace not authorized"]
    missing = kube_api.add(signer, Account("gone", "app"))
    errs = await kv.fails(403, "POST", LOGIN, {"role": "app", "jwt": missing}, token=None)
    assert errs[0].startswith("namespace not authorized err=")
    # A listed namespace needs no lookup; a claimed namespace that is not a DNS label is never looked up.
    before = len(kube_api.requests)
    listed = kube_api.add(signer, Account("prod", "app"))
    assert (await kv.ok("POST", LOGIN, {"role": "app", "jwt": listed}, token=None))["auth"]["client_token"]
    assert [r["path"] for r in kube_api.requests[before:]] == [REVIEW_PATH]
    sneaky = kube_api.add(signer, Account("shop/../x", "app"))
    await kv.fails(403, "POST", LOGIN, {"role": "app", "jwt": sneaky}, token=None)
    assert len(kube_api.requests) == before + 1


async def test_logins_reuse_one_pooled_connection(kv: Vault, kube_api: FakeKubeAPI, signer: Signer) -> None:
    await _setup(kv, kube_api)
    for _ in range(3):
        jwt = kube_api.add(signer, Account("prod", "app"))
        assert (await kv.ok("POST", LOGIN, {"role": "app", "jwt": jwt}, token=None))["auth"]["client_token"]
    assert len({r["peer"] for r in kube_api.requests}) == 1


async def test_client_pool() -> None:
    pool = ClientPool(limit=2)
    a = pool.client("https://h:1", "")
    assert pool.client("https://h:1", "") is a and pool.client("https://h:2", "") is not a
    pool.forget()
    b = pool.client("https://h:1", "")
    assert b is not a and not a.is_closed  # a login may still be using a retired client
    await pool.aclose()
    assert a.is_closed and b.is_closed


def test_verify_signature_es256_and_rs256() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    r, s = decode_dss_signature(key.sign(b"head.body", ec.ECDSA(hashes.SHA256())))
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert verify_signature("ES256", b"head.body", raw, [pem])
    assert not verify_signature("ES256", b"head.bodX", raw, [pem])
    assert not verify_signature("ES256", b"head.body", raw[:-1], [pem])
    rsa_signer = Signer()
    assert not verify_signature("RS256", b"head.body", raw, [pem])  # wrong key type
    head, body, sig = rsa_signer.jwt({"a": 1}).split(".")
    sig_bytes = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    assert verify_signature("RS256", f"{head}.{body}".encode(), sig_bytes, [pem, rsa_signer.public_pem])
    assert not verify_signature("ES256", f"{head}.{body}".encode(), sig_bytes, [rsa_signer.public_pem])
