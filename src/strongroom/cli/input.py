"""Command-line data arguments, as Vault's ``write`` and ``kv put`` read them.

* ``key=value``; a repeated key collects its values into a list (``policies=a policies=b``);
* ``key=@path`` takes the value from a file, ``key=-`` from stdin, both verbatim;
* ``@path`` alone merges a JSON object from a file, ``-`` alone one from stdin.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from strongroom.cli.context import UsageError, os_error


class _Stdin:
    """Stdin is read at most once, however many arguments refer to it."""

    def __init__(self) -> None:
        self._text: str | None = None

    def read(self) -> str:
        if self._text is None:
            self._text = sys.stdin.read()
        return self._text


def _json_object(text: str, arg: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as e:
        raise UsageError(f'Failed to parse K=V data: invalid key/value pair "{arg}": {e}') from None
    if not isinstance(value, dict):
        raise UsageError(f'Failed to parse K=V data: invalid key/value pair "{arg}": expected a JSON object')
    return value


def _read_file(path: str, arg: str, what: str = "") -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        reason = what + os_error(e, path)
        raise UsageError(f'Failed to parse K=V data: invalid key/value pair "{arg}": {reason}') from None


def parse_data(args: list[str]) -> dict[str, Any]:
    """The request body that ``args`` describe."""
    stdin = _Stdin()
    data: dict[str, Any] = {}
    for arg in args:
        if arg == "-":
            data.update(_json_object(stdin.read(), arg))
            continue
        if arg.startswith("@") and "=" not in arg:
            data.update(_json_object(_read_file(arg[1:], arg), arg))
            continue
        key, sep, value = arg.partition("=")
        if not sep:
            raise UsageError(f'Failed to parse K=V data: invalid key/value pair "{arg}": format must be key=value')
        if value == "-":
            value = stdin.read()
        elif value.startswith("@"):
            value = _read_file(value[1:], arg, "error reading file: ")
        if key in data:
            prev = data[key]
            data[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            data[key] = value
    return data


def parse_query(args: list[str]) -> dict[str, Any]:
    """``key=value`` arguments of ``read``/``delete``, sent as query parameters."""
    return parse_data([a for a in args if a != "-"]) if args else {}
