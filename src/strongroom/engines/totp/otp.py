"""The totp engine's own otpauth:// URL parsing; the one-time-password code itself (HOTP/TOTP,
validation, otpauth URLs, the QR barcode) is framework/otp.py, shared with login MFA.
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

from strongroom.errors import InvalidRequest
from strongroom.framework.otp import ALGORITHMS, barcode_png, decode_key, hotp, key_url, totp, validate

__all__ = ["ALGORITHMS", "barcode_png", "decode_key", "hotp", "key_url", "parse_url", "totp", "validate"]


def parse_url(url: str) -> dict[str, str]:
    """The parts of an otpauth://totp/ URL: issuer, account_name, key, period, digits, algorithm
    (only those present)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise InvalidRequest("an error occurred while parsing url string") from None
    if parts.scheme.lower() != "otpauth" or parts.netloc.lower() != "totp":
        raise InvalidRequest("the url must be an otpauth://totp/ url")
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    label = unquote(parts.path).lstrip("/")
    out: dict[str, str] = {}
    issuer, sep, account = label.partition(":")
    out["account_name"] = account if sep else label
    if query.get("issuer"):
        out["issuer"] = query["issuer"]
    elif sep:
        out["issuer"] = issuer
    out["key"] = query.get("secret", "")
    for name in ("period", "digits"):
        if query.get(name):
            if not query[name].isdigit():
                raise InvalidRequest(f"an error occurred while parsing {name} value in url")
            out[name] = query[name]
    if query.get("algorithm"):
        out["algorithm"] = query["algorithm"].upper()
    return out
