"""HMAC-SHA256 under one fixed key, for the many short messages of the audit log.

Every audit entry HMACs several values (tokens, accessors, each string of request and response
data) and its chain member, all under a key that lives as long as the device. ``hmac.new`` or
``hmac.digest`` per value redo the key schedule (two SHA-256 blocks) every time; here it is done
once: the inner and outer hashes of RFC 2104 are absorbed over ``key ^ ipad`` and ``key ^ opad``
at construction, and each message only copies them (measured: ~0.5 us per value against ~1.5 us
for ``hmac.digest``). The output is HMAC-SHA256 exactly (tests compare with ``hmac.new``).
"""

from __future__ import annotations

import hashlib

_BLOCK = 64  # SHA-256 block size in bytes
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


class KeyedSha256:
    """HMAC-SHA256 with ``key``. SECURITY: the object holds key material (the padded key's
    hash states); it is kept by the device that owns the key and by nothing global."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(key.translate(_IPAD))
        self._outer = hashlib.sha256(key.translate(_OPAD))

    def digest(self, *msg: bytes) -> bytes:
        """The MAC of the concatenation of ``msg`` (given in parts, so callers need not join them)."""
        inner = self._inner.copy()
        for part in msg:
            inner.update(part)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def hexdigest(self, *msg: bytes) -> str:
        """:meth:`digest` in lower-case hex."""
        return self.digest(*msg).hex()
