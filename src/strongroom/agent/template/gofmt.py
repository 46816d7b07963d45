"""Go's fmt for template values: Sprint, Sprintln, Sprintf (the verbs templates use) and strconv.Quote."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from strongroom.agent.template.values import MISSING, GoStruct, JSONNumber, TypedNil, go_type


# -- strconv ---------------------------------------------------------------------------------------
def go_quote(s: str, ascii_only: bool = False) -> str:
    """strconv.Quote (QuoteToASCII with ascii_only)."""
    out = ['"']
    for c in s:
        o = ord(c)
        if c == '"':
            out.append('\\"')
        elif c == "\\":
            out.append("\\\\")
        elif c.isprintable() and (o < 0x80 or not ascii_only):
            out.append(c)
        elif c == "\a":
            out.append("\\a")
        elif c == "\b":
            out.append("\\b")
        elif c == "\f":
            out.append("\\f")
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        elif c == "\v":
            out.append("\\v")
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        elif 0xDC80 <= o <= 0xDCFF:  # an undecodable byte carried as a surrogate escape
            out.append(f"\\x{o - 0xDC00:02x}")
        elif o < 0x10000:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


def _decimal_digits(x: float) -> tuple[str, int]:
    """The shortest digits that round-trip x (x > 0, finite) and the decimal point position."""
    _, digits, exp = Decimal(repr(x)).as_tuple()
    assert isinstance(exp, int)
    ds = "".join(str(d) for d in digits).lstrip("0") or "0"
    # repr may carry trailing zeros ('100.0'); dp counts digits before the point
    dp = len("".join(str(d) for d in digits)) + exp - (len("".join(str(d) for d in digits)) - len(ds))
    ds_stripped = ds.rstrip("0") or "0"
    return ds_stripped, dp


def _mantissa(ds: str) -> str:
    """The digits ``ds`` with the point after the first (the 'e' forms)."""
    return ds[0] + ("." + ds[1:] if len(ds) > 1 else "")


def _fixed(ds: str, dp: int) -> str:
    """The digits ``ds`` with the point after ``dp`` of them (the 'f' form, no trailing zeros)."""
    if dp <= 0:
        return "0." + "0" * (-dp) + ds
    if dp >= len(ds):
        return ds + "0" * (dp - len(ds))
    return ds[:dp] + "." + ds[dp:]


def _exp_str(e: int) -> str:
    sign = "-" if e < 0 else "+"
    e = abs(e)
    return f"e{sign}{e:02d}"


def format_float_g_shortest(x: float) -> str:
    """strconv.FormatFloat(x, 'g', -1, 64): Go's %v for a float64."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if x == 0:
        return "-0" if math.copysign(1, x) < 0 else "0"
    neg = x < 0
    ds, dp = _decimal_digits(abs(x))
    exp = dp - 1
    if exp < -4 or exp >= 6:  # shortest precision: Go decides %e against precision 6
        s = _mantissa(ds) + _exp_str(exp)
    else:
        s = _fixed(ds, dp)
    return ("-" if neg else "") + s


def format_float_json(x: float) -> str:
    """encoding/json's float64: 'f' form, or 'e' form (e-7, not e-07) below 1e-6 or from 1e21."""
    if x == 0:
        return "-0" if math.copysign(1, x) < 0 else "0"
    neg = x < 0
    ds, dp = _decimal_digits(abs(x))
    a = abs(x)
    if a < 1e-6 or a >= 1e21:
        exp = dp - 1
        s = _mantissa(ds) + "e" + ("-" if exp < 0 else "+") + str(abs(exp))
    else:
        s = _fixed(ds, dp)
    return ("-" if neg else "") + s


# -- printing values -------------------------------------------------------------------------------
def _sort_key(k: Any) -> Any:
    if isinstance(k, (int, float)) and not isinstance(k, bool):
        return (0, k, "")
    return (1, 0, str(k))


def fmt_value(v: Any, verb: str = "v", depth: int = 0, plus: bool = False) -> str:
    """fmt's printValue for %v/%s and friends applied through containers."""
    if isinstance(v, TypedNil):
        return "<nil>"
    if v is None or v is MISSING:
        if depth == 0 and verb not in "v":
            return f"%!{verb}(<nil>)"
        return "<nil>"
    if isinstance(v, dict):
        items = sorted(v.items(), key=lambda kv: _sort_key(kv[0]))
        return "map[" + " ".join(fmt_value(k, verb, depth + 1) + ":" + fmt_value(x, verb, depth + 1)
                                 for k, x in items) + "]"
    if isinstance(v, list):
        return "[" + " ".join(fmt_value(x, verb, depth + 1) for x in v) + "]"
    if isinstance(v, GoStruct):
        parts = []
        for name, x in v.go_fields():
            if x is None:
                t = type(v).__dataclass_fields__[name].type
                tt = str(t)
                if "dict" in tt:
                    s = "map[]"
                elif "GoStrings" in tt or "list" in tt:
                    s = "[]"
                else:
                    s = "<nil>"
            else:
                s = fmt_value(x, verb, depth + 1)
            parts.append(f"{name}:{s}" if plus else s)
        body = "{" + " ".join(parts) + "}"
        return ("&" + body) if v.pointer and depth == 0 else body
    return fmt_scalar(v, verb, Spec())


class Spec:
    __slots__ = ("minus", "plus", "prec", "sharp", "space", "width", "zero")

    def __init__(self) -> None:
        self.minus = self.plus = self.sharp = self.space = self.zero = False
        self.width: int | None = None
        self.prec: int | None = None


def _pad(s: str, spec: Spec, numeric: bool = False) -> str:
    if spec.width is None or len(s) >= spec.width:
        return s
    n = spec.width - len(s)
    if spec.minus:
        return s + " " * n
    if spec.zero:  # Go pads with zeros on the left whatever the verb (after the sign of a number)
        sign = s[0] if numeric and s[:1] in ("+", "-", " ") else ""
        return sign + "0" * n + s[len(sign):]
    return " " * n + s


def _bad(verb: str, v: Any, spec: Spec | None = None) -> str:
    """Go's %!verb(type=value); the value printed with %v and the verb's precision."""
    if v is None or v is MISSING:
        return f"%!{verb}(<nil>)"
    shown = fmt_value(v)
    if spec is not None and spec.prec is not None:
        if isinstance(v, str):
            shown = v[:spec.prec]
        elif isinstance(v, float):
            shown = _py_float(v, "g", spec.prec)
    return f"%!{verb}({go_type(v)}={shown})"


def _fmt_int(v: int, verb: str, spec: Spec) -> str:
    neg = v < 0
    a = -v if neg else v
    if verb in ("d", "v"):
        digits = str(a)
    elif verb == "x":
        digits = format(a, "x")
        if spec.sharp:
            digits = "0x" + digits
    elif verb == "X":
        digits = format(a, "X")
        if spec.sharp:
            digits = "0X" + digits
    elif verb == "o":
        digits = format(a, "o")
        if spec.sharp:
            digits = "0" + digits
    elif verb == "O":
        digits = "0o" + format(a, "o")
    elif verb == "b":
        digits = format(a, "b")
    elif verb == "c":
        return _pad(chr(v) if 0 <= v <= 0x10FFFF else "\ufffd", spec)
    elif verb == "q":
        c = chr(v) if 0 <= v <= 0x10FFFF else "\ufffd"
        inner = go_quote(c)[1:-1].replace("'", "\\'").replace('\\"', '"')
        return _pad("'" + inner + "'", spec)
    elif verb == "U":
        return _pad(f"U+{v:04X}", spec)
    else:
        return _bad(verb, v)
    if spec.prec is not None:
        digits = digits.zfill(spec.prec) if spec.prec else ("" if a == 0 else digits)
    sign = "-" if neg else ("+" if spec.plus else (" " if spec.space else ""))
    return _pad(sign + digits, spec, numeric=spec.prec is None)


def _fmt_float(v: float, verb: str, spec: Spec) -> str:
    if verb == "v":
        s = format_float_g_shortest(v) if spec.prec is None else _py_float(v, "g", spec.prec)
    elif verb in "eEfFgG":
        if spec.prec is None and verb in "gG":
            s = format_float_g_shortest(v)
            if verb == "G":
                s = s.upper()
        else:
            prec = 6 if spec.prec is None else spec.prec
            s = _py_float(v, verb, prec)
    else:
        return _bad(verb, v)
    if spec.plus and not s.startswith(("-", "+")):
        s = "+" + s
    elif spec.space and not s.startswith(("-", "+")):
        s = " " + s
    if math.isinf(v) or math.isnan(v):  # padded with spaces, never zeros
        zero, spec.zero = spec.zero, False
        try:
            return _pad(s, spec)
        finally:
            spec.zero = zero
    return _pad(s, spec, numeric=True)


def _py_float(v: float, verb: str, prec: int) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return format(v, f".{prec}{verb}")


def _fmt_str(s: str, verb: str, spec: Spec) -> str:
    if spec.prec is not None and verb in ("s", "v", "q", "x", "X"):
        s = s[:spec.prec]
    elif verb not in ("s", "v", "q", "x", "X"):
        return _bad(verb, s, spec)
    if verb in ("s", "v"):
        return _pad(s, spec)
    if verb == "q":
        if spec.sharp and "`" not in s and all(c == "\t" or c.isprintable() for c in s):
            return _pad("`" + s + "`", spec)
        return _pad(go_quote(s, ascii_only=spec.plus), spec)
    if verb in ("x", "X"):
        h = s.encode("utf-8", "surrogateescape").hex()
        if verb == "X":
            h = h.upper()
        if spec.space:
            pre = "0x" if verb == "x" else "0X"
            h = " ".join((pre if spec.sharp else "") + h[i:i + 2] for i in range(0, len(h), 2))
        elif spec.sharp and h:
            h = ("0x" if verb == "x" else "0X") + h
        return _pad(h, spec)
    return _bad(verb, s, spec)


def fmt_scalar(v: Any, verb: str, spec: Spec) -> str:
    if isinstance(v, bool):
        if verb in ("t", "v"):
            return _pad("true" if v else "false", spec)
        return _bad(verb, v)
    if isinstance(v, int):
        return _fmt_int(v, verb, spec)
    if isinstance(v, float):
        return _fmt_float(v, verb, spec)
    if isinstance(v, str):
        return _fmt_str(v, verb, spec)
    if isinstance(v, bytes):
        return _fmt_str(v.decode("utf-8", "surrogateescape"), verb, spec)
    return _pad(str(v), spec)


def fmt_arg(v: Any, verb: str, spec: Spec) -> str:
    """One argument of Sprintf under one verb."""
    if verb == "T":
        return _pad(go_type(v), spec)
    if v is None or v is MISSING or isinstance(v, TypedNil):
        return _pad("<nil>", spec) if verb == "v" else _bad(verb, None)
    if isinstance(v, (dict, list, GoStruct)):
        if verb in ("v", "s", "q", "x", "X", "d"):
            return _pad(fmt_value(v, verb, 0, plus=spec.plus), spec)
        return _bad(verb, v)
    if verb == "v" and spec.sharp and isinstance(v, str):
        return _pad(go_quote(v), spec)
    return fmt_scalar(v, verb, spec)


def sprint(args: list[Any]) -> str:
    """fmt.Sprint: spaces between operands when neither side is a string."""
    out: list[str] = []
    prev_string = False
    for i, a in enumerate(args):
        is_string = isinstance(a, str)
        if i > 0 and not is_string and not prev_string:
            out.append(" ")
        out.append(fmt_arg(a, "v", Spec()))
        prev_string = is_string
    return "".join(out)


def sprintln(args: list[Any]) -> str:
    return " ".join(fmt_arg(a, "v", Spec()) for a in args) + "\n"


def sprintf(fmt: str, args: list[Any]) -> str:
    out: list[str] = []
    argi = 0
    i = 0
    n = len(fmt)
    reordered = False
    while i < n:
        j = fmt.find("%", i)
        if j < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:j])
        i = j + 1
        if i >= n:
            out.append("%!(NOVERB)")
            break
        spec = Spec()
        while i < n and fmt[i] in "+-# 0":
            c = fmt[i]
            if c == "+":
                spec.plus = True
            elif c == "-":
                spec.minus = True
                spec.zero = False
            elif c == "#":
                spec.sharp = True
            elif c == " ":
                spec.space = True
            elif c == "0":
                spec.zero = not spec.minus
            i += 1
        # argument index [n]
        if i < n and fmt[i] == "[":
            k = fmt.find("]", i)
            if k > 0 and fmt[i + 1:k].isdigit():
                argi = int(fmt[i + 1:k]) - 1
                reordered = True
                i = k + 1
        if i < n and fmt[i] == "*":
            i += 1
            if argi < len(args) and isinstance(args[argi], int) and not isinstance(args[argi], bool):
                spec.width = args[argi]
                if spec.width < 0:
                    spec.minus, spec.width = True, -spec.width
            else:
                out.append("%!(BADWIDTH)")
            argi += 1
        else:
            k = i
            while i < n and fmt[i].isdigit():
                i += 1
            if i > k:
                spec.width = int(fmt[k:i])
        if i < n and fmt[i] == ".":
            i += 1
            if i < n and fmt[i] == "*":
                i += 1
                if argi < len(args) and isinstance(args[argi], int) and not isinstance(args[argi], bool):
                    spec.prec = max(args[argi], 0)
                else:
                    out.append("%!(BADPREC)")
                argi += 1
            else:
                k = i
                while i < n and fmt[i].isdigit():
                    i += 1
                spec.prec = int(fmt[k:i]) if i > k else 0
        if i >= n:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
            continue
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        out.append(fmt_arg(args[argi], verb, spec))
        argi += 1
    if not reordered and argi < len(args):
        extra = ", ".join("<nil>" if a is None or a is MISSING else f"{go_type(a)}={fmt_value(a)}"
                          for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


__all__ = [
    "JSONNumber",
    "fmt_value",
    "format_float_g_shortest",
    "format_float_json",
    "go_quote",
    "sprint",
    "sprintf",
    "sprintln",
]
