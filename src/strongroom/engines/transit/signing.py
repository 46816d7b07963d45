"""Signatures with a key version (keysutil's SignWithOptions / VerifySignatureWithOptions).

``input`` is what is signed: already hashed for ECDSA and RSA (the handler hashes unless the
client sent ``prehashed``), the message itself for Ed25519. Layout: ``vault:vN:`` + base64
(standard for ``asn1`` marshaling, raw URL-safe for ``jws``); ECDSA ``asn1`` is the DER
SEQUENCE{r, s}, ``jws`` the fixed-width r || s.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, utils

from strongroom.engines.transit.gob64 import Base64Error, b64decode, b64encode
from strongroom.engines.transit.keytypes import (
    ECDSA,
    ERR_TOO_OLD,
    RSA,
    SIGNING,
    InternalError,
    UserError,
    go_atoi,
)
from strongroom.engines.transit.policy import Policy

HASH_ALGORITHMS: dict[str, type[hashes.HashAlgorithm] | None] = {
    "none": None,
    "sha1": hashes.SHA1,
    "sha2-224": hashes.SHA224,
    "sha2-256": hashes.SHA256,
    "sha2-384": hashes.SHA384,
    "sha2-512": hashes.SHA512,
    "sha3-224": hashes.SHA3_224,
    "sha3-256": hashes.SHA3_256,
    "sha3-384": hashes.SHA3_384,
    "sha3-512": hashes.SHA3_512,
}
#: A digest's length -> a hash of that length, for signing a prehashed ECDSA input (the curve
#: math only depends on the digest bytes; ``cryptography`` wants an algorithm of the same size).
DIGEST_BY_SIZE: dict[int, type[hashes.HashAlgorithm]] = {
    20: hashes.SHA1, 28: hashes.SHA224, 32: hashes.SHA256, 48: hashes.SHA384, 64: hashes.SHA512}
CURVE_BYTES = {"ecdsa-p256": 32, "ecdsa-p384": 48, "ecdsa-p521": 66}
SALT_AUTO = 0  # Go's rsa.PSSSaltLengthAuto
SALT_HASH = -1  # Go's rsa.PSSSaltLengthEqualsHash


def digest(hash_algorithm: str, data: bytes) -> bytes:
    alg = HASH_ALGORITHMS[hash_algorithm]
    if alg is None:
        return data
    h = hashes.Hash(alg())
    h.update(data)
    return h.finalize()


def _prehashed_alg(hash_algorithm: str, data: bytes) -> utils.Prehashed:
    alg = HASH_ALGORITHMS.get(hash_algorithm)
    if alg is None or alg().digest_size != len(data):
        raise UserError("crypto/rsa: input must be hashed with given hash")
    return utils.Prehashed(alg())


def _ec_prehashed(data: bytes) -> utils.Prehashed:
    alg = DIGEST_BY_SIZE.get(len(data))
    if alg is None:
        raise UserError("prehashed ECDSA input must be a digest of 20, 28, 32, 48 or 64 bytes")
    return utils.Prehashed(alg())


def _pss(salt_length: int, hash_algorithm: str, key_bits: int, *, verify: bool) -> padding.PSS:
    alg = HASH_ALGORITHMS[hash_algorithm]
    assert alg is not None
    size = alg().digest_size
    max_salt = (key_bits - 1 + 7) // 8 - 2 - size
    if not SALT_HASH <= salt_length <= max_salt:
        raise UserError(f"requested salt length {salt_length} is invalid")
    mgf = padding.MGF1(alg())
    if salt_length == SALT_AUTO:
        return padding.PSS(mgf=mgf, salt_length=padding.PSS.AUTO if verify else padding.PSS.MAX_LENGTH)
    if salt_length == SALT_HASH:
        return padding.PSS(mgf=mgf, salt_length=padding.PSS.DIGEST_LENGTH)
    return padding.PSS(mgf=mgf, salt_length=salt_length)


def _rsa_padding(signature_algorithm: str, salt_length: int, hash_algorithm: str, key_bits: int, *,
                 verify: bool) -> padding.PSS | padding.PKCS1v15:
    """The RSA padding of ``signature_algorithm`` (pss by default, or pkcs1v15); RSA needs a hash."""
    algorithm = signature_algorithm or "pss"
    pad: padding.PSS | padding.PKCS1v15
    if algorithm == "pss":
        pad = _pss(salt_length, hash_algorithm, key_bits, verify=verify)
    elif algorithm == "pkcs1v15":
        pad = padding.PKCS1v15()
    else:
        raise UserError(f"unsupported rsa signature algorithm {algorithm}")
    if HASH_ALGORITHMS.get(hash_algorithm) is None:
        raise UserError("hash_algorithm=none is not supported for RSA signatures")
    return pad


def _ed25519_key(p: Policy, version: int, context: bytes) -> ed25519.Ed25519PrivateKey:
    if p.derived:
        try:
            seed = p.derive_key(context, version, 32)
        except UserError as e:
            raise UserError(f"error deriving key: {e}") from None
        return ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    return p.entry(version).ed25519_private()


def sign(p: Policy, version: int, context: bytes, data: bytes, *, hash_algorithm: str, marshaling: str,
         salt_length: int, signature_algorithm: str) -> tuple[str, int, str]:
    """(signature, version used, derived public key base64 or "")."""
    p.check_usable()
    if p.type not in SIGNING:
        raise UserError(f"message signing not supported for key type {p.type}")
    if version == 0:
        version = p.latest_version
    elif version < 0:
        raise UserError("requested version for signing is negative")
    elif version > p.latest_version:
        raise UserError("requested version for signing is higher than the latest key version")
    elif p.min_encryption_version > 0 and version < p.min_encryption_version:
        raise UserError("requested version for signing is less than the minimum encryption key version")
    if version < p.min_decryption_version:
        raise UserError("no such key version")
    entry = p.entry(version)
    if not (p.type == "ed25519" and p.derived) and not entry.has_private(p.type):
        raise UserError("requested version for signing does not contain a private part")
    public = ""
    sig: bytes
    if p.type in ECDSA:
        key = entry.ec_private(p.type)
        der = key.sign(data, ec.ECDSA(_ec_prehashed(data)))
        if marshaling == "jws":
            r, s = utils.decode_dss_signature(der)
            n = CURVE_BYTES[p.type]
            sig = r.to_bytes(n, "big") + s.to_bytes(n, "big")
        else:
            sig = der
    elif p.type == "ed25519":
        ed_key = _ed25519_key(p, version, context)
        if p.derived:
            public = b64encode(ed_key.public_key().public_bytes_raw())
        sig = ed_key.sign(data)
    elif p.type in RSA:
        rsa_key = entry.rsa_private()
        pad = _rsa_padding(signature_algorithm, salt_length, hash_algorithm, rsa_key.key_size, verify=False)
        try:
            sig = rsa_key.sign(data, pad, _prehashed_alg(hash_algorithm, data))
        except ValueError as e:
            raise UserError(str(e)) from None
    else:
        raise InternalError(f"unsupported key type {p.type}")
    encoded = base64.urlsafe_b64encode(sig).rstrip(b"=").decode() if marshaling == "jws" else b64encode(sig)
    return f"vault:v{version}:{encoded}", version, public


def verify(p: Policy, context: bytes, data: bytes, signature: str, *, hash_algorithm: str, marshaling: str,
           salt_length: int, signature_algorithm: str) -> bool:
    p.check_usable()
    if p.type not in SIGNING:
        raise UserError(f"message verification not supported for key type {p.type}")
    if not signature.startswith("vault:v"):
        raise UserError("invalid signature: no prefix")
    ver_text, sep, body = signature[len("vault:v"):].partition(":")
    if not sep:
        raise UserError("invalid signature: wrong number of fields")
    version = go_atoi(ver_text)
    if version is None:
        raise UserError("invalid signature: version number could not be decoded")
    if version > p.latest_version:
        raise UserError("invalid signature: version is too new")
    if p.min_decryption_version > 0 and version < p.min_decryption_version:
        raise UserError(ERR_TOO_OLD)
    try:
        if marshaling == "jws":
            if "=" in body or "+" in body or "/" in body:
                raise ValueError("not raw url-safe base64")
            sig = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        else:
            sig = b64decode(body)
    except (Base64Error, ValueError, binascii.Error):
        raise UserError("invalid base64 signature value") from None
    try:
        if p.type in ECDSA:
            if marshaling == "jws":
                half = len(sig) // 2
                r, s = int.from_bytes(sig[:half], "big"), int.from_bytes(sig[half:], "big")
                der = utils.encode_dss_signature(r, s)
            else:
                try:
                    utils.decode_dss_signature(sig)
                except ValueError:
                    raise UserError("supplied signature is invalid") from None
                der = sig
            pub = p.entry(version).ec_public(p.type)
            pub.verify(der, data, ec.ECDSA(_ec_prehashed(data)))
        elif p.type == "ed25519":
            if p.derived:
                ed_pub = _ed25519_key(p, version, context).public_key()
            else:
                ed_pub = p.entry(version).ed25519_public()
            ed_pub.verify(sig, data)
        else:
            rsa_pub = p.entry(version).rsa_public()
            pad = _rsa_padding(signature_algorithm, salt_length, hash_algorithm, rsa_pub.key_size, verify=True)
            rsa_pub.verify(sig, data, pad, _prehashed_alg(hash_algorithm, data))
    except InvalidSignature:
        return False
    return True
