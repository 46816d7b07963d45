"""consul-template's number functions: arithmetic with Go's int64 and float64 semantics (add, subtract,
multiply, divide, modulo, minimum, maximum) and strconv's parsers (parseBool, parseInt, parseUint, parseFloat)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from strongroom.agent.template.gofmt import go_quote, sprintf
from strongroom.agent.template.gofunc import FuncError, GoFunc
from strongroom.agent.template.values import go_type


_GO_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
             "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}


def _parse_bool(s: str) -> bool:
    if s == "":
        return False
    if s not in _GO_BOOLS:
        raise FuncError(f'parseBool: strconv.ParseBool: parsing "{s}": invalid syntax')
    return _GO_BOOLS[s]


def _parse_int(s: str) -> int:
    if s == "":
        return 0
    if not re.fullmatch(r"[+-]?[0-9]+", s):
        raise FuncError(f'parseInt: strconv.ParseInt: parsing "{s}": invalid syntax')
    v = int(s)
    if not -(2**63) <= v < 2**63:
        raise FuncError(f'parseInt: strconv.ParseInt: parsing "{s}": value out of range')
    return v


def _parse_uint(s: str) -> int:
    if s == "":
        return 0
    if not re.fullmatch(r"[+]?[0-9]+", s):
        raise FuncError(f'parseUint: strconv.ParseUint: parsing "{s}": invalid syntax')
    v = int(s)
    if v >= 2**64:
        raise FuncError(f'parseUint: strconv.ParseUint: parsing "{s}": value out of range')
    return v


_DIGITS = r"[0-9](?:_?[0-9])*"


_GO_FLOAT = re.compile(rf"[+-]?(({_DIGITS}\.?(?:{_DIGITS})?|\.{_DIGITS})([eE][+-]?{_DIGITS})?|inf|infinity|nan)",
                       re.IGNORECASE)


def _parse_float(s: str) -> float:
    if s == "":
        return 0.0
    if not _GO_FLOAT.fullmatch(s):
        raise FuncError(f'parseFloat: strconv.ParseFloat: parsing "{s}": invalid syntax')
    v = float(s)
    if v in (float("inf"), float("-inf")) and "inf" not in s.lower():
        raise FuncError(f'parseFloat: strconv.ParseFloat: parsing "{s}": value out of range')
    return v


def _num_kind(v: Any) -> str | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    return None


def _unknown(name: str, v: Any) -> FuncError:
    shown = go_quote(v) if isinstance(v, str) else sprintf("%q", [v])
    return FuncError(f"{name}: unknown type for {shown} ({go_type(v)})")


def _arith(name: str, op: Callable[[Any, Any], Any], ints_only: bool = False) -> Callable[[Any, Any], Any]:
    """consul-template's add/subtract/multiply/divide/modulo(b, a): a OP b, ints stay ints."""
    def fn(b: Any, a: Any) -> Any:
        ka = _num_kind(a)
        if ka is None or (ints_only and ka == "float"):
            raise _unknown(name, a)
        kb = _num_kind(b)
        if kb is None or (ints_only and kb == "float"):
            raise _unknown(name, b)
        if ka == "int" and kb == "int":
            return ((op(a, b) + 2**63) % 2**64) - 2**63  # int64 arithmetic wraps around
        return op(float(a), float(b))
    return fn


def _go_div(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int):
        if b == 0:
            raise FuncError("runtime error: integer divide by zero")
        q = abs(a) // abs(b)
        return q if (a >= 0) == (b >= 0) else -q
    if b == 0:
        return math.copysign(math.inf, a) * math.copysign(1, b) if a != 0 else math.nan
    return a / b


def _go_mod(a: int, b: int) -> int:
    if b == 0:
        raise FuncError("runtime error: integer divide by zero")
    r = abs(a) % abs(b)
    return r if a >= 0 else -r


def _extremum(name: str, smaller: bool) -> Callable[[Any, Any], Any]:
    def fn(b: Any, a: Any) -> Any:
        if _num_kind(a) is None:
            raise _unknown(name, a)
        if _num_kind(b) is None:
            raise _unknown(name, b)
        a_wins = float(a) < float(b) if smaller else float(a) > float(b)
        return a if a_wins else b
    return fn



NUMBER_FUNCTIONS: dict[str, GoFunc] = {
    "add": GoFunc(_arith("add", lambda a, b: a + b), ("any", "any")),
    "subtract": GoFunc(_arith("subtract", lambda a, b: a - b), ("any", "any")),
    "multiply": GoFunc(_arith("multiply", lambda a, b: a * b), ("any", "any")),
    "divide": GoFunc(_arith("divide", _go_div), ("any", "any")),
    "modulo": GoFunc(_arith("modulo", _go_mod, ints_only=True), ("any", "any")),
    "minimum": GoFunc(_extremum("minimum", True), ("any", "any")),
    "maximum": GoFunc(_extremum("maximum", False), ("any", "any")),
    "parseBool": GoFunc(_parse_bool, ("string",)),
    "parseInt": GoFunc(_parse_int, ("string",)),
    "parseUint": GoFunc(_parse_uint, ("string",)),
    "parseFloat": GoFunc(_parse_float, ("string",)),
}
