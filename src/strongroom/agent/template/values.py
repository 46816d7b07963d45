"""How Go values are represented while a template runs.

Python values stand for Go's: ``str`` (string), ``int``, ``float`` (float64), ``bool``, ``dict``
(map[string]interface {}), ``list`` ([]interface {}), ``None`` (a nil interface), plus:

- ``JSONNumber``: a number in a server's JSON answer (Vault's client decodes with UseNumber, so it is a
  json.Number: a string kind that prints as its text);
- ``GoStrings``: a []string (what ``secrets`` and ``split`` return);
- ``GoStruct`` subclasses: consul-template's structs (``Secret``, ``PemEncoded``);
- ``MISSING``: Go's invalid reflect.Value (what prints ``<no value>``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<no value>"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


class TypedNil:
    """A nil pointer of a known type (e.g. a Secret's Auth when there is none): prints ``<nil>``."""

    __slots__ = ("go_type",)

    def __init__(self, go_type: str) -> None:
        self.go_type = go_type

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "<nil>"


class JSONNumber(str):
    """A JSON number kept as its text (Go's json.Number)."""

    __slots__ = ()


class GoStrings(list[str]):
    """A Go []string."""


@dataclass(slots=True)
class GoStruct:
    go_type: ClassVar[str] = "struct"
    pointer: ClassVar[bool] = False

    def go_fields(self) -> list[tuple[str, Any]]:
        return [(f.name, getattr(self, f.name)) for f in dataclasses.fields(self)]


@dataclass(slots=True)
class SecretAuth(GoStruct):
    go_type: ClassVar[str] = "*dependency.SecretAuth"
    pointer: ClassVar[bool] = True
    ClientToken: str = ""
    Accessor: str = ""
    Policies: GoStrings | None = None
    Metadata: dict[str, Any] | None = None
    LeaseDuration: int = 0
    Renewable: bool = False


@dataclass(slots=True)
class SecretWrapInfo(GoStruct):
    go_type: ClassVar[str] = "*dependency.SecretWrapInfo"
    pointer: ClassVar[bool] = True
    Token: str = ""
    TTL: int = 0
    CreationTime: str = ""
    WrappedAccessor: str = ""


@dataclass(slots=True)
class Secret(GoStruct):
    """consul-template's dependency.Secret: what ``secret`` returns (a pointer in Go)."""

    go_type: ClassVar[str] = "*dependency.Secret"
    pointer: ClassVar[bool] = True
    RequestID: str = ""
    LeaseID: str = ""
    LeaseDuration: int = 0
    Renewable: bool = False
    Data: dict[str, Any] | None = None
    Warnings: GoStrings | None = None
    Auth: SecretAuth | None = None
    WrapInfo: SecretWrapInfo | None = None


@dataclass(slots=True)
class PemEncoded(GoStruct):
    """consul-template's dependency.PemEncoded as OpenBao's agent has it: what ``pkiCert`` returns (a value
    in Go; no CAChain field in that version)."""

    go_type: ClassVar[str] = "dependency.PemEncoded"
    Cert: str = ""
    Key: str = ""
    CA: str = ""


def go_type(v: Any) -> str:
    """Go's name for the type of a value (as fmt's %T and error messages show it)."""
    if v is None or v is MISSING:
        return "<nil>"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, JSONNumber):
        return "json.Number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, GoStrings):
        return "[]string"
    if isinstance(v, list):
        return "[]interface {}"
    if isinstance(v, dict):
        return "map[string]interface {}"
    if isinstance(v, (GoStruct, TypedNil)):
        return v.go_type
    if isinstance(v, bytes):
        return "[]uint8"
    return type(v).__name__


def truth(v: Any) -> bool:
    """Go's template truth: false, 0, nil, and empty strings, slices and maps are false."""
    if v is None or v is MISSING or isinstance(v, TypedNil):
        return False
    if isinstance(v, GoStruct):
        return True
    return bool(v)


def from_json(v: Any) -> Any:
    """A decoded JSON value as Go's decoder with UseNumber gives it: numbers become JSONNumber."""
    if isinstance(v, dict):
        return {k: from_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [from_json(x) for x in v]
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float)):
        return JSONNumber(_json_number_text(v))
    return v


def _json_number_text(v: float) -> str:
    return str(v) if isinstance(v, int) else repr(v)
