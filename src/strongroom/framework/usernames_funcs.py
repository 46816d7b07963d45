"""The functions of username templates: Vault's sdk/helper/template set (random, truncate,
truncate_sha256, uppercase, lowercase, replace, sha256, base64, decode_base64, hex, decode_hex, unix_time,
unix_time_millis, timestamp, uuid, glob) and text/template's builtins (printf, print, eq, ne, not, and,
or), each with the Go types of its arguments (``Func``) in ``FUNCS``; and :class:`UsernameTemplateError`,
which every stage raises."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import secrets
import string
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from strongroom.framework.globs import glob_match
from strongroom.framework.gofmt import go_sprint, go_sprintf, go_time_format, go_type

#: The longest ``random N`` (far past any username).
MAX_RANDOM = 4096
_B64 = frozenset(string.ascii_letters + string.digits + "+/=")
_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


class UsernameTemplateError(ValueError):
    """The template does not parse, or cannot be rendered with the data given."""


def _byte_prefix(s: str, n: int) -> str:
    # Go slices strings by byte; a character cut in half is dropped rather than left invalid.
    return s.encode()[:n].decode(errors="ignore")


def _truncate(n: int, s: str) -> str:
    if n <= 0:
        raise UsernameTemplateError(f"max length must be > 0 but was {n}")
    return s if len(s.encode()) <= n else _byte_prefix(s, n)


def _truncate_sha256(n: int, s: str) -> str:
    if n <= 8:
        raise UsernameTemplateError(f"max length must be > 8 but was {n}")
    raw = s.encode()
    if len(raw) <= n:
        return s
    head = _byte_prefix(s, n - 8)
    return head + hashlib.sha256(raw[len(head.encode()):]).hexdigest()[:8]


def _random(n: int) -> str:
    if n < 0:
        raise UsernameTemplateError(f"random length must be >= 0 but was {n}")
    if n > MAX_RANDOM:
        raise UsernameTemplateError(f"random length must be at most {MAX_RANDOM} but was {n}")
    return "".join(secrets.choice(_BASE62) for _ in range(n))


def _decode_base64(s: str) -> str:
    # Go's StdEncoding: padded, no whitespace skipped; the result is bytes (kept when they are UTF-8)
    bad = next((i for i, c in enumerate(s) if c not in _B64), None)
    if bad is None and len(s) % 4:
        bad = len(s) - len(s) % 4
    try:
        if bad is not None:
            raise binascii.Error
        return base64.b64decode(s, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise UsernameTemplateError(f"illegal base64 data at input byte {bad or 0}") from None


def _decode_hex(s: str) -> str:
    bad = next((c for c in s if c not in string.hexdigits), None)
    if bad is not None:
        raise UsernameTemplateError(f"encoding/hex: invalid byte: U+{ord(bad):04X} {bad!r}")
    if len(s) % 2:
        raise UsernameTemplateError("encoding/hex: odd length hex string")
    try:
        return bytes.fromhex(s).decode()
    except UnicodeDecodeError:
        raise UsernameTemplateError("decoded data is not UTF-8 text") from None


def _eq(a: Any, *bs: Any) -> bool:
    if not bs:
        raise UsernameTemplateError("missing argument for comparison")
    for b in bs:
        if type(a) is not type(b):
            raise UsernameTemplateError(f"incompatible types for comparison: {go_type(a)} and {go_type(b)}")
        if a == b:
            return True
    return False


def _ne(a: Any, b: Any) -> bool:
    return not _eq(a, b)


def _timestamp(layout: str) -> str:
    return go_time_format(layout, datetime.now().astimezone())


@dataclass(frozen=True, slots=True)
class Func:
    """A template function: ``params`` are the Go types of its arguments ("int", "string", "any");
    ``variadic`` the type of any further ones (None: a fixed count)."""

    fn: Callable[..., Any]
    params: tuple[str, ...]
    variadic: str | None = None


FUNCS: dict[str, Func] = {
    # Vault's sdk/helper/template
    "random": Func(_random, ("int",)),
    "truncate": Func(_truncate, ("int", "string")),
    "truncate_sha256": Func(_truncate_sha256, ("int", "string")),
    "uppercase": Func(str.upper, ("string",)),
    "lowercase": Func(str.lower, ("string",)),
    "replace": Func(lambda old, new, s: s.replace(old, new), ("string", "string", "string")),
    "sha256": Func(lambda s: hashlib.sha256(s.encode()).hexdigest(), ("string",)),
    "base64": Func(lambda s: base64.b64encode(s.encode()).decode(), ("string",)),
    "decode_base64": Func(_decode_base64, ("string",)),
    "hex": Func(lambda s: s.encode().hex(), ("string",)),
    "decode_hex": Func(_decode_hex, ("string",)),
    "unix_time": Func(lambda: str(int(time.time())), ()),
    "unix_time_millis": Func(lambda: str(time.time_ns() // 1_000_000), ()),
    "timestamp": Func(_timestamp, ("string",)),
    "uuid": Func(lambda: str(uuid.uuid4()), ()),
    "glob": Func(glob_match, ("string", "string")),
    # text/template builtins
    "printf": Func(go_sprintf, ("string",), "any"),
    "print": Func(go_sprint, (), "any"),
    "eq": Func(_eq, ("any",), "any"),
    "ne": Func(_ne, ("any", "any")),
    "not": Func(lambda v: not v, ("any",)),
    "and": Func(lambda a, *r: functools.reduce(lambda x, y: x and y, r, a), ("any",), "any"),
    "or": Func(lambda a, *r: functools.reduce(lambda x, y: x or y, r, a), ("any",), "any"),
}
