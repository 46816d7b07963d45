"""A small local Kubernetes API (HTTPS, its own CA made here with `cryptography`) that answers
TokenReview as the real API does, and helpers to mint service account JWTs it knows.

The fake API keeps a table of the JWTs it would accept (by token) and of the bearer tokens allowed
to create TokenReviews. Answers follow the shapes of the Kubernetes API reference
(authentication.k8s.io/v1 TokenReview; a meta/v1 Status for 401/403).
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import ssl
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from tests.auth.conftest import Vault

from strongroom.testing import asgi_client, unsealed_core

REVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_ca(cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def make_server_cert(ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


@dataclass
class Account:
    namespace: str
    name: str
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))


class Signer:
    """Mints RS256 service account JWTs (projected or legacy shape) with its own key."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_pem = self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def jwt(self, claims: dict[str, Any], alg: str = "RS256") -> str:
        head = _b64(json.dumps({"alg": alg, "kid": "k1"}).encode())
        body = _b64(json.dumps(claims).encode())
        sig = self.key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{head}.{body}.{_b64(sig)}"

    def projected(self, acct: Account, aud: list[str] | None = None, **extra: Any) -> str:
        return self.jwt({"aud": aud or ["https://kubernetes.default.svc"], "iss": "https://kubernetes.default.svc",
                         "sub": f"system:serviceaccount:{acct.namespace}:{acct.name}",
                         "kubernetes.io": {"namespace": acct.namespace,
                                           "serviceaccount": {"name": acct.name, "uid": acct.uid}}, **extra})

    def legacy(self, acct: Account, secret: str = "") -> str:
        return self.jwt({"iss": "kubernetes/serviceaccount", "sub": f"system:serviceaccount:{acct.namespace}:{acct.name}",
                         "kubernetes.io/serviceaccount/namespace": acct.namespace,
                         "kubernetes.io/serviceaccount/service-account.name": acct.name,
                         "kubernetes.io/serviceaccount/service-account.uid": acct.uid,
                         "kubernetes.io/serviceaccount/secret.name": secret or f"{acct.name}-token-x1"})


class FakeKubeAPI:
    """The TokenReview endpoint of a Kubernetes API server, on https://127.0.0.1:<port>."""

    def __init__(self, tmp: Path) -> None:
        self.ca_key, self.ca = make_ca("kube-test-ca")
        self.ca_pem = self.ca.public_bytes(serialization.Encoding.PEM).decode()
        cert_pem, key_pem = make_server_cert(self.ca_key, self.ca)
        (tmp / "srv.crt").write_bytes(cert_pem)
        (tmp / "srv.key").write_bytes(key_pem)
        self.tokens: dict[str, tuple[Account, list[str]]] = {}  # jwt -> (account, its audiences)
        self.reviewers: set[str] = set()  # bearer tokens allowed to create TokenReviews
        self.requests: list[dict[str, Any]] = []
        self.namespaces: dict[str, dict[str, str]] = {}  # namespace -> its labels
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tmp / "srv.crt", tmp / "srv.key")
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the API server does
            disable_nagle_algorithm = True  # answers in one segment: no delayed-ACK stalls
            wbufsize = 1 << 16

            def log_message(self, *args: Any) -> None:
                return None

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                bearer = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                api.requests.append({"path": self.path, "bearer": bearer, "body": body,
                                     "content_type": self.headers.get("Content-Type"),
                                     "peer": self.client_address})
                if self.path != REVIEW_PATH:
                    return self._send(404, api.status(404, "NotFound", "the server could not find the requested resource"))
                if bearer not in api.reviewers and bearer not in api.tokens:
                    return self._send(401, api.status(401, "Unauthorized", "Unauthorized"))
                if bearer not in api.reviewers:
                    acct = api.tokens[bearer][0]
                    return self._send(403, api.status(
                        403, "Forbidden", f'tokenreviews.authentication.k8s.io is forbidden: User '
                        f'"system:serviceaccount:{acct.namespace}:{acct.name}" cannot create resource '
                        '"tokenreviews" in API group "authentication.k8s.io" at the cluster scope'))
                self._send(201, api.review(body.get("spec") or {}))

            def do_GET(self) -> None:  # noqa: N802
                bearer = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                api.requests.append({"path": self.path, "bearer": bearer, "method": "GET"})
                prefix = "/api/v1/namespaces/"
                if bearer not in api.reviewers:
                    return self._send(401, api.status(401, "Unauthorized", "Unauthorized"))
                name = self.path.removeprefix(prefix)
                if not self.path.startswith(prefix) or name not in api.namespaces:
                    return self._send(404, api.status(404, "NotFound", f'namespaces "{name}" not found'))
                self._send(200, {"kind": "Namespace", "apiVersion": "v1",
                                 "metadata": {"name": name, "uid": str(uuid.uuid4()),
                                              "labels": {"kubernetes.io/metadata.name": name,
                                                         **api.namespaces[name]}},
                                 "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})

            def _send(self, code: int, doc: dict[str, Any]) -> None:
                raw = json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @staticmethod
    def status(code: int, reason: str, message: str) -> dict[str, Any]:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
                "reason": reason, "code": code}

    def review(self, spec: dict[str, Any]) -> dict[str, Any]:
        token, wanted = spec.get("token", ""), spec.get("audiences") or []
        out: dict[str, Any] = {"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
                               "metadata": {"creationTimestamp": None}, "spec": spec}
        known = self.tokens.get(token)
        if known is None:
            out["status"] = {"user": {}, "error": "[invalid bearer token, square/go-jose: error in cryptographic "
                             "primitive, token lookup failed]"}
            return out
        acct, auds = known
        if wanted and not set(wanted) & set(auds):
            out["status"] = {"user": {}, "error": f"[invalid bearer token, token audiences {json.dumps(auds)} "
                             f"is invalid for the target audiences {json.dumps(wanted)}]"}
            return out
        out["status"] = {"authenticated": True, "audiences": [a for a in auds if not wanted or a in wanted],
                         "user": {"username": f"system:serviceaccount:{acct.namespace}:{acct.name}", "uid": acct.uid,
                                  "groups": ["system:serviceaccounts", f"system:serviceaccounts:{acct.namespace}",
                                             "system:authenticated"]}}
        return out

    def add(self, signer: Signer, acct: Account, *, aud: list[str] | None = None, legacy: bool = False) -> str:
        """Mint a JWT for ``acct`` and make the API accept it."""
        auds = aud or ["https://kubernetes.default.svc"]
        token = signer.legacy(acct) if legacy else signer.projected(acct, auds)
        self.tokens[token] = (acct, auds)
        return token

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def kube_api(tmp_path: Path) -> Iterator[FakeKubeAPI]:
    api = FakeKubeAPI(tmp_path)
    api.reviewers.add("reviewer-jwt")
    yield api
    api.close()


@pytest.fixture
def signer() -> Signer:
    return Signer()


@pytest.fixture
async def kv() -> AsyncIterator[Vault]:
    """An unsealed in-process core with the kubernetes auth method at auth/kubernetes."""
    async with unsealed_core() as (core, _), asgi_client(core) as client:
        v = Vault(core, client)
        await v.done("POST", "sys/auth/kubernetes", {"type": "kubernetes"})
        yield v
