"""A Path is one row of a backend's path table: a pattern, its fields and its handlers.

Patterns are regular expressions matched against the whole mount-relative path; named groups
become request fields (they override body values of the same name, as in Vault).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from strongroom.logical import Operation as Op

if TYPE_CHECKING:
    from strongroom.framework.fields import Field, FieldData
    from strongroom.logical import Request, Response

Handler = Callable[[Any, "Request", "FieldData"], Awaitable["Response | None"]]
ExistenceCheck = Callable[[Any, "Request", "FieldData"], Awaitable[bool]]


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
class Path:
    pattern: str
    operations: Mapping[Op, Handler] = field(default_factory=dict)
    fields: Mapping[str, Field] = field(default_factory=dict)
    exists: ExistenceCheck | None = None
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

    def handler(self, op: Op) -> Handler | None:
        h = self.operations.get(op)
        # A path with no distinct create handler treats create as update (Vault does the same).
        if h is None and op is Op.CREATE:
            h = self.operations.get(Op.UPDATE)
        return h
