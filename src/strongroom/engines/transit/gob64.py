"""Base64 as Go's ``base64.StdEncoding.DecodeString`` reads it, with Go's error wording.

Vault answers bad base64 with Go's own message ("illegal base64 data at input byte 4"), which
clients and tests match on, so the decoder reports the same offset: padding is required, CR and
LF are skipped, the offset is that of the first byte Go rejects.
"""

from __future__ import annotations

import binascii

_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


class Base64Error(ValueError):
    """Go's ``CorruptInputError``: str() is Go's message."""

    def __init__(self, offset: int) -> None:
        super().__init__(f"illegal base64 data at input byte {offset}")
        self.offset = offset


def b64decode(text: str) -> bytes:
    """Decode standard, padded base64; :class:`Base64Error` with Go's offset when invalid."""
    body = text.rstrip("=")
    # Fast path: what Go accepts without newlines (binascii's strict mode alone lets "AAAA==" by).
    if len(text) % 4 == 0 and len(text) - len(body) <= 2 and "=" not in body:
        try:
            return binascii.a2b_base64(text, strict_mode=True)
        except (binascii.Error, ValueError):
            pass
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        # Go works on bytes: the offset is that of the first byte of the first non-ASCII rune.
        raw = text.encode("utf-8")
    _check(raw)
    # Valid for Go (newlines, non-zero trailing bits): decode leniently after the check.
    return binascii.a2b_base64(raw.replace(b"\r", b"").replace(b"\n", b""))


def _check(src: bytes) -> None:
    """Raise Base64Error where Go's decoder would; return when Go accepts ``src``."""
    si, n = 0, len(src)
    while True:
        j = 0
        while j < 4:
            if si == n:
                if j == 0:
                    return
                raise Base64Error(si - j)
            c = src[si]
            si += 1
            if c in _ALPHABET:
                j += 1
                continue
            if c in (0x0A, 0x0D):
                continue
            if c != 0x3D:  # '='
                raise Base64Error(si - 1)
            # Padding: the quantum ends here.
            if j in (0, 1):
                raise Base64Error(si - 1)
            if j == 2:
                while si < n and src[si] in (0x0A, 0x0D):
                    si += 1
                if si == n:
                    raise Base64Error(n)
                if src[si] != 0x3D:
                    raise Base64Error(si - 1)
                si += 1
            while si < n and src[si] in (0x0A, 0x0D):
                si += 1
            if si < n:
                raise Base64Error(si)
            return


def b64encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")
