"""JWT (JWS compact) parsing and verification with `cryptography`, and the claim checks Vault makes.

Pure functions: no I/O. A token is split, its header and payload decoded, and its signature checked
against candidate public keys. Only asymmetric algorithms exist here (RS/PS 256-512, ES256/384/512,
EdDSA): ``none`` and every HS* are refused before any key is tried, so a public key can never be
used as an HMAC secret (the classic algorithm-confusion attack). A key is only tried for an
algorithm of its own kind (an RSA key never verifies an ES256 token).

Errors are :class:`TokenError` carrying Vault's wording (hashicorp/cap's), which the login path
prefixes with "error validating token: ".
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from strongroom.framework.globs import glob_match

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey

SUPPORTED_ALGS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA")
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"256": hashes.SHA256, "384": hashes.SHA384,
                                                   "512": hashes.SHA512}
_EC_CURVES: dict[str, tuple[type[ec.EllipticCurve], int]] = {
    "ES256": (ec.SECP256R1, 32), "ES384": (ec.SECP384R1, 48), "ES512": (ec.SECP521R1, 66)}
_JWK_CURVES: dict[str, type[ec.EllipticCurve]] = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1,
                                                  "P-521": ec.SECP521R1}
# Vault's default when a token carries neither exp nor nbf (cap's DefaultLeewaySeconds), and
# go-jose's default clock skew.
DEFAULT_LEEWAY = 150
DEFAULT_CLOCK_SKEW = 60
# Bounds on what is parsed at all: a JWT is a few KiB; this stops a megabyte header early.
MAX_TOKEN_BYTES = 64 * 1024


# OpenBao reports a token it cannot parse as a signature that does not verify.
_PARSE = "error verifying token signature: "


class TokenError(Exception):
    """The token is malformed, unverifiable or its claims do not fit (a 400 for the client)."""


@dataclass(slots=True)
class ParsedToken:
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes

    @property
    def alg(self) -> str:
        return str(self.header.get("alg", ""))

    @property
    def kid(self) -> str:
        kid = self.header.get("kid", "")
        return kid if isinstance(kid, str) else ""


_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def b64url_decode(text: str) -> bytes:
    """Strict unpadded base64url (RFC 7515): any other character is an error, never skipped."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("invalid base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def parse(token: str) -> ParsedToken:
    """Split and decode a compact JWS; nothing is verified yet."""
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenError(f"{_PARSE}token is too large")
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise TokenError(f"{_PARSE}go-jose/go-jose: compact JWS format must have three parts")
    try:
        header = orjson.loads(b64url_decode(parts[0]))
        claims = orjson.loads(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        raise TokenError(f"{_PARSE}illegal base64 or JSON data in token") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenError(f"{_PARSE}header and payload must be JSON objects")
    if header.get("crit"):
        raise TokenError(f"{_PARSE}unsupported critical header parameters")
    return ParsedToken(header, claims, f"{parts[0]}.{parts[1]}".encode(), signature)


def _verify_one(key: PublicKey, alg: str, data: bytes, sig: bytes) -> bool:
    try:
        if alg.startswith(("RS", "PS")) and isinstance(key, rsa.RSAPublicKey):
            h = _HASHES[alg[2:]]()
            pad: padding.AsymmetricPadding = (padding.PKCS1v15() if alg.startswith("RS")
                                              else padding.PSS(padding.MGF1(h), padding.PSS.DIGEST_LENGTH))
            key.verify(sig, data, pad, h)
            return True
        if alg in _EC_CURVES and isinstance(key, ec.EllipticCurvePublicKey):
            curve, size = _EC_CURVES[alg]
            if not isinstance(key.curve, curve) or len(sig) != 2 * size:
                return False
            der = encode_dss_signature(int.from_bytes(sig[:size], "big"), int.from_bytes(sig[size:], "big"))
            key.verify(der, data, ec.ECDSA(_HASHES[alg[2:]]()))
            return True
        if alg == "EdDSA" and isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            key.verify(sig, data)
            return True
    except InvalidSignature:
        return False
    return False


def check_alg(tok: ParsedToken, allowed: Sequence[str], no_key: str) -> None:
    """Refuse ``none`` and HS* (as a signature no key verifies, ``no_key`` being that message, as
    OpenBao answers them) and any other algorithm outside ``allowed`` (all supported when empty)."""
    alg = tok.alg
    if alg not in SUPPORTED_ALGS:
        raise TokenError(f"error verifying token signature: {no_key}")
    if allowed and alg not in allowed:
        raise TokenError("invalid algorithm (alg) header parameter: token signed with unexpected algorithm")


def verify_signature(tok: ParsedToken, keys: Iterable[PublicKey]) -> bool:
    """True when one of ``keys`` verifies the token. Call :func:`check_alg` first."""
    return any(_verify_one(k, tok.alg, tok.signing_input, tok.signature) for k in keys)


# -- keys ---------------------------------------------------------------------------------------
def load_pem_public_key(pem: str) -> PublicKey:
    """A PEM public key or certificate (its key). ValueError when neither or of an unusable kind."""
    data = pem.strip().encode()
    key: Any
    if b"CERTIFICATE" in data:
        from cryptography import x509
        key = x509.load_pem_x509_certificate(data).public_key()
    else:
        key = serialization.load_pem_public_key(data)
    if not isinstance(key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey,
                            ed448.Ed448PublicKey)):
        raise ValueError("data does not contain any valid RSA or ECDSA public keys")  # noqa: TRY004
    return key


def _b64int(v: Any) -> int:
    if not isinstance(v, str):
        raise ValueError("not a string")  # noqa: TRY004
    return int.from_bytes(b64url_decode(v), "big")


def jwk_to_key(jwk: dict[str, Any]) -> PublicKey | None:
    """The public key of one JWK, or None for a key that cannot verify signatures (symmetric,
    encryption-only, malformed): such keys are skipped, never an error for the whole set."""
    if jwk.get("use", "sig") != "sig":
        return None
    kty = jwk.get("kty")
    try:
        if kty == "RSA":
            return rsa.RSAPublicNumbers(_b64int(jwk["e"]), _b64int(jwk["n"])).public_key()
        if kty == "EC":
            curve = _JWK_CURVES.get(str(jwk.get("crv")))
            if curve is None:
                return None
            return ec.EllipticCurvePublicNumbers(_b64int(jwk["x"]), _b64int(jwk["y"]), curve()).public_key()
        if kty == "OKP":
            raw = b64url_decode(str(jwk["x"]))
            if jwk.get("crv") == "Ed25519":
                return ed25519.Ed25519PublicKey.from_public_bytes(raw)
            if jwk.get("crv") == "Ed448":
                return ed448.Ed448PublicKey.from_public_bytes(raw)
    except (KeyError, ValueError, TypeError, binascii.Error):
        return None
    return None


def parse_jwks(body: Any) -> dict[str, list[PublicKey]]:
    """kid -> keys of a JWKS document ("" holds keys without a kid). ValueError when not a JWKS."""
    if not isinstance(body, dict) or not isinstance(body.get("keys"), list):
        raise ValueError("failed to decode keys")  # noqa: TRY004
    out: dict[str, list[PublicKey]] = {}
    for jwk in body["keys"]:
        if not isinstance(jwk, dict):
            continue
        key = jwk_to_key(jwk)
        if key is not None:
            kid = jwk.get("kid")
            out.setdefault(kid if isinstance(kid, str) else "", []).append(key)
    return out


# -- claims -------------------------------------------------------------------------------------
@dataclass(slots=True)
class Expected:
    issuer: str = ""
    subject: str = ""
    audiences: Sequence[str] = ()
    clock_skew_leeway: int = 0  # seconds; 0 = default (60), negative = none
    expiration_leeway: int = 0  # 0 = default (150), negative = none
    not_before_leeway: int = 0


def _num(claims: dict[str, Any], name: str) -> float:
    v = claims.get(name)
    if v is None:
        return 0.0
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TokenError(f"error parsing token: {name} claim is not a number")
    return float(v)


def audiences(claims: dict[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if aud is None:
        return []
    if isinstance(aud, str):
        return [aud] if aud else []
    if isinstance(aud, list) and all(isinstance(a, str) for a in aud):
        return list(aud)
    raise TokenError("error parsing token: aud claim is not a string or a list of strings")


def _leeway(v: int, default: int) -> int:
    return 0 if v < 0 else (default if v == 0 else v)


def validate_claims(claims: dict[str, Any], exp: Expected, now: float | None = None) -> None:
    """The registered-claim checks of Vault's validator (hashicorp/cap jwt.Validate), in its order."""
    if exp.issuer and exp.issuer != claims.get("iss"):
        raise TokenError("invalid issuer (iss) claim")
    if exp.subject and exp.subject != claims.get("sub"):
        raise TokenError("invalid subject (sub) claim")
    if exp.audiences and not set(exp.audiences) & set(audiences(claims)):
        raise TokenError("invalid audience (aud) claim: audience claim does not match any expected audience")
    iat, expiry, nbf = _num(claims, "iat"), _num(claims, "exp"), _num(claims, "nbf")
    if not iat and not expiry and not nbf:
        raise TokenError("no issued at (iat), not before (nbf), or expiration time (exp) claims in token")
    if not expiry:
        expiry = max(iat, nbf) + _leeway(exp.expiration_leeway, DEFAULT_LEEWAY)
    if not nbf:
        nbf = iat if iat else expiry - _leeway(exp.not_before_leeway, DEFAULT_LEEWAY)
    skew = _leeway(exp.clock_skew_leeway, DEFAULT_CLOCK_SKEW)
    t = time.time() if now is None else now
    if t + skew < nbf:
        raise TokenError("invalid not before (nbf) claim: token not yet valid")
    if t - skew > expiry:
        raise TokenError("invalid expiration time (exp) claim: token is expired")
    if iat and t + skew < iat:
        raise TokenError("invalid issued at (iat) claim: token issued in the future")


# -- claim lookups, bound claims, mappings (Vault's claims.go semantics) ------------------------
_MISSING = object()


def get_claim(claims: dict[str, Any], name: str) -> Any:
    """A claim by name, or by JSON pointer when ``name`` starts with "/". None when absent.
    Numbers come back as their integer text, as Vault compares them (json.Number)."""
    val: Any = claims
    if name.startswith("/"):
        for raw in name[1:].split("/"):
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(val, dict):
                val = val.get(part, _MISSING)
            elif isinstance(val, list) and part.isdigit() and int(part) < len(val):
                val = val[int(part)]
            else:
                val = _MISSING
            if val is _MISSING:
                return None
    else:
        val = claims.get(name)
    if isinstance(val, float):
        return str(int(val))
    if isinstance(val, int) and not isinstance(val, bool):
        return str(val)
    return val




def _normalize(raw: Any) -> list[Any] | None:
    if isinstance(raw, list):
        return [str(int(v)) if isinstance(v, (int, float)) and not isinstance(v, bool) else v for v in raw]
    if isinstance(raw, (str, bool)):
        return [raw]
    if isinstance(raw, (int, float)):
        return [str(int(raw))]
    return None


def validate_bound_claims(bound: dict[str, Any], globs: bool, claims: dict[str, Any]) -> None:
    for name, expected in bound.items():
        actual = get_claim(claims, name)
        if actual is None:
            raise TokenError(f'claim "{name}" is missing')
        acts = _normalize(actual)
        if acts is None:
            raise TokenError(f"received claim is not a string, bool, int or list: {actual}")
        exps = _normalize(expected)
        if exps is None:
            raise TokenError(f"bound claim is not a string, bool, int or list: {expected}")
        if not _match_found(exps, acts, globs):
            raise TokenError(f'claim "{name}" does not match any associated bound claim values')


def _match_found(exps: list[Any], acts: list[Any], globs: bool) -> bool:
    for e in exps:
        for a in acts:
            if globs:
                if isinstance(e, str) and isinstance(a, str) and glob_match(e, a):
                    return True
            elif type(a) is type(e) and a == e:
                return True
    return False


def extract_metadata(claims: dict[str, Any], mappings: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for source, target in mappings.items():
        value = get_claim(claims, source)
        if value is not None:
            if not isinstance(value, str):
                raise TokenError(f"error converting claim '{source}' to string")
            out[target] = value
    return out
