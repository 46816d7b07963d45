"""Username templates: the part of Go's text/template that Vault's ``username_template`` uses.

    {{ printf "%s-%s" (.DisplayName) (uuid) }}          Vault's default for RabbitMQ
    v-{{ .RoleName | truncate 10 }}-{{ random 8 }}

Text outside ``{{ }}`` is copied; inside is a pipeline of commands joined by ``|`` (the value of
one is the last argument of the next). Operands: ``.Field``, ``"string"``, `` `raw` ``, integers,
``(pipeline)`` and function names. Functions (Vault's sdk/helper/template): ``printf``, ``uuid``,
``random N``, ``truncate N s``, ``truncate_sha256 N s``, ``uppercase``, ``lowercase``,
``replace old new s``, ``sha256``, ``base64``, ``unix_time``, ``unix_time_millis``.

Parsing is done once, when the template is configured (:func:`compile_template` raises ValueError);
rendering is pure apart from ``uuid``/``random``/time. Input is operator-written config, but the
parser is still linear and refuses deep nesting.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

_BASE62 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\\n]|\\.)*")|(?P<raw>`[^`]*`)|(?P<num>-?\d+)|(?P<field>\.[A-Za-z_]\w*)'
                    r'|(?P<ident>[A-Za-z_]\w*)|(?P<punct>[|()]))')
_MAX_DEPTH = 20

Node = tuple[str, Any]  # ("lit", value) | ("field", name) | ("call", (name, [args])) | ("pipe", [commands])


def _printf(fmt: str, *args: Any) -> str:
    out, i, it = [], 0, iter(args)
    for m in re.finditer(r"%([%sdvq])", fmt):
        out.append(fmt[i:m.start()])
        i = m.end()
        verb = m.group(1)
        if verb == "%":
            out.append("%")
            continue
        value = next(it, None)
        if value is None:
            out.append(f"%!{verb}(MISSING)")
        elif verb == "q":
            out.append(json.dumps(str(value)))
        else:
            out.append(str(value))
    out.append(fmt[i:])
    return "".join(out)


def _truncate(n: int, s: str) -> str:
    if n < 0:
        raise ValueError("max length must be >= 0")
    return s[:n]


def _truncate_sha256(n: int, s: str) -> str:
    if n <= 8:
        raise ValueError("max length must be > 8")
    return s if len(s) <= n else s[:n - 8] + hashlib.sha256(s[n - 8:].encode()).hexdigest()[:8]


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "printf": _printf,
    "uuid": lambda: str(uuid.uuid4()),
    "random": lambda n: "".join(secrets.choice(_BASE62) for _ in range(int(n))),
    "truncate": _truncate,
    "truncate_sha256": _truncate_sha256,
    "uppercase": lambda s: str(s).upper(),
    "lowercase": lambda s: str(s).lower(),
    "replace": lambda old, new, s: str(s).replace(str(old), str(new)),
    "sha256": lambda s: hashlib.sha256(str(s).encode()).hexdigest(),
    "base64": lambda s: base64.b64encode(str(s).encode()).decode(),
    "unix_time": lambda: str(int(time.time())),
    "unix_time_millis": lambda: str(int(time.time() * 1000)),
}


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None:
                if text[pos:].strip():
                    raise ValueError(f"unexpected {text[pos:].strip()[:20]!r} in action")
                break
            kind = m.lastgroup
            assert kind is not None
            self.tokens.append((kind, m.group(kind)))
            pos = m.end()
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def pipeline(self, depth: int = 0) -> Node:
        if depth > _MAX_DEPTH:
            raise ValueError("template nested too deeply")
        commands = [self.command(depth)]
        while self.peek() == ("punct", "|"):
            self.i += 1
            commands.append(self.command(depth))
        return ("pipe", commands)

    def command(self, depth: int) -> Node:
        operands: list[Node] = []
        while (tok := self.peek()) is not None and tok[1] not in ("|", ")"):
            operands.append(self.operand(depth))
        if not operands:
            raise ValueError("missing value for command")
        head = operands[0]
        if head[0] == "call":
            return ("call", (head[1][0], operands[1:]))
        if len(operands) > 1:
            raise ValueError("can't give argument to non-function")
        return head

    def operand(self, depth: int) -> Node:
        kind, value = self.tokens[self.i]
        self.i += 1
        if kind == "str":
            return ("lit", json.loads(value))
        if kind == "raw":
            return ("lit", value[1:-1])
        if kind == "num":
            return ("lit", int(value))
        if kind == "field":
            return ("field", value[1:])
        if kind == "ident":
            if value not in FUNCTIONS:
                raise ValueError(f'function "{value}" not defined')
            return ("call", (value, []))
        if value == "(":
            inner = self.pipeline(depth + 1)
            if self.peek() != ("punct", ")"):
                raise ValueError("unclosed left paren")
            self.i += 1
            return inner
        raise ValueError(f"unexpected {value!r} in operand")


def _eval(node: Node, values: Mapping[str, str], piped: tuple[Any, ...] = ()) -> Any:
    kind, arg = node
    if kind == "lit":
        return arg
    if kind == "field":
        if arg not in values:
            raise ValueError(f"can't evaluate field {arg}")
        return values[arg]
    if kind == "pipe":
        result: tuple[Any, ...] = ()
        for command in arg:
            result = (_eval(command, values, result),)
        return result[0]
    name, args = arg
    try:
        return FUNCTIONS[name](*[_eval(a, values) for a in args], *piped)
    except TypeError:
        raise ValueError(f"wrong number of args for {name}") from None


class Template:
    """A compiled username template; :meth:`render` with the request's metadata."""

    def __init__(self, parts: list[str | Node]) -> None:
        self._parts = parts

    def render(self, values: Mapping[str, str]) -> str:
        return "".join(p if isinstance(p, str) else str(_eval(p, values)) for p in self._parts)


def compile_template(text: str) -> Template:
    parts: list[str | Node] = []
    pos = 0
    while True:
        start = text.find("{{", pos)
        if start < 0:
            parts.append(text[pos:])
            break
        end = text.find("}}", start + 2)
        if end < 0:
            raise ValueError("unclosed action")
        literal, action = text[pos:start], text[start + 2:end]
        if action.startswith("-"):
            literal, action = literal.rstrip(), action[1:]
        trim_next = action.endswith("-")
        if trim_next:
            action = action[:-1]
        parts.append(literal)
        parser = _Parser(action)
        node = parser.pipeline()
        if parser.peek() is not None:
            raise ValueError(f"unexpected {parser.peek()[1]!r} in action")  # type: ignore[index]
        parts.append(node)
        pos = end + 2
        if trim_next:
            while pos < len(text) and text[pos].isspace():
                pos += 1
    return Template(parts)


__all__ = ["FUNCTIONS", "Template", "compile_template"]
