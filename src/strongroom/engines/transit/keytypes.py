"""What every part of transit shares about keys: the key types (keysutil's numeric ids and the families
they fall in), sizes and limits, the error messages OpenBao words, the two errors (:class:`UserError`, a 400;
:class:`InternalError`, a 500) and Go's form of an integer (``go_atoi``)."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec

# keysutil's numeric key types (their order is Vault's iota; stored as numbers).
TYPE_IDS: dict[str, int] = {
    "aes256-gcm96": 0,
    "ecdsa-p256": 1,
    "ed25519": 2,
    "rsa-2048": 3,
    "rsa-4096": 4,
    "chacha20-poly1305": 5,
    "ecdsa-p384": 6,
    "ecdsa-p521": 7,
    "aes128-gcm96": 8,
    "rsa-3072": 9,
    "hmac": 10,
    "xchacha20-poly1305": 11,
}
TYPE_NAMES = {v: k for k, v in TYPE_IDS.items()}

SYMMETRIC = frozenset({"aes128-gcm96", "aes256-gcm96", "chacha20-poly1305", "xchacha20-poly1305"})
ECDSA = frozenset({"ecdsa-p256", "ecdsa-p384", "ecdsa-p521"})
RSA = frozenset({"rsa-2048", "rsa-3072", "rsa-4096"})
ASYMMETRIC = ECDSA | RSA | {"ed25519"}
ENCRYPTION = SYMMETRIC | RSA
SIGNING = ASYMMETRIC
DERIVATION = SYMMETRIC | {"ed25519"}

RSA_BITS = {"rsa-2048": 2048, "rsa-3072": 3072, "rsa-4096": 4096}
CURVES: dict[str, type[ec.EllipticCurve]] = {"ecdsa-p256": ec.SECP256R1, "ecdsa-p384": ec.SECP384R1,
                                              "ecdsa-p521": ec.SECP521R1}
CURVE_NAMES = {"ecdsa-p256": "P-256", "ecdsa-p384": "P-384", "ecdsa-p521": "P-521"}

KDF_HKDF_SHA256 = 1
CURRENT_CONVERGENT_VERSION = 3
HMAC_MIN_KEY_SIZE = 32
HMAC_MAX_KEY_SIZE = 512

ERR_TOO_OLD = "ciphertext or signature version is disallowed by policy (too old)"
ERR_SOFT_DELETED = "refusing to use soft-deleted key"
ERR_MISSING_CONTEXT = (
    "missing 'context' for key derivation; the key was created using a derived key, which means additional, "
    "per-request information must be included in order to perform operations with the key"
)
VERSION_PREFIX = "vault:v"


class UserError(Exception):
    """The caller's mistake (Vault's errutil.UserError): a 400 with this message."""


class InternalError(Exception):
    """Not the caller's mistake (errutil.InternalError): a 500."""


def go_atoi(text: str) -> int | None:
    """Go's strconv.Atoi: optional sign, ASCII digits, int64 range."""
    body = text[1:] if text[:1] in ("+", "-") else text
    if not body or not body.isascii() or not body.isdigit():
        return None
    value = int(text)
    return value if -(2**63) <= value < 2**63 else None
