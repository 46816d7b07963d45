"""The symmetric primitives of transit keys: the AEAD of a key type (AES-GCM, ChaCha20-Poly1305, and
XChaCha20-Poly1305 built from HChaCha20 and ChaCha20-Poly1305, draft-irtf-cfrg-xchacha), its nonce and key
sizes, and HKDF-SHA256 for derived keys (salt none, info = context)."""

from __future__ import annotations

import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_SIGMA = struct.unpack("<4I", b"expand 32-byte k")


def hchacha20(key: bytes, nonce16: bytes) -> bytes:
    """HChaCha20: the ChaCha20 state after its 20 rounds, words 0-3 and 12-15. ``cryptography``'s
    ChaCha20 keystream block is that state plus the input state; the input state is known
    (constants, key, the 16 input bytes as counter||nonce), so subtracting it leaves the rounds."""
    block = Cipher(algorithms.ChaCha20(key, nonce16), mode=None).encryptor().update(bytes(64))
    out = struct.unpack("<16I", block)
    init = (*_SIGMA, *struct.unpack("<8I", key), *struct.unpack("<4I", nonce16))
    words = [(out[i] - init[i]) & 0xFFFFFFFF for i in (0, 1, 2, 3, 12, 13, 14, 15)]
    return struct.pack("<8I", *words)


class XChaCha20Poly1305:
    """The AEAD interface of ``cryptography``'s ciphers, for a 24-byte nonce."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("XChaCha20-Poly1305 key must be 32 bytes")
        self._key = key

    def _inner(self, nonce: bytes) -> tuple[ChaCha20Poly1305, bytes]:
        if len(nonce) != 24:
            raise ValueError("XChaCha20-Poly1305 nonce must be 24 bytes")
        return ChaCha20Poly1305(hchacha20(self._key, nonce[:16])), b"\x00\x00\x00\x00" + nonce[16:]

    def encrypt(self, nonce: bytes, data: bytes, aad: bytes | None) -> bytes:
        aead, n = self._inner(nonce)
        return aead.encrypt(n, data, aad)

    def decrypt(self, nonce: bytes, data: bytes, aad: bytes | None) -> bytes:
        aead, n = self._inner(nonce)
        return aead.decrypt(n, data, aad)


AEAD = AESGCM | ChaCha20Poly1305 | XChaCha20Poly1305


def aead_for(key_type: str, key: bytes) -> AEAD:
    if key_type in ("aes128-gcm96", "aes256-gcm96"):
        return AESGCM(key)
    if key_type == "chacha20-poly1305":
        return ChaCha20Poly1305(key)
    return XChaCha20Poly1305(key)


def nonce_size(key_type: str) -> int:
    return 24 if key_type == "xchacha20-poly1305" else 12


def enc_key_size(key_type: str) -> int:
    return 16 if key_type == "aes128-gcm96" else 32


def hkdf(ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(ikm)
