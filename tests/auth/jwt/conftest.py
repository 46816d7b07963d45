"""Fixtures for the JWT/OIDC method: keys made here, a JWT signer, and a small local OIDC provider
(discovery document, JWKS, /authorize redirect, /token endpoint) on a free port in a thread."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from tests.auth.conftest import Vault

from strongroom.testing import asgi_client, unsealed_core

RSAKey = rsa.RSAPrivateKey
ECKey = ec.EllipticCurvePrivateKey
EdKey = ed25519.Ed25519PrivateKey
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int(n: int) -> str:
    return b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def public_pem(key: PrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def jwk(key: PrivateKey, kid: str) -> dict[str, Any]:
    if isinstance(key, rsa.RSAPrivateKey):
        n = key.public_key().public_numbers()
        return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": _int(n.n), "e": _int(n.e)}
    if isinstance(key, ec.EllipticCurvePrivateKey):
        p = key.public_key().public_numbers()
        return {"kty": "EC", "kid": kid, "crv": "P-256", "x": b64(p.x.to_bytes(32, "big")),
                "y": b64(p.y.to_bytes(32, "big"))}
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64(raw)}


def sign(claims: dict[str, Any], key: PrivateKey | bytes | None, alg: str = "RS256", kid: str | None = None,
         header: dict[str, Any] | None = None) -> str:
    """A compact JWS. ``key`` bytes sign HS256 (an HMAC secret); None leaves the signature empty."""
    h: dict[str, Any] = {"alg": alg, "typ": "JWT", **(header or {})}
    if kid is not None:
        h["kid"] = kid
    signing_input = f"{b64(json.dumps(h).encode())}.{b64(json.dumps(claims).encode())}".encode()
    if key is None:
        sig = b""
    elif isinstance(key, bytes):
        import hmac
        sig = hmac.new(key, signing_input, hashlib.sha256).digest()
    elif isinstance(key, rsa.RSAPrivateKey):
        h_alg = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[alg[2:]]
        pad: padding.AsymmetricPadding = (padding.PKCS1v15() if alg.startswith("RS")
                                          else padding.PSS(padding.MGF1(h_alg), padding.PSS.DIGEST_LENGTH))
        sig = key.sign(signing_input, pad, h_alg)
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        sig = key.sign(signing_input)
    return f"{signing_input.decode()}.{b64(sig)}"


def claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {"iss": "https://issuer.example", "sub": "user-1", "aud": "strongroom",
                            "iat": now, "nbf": now, "exp": now + 300, "email": "alice@example.com"}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


@dataclass(frozen=True)
class Keys:
    rsa: RSAKey
    ec: ECKey
    ed: EdKey
    other_rsa: RSAKey


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys(rsa.generate_private_key(65537, 2048), ec.generate_private_key(ec.SECP256R1()),
                ed25519.Ed25519PrivateKey.generate(), rsa.generate_private_key(65537, 2048))


# -- the local OIDC provider ----------------------------------------------------------------------
@dataclass
class Provider:
    """A minimal OIDC provider. ``signing`` are (kid, key) pairs published in the JWKS; tokens are
    signed with the first. ``user_claims`` go into every ID token it issues."""

    signing: list[tuple[str, PrivateKey]]
    client_id: str = "strongroom-client"
    client_secret: str = "s3cret"
    url: str = ""
    user_claims: dict[str, Any] = field(default_factory=lambda: {"sub": "alice", "email": "alice@example.com",
                                                                 "groups": ["dev", "ops"]})
    jwks_hits: int = 0
    token_requests: list[dict[str, Any]] = field(default_factory=list)
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    # Test knobs: a wrong nonce, audience or issuer in the ID token.
    tamper: dict[str, Any] = field(default_factory=dict)
    sign_with: PrivateKey | None = None  # sign ID tokens with a key the JWKS does not publish
    userinfo: dict[str, Any] = field(default_factory=dict)  # served at /userinfo for the access token
    access_token: str = field(default_factory=lambda: secrets.token_urlsafe(16))

    def jwks(self) -> dict[str, Any]:
        return {"keys": [jwk(k, kid) for kid, k in self.signing]}

    def discovery(self) -> dict[str, Any]:
        return {"issuer": self.url, "authorization_endpoint": f"{self.url}/authorize",
                "token_endpoint": f"{self.url}/token", "jwks_uri": f"{self.url}/keys",
                "userinfo_endpoint": f"{self.url}/userinfo",
                "id_token_signing_alg_values_supported": ["RS256"], "response_types_supported": ["code"]}

    def authorize(self, query: dict[str, str]) -> str:
        """What /authorize does after the user logs in: a code, and the redirect back."""
        code = secrets.token_urlsafe(16)
        self.codes[code] = query
        return f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"

    def token(self, form: dict[str, str], auth: str) -> tuple[int, dict[str, Any]]:
        self.token_requests.append(form)
        expected = "Basic " + base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if auth != expected:
            return 401, {"error": "invalid_client"}
        q = self.codes.pop(form.get("code", ""), None)
        if q is None or form.get("redirect_uri") != q["redirect_uri"]:
            return 400, {"error": "invalid_grant"}
        verifier = form.get("code_verifier", "")
        if b64(hashlib.sha256(verifier.encode()).digest()) != q.get("code_challenge"):
            return 400, {"error": "invalid_grant"}
        now = int(time.time())
        c = {"iss": self.url, "aud": self.client_id, "iat": now, "exp": now + 300, "nonce": q["nonce"],
             **self.user_claims, **self.tamper}
        kid, key = self.signing[0]
        if self.sign_with is not None:
            key = self.sign_with
        return 200, {"access_token": self.access_token, "token_type": "Bearer", "id_token": sign(c, key, "RS256", kid)}


def _handler(p: Provider) -> type[BaseHTTPRequestHandler]:
    class H(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _json(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            u = urlsplit(self.path)
            if u.path == "/.well-known/openid-configuration":
                self._json(200, p.discovery())
            elif u.path == "/keys":
                p.jwks_hits += 1
                self._json(200, p.jwks())
            elif u.path == "/userinfo":
                if self.headers.get("Authorization") != f"Bearer {p.access_token}":
                    self._json(401, {"error": "invalid_token"})
                else:
                    self._json(200, p.userinfo or {"sub": p.user_claims.get("sub")})
            elif u.path == "/huge":
                self._json(200, {"keys": [], "padding": "x" * (2 * 1024 * 1024)})
            elif u.path == "/authorize":
                q = {k: v[0] for k, v in parse_qs(u.query).items()}
                self.send_response(302)
                self.send_header("Location", p.authorize(q))
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self._json(404, {"error": "not found"})

        def do_POST(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(n).decode()).items()}
            if urlsplit(self.path).path == "/token":
                self._json(*p.token(form, self.headers.get("Authorization", "")))
            else:
                self._json(404, {"error": "not found"})

    return H


def self_signed_cert() -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) for 127.0.0.1, valid for an hour."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "local oidc provider")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _serve(p: Provider, tls: tuple[bytes, bytes] | None, tmp: Any = None) -> Iterator[Provider]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(p))
    scheme = "http"
    if tls is not None:
        import ssl
        cert_file, key_file = tmp / "cert.pem", tmp / "key.pem"
        cert_file.write_bytes(tls[0])
        key_file.write_bytes(tls[1])
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_file, key_file)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    p.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    t.start()
    yield p
    server.shutdown()
    server.server_close()


@pytest.fixture
def provider(keys: Keys) -> Iterator[Provider]:
    yield from _serve(Provider(signing=[("k1", keys.rsa)]), None)


@pytest.fixture
def tls_provider(keys: Keys, tmp_path: Any) -> Iterator[tuple[Provider, str]]:
    """The provider over HTTPS with a self-signed certificate; yields it and the certificate PEM."""
    cert, key = self_signed_cert()
    for p in _serve(Provider(signing=[("k1", keys.rsa)]), (cert, key), tmp_path):
        yield p, cert.decode()


@pytest.fixture
async def vault() -> AsyncIterator[Vault]:
    async with unsealed_core() as (core, _), asgi_client(core) as client:
        v = Vault(core, client)
        await v.done("POST", "sys/auth/jwt", {"type": "jwt"})
        yield v
