"""Username templates: the Go text/template subset of Vault's ``username_template`` (one copy for
every backend that generates names — aws, rabbitmq, database).

    {{ printf "v-%s-%s" (.DisplayName | truncate 8) (random 20) | uppercase }}
    {{ if eq .Type "STS" }}...{{ else if .X }}...{{ else }}...{{ end }}

Text outside ``{{ }}`` is copied (``{{-``/``-}}`` trim the whitespace beside them, ``{{/* */}}`` is
a comment). An action is a pipeline of commands joined by ``|``; the value of one is the last
argument of the next. Operands: "strings" (Go escapes), `raw strings`, integers, ``true``/``false``,
``.Field`` (a key of the data; a missing one is an error, as on Vault's structs), ``(pipeline)``.

Functions are Vault's sdk/helper/template set — ``random N`` (base62), ``truncate N s``,
``truncate_sha256 N s``, ``uppercase``, ``lowercase``, ``replace old new s``, ``sha256``, ``base64``,
``decode_base64``, ``hex``, ``decode_hex``, ``unix_time``, ``unix_time_millis``, ``timestamp
LAYOUT`` (a Go time layout), ``uuid``, ``glob PATTERN s`` — and text/template's ``printf``,
``print``, ``eq``, ``ne``, ``not``, ``and``, ``or``. Argument counts and types are checked as Go
checks them (``wrong number of args for truncate: want 2 got 1``).

A template is parsed once (:func:`compile_username_template`, cached; :class:`UsernameTemplateError` says what is
wrong) and rendered many times; parsing is linear with bounded length and nesting. Everything a
backend adds (its data fields, length limits, its default template) stays in the backend.

The parser and node tree are in usernames_parse.py, the functions and :class:`UsernameTemplateError` in
usernames_funcs.py, Go's printing of values in gofmt.py; this module renders.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from strongroom.framework.gofmt import go_str, go_type
from strongroom.framework.usernames_funcs import FUNCS, Func, UsernameTemplateError
from strongroom.framework.usernames_parse import Apply, Call, FieldRef, If, Lit, Node, Operand, parse


# -- render --------------------------------------------------------------------------------------
def _check(name: str, f: Func, args: list[Any]) -> None:
    fixed = len(f.params)
    if (f.variadic is None and len(args) != fixed) or len(args) < fixed:
        want = f"at least {fixed}" if f.variadic is not None else str(fixed)
        raise UsernameTemplateError(f"wrong number of args for {name}: want {want} got {len(args)}")
    for i, a in enumerate(args):
        want_type = f.params[i] if i < fixed else f.variadic
        ok = (want_type == "any" or (want_type == "string" and isinstance(a, str))
              or (want_type == "int" and isinstance(a, int) and not isinstance(a, bool)))
        if not ok:
            raise UsernameTemplateError(f"wrong type for value; expected {want_type}; got {go_type(a)}")


def _call(name: str, args: list[Any]) -> Any:
    f = FUNCS[name]
    _check(name, f, args)
    try:
        return f.fn(*args)
    except UsernameTemplateError as e:
        raise UsernameTemplateError(f"error calling {name}: {e}") from None


def _operand(op: Operand, data: Mapping[str, Any], piped: list[Any]) -> Any:
    if isinstance(op, Call):
        return _call(op.name, [_operand(a, data, []) for a in op.args] + piped)
    if isinstance(op, Lit):
        return op.value
    if isinstance(op, Apply):
        if isinstance(op.head, FieldRef) and op.head.name:
            raise UsernameTemplateError(f"{op.head.name} has arguments but cannot be invoked as function")
        shown = "(...)"
        if isinstance(op.head, Lit):
            v = op.head.value
            shown = json.dumps(v) if isinstance(v, str) else go_str(v)
        raise UsernameTemplateError(f"can't give argument to non-function {shown}")
    if isinstance(op, FieldRef):
        if op.name == "":
            return data
        if op.name not in data:
            raise UsernameTemplateError(f"can't evaluate field {op.name}")
        return data[op.name]
    value: Any = None
    for n, command in enumerate(op.commands):
        value = _operand(command, data, [value] if n else [])
    return value


def _render(nodes: tuple[Node, ...], data: Mapping[str, Any], out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, If):
            _render(node.then if _operand(node.cond, data, []) else node.otherwise, data, out)
        else:
            out.append(go_str(_operand(node, data, [])))


class UsernameTemplate:
    """A parsed template; :meth:`render` with the backend's data (``{"DisplayName": ...}``)."""

    __slots__ = ("nodes", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.nodes = parse(text)

    def render(self, data: Mapping[str, Any]) -> str:
        out: list[str] = []
        _render(self.nodes, data, out)
        return "".join(out)


@functools.lru_cache(maxsize=256)
def compile_username_template(text: str) -> UsernameTemplate:
    """The parsed template for ``text``, cached (a backend may call this on every request)."""
    return UsernameTemplate(text)


def render(template: str, data: Mapping[str, Any]) -> str:
    """Parse (cached) and render in one step; :class:`UsernameTemplateError` on any failure."""
    return compile_username_template(template).render(data)



__all__ = ["UsernameTemplate", "compile_username_template", "render"]
