"""A minimal ACME JWS client for protocol tests (signing with `cryptography`), independent of the
server's jws.py so a bug there cannot hide in both."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int(n: int) -> str:
    return b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def jwk(key: Key) -> dict[str, str]:
    if isinstance(key, rsa.RSAPrivateKey):
        nums = key.public_key().public_numbers()
        return {"kty": "RSA", "n": _int(nums.n), "e": _int(nums.e)}
    if isinstance(key, ec.EllipticCurvePrivateKey):
        p = key.public_key().public_numbers()
        size = (key.curve.key_size + 7) // 8
        crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}[key.curve.name]
        return {"kty": "EC", "crv": crv, "x": b64(p.x.to_bytes(size, "big")), "y": b64(p.y.to_bytes(size, "big"))}
    from cryptography.hazmat.primitives import serialization
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": b64(raw)}


def thumbprint(key: Key) -> str:
    return b64(hashlib.sha256(json.dumps(jwk(key), sort_keys=True, separators=(",", ":")).encode()).digest())


def alg_of(key: Key) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}[key.curve.name]
    return "EdDSA"


def sign(key: Key, protected: dict[str, Any], payload: Any) -> dict[str, str]:
    p = b64(json.dumps(protected).encode())
    pl = "" if payload is None else b64(json.dumps(payload).encode())
    data = f"{p}.{pl}".encode()
    if isinstance(key, rsa.RSAPrivateKey):
        sig = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        h = {"secp256r1": hashes.SHA256(), "secp384r1": hashes.SHA384(), "secp521r1": hashes.SHA512()}[key.curve.name]
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(h)))
        size = (key.curve.key_size + 7) // 8
        sig = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    else:
        sig = key.sign(data)
    return {"protected": p, "payload": pl, "signature": b64(sig)}


class AcmeClient:
    """Signs requests for one account key against a directory, over an httpx.AsyncClient."""

    def __init__(self, http: httpx.AsyncClient, directory_url: str, key: Key) -> None:
        self.http = http
        self.directory_url = directory_url
        self.key = key
        self.kid = ""
        self.dir: dict[str, Any] = {}

    async def load(self) -> dict[str, Any]:
        r = await self.http.get(self.directory_url)
        assert r.status_code == 200, r.text
        self.dir = r.json()
        return self.dir

    async def nonce(self) -> str:
        r = await self.http.head(self.dir["newNonce"])
        assert r.status_code == 200
        return r.headers["replay-nonce"]

    async def post(self, url: str, payload: Any, *, use_jwk: bool = False, nonce: str | None = None,
                   key: Key | None = None, kid: str | None = None, extra: dict[str, Any] | None = None,
                   body: Any = None) -> httpx.Response:
        key = key or self.key
        protected: dict[str, Any] = {"alg": alg_of(key), "nonce": nonce if nonce is not None else await self.nonce(),
                                     "url": url}
        if use_jwk:
            protected["jwk"] = jwk(key)
        else:
            protected["kid"] = kid if kid is not None else self.kid
        protected.update(extra or {})
        jws = body if body is not None else sign(key, protected, payload)
        return await self.http.post(url, content=json.dumps(jws), headers={"Content-Type": "application/jose+json"})

    async def register(self) -> httpx.Response:
        r = await self.post(self.dir["newAccount"], {"termsOfServiceAgreed": True}, use_jwk=True)
        assert r.status_code in (200, 201), r.text
        self.kid = r.headers["location"]
        return r
