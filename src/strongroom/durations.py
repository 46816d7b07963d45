"""Vault-style durations ("90", 90, "90s", "1h30m", "768h", "2d") and the Go time formats Vault
prints (RFC 3339 timestamps, time.Duration strings). Pure functions."""

from __future__ import annotations

import functools
import math
import re
import time
from datetime import UTC, datetime

from strongroom.errors import InvalidRequest

# The longest duration accepted anywhere: Go's time.Duration is int64 nanoseconds, so OpenBao
# refuses more whole seconds than this (about 292 years) as an overflow. A bound also keeps
# everything computed from a TTL (expiry times, JSON integers) within range.
MAX_DURATION = (2**63 - 1) // 10**9

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)")


def parse_duration(value: object, *, name: str = "duration") -> int:
    """Seconds in ``value``; a bare number is seconds. Raises InvalidRequest naming ``name``, also
    for more than MAX_DURATION seconds."""
    if isinstance(value, bool):
        raise InvalidRequest(f"invalid {name}: {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise InvalidRequest(f"invalid {name}: must not be negative")
        return _bounded(value, value, name)
    if isinstance(value, float):
        if value < 0 or math.isnan(value):
            raise InvalidRequest(f"invalid {name}: {value!r}")
        return _bounded(value, value, name)
    if not isinstance(value, str):
        raise InvalidRequest(f"invalid {name}: {value!r}")
    text = value.strip()
    if text == "":
        return 0
    if text.isdigit():
        # Compared as text first: int() of thousands of digits is slow, then refused by Python.
        return _bounded(int(text) if len(text) <= 20 else MAX_DURATION + 1, value, name)
    pos = 0
    total = 0.0
    for m in _PART.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or pos == 0:
        raise InvalidRequest(f'invalid {name}: "{value}" (use a number of seconds or a duration such as "1h30m")')
    return _bounded(total, value, name)


def _bounded(seconds: float, value: object, name: str) -> int:
    """``seconds`` as an int, or InvalidRequest past MAX_DURATION (float infinity included)."""
    if seconds > MAX_DURATION:
        shown = value if isinstance(value, str) else repr(value)
        if len(shown) > 40:
            shown = shown[:20] + "..."
        raise InvalidRequest(f'invalid {name}: "{shown}" is too long (at most {MAX_DURATION} seconds, '
                             f"about 292 years)")
    return int(seconds)


def format_duration(seconds: int) -> str:
    """A TTL as Vault's CLI prints it: Go's duration string with trailing zero units dropped ("768h", "1h30m")."""
    if seconds <= 0:
        return "0s"
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    out = ""
    if h:
        out += f"{h}h"
    if h or m:
        out += f"{m}m"
    out += f"{s}s"
    if out.endswith("m0s"):
        out = out[:-2]
    if out.endswith("h0m"):
        out = out[:-2]
    return out


def go_duration(seconds: int) -> str:
    """A duration as Go's time.Duration prints it: "0s", "45s", "30m0s", "1h30m0s"."""
    h, rem = divmod(max(seconds, 0), 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h}h{m}m{s}s"
    if m:
        return f"{m}m{s}s"
    return f"{s}s"


@functools.lru_cache(maxsize=2048)
def utc_seconds(secs: int) -> str:
    """Whole Unix seconds as "YYYY-MM-DDTHH:MM:SS" (UTC). Cached: timestamps on hot paths repeat
    (the same second, the same secret's creation time), and strftime is the costly part."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))


def rfc3339_ns(ns: int) -> str:
    """Nanoseconds since the epoch as Go's RFC3339Nano in UTC: trailing zeros of the fraction
    dropped (no fraction when it is zero), then "Z"."""
    secs, frac = divmod(ns, 1_000_000_000)
    text = utc_seconds(secs)
    return f"{text}.{frac:09d}".rstrip("0") + "Z" if frac else text + "Z"


def rfc3339(ts: float) -> str:
    """Unix seconds as Go's RFC3339Nano in UTC: fractional seconds with trailing zeros dropped, "Z"."""
    text = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
    return text + "Z"
