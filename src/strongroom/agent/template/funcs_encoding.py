"""consul-template's encoding functions: JSON and YAML out (toJSON, toUnescapedJSON, toYAML and their pretty
forms), parseJSON in, base64 (standard and URL alphabets, with Go's error offsets) and the hashes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from strongroom.agent.template.errors import EncodeError
from strongroom.agent.template.gofunc import FuncError, GoFunc
from strongroom.agent.template.json_encoding import to_json
from strongroom.agent.template.yaml_encoding import to_yaml


def _to_json(v: Any) -> str:
    try:
        return to_json(v).strip()
    except EncodeError as e:
        raise FuncError(f"toJSON: {e}") from None


def _to_json_pretty(v: Any) -> str:
    try:
        return to_json(v, "  ").strip()
    except EncodeError as e:
        raise FuncError(f"toJSONPretty: {e}") from None


def _to_yaml(v: Any) -> str:
    try:
        return to_yaml(v).strip(" \t\r\n\v\f")
    except EncodeError as e:
        raise FuncError(f"toYAML: {e}") from None


def _b64encode(s: str) -> str:
    return base64.b64encode(s.encode("utf-8", "surrogateescape")).decode()


def _b64decode(s: str) -> str:
    try:  # Go's decoder skips line breaks
        raw = base64.b64decode(_bytes(s).replace(b"\r", b"").replace(b"\n", b""), validate=True)
    except (binascii.Error, ValueError):
        # Go names the first bad byte's offset: find it for the message
        raise FuncError(f"base64Decode: illegal base64 data at input byte {_bad_b64_offset(s)}") from None
    return raw.decode("utf-8", "surrogateescape")


def _bad_b64_offset(s: str, extra: str = "+/") -> int:
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789" + extra)
    b = s.encode("utf-8", "surrogateescape")
    for i, c in enumerate(b):
        if chr(c) == "=":
            return i if (i % 4) < 2 else min(i + 1, len(b)) - (0 if i + 1 < len(b) else 1)
        if chr(c) not in alphabet and c not in (10, 13):
            return i
    return max(len(b) - len(b) % 4, 0)


def _go_float_json(text: str) -> float:
    return float(text)


def _parse_json(s: str) -> Any:
    if s == "":
        return {}
    try:
        return json.loads(s, parse_int=_go_float_json, parse_constant=_reject)
    except ValueError as e:
        raise FuncError(str(e)) from None


def _reject(name: str) -> Any:
    raise ValueError(f"invalid character '{name[0]}' looking for beginning of value")


def _bytes(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def _sha256_hex(s: str) -> str:
    return hashlib.sha256(_bytes(s)).hexdigest()


def _md5sum(s: str) -> str:
    return hashlib.md5(_bytes(s), usedforsecurity=False).hexdigest()


def _b64url_encode(s: str) -> str:
    return base64.urlsafe_b64encode(_bytes(s)).decode()


def _b64url_decode(s: str) -> str:
    try:
        b = _bytes(s).replace(b"\r", b"").replace(b"\n", b"")
        if b"+" in b or b"/" in b:
            raise ValueError("not in the URL alphabet")
        raw = base64.b64decode(b, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise FuncError(f"base64URLDecode: illegal base64 data at input byte {_bad_b64_offset(s, '-_')}") from None
    return raw.decode("utf-8", "surrogateescape")


def _to_unescaped_json(v: Any) -> str:
    try:
        return to_json(v, escape_html=False).rstrip("\r\n")
    except EncodeError as e:
        raise FuncError(f"toUnescapedJSON: {e}") from None


def _to_unescaped_json_pretty(v: Any) -> str:
    try:
        return to_json(v, "  ", escape_html=False).rstrip("\r\n")
    except EncodeError as e:
        raise FuncError(f"toUnescapedJSONPretty: {e}") from None



ENCODING_FUNCTIONS: dict[str, GoFunc] = {
    "sha256Hex": GoFunc(_sha256_hex, ("string",)),
    "md5sum": GoFunc(_md5sum, ("string",)),
    "base64URLEncode": GoFunc(_b64url_encode, ("string",)),
    "base64URLDecode": GoFunc(_b64url_decode, ("string",)),
    "toUnescapedJSON": GoFunc(_to_unescaped_json, ("any",)),
    "toUnescapedJSONPretty": GoFunc(_to_unescaped_json_pretty, ("any",)),
    "toJSON": GoFunc(_to_json, ("any",)),
    "toJSONPretty": GoFunc(_to_json_pretty, ("any",)),
    "toYAML": GoFunc(_to_yaml, ("any",)),
    "base64Encode": GoFunc(_b64encode, ("string",)),
    "base64Decode": GoFunc(_b64decode, ("string",)),
    "parseJSON": GoFunc(_parse_json, ("string",)),
}
