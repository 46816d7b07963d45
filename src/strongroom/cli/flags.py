"""Go-style command-line flags, as Vault's CLI parses them (Go's ``flag`` package rules).

* ``-name=value``, ``--name=value``, ``-name value`` (not for booleans), ``-name`` for booleans
  and ``-name=false`` to turn one off;
* flags come first: parsing stops at the first argument that is not a flag (``-`` alone is an
  argument, meaning stdin) or after ``--``;
* a repeatable flag (``strings``, ``mapping``) collects every occurrence; list flags
  also split on commas, as Vault's ``-policy=a,b`` does;
* ``-h`` / ``-help`` raise ``HelpRequested``; every other mistake raises ``FlagError`` whose
  message is the one Go prints (``flag provided but not defined: -x``).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from strongroom.durations import parse_duration

T = TypeVar("T")


class FlagError(Exception):
    """A usage mistake on the command line; the CLI prints it and exits 1."""


class HelpRequested(Exception):
    """``-h`` or ``-help`` was given."""


_TRUE = {"1", "t", "T", "true", "TRUE", "True"}
_FALSE = {"0", "f", "F", "false", "FALSE", "False"}


def parse_bool(text: str) -> bool:
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f'parse error: invalid syntax "{text}"')


def parse_int(text: str) -> int:
    try:
        return int(text, 0) if text.lower().startswith(("0x", "0o", "0b")) else int(text)
    except ValueError:
        raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax') from None


def parse_seconds(text: str) -> int:
    """A duration flag: "30", "30s", "1h30m"; seconds."""
    try:
        return parse_duration(text)
    except Exception:  # noqa: BLE001 -- durations raises the server's error type; here it is a usage error
        raise ValueError(f'time: invalid duration "{text}"') from None


@dataclass(slots=True)
class Flag(Generic[T]):
    """One declared flag; ``value`` is its current value, ``is_set`` whether argv named it."""

    name: str
    value: T
    setter: Callable[[Flag[T], str], None]
    usage: str = ""
    kind: str = "string"
    aliases: tuple[str, ...] = ()
    section: str = "Command Options"
    is_set: bool = False
    default_text: str = ""

    @property
    def is_bool(self) -> bool:
        return self.kind == "bool"

    def set(self, text: str) -> None:
        try:
            self.setter(self, text)
        except ValueError as e:
            raise FlagError(f'invalid value "{text}" for flag -{self.name}: {e}') from None
        self.is_set = True


def _set_scalar(parse: Callable[[str], T]) -> Callable[[Flag[T], str], None]:
    def setter(flag: Flag[T], text: str) -> None:
        flag.value = parse(text)

    return setter


def _append_list(flag: Flag[list[str]], text: str) -> None:
    if not flag.is_set:
        flag.value = []  # the first occurrence replaces the default
    flag.value.extend(p.strip() for p in text.split(",") if p.strip())


def _append_map(flag: Flag[dict[str, str]], text: str) -> None:
    if not flag.is_set:
        flag.value = {}
    key, sep, val = text.partition("=")
    if not sep:
        raise ValueError('missing "=" in key=value')
    flag.value[key.strip()] = val


@dataclass(slots=True)
class FlagSet:
    """The flags of one command, in declaration order (which is also help order)."""

    name: str
    _flags: dict[str, Flag[object]] = field(default_factory=dict)
    _order: list[Flag[object]] = field(default_factory=list)

    def _add(self, flag: Flag[T]) -> Flag[T]:
        for n in (flag.name, *flag.aliases):
            if n in self._flags:
                raise ValueError(f"flag redefined: {n}")
            self._flags[n] = flag  # type: ignore[assignment]
        self._order.append(flag)  # type: ignore[arg-type]
        return flag

    def boolean(self, name: str, default: bool = False, usage: str = "", *, aliases: tuple[str, ...] = (),
             section: str = "Command Options") -> Flag[bool]:
        return self._add(Flag(name, default, _set_scalar(parse_bool), usage, "bool", aliases, section,
                              default_text=str(default).lower()))

    def string(self, name: str, default: str = "", usage: str = "", *, aliases: tuple[str, ...] = (),
               section: str = "Command Options") -> Flag[str]:
        return self._add(Flag(name, default, _set_scalar(str), usage, "string", aliases, section,
                              default_text=f'"{default}"'))

    def integer(self, name: str, default: int = 0, usage: str = "", *, aliases: tuple[str, ...] = (),
            section: str = "Command Options") -> Flag[int]:
        return self._add(Flag(name, default, _set_scalar(parse_int), usage, "int", aliases, section,
                              default_text=str(default)))

    def duration(self, name: str, default: int = 0, usage: str = "", *, aliases: tuple[str, ...] = (),
                 section: str = "Command Options") -> Flag[int]:
        """Seconds; accepts a bare number of seconds or a Go duration ("1h30m")."""
        return self._add(Flag(name, default, _set_scalar(parse_seconds), usage, "duration", aliases,
                              section, default_text=f"{default}s" if default else '""'))

    def strings(self, name: str, usage: str = "", *, aliases: tuple[str, ...] = (),
                    section: str = "Command Options") -> Flag[list[str]]:
        return self._add(Flag(name, [], _append_list, usage, "list", aliases, section, default_text=""))

    def mapping(self, name: str, usage: str = "", *, aliases: tuple[str, ...] = (),
                   section: str = "Command Options") -> Flag[dict[str, str]]:
        return self._add(Flag(name, {}, _append_map, usage, "map", aliases, section, default_text=""))

    def lookup(self, name: str) -> Flag[object] | None:
        return self._flags.get(name)

    def parse(self, argv: list[str]) -> list[str]:
        """Consume leading flags; return the remaining positional arguments."""
        i = 0
        while i < len(argv):
            arg = argv[i]
            if len(arg) < 2 or arg[0] != "-":
                break
            minus = 2 if arg[1] == "-" else 1
            if minus == 2 and len(arg) == 2:  # "--" ends the flags
                i += 1
                break
            name = arg[minus:]
            if not name or name[0] in "-=":
                raise FlagError(f"bad flag syntax: {arg}")
            name, has_value, value = name.partition("=")
            flag = self._flags.get(name)
            if flag is None:
                if name in ("h", "help"):
                    raise HelpRequested()
                raise FlagError(f"flag provided but not defined: -{name}")
            if flag.is_bool:
                flag.set(value if has_value else "true")
            elif has_value:
                flag.set(value)
            elif i + 1 < len(argv):
                i += 1
                flag.set(argv[i])
            else:
                raise FlagError(f"flag needs an argument: -{name}")
            i += 1
        return argv[i:]

    def help(self) -> str:
        """The flags, grouped by section, for ``-h``."""
        sections: dict[str, list[str]] = {}
        for flag in self._order:
            placeholder = {"bool": "", "int": "=<int>", "duration": "=<duration>",
                           "list": "=<string>", "map": "=<key=value>"}.get(flag.kind, "=<string>")
            names = ", ".join(f"-{n}{placeholder}" for n in (flag.name, *flag.aliases))
            text = flag.usage
            if flag.default_text and flag.default_text not in ('""', "false", "0"):
                text += f" The default is {flag.default_text}."
            body = textwrap.fill(text, width=72, initial_indent="      ", subsequent_indent="      ")
            sections.setdefault(flag.section, []).append(f"  {names}\n{body}" if text else f"  {names}")
        return "\n\n".join(f"{title}:\n\n" + "\n\n".join(items) for title, items in sections.items())
