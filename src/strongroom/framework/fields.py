"""Field types and their coercion: what a backend declares, and how raw JSON/query input becomes typed values.

Pure functions: no I/O. Coercion follows Vault's framework, which is lenient the way clients expect
("true"/"1" for bools, "1h" or 3600 for durations, "a,b" or ["a","b"] for comma lists, "k=v" pairs).
Numbers are bounded as Go's are: ints to int64, durations to MAX_DURATION seconds, JSON to
MAX_JSON_DEPTH levels of nesting; anything past is a 400 naming the field, never a value that
fails later, when it is stored or rendered.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

import orjson

from strongroom.durations import parse_duration
from strongroom.errors import InvalidRequest

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# Deepest nesting of JSON arrays and objects accepted from a client (the HTTP edge checks bodies,
# MAP fields check JSON given as a string). orjson writes at most 254 levels and what a client
# sends is written again with a few levels around it (response envelope, audit entry, storage),
# so deeper input could be accepted but never stored or answered.
MAX_JSON_DEPTH = 200


class FieldType(enum.Enum):
    STRING = "string"
    LOWERCASE_STRING = "lowercase_string"
    NAME = "name"
    INT = "int"
    BOOL = "bool"
    DURATION = "duration"  # seconds
    MAP = "map"  # dict[str, Any]
    KV_PAIRS = "kvpairs"  # dict[str, str], also from ["k=v", ...]
    STRING_SLICE = "slice"  # list[str]
    COMMA_STRING_SLICE = "comma_string_slice"  # list[str], also from "a,b"
    LOWERCASE_COMMA_STRING_SLICE = "lowercase_comma_string_slice"
    COMMA_INT_SLICE = "comma_int_slice"
    HEADER = "header"
    ANY = "any"

    __hash__ = object.__hash__  # members are compared by identity: hash them so, in C


@dataclass(frozen=True, slots=True)
class Field:
    type: FieldType
    description: str = ""
    default: Any = None
    required: bool = False
    sensitive: bool = False
    allowed_values: tuple[Any, ...] = ()
    # Query parameters are taken from the URL of a GET/LIST as well as from the body.
    query: bool = False
    # What FieldData.get answers when the client sent nothing, worked out once here when it is an
    # immutable value (a list or dict is made afresh each time: a handler may change it); _UNSET
    # otherwise.
    absent: Any = dataclass_field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            value = coerce("", self, self.default) if self.default is not None else _ZERO[self.type]()
        except Exception:  # noqa: BLE001 - a default that does not coerce fails when it is used
            value = _UNSET
        object.__setattr__(self, "absent", value if type(value) in _IMMUTABLE else _UNSET)


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return v != 0
    if isinstance(v, str):
        s = v.strip().lower()
        if s in ("1", "t", "true", "y", "yes", "on"):
            return True
        if s in ("0", "f", "false", "n", "no", "off", ""):
            return False
    raise ValueError("cannot parse as bool")


def _int(v: Any) -> int:
    if isinstance(v, bool):
        raise TypeError("bool is not an int")
    if isinstance(v, int):
        return _int64(v)
    if isinstance(v, float):
        if not INT64_MIN <= v <= INT64_MAX:  # also infinity and NaN, which int() cannot take
            raise ValueError("value out of range")
        if v != int(v):
            raise ValueError("not a whole number")
        return int(v)
    if isinstance(v, str):
        text = v.strip()
        if len(text.lstrip("+-")) > 19:  # past int64 whatever the digits; int() of thousands is slow
            raise ValueError("value out of range")
        return _int64(int(text))
    raise ValueError("cannot parse as int")


def _int64(v: int) -> int:
    """Go's int (int64 on the platforms Vault runs on): larger values are refused, as OpenBao does."""
    if not INT64_MIN <= v <= INT64_MAX:
        raise ValueError("value out of range")
    return v


def _string(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    raise ValueError("expected a string")


def _comma_list(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [s.strip() for s in v.split(",") if s.strip()]
    if isinstance(v, list):
        out: list[str] = []
        for item in v:
            out.extend(_comma_list(item) if isinstance(item, str) else [_string(item)])
        return out
    return [_string(v)]


def _slice(v: Any) -> list[str]:
    if isinstance(v, str):
        return [v] if v else []
    if isinstance(v, list):
        return [_string(i) for i in v]
    raise ValueError("expected a list")


def _map(v: Any) -> dict[str, Any]:
    if isinstance(v, dict):
        return v
    if isinstance(v, str) and v.strip().startswith("{"):
        parsed = orjson.loads(v)
        if isinstance(parsed, dict):
            check_json_depth(parsed)
            return parsed
    raise ValueError("expected an object")


def check_json_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> None:
    """InvalidRequest if arrays/objects in ``value`` nest more than ``limit`` levels. Iterative:
    the input is the attacker's, the Python stack is ours."""
    stack = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise InvalidRequest(f"JSON input nested too deeply (at most {limit} levels)")
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))


def _kv_pairs(v: Any) -> dict[str, str]:
    if isinstance(v, dict):
        return {str(k): _string(val) for k, val in v.items()}
    out: dict[str, str] = {}
    for item in _slice(v):
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise ValueError(f'"{item}" is not a key=value pair')
        out[key] = val
    return out


def _duration(v: Any) -> int:
    return parse_duration(v)


_COERCE: dict[FieldType, Callable[[Any], Any]] = {
    FieldType.STRING: _string,
    FieldType.LOWERCASE_STRING: lambda v: _string(v).lower(),
    FieldType.NAME: _string,
    FieldType.INT: _int,
    FieldType.BOOL: _bool,
    FieldType.DURATION: _duration,
    FieldType.MAP: _map,
    FieldType.KV_PAIRS: _kv_pairs,
    FieldType.STRING_SLICE: _slice,
    FieldType.COMMA_STRING_SLICE: _comma_list,
    FieldType.LOWERCASE_COMMA_STRING_SLICE: lambda v: [s.lower() for s in _comma_list(v)],
    FieldType.COMMA_INT_SLICE: lambda v: [_int(s) for s in _comma_list(v)],
    FieldType.HEADER: _kv_pairs,
    FieldType.ANY: lambda v: v,
}

_ZERO: dict[FieldType, Callable[[], Any]] = {
    FieldType.STRING: str,
    FieldType.LOWERCASE_STRING: str,
    FieldType.NAME: str,
    FieldType.INT: int,
    FieldType.BOOL: bool,
    FieldType.DURATION: int,
    FieldType.MAP: dict,
    FieldType.KV_PAIRS: dict,
    FieldType.STRING_SLICE: list,
    FieldType.COMMA_STRING_SLICE: list,
    FieldType.LOWERCASE_COMMA_STRING_SLICE: list,
    FieldType.COMMA_INT_SLICE: list,
    FieldType.HEADER: dict,
    FieldType.ANY: lambda: None,
}


_UNSET: Any = object()
_IMMUTABLE = frozenset({str, int, float, bool, type(None), bytes})


def coerce(name: str, field: Field, value: Any) -> Any:
    """``value`` as ``field`` wants it; InvalidRequest naming the field when it cannot be converted."""
    try:
        out = _COERCE[field.type](value)
    except InvalidRequest as e:
        raise InvalidRequest(f'error converting input for field "{name}": {e.message}') from None
    except (ValueError, TypeError, OverflowError, orjson.JSONDecodeError) as e:
        raise InvalidRequest(f'error converting input for field "{name}": {e}') from None
    if field.allowed_values and out not in field.allowed_values:
        allowed = ", ".join(str(a) for a in field.allowed_values)
        raise InvalidRequest(f'invalid value for field "{name}": "{out}" (allowed: {allowed})')
    return out


class FieldData:
    """The validated input of one request: raw values plus the schema that types them.

    Every provided field is coerced once, up front, so a wrong type is a 400 before a handler runs.
    ``raw`` keeps everything the client sent (KV secrets are free-form and read it directly).
    """

    __slots__ = ("_values", "raw", "schema")

    def __init__(self, raw: Mapping[str, Any], schema: Mapping[str, Field]) -> None:
        self.raw: dict[str, Any] = dict(raw)
        self.schema = schema
        self._values: dict[str, Any] = {}
        for name, field in schema.items():
            if name in self.raw and self.raw[name] is not None:
                self._values[name] = coerce(name, field, self.raw[name])
            elif field.required:
                raise InvalidRequest(f'missing required field "{name}"')

    def get(self, name: str) -> Any:
        """The coerced value, else the declared default, else the type's zero value."""
        if name in self._values:
            return self._values[name]
        field = self.schema.get(name)
        if field is None:
            raise KeyError(f"field {name!r} is not in the schema")
        if field.absent is not _UNSET:
            return field.absent
        if field.default is not None:
            return coerce(name, field, field.default)
        return _ZERO[field.type]()

    def get_ok(self, name: str) -> tuple[Any, bool]:
        """(value, True) if the client sent ``name``, else (default, False)."""
        if name in self._values:
            return self._values[name], True
        return self.get(name), False

    def has(self, name: str) -> bool:
        return name in self._values

    def unknown(self) -> list[str]:
        return sorted(k for k in self.raw if k not in self.schema)
