"""Templates of the database engine: statement placeholders and username templates.

Statements (Vault's dbutil.QueryHelper): ``{{name}}``/``{{username}}``, ``{{password}}`` and
``{{expiration}}`` are replaced as plain text.

Username templates (``username_template`` of a connection) are Go templates in Vault; this is the
subset Vault documents for them: ``{{ ... }}`` actions holding a pipeline of commands separated by
``|`` (the piped value is the last argument of the next command), operands ``.DisplayName``,
``.RoleName``, string and integer literals, parenthesised pipelines, and the functions
``printf``, ``truncate``, ``truncate_sha256``, ``uppercase``, ``lowercase``, ``replace``,
``random``, ``unix_time``, ``unix_time_millis``, ``timestamp``, ``uuid``, ``sha256``, ``base64``.
A template is parsed once, when the connection is configured, so a bad one is a 400 then.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import string
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from strongroom.errors import InvalidRequest

ALPHANUMERIC = string.ascii_letters + string.digits


def render_statement(stmt: str, values: Mapping[str, str]) -> str:
    """``stmt`` with each ``{{key}}`` of ``values`` replaced."""
    for key, value in values.items():
        stmt = stmt.replace("{{" + key + "}}", value)
    return stmt


def split_statements(stmts: list[str]) -> list[str]:
    """Each statement split on ``;`` into queries (Vault's rule), except one holding a ``$$``-quoted
    body (a PostgreSQL function or DO block), which is run whole."""
    out: list[str] = []
    for stmt in stmts:
        if "$$" in stmt:
            if stmt.strip():
                out.append(stmt)
            continue
        out.extend(q.strip() for q in stmt.split(";") if q.strip())
    return out


# -- username templates (a Go template subset) ---------------------------------------------------

_TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|`[^`]*`)|(?P<int>-?\d+)|(?P<field>\.[A-Za-z_]\w*)'
                    r'|(?P<ident>[A-Za-z_]\w*)|(?P<punct>[|()]))')


@dataclass(frozen=True, slots=True)
class _Lit:
    value: Any


@dataclass(frozen=True, slots=True)
class _Field:
    name: str


@dataclass(frozen=True, slots=True)
class _Call:
    fn: str
    args: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class _Pipe:
    commands: tuple[_Call | _Lit | _Field | _Pipe, ...]


def _go_printf(fmt: str, *args: Any) -> str:
    values = iter(args)

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "%%":
            return "%"
        return str(next(values, "%!" + m.group(1) + "(MISSING)"))

    return re.sub(r"%%|%[-+# 0-9.]*([svdq])", one, fmt)


def _truncate(n: Any, s: Any) -> str:
    return str(s)[: int(n)]


def _truncate_sha256(n: Any, s: Any) -> str:
    text, n = str(s), int(n)
    if len(text) <= n:
        return text
    keep = max(n - 64, 0)
    return text[:keep] + hashlib.sha256(text[keep:].encode()).hexdigest()


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "printf": lambda fmt, *a: _go_printf(str(fmt), *a),
    "truncate": _truncate,
    "truncate_sha256": _truncate_sha256,
    "uppercase": lambda s: str(s).upper(),
    "lowercase": lambda s: str(s).lower(),
    "replace": lambda old, new, s: str(s).replace(str(old), str(new)),
    "random": lambda n: "".join(secrets.choice(ALPHANUMERIC) for _ in range(int(n))),
    "unix_time": lambda: str(int(time.time())),
    "unix_time_millis": lambda: str(int(time.time() * 1000)),
    "timestamp": lambda fmt: time.strftime(_go_time_format(str(fmt)), time.gmtime()),
    "uuid": lambda: str(uuid.uuid4()),
    "sha256": lambda s: hashlib.sha256(str(s).encode()).hexdigest(),
    "base64": lambda s: base64.b64encode(str(s).encode()).decode(),
}


def _go_time_format(fmt: str) -> str:
    for go, py in (("2006", "%Y"), ("01", "%m"), ("02", "%d"), ("15", "%H"), ("04", "%M"), ("05", "%S")):
        fmt = fmt.replace(go, py)
    return fmt


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                raise InvalidRequest(f"unable to parse username template: unexpected {text[pos:pos + 10]!r}")
            kind = m.lastgroup or ""
            self.tokens.append((kind, m.group(kind)))
            pos = m.end()
            while pos < len(text) and text[pos].isspace():
                pos += 1
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def pipeline(self) -> _Pipe:
        commands = [self.command()]
        while (tok := self.peek()) is not None and tok == ("punct", "|"):
            self.i += 1
            commands.append(self.command())
        return _Pipe(tuple(commands))

    def operand(self) -> Any:
        tok = self.peek()
        if tok is None:
            raise InvalidRequest("unable to parse username template: missing value")
        kind, text = tok
        self.i += 1
        if kind == "str":
            return _Lit(text[1:-1] if text.startswith("`") else bytes(text[1:-1], "utf-8").decode("unicode_escape"))
        if kind == "int":
            return _Lit(int(text))
        if kind == "field":
            if text[1:] not in ("DisplayName", "RoleName"):
                raise InvalidRequest(f"unable to parse username template: unknown field {text}")
            return _Field(text[1:])
        if kind == "ident":
            if text not in FUNCTIONS:
                raise InvalidRequest(f'unable to parse username template: function "{text}" not defined')
            return _Call(text, ())
        if text == "(":
            inner = self.pipeline()
            if self.peek() != ("punct", ")"):
                raise InvalidRequest("unable to parse username template: unclosed parenthesis")
            self.i += 1
            return inner
        raise InvalidRequest(f"unable to parse username template: unexpected {text!r}")

    def command(self) -> Any:
        first = self.operand()
        args: list[Any] = []
        while (tok := self.peek()) is not None and tok[1] not in ("|", ")"):
            args.append(self.operand())
        if isinstance(first, _Call):
            return _Call(first.fn, tuple(args))
        if args:
            raise InvalidRequest("unable to parse username template: a value cannot take arguments")
        return first


def _eval(node: Any, ctx: Mapping[str, str], piped: tuple[Any, ...] = ()) -> Any:
    if isinstance(node, _Lit):
        return node.value
    if isinstance(node, _Field):
        return ctx.get(node.name, "")
    if isinstance(node, _Pipe):
        value: tuple[Any, ...] = piped
        for cmd in node.commands:
            value = (_eval(cmd, ctx, value),)
        return value[0]
    assert isinstance(node, _Call)
    args = [_eval(a, ctx) for a in node.args] + list(piped)
    try:
        return FUNCTIONS[node.fn](*args)
    except (TypeError, ValueError) as e:
        raise InvalidRequest(f"unable to render username template: {node.fn}: {e}") from None


class UsernameTemplate:
    """A parsed username template: ``render(display_name, role_name)``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.parts: list[str | _Pipe] = []
        pos = 0
        for m in re.finditer(r"\{\{-?(.*?)-?\}\}", text, re.S):
            if m.start() > pos:
                self.parts.append(text[pos:m.start()])
            self.parts.append(_Parser(m.group(1)).pipeline())
            pos = m.end()
        if pos < len(text):
            self.parts.append(text[pos:])
        self.render("display", "role")  # a template that cannot run is refused when configured

    def render(self, display_name: str, role_name: str) -> str:
        ctx = {"DisplayName": display_name, "RoleName": role_name}
        return "".join(p if isinstance(p, str) else str(_eval(p, ctx)) for p in self.parts)


__all__ = ["UsernameTemplate", "render_statement", "split_statements"]
