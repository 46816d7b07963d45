"""The barrier's envelope: term-prefixed AES-256-GCM with the storage path as associated data.

Layout of one stored value (all of it is what physical storage sees)::

    +----------------+-----------+-------------+---------------------------+
    | term (4 B, BE) | version 1 | nonce (12 B)| ciphertext + GCM tag (16) |
    +----------------+-----------+-------------+---------------------------+

The term names the keyring key that encrypted the value, so values written before a rotation
still decrypt afterwards. Term 0 is reserved for values encrypted with a key that is not in the
keyring (the keyring itself under the root key, the root key under the unseal key).
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.errors import Internal

VERSION = 1
NONCE_SIZE = 12
TAG_SIZE = 16
_HEADER = struct.Struct(">IB")  # term, version
HEADER_SIZE = _HEADER.size + NONCE_SIZE
MIN_SIZE = HEADER_SIZE + TAG_SIZE
MAX_TERM = 0xFFFFFFFF


def seal_value(term: int, aead: AESGCM, path: str, plaintext: bytes, nonce: bytes | None = None) -> bytes:
    """Encrypt ``plaintext`` for storage at ``path`` under the key of ``term``.

    ``nonce``: NONCE_SIZE bytes the caller drew from the OS CSPRNG for this one encryption (the
    barrier draws a batch's nonces in one read); by default a fresh one is drawn here.
    """
    if not 0 <= term <= MAX_TERM:
        raise Internal(f"key term {term} is out of range")
    # SECURITY: a fresh random 96-bit nonce per encryption. With random nonces one key stays safe
    # for about 2^32 encryptions; the barrier counts encryptions per term so operators can rotate.
    if nonce is None:
        nonce = os.urandom(NONCE_SIZE)
    elif len(nonce) != NONCE_SIZE:
        raise Internal("nonce has the wrong size")
    # SECURITY: the storage path is the associated data. GCM authenticates it, so a ciphertext
    # copied or moved to another key (e.g. someone with storage access swapping one mount's
    # secret into another's path, or replaying an old keyring at a data path) fails to decrypt
    # instead of being accepted as the value of that other key.
    ciphertext = aead.encrypt(nonce, plaintext, path.encode("utf-8"))
    return _HEADER.pack(term, VERSION) + nonce + ciphertext


def term_of(blob: bytes) -> int:
    """The key term a stored value was encrypted with (no decryption, no authentication)."""
    if len(blob) < MIN_SIZE:
        raise Internal("stored value is too short to be an encrypted entry")
    term, _version = _HEADER.unpack_from(blob)
    return int(term)


def open_value(aead: AESGCM, path: str, blob: bytes) -> bytes:
    """Decrypt a value read from ``path``; any tampering, truncation or relocation raises Internal.

    The message deliberately omits the path and the bytes: it can reach a client, and a path may
    carry salted token identifiers.
    """
    if len(blob) < MIN_SIZE:
        raise Internal("failed to decrypt a stored value: it is truncated")
    _term, version = _HEADER.unpack_from(blob)
    if version != VERSION:
        raise Internal(f"failed to decrypt a stored value: unknown envelope version {version}")
    nonce = blob[_HEADER.size : HEADER_SIZE]
    try:
        return aead.decrypt(nonce, blob[HEADER_SIZE:], path.encode("utf-8"))
    except InvalidTag:
        # SECURITY: fail closed. Never return unauthenticated bytes.
        raise Internal(
            "failed to decrypt a stored value: it was tampered with, corrupted, "
            "or moved from another storage path"
        ) from None


__all__ = ["HEADER_SIZE", "MIN_SIZE", "NONCE_SIZE", "VERSION", "open_value", "seal_value", "term_of"]
