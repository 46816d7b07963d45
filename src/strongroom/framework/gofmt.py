"""Go's fmt and time formatting, as templates print values: ``go_type`` (a value's Go type name),
``go_str`` (%v), ``go_sprintf`` (fmt.Sprintf for the verbs a name needs), ``go_sprint`` (fmt.Sprint) and
``go_time_format`` (a Go reference-time layout such as "2006-01-02T15:04:05.000Z07:00")."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any


def go_type(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, str):
        return "string"
    if isinstance(v, Mapping):
        return "map[string]interface {}"
    return "<nil>" if v is None else type(v).__name__


def go_str(v: Any) -> str:
    """A value as Go's fmt prints it with %v."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "<nil>"
    if isinstance(v, Mapping):  # the data is a struct in Vault: its values, in order
        return "{" + " ".join(go_str(x) for x in v.values()) + "}"
    return str(v)


_VERB = re.compile(r"%([-+# 0]*)(\d*)(?:\.(\d*))?(.?)", re.S)


def go_sprintf(fmt: str, *args: Any) -> str:
    """Go's fmt.Sprintf for the verbs a name needs: %v %s %d %q %x %X %t %%, width, ``-``/``0``
    flags, precision (string length for %s); a wrong or missing argument prints as Go does."""
    out: list[str] = []
    pos = 0
    n = 0
    for m in _VERB.finditer(fmt):
        out.append(fmt[pos:m.start()])
        pos = m.end()
        flags, width, prec, verb = m.group(1), m.group(2), m.group(3), m.group(4)
        if verb == "%":
            out.append("%")
            continue
        if not verb:
            out.append("%!(NOVERB)")
            continue
        if n >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        v = args[n]
        n += 1
        s: str
        if verb == "v" or (verb == "s" and isinstance(v, str)) or (verb == "t" and isinstance(v, bool)):
            s = go_str(v)
            if prec is not None and verb == "s":
                s = s[:int(prec or 0)]
        elif verb == "d" and isinstance(v, int) and not isinstance(v, bool):
            s = f"{v:+d}" if "+" in flags else str(v)
        elif verb == "q" and isinstance(v, str):
            s = json.dumps(v, ensure_ascii=False)
        elif verb in "xX" and isinstance(v, (str, int)) and not isinstance(v, bool):
            s = v.encode().hex() if isinstance(v, str) else format(v, "x")
            s = s.upper() if verb == "X" else s
        else:
            out.append(f"%!{verb}({go_type(v)}={go_str(v)})")
            continue
        if width and len(s) < int(width):
            pad = int(width) - len(s)
            if "-" in flags:
                s += " " * pad
            elif "0" in flags and verb in "dxX":
                sign = s[0] if s[:1] in ("-", "+") else ""
                s = sign + "0" * pad + s[len(sign):]
            else:
                s = " " * pad + s
        out.append(s)
    out.append(fmt[pos:])
    if n < len(args):
        out.append("%!(EXTRA " + ", ".join(f"{go_type(a)}={go_str(a)}" for a in args[n:]) + ")")
    return "".join(out)


def go_sprint(*args: Any) -> str:
    # Go's fmt.Sprint: a space between operands when neither is a string.
    out: list[str] = []
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(go_str(a))
    return "".join(out)


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")


_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


_LAYOUT = re.compile(r"January|Jan|Monday|Mon|MST|2006|002|__2|_2(?!006)|01|02|03|04|05|06|15|1|2|3|4|5|PM|pm"
                     r"|[-Z]07:00:00|[-Z]070000|[-Z]07:00|[-Z]0700|[-Z]07|[.,](?:0+|9+)(?!\d)")


def go_time_format(layout: str, t: datetime) -> str:
    """``t`` formatted with a Go reference-time layout ("2006-01-02T15:04:05.000Z07:00")."""

    def one(m: re.Match[str]) -> str:
        tok = m.group(0)
        h12 = t.hour % 12 or 12
        simple = {
            "January": _MONTHS[t.month - 1], "Jan": _MONTHS[t.month - 1][:3], "Monday": _DAYS[t.weekday()],
            "Mon": _DAYS[t.weekday()][:3], "2006": f"{t.year:04d}", "06": f"{t.year % 100:02d}",
            "01": f"{t.month:02d}", "1": str(t.month), "02": f"{t.day:02d}", "2": str(t.day),
            "_2": f"{t.day:2d}", "002": f"{t.timetuple().tm_yday:03d}", "__2": f"{t.timetuple().tm_yday:3d}",
            "15": f"{t.hour:02d}", "03": f"{h12:02d}", "3": str(h12), "04": f"{t.minute:02d}",
            "4": str(t.minute), "05": f"{t.second:02d}", "5": str(t.second),
            "PM": "PM" if t.hour >= 12 else "AM", "pm": "pm" if t.hour >= 12 else "am",
        }
        if tok in simple:
            return simple[tok]
        if tok == "MST":
            return t.tzname() or "UTC"
        if tok[0] in ".,":
            digits = f"{t.microsecond:06d}000"[:len(tok) - 1]
            if tok[1] == "9":
                digits = digits.rstrip("0")
                return tok[0] + digits if digits else ""
            return tok[0] + digits
        off = t.utcoffset()
        secs = int(off.total_seconds()) if off is not None else 0
        if tok[0] == "Z" and secs == 0:
            return "Z"
        sign = "-" if secs < 0 else "+"
        hh, rest = divmod(abs(secs), 3600)
        mm, ss = divmod(rest, 60)
        body = tok[1:]
        if body == "07":
            return f"{sign}{hh:02d}"
        colon = ":" if ":" in body else ""
        out = f"{sign}{hh:02d}{colon}{mm:02d}"
        return out + f"{colon}{ss:02d}" if len(body.replace(":", "")) == 6 else out

    return _LAYOUT.sub(one, layout)
