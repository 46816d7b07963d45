"""One-time passwords (RFC 6238 TOTP over RFC 4226 HOTP), otpauth:// URLs and the QR barcode PNG:
pure functions shared by the totp secrets engine (engines/totp) and login MFA (core/identity/mfa).

The barcode is the URL as a QR code (segno, error correction M, as OpenBao's) drawn into a
``size`` x ``size`` grayscale PNG: each module a whole number of pixels, centred, with a quiet
zone of four modules when the size allows it (decoders want one).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct
import zlib
from urllib.parse import quote, urlencode

import segno

from strongroom.errors import InvalidRequest

ALGORITHMS = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}


def decode_key(key: str) -> bytes:
    """A base32 secret (padding optional, any case) → bytes; InvalidRequest naming the problem."""
    text = key.strip().upper()
    if len(text) % 8:
        text += "=" * (8 - len(text) % 8)
    try:
        return base64.b32decode(text)
    except (binascii.Error, ValueError) as e:
        raise InvalidRequest(f"invalid key value: {e}") from None


def hotp(secret: bytes, counter: int, digits: int, algorithm: str) -> str:
    mac = hmac.new(secret, struct.pack(">Q", counter), ALGORITHMS[algorithm]).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def totp(secret: bytes, now: float, period: int, digits: int, algorithm: str) -> str:
    return hotp(secret, int(now // period), digits, algorithm)


def validate(code: str, secret: bytes, now: float, period: int, digits: int, algorithm: str, skew: int) -> bool:
    """Whether ``code`` is the code of the current period or of one within ``skew`` periods of it.
    Every candidate is compared in constant time."""
    counter = int(now // period)
    ok = False
    for c in range(counter - skew, counter + skew + 1):
        if c >= 0 and hmac.compare_digest(hotp(secret, c, digits, algorithm).encode(), code.encode()):
            ok = True
    return ok


def key_url(issuer: str, account: str, secret: str, period: int, digits: int, algorithm: str) -> str:
    """The otpauth:// URL authenticator apps import (the label and query as OpenBao writes them)."""
    query = urlencode(sorted({"algorithm": algorithm, "digits": str(digits), "issuer": issuer,
                              "period": str(period), "secret": secret}.items()))
    return f"otpauth://totp/{quote(f'{issuer}:{account}', safe=':@!$&()*+,;=')}?{query}"


def new_key(size: int) -> str:
    """A fresh random secret of ``size`` bytes, base32 without padding (as authenticator apps take it)."""
    return base64.b32encode(secrets.token_bytes(size)).decode().rstrip("=")


def _png(width: int, rows: list[bytes]) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + row for row in rows)  # filter type 0 per scanline
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, len(rows), 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def barcode_png(text: str, size: int) -> bytes:
    """``text`` as a QR code in a ``size`` x ``size`` 8-bit grayscale PNG."""
    qr = segno.make(text, error="m", micro=False)
    matrix = qr.matrix
    n = len(matrix)
    scale = size // (n + 8) or size // n
    if scale == 0:
        raise InvalidRequest(f"the qr_size value is too small for this QR code (at least {n})")
    offset = (size - n * scale) // 2
    white, black = b"\xff", b"\x00"
    blank = white * size
    rows: list[bytes] = [blank] * offset
    for line in matrix:
        row = white * offset + b"".join((black if m else white) * scale for m in line)
        row += white * (size - len(row))
        rows.extend([row] * scale)
    rows.extend([blank] * (size - len(rows)))
    return _png(size, rows)
