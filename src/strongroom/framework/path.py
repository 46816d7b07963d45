"""A Path is one row of a backend's path table: a pattern, its fields and its handlers.

Patterns are regular expressions matched against the whole mount-relative path; named groups
become request fields (they override body values of the same name, as in Vault).

A Path is generic over the backend class its handlers take first (``Path[KVv2Backend]``), so mypy
checks every handler against the backend it is mounted in. Nothing is spelled out at the call:
``Path(pattern, operations={Op.READ: read_secret})`` infers the backend type from the handlers, a
module's ``paths() -> list[Path[KVv2Backend]]`` states it once, and :class:`Backend`'s constructor
takes ``Sequence[Path[Self]]``: a handler written for another backend class is a type error where
the path table is handed to the backend. A handler typed against a base class (``Backend``) fits any
subclass (``B`` is contravariant: a Path[Backend] is a Path[KVv2Backend]).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeAlias, TypeVar

from strongroom.errors import Internal
from strongroom.logical import Operation as Op
from strongroom.logical import Request, Storage

if TYPE_CHECKING:
    from strongroom.framework.fields import Field, FieldData
    from strongroom.logical import Response

#: The backend type a path's handlers take first. Contravariant: see the module docstring.
B_contra = TypeVar("B_contra", contravariant=True)
B = TypeVar("B")

Handler: TypeAlias = Callable[[B, "Request", "FieldData"], Awaitable["Response | None"]]
ExistenceCheck: TypeAlias = Callable[[B, "Request", "FieldData"], Awaitable[bool]]


def storage_of(req: Request) -> Storage:
    """The mount's storage view, which core attaches to every routed request."""
    if req.storage is None:
        raise Internal("no storage attached to the request")
    return req.storage


def name_regex(name: str) -> str:
    """A named path segment of word characters, dashes, dots and @ (Vault's GenericNameRegex)."""
    return rf"(?P<{name}>\w(?:[\w\-.@]*\w)?)"


def optional_param(name: str) -> str:
    """An optional trailing ``/NAME`` segment."""
    return rf"(?:/(?P<{name}>.+))?"


def match_all(name: str) -> str:
    """Everything to the end of the path, slashes included."""
    return rf"(?P<{name}>.*)"


@dataclass(slots=True)
class Path(Generic[B_contra]):
    pattern: str
    operations: Mapping[Op, Handler[B_contra]] = field(default_factory=dict)
    fields: Mapping[str, Field] = field(default_factory=dict)
    exists: ExistenceCheck[B_contra] | None = None
    synopsis: str = ""
    description: str = ""
    # Reachable without a token (login paths). The router asks the backend for these.
    unauthenticated: bool = False
    # Requires the sudo capability in addition to the operation's own.
    root: bool = False
    regex: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.regex = re.compile(self.pattern)

    def match(self, path: str) -> dict[str, str] | None:
        m = self.regex.fullmatch(path)
        if m is None:
            return None
        return {k: v for k, v in m.groupdict().items() if v is not None}

    def handler(self, op: Op) -> Handler[B_contra] | None:
        h = self.operations.get(op)
        # A path with no distinct create handler treats create as update (Vault does the same).
        if h is None and op is Op.CREATE:
            h = self.operations.get(Op.UPDATE)
        return h
