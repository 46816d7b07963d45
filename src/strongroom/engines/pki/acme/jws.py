"""JSON Web Signatures as ACME uses them (RFC 8555 §6.2, RFC 7515/7517/7638).

A request body is a flattened JWS: ``protected`` (base64url JSON header with ``alg``, ``nonce``,
``url`` and exactly one of ``jwk``/``kid``), ``payload`` (base64url JSON, or "" for POST-as-GET) and
``signature``. :func:`parse` checks the shape and decodes the header; :func:`verify` checks the
signature with a public key from :func:`jwk_public_key`. Supported algorithms: RS256/384/512,
ES256/384/512 and EdDSA (Ed25519), all through ``cryptography``; anything else (``none``, MACs) is
``badSignatureAlgorithm``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from strongroom.engines.pki.acme.problems import AcmeProblem, malformed

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "EdDSA"]
_RSA_HASH: dict[str, hashes.HashAlgorithm] = {"RS256": hashes.SHA256(), "RS384": hashes.SHA384(),
                                              "RS512": hashes.SHA512()}
# alg -> (curve name in a JWK, cryptography curve, hash, bytes per coordinate)
_EC: dict[str, tuple[str, ec.EllipticCurve, hashes.HashAlgorithm, int]] = {
    "ES256": ("P-256", ec.SECP256R1(), hashes.SHA256(), 32),
    "ES384": ("P-384", ec.SECP384R1(), hashes.SHA384(), 48),
    "ES512": ("P-521", ec.SECP521R1(), hashes.SHA512(), 66),
}
_CURVES = {crv: curve for crv, curve, _, _ in _EC.values()}
MIN_RSA_BITS = 2048
MAX_RSA_BITS = 8192


def b64d(value: Any, what: str) -> bytes:
    """base64url without padding (RFC 7515 §2); a malformed problem otherwise."""
    if not isinstance(value, str) or "=" in value:
        raise malformed(f"{what} is not base64url")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise malformed(f"{what} is not base64url") from None


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json(raw: bytes, what: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise malformed(f"{what} is not JSON") from None


@dataclass(frozen=True, slots=True)
class Jws:
    header: dict[str, Any]
    protected: str  # as sent (the signing input is protected "." payload)
    payload_b64: str
    signature: bytes

    @property
    def alg(self) -> str:
        return str(self.header["alg"])

    def payload(self) -> Any:
        """The decoded payload; None for POST-as-GET (an empty payload)."""
        if self.payload_b64 == "":
            return None
        return _json(b64d(self.payload_b64, "payload"), "payload")

    def signing_input(self) -> bytes:
        return f"{self.protected}.{self.payload_b64}".encode("ascii")


def parse(body: Any) -> Jws:
    """A flattened JWS with a protected header holding alg, nonce, url and one of jwk/kid."""
    if not isinstance(body, dict) or set(body) - {"protected", "payload", "signature"}:
        raise malformed("request body is not a flattened JWS (protected, payload, signature only)")
    for name in ("protected", "payload", "signature"):
        if not isinstance(body.get(name), str):
            raise malformed(f"JWS has no {name}")
    header = _json(b64d(body["protected"], "protected header"), "protected header")
    if not isinstance(header, dict):
        raise malformed("protected header is not a JSON object")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALGORITHMS:
        raise AcmeProblem("badSignatureAlgorithm", f"unsupported JWS algorithm {alg!r}", algorithms=ALGORITHMS)
    if ("jwk" in header) == ("kid" in header):
        raise malformed("protected header must hold exactly one of jwk and kid")
    if not isinstance(header.get("url"), str):
        raise malformed("protected header has no url")
    if "nonce" in header and not isinstance(header["nonce"], str):
        raise malformed("nonce is not a string")
    if "kid" in header and not isinstance(header["kid"], str):
        raise malformed("kid is not a string")
    if "crit" in header:
        raise malformed("crit header parameters are not supported")
    return Jws(header, body["protected"], body["payload"], b64d(body["signature"], "signature"))


def _int(jwk: dict[str, Any], name: str) -> int:
    return int.from_bytes(b64d(jwk.get(name), f"jwk {name}"), "big")


def canonical_jwk(jwk: Any) -> dict[str, str]:
    """The required members of a public JWK (RFC 7638 §3.2), which is what is stored and hashed."""
    if not isinstance(jwk, dict):
        raise malformed("jwk is not a JSON object")
    kty = jwk.get("kty")
    members = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}.get(str(kty))
    if members is None:
        raise AcmeProblem("badPublicKey", f"unsupported key type {kty!r}")
    out = {}
    for m in members:
        if not isinstance(jwk.get(m), str):
            raise malformed(f"jwk has no {m}")
        out[m] = jwk[m]
    if "d" in jwk:
        raise AcmeProblem("badPublicKey", "jwk holds a private key")
    return out


def thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 SHA-256 thumbprint, base64url (the key authorization's second half)."""
    canonical = orjson.dumps(dict(sorted(canonical_jwk(jwk).items())))
    return b64e(hashlib.sha256(canonical).digest())


def jwk_public_key(jwk: Any) -> PublicKey:
    """The public key a JWK describes; badPublicKey when unsupported, weak or invalid."""
    j = canonical_jwk(jwk)
    try:
        if j["kty"] == "RSA":
            n, e = _int(j, "n"), _int(j, "e")
            if not MIN_RSA_BITS <= n.bit_length() <= MAX_RSA_BITS:
                raise AcmeProblem("badPublicKey", f"RSA keys must be {MIN_RSA_BITS} to {MAX_RSA_BITS} bits")
            return rsa.RSAPublicNumbers(e, n).public_key()
        if j["kty"] == "EC":
            curve = _CURVES.get(j["crv"])
            if curve is None:
                raise AcmeProblem("badPublicKey", f"unsupported curve {j['crv']!r}")
            return ec.EllipticCurvePublicNumbers(_int(j, "x"), _int(j, "y"), curve).public_key()
        if j["crv"] != "Ed25519":
            raise AcmeProblem("badPublicKey", f"unsupported curve {j['crv']!r}")
        return ed25519.Ed25519PublicKey.from_public_bytes(b64d(j["x"], "jwk x"))
    except ValueError as e:
        raise AcmeProblem("badPublicKey", f"invalid public key: {e}") from None


def verify(jws: Jws, key: PublicKey) -> None:
    """Check the signature; the algorithm must fit the key. Failures are malformed problems."""
    alg, sig, data = jws.alg, jws.signature, jws.signing_input()
    try:
        if alg in _RSA_HASH:
            if not isinstance(key, rsa.RSAPublicKey):
                raise AcmeProblem("badSignatureAlgorithm", f"{alg} needs an RSA key", algorithms=ALGORITHMS)
            key.verify(sig, data, padding.PKCS1v15(), _RSA_HASH[alg])
        elif alg in _EC:
            crv, curve, digest, size = _EC[alg]
            if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != curve.name:
                raise AcmeProblem("badSignatureAlgorithm", f"{alg} needs a {crv} key", algorithms=ALGORITHMS)
            if len(sig) != 2 * size:
                raise InvalidSignature()
            r, s = int.from_bytes(sig[:size], "big"), int.from_bytes(sig[size:], "big")
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(digest))
        else:
            if not isinstance(key, ed25519.Ed25519PublicKey):
                raise AcmeProblem("badSignatureAlgorithm", "EdDSA needs an Ed25519 key", algorithms=ALGORITHMS)
            key.verify(sig, data)
    except InvalidSignature:
        raise malformed("JWS verification error: signature is invalid") from None
