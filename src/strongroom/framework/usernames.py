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
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import re
import secrets
import string
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

from strongroom.framework.globs import glob_match

#: Bounds on what is parsed and produced: far past any username template.
MAX_LENGTH = 4096
MAX_DEPTH = 32
MAX_RANDOM = 4096
_B64 = frozenset(string.ascii_letters + string.digits + "+/=")
_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


class UsernameTemplateError(ValueError):
    """The template does not parse, or cannot be rendered with the data given."""


# -- the node tree -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Lit:
    value: Any


@dataclass(frozen=True, slots=True)
class FieldRef:
    name: str  # "" is ``.``, the data itself


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple[Operand, ...]


@dataclass(frozen=True, slots=True)
class Apply:
    """A value given arguments (``{{ .A .B }}``, ``{{ .A | .B }}``): Go refuses it when it runs."""

    head: Lit | FieldRef | Pipeline
    args: tuple[Operand, ...]


@dataclass(frozen=True, slots=True)
class Pipeline:
    commands: tuple[Operand, ...]  # the first command is any operand; the rest are calls


Operand: TypeAlias = "Lit | FieldRef | Call | Apply | Pipeline"


@dataclass(frozen=True, slots=True)
class If:
    cond: Pipeline
    then: tuple[Node, ...]
    otherwise: tuple[Node, ...]


Node: TypeAlias = "str | Pipeline | If"


# -- functions -----------------------------------------------------------------------------------
def _go_type(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, str):
        return "string"
    if isinstance(v, Mapping):
        return "map[string]interface {}"
    return "<nil>" if v is None else type(v).__name__


def _go_str(v: Any) -> str:
    """A value as Go's fmt prints it with %v."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "<nil>"
    if isinstance(v, Mapping):  # the data is a struct in Vault: its values, in order
        return "{" + " ".join(_go_str(x) for x in v.values()) + "}"
    return str(v)


_VERB = re.compile(r"%([-+# 0]*)(\d*)(?:\.(\d*))?(.?)", re.S)


def _printf(fmt: str, *args: Any) -> str:
    """Go's fmt.Sprintf for the verbs a name needs: %v %s %d %q %x %X %t %%, width, ``-``/``0``
    flags, precision (string length for %s); a wrong or missing argument prints as Go does."""
    out: list[str] = []
    pos = 0
    n = 0
    for m in _VERB.finditer(fmt):
        out.append(fmt[pos:m.start()])
        pos = m.end()
        flags, width, prec, verb = m.group(1), m.group(2), m.group(3), m.group(4)
        if verb == "%":
            out.append("%")
            continue
        if not verb:
            out.append("%!(NOVERB)")
            continue
        if n >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        v = args[n]
        n += 1
        s: str
        if verb == "v" or (verb == "s" and isinstance(v, str)) or (verb == "t" and isinstance(v, bool)):
            s = _go_str(v)
            if prec is not None and verb == "s":
                s = s[:int(prec or 0)]
        elif verb == "d" and isinstance(v, int) and not isinstance(v, bool):
            s = f"{v:+d}" if "+" in flags else str(v)
        elif verb == "q" and isinstance(v, str):
            s = json.dumps(v, ensure_ascii=False)
        elif verb in "xX" and isinstance(v, (str, int)) and not isinstance(v, bool):
            s = v.encode().hex() if isinstance(v, str) else format(v, "x")
            s = s.upper() if verb == "X" else s
        else:
            out.append(f"%!{verb}({_go_type(v)}={_go_str(v)})")
            continue
        if width and len(s) < int(width):
            pad = int(width) - len(s)
            if "-" in flags:
                s += " " * pad
            elif "0" in flags and verb in "dxX":
                sign = s[0] if s[:1] in ("-", "+") else ""
                s = sign + "0" * pad + s[len(sign):]
            else:
                s = " " * pad + s
        out.append(s)
    out.append(fmt[pos:])
    if n < len(args):
        out.append("%!(EXTRA " + ", ".join(f"{_go_type(a)}={_go_str(a)}" for a in args[n:]) + ")")
    return "".join(out)


def _print(*args: Any) -> str:
    # Go's fmt.Sprint: a space between operands when neither is a string.
    out: list[str] = []
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(_go_str(a))
    return "".join(out)


def _byte_prefix(s: str, n: int) -> str:
    # Go slices strings by byte; a character cut in half is dropped rather than left invalid.
    return s.encode()[:n].decode(errors="ignore")


def _truncate(n: int, s: str) -> str:
    if n <= 0:
        raise UsernameTemplateError(f"max length must be > 0 but was {n}")
    return s if len(s.encode()) <= n else _byte_prefix(s, n)


def _truncate_sha256(n: int, s: str) -> str:
    if n <= 8:
        raise UsernameTemplateError(f"max length must be > 8 but was {n}")
    raw = s.encode()
    if len(raw) <= n:
        return s
    head = _byte_prefix(s, n - 8)
    return head + hashlib.sha256(raw[len(head.encode()):]).hexdigest()[:8]


def _random(n: int) -> str:
    if n < 0:
        raise UsernameTemplateError(f"random length must be >= 0 but was {n}")
    if n > MAX_RANDOM:
        raise UsernameTemplateError(f"random length must be at most {MAX_RANDOM} but was {n}")
    return "".join(secrets.choice(_BASE62) for _ in range(n))


def _decode_base64(s: str) -> str:
    # Go's StdEncoding: padded, no whitespace skipped; the result is bytes (kept when they are UTF-8)
    bad = next((i for i, c in enumerate(s) if c not in _B64), None)
    if bad is None and len(s) % 4:
        bad = len(s) - len(s) % 4
    try:
        if bad is not None:
            raise binascii.Error
        return base64.b64decode(s, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise UsernameTemplateError(f"illegal base64 data at input byte {bad or 0}") from None


def _decode_hex(s: str) -> str:
    bad = next((c for c in s if c not in string.hexdigits), None)
    if bad is not None:
        raise UsernameTemplateError(f"encoding/hex: invalid byte: U+{ord(bad):04X} {bad!r}")
    if len(s) % 2:
        raise UsernameTemplateError("encoding/hex: odd length hex string")
    try:
        return bytes.fromhex(s).decode()
    except UnicodeDecodeError:
        raise UsernameTemplateError("decoded data is not UTF-8 text") from None


def _eq(a: Any, *bs: Any) -> bool:
    if not bs:
        raise UsernameTemplateError("missing argument for comparison")
    for b in bs:
        if type(a) is not type(b):
            raise UsernameTemplateError(f"incompatible types for comparison: {_go_type(a)} and {_go_type(b)}")
        if a == b:
            return True
    return False


def _ne(a: Any, b: Any) -> bool:
    return not _eq(a, b)


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_LAYOUT = re.compile(r"January|Jan|Monday|Mon|MST|2006|002|__2|_2(?!006)|01|02|03|04|05|06|15|1|2|3|4|5|PM|pm"
                     r"|[-Z]07:00:00|[-Z]070000|[-Z]07:00|[-Z]0700|[-Z]07|[.,](?:0+|9+)(?!\d)")


def go_time_format(layout: str, t: datetime) -> str:
    """``t`` formatted with a Go reference-time layout ("2006-01-02T15:04:05.000Z07:00")."""

    def one(m: re.Match[str]) -> str:
        tok = m.group(0)
        h12 = t.hour % 12 or 12
        simple = {
            "January": _MONTHS[t.month - 1], "Jan": _MONTHS[t.month - 1][:3], "Monday": _DAYS[t.weekday()],
            "Mon": _DAYS[t.weekday()][:3], "2006": f"{t.year:04d}", "06": f"{t.year % 100:02d}",
            "01": f"{t.month:02d}", "1": str(t.month), "02": f"{t.day:02d}", "2": str(t.day),
            "_2": f"{t.day:2d}", "002": f"{t.timetuple().tm_yday:03d}", "__2": f"{t.timetuple().tm_yday:3d}",
            "15": f"{t.hour:02d}", "03": f"{h12:02d}", "3": str(h12), "04": f"{t.minute:02d}",
            "4": str(t.minute), "05": f"{t.second:02d}", "5": str(t.second),
            "PM": "PM" if t.hour >= 12 else "AM", "pm": "pm" if t.hour >= 12 else "am",
        }
        if tok in simple:
            return simple[tok]
        if tok == "MST":
            return t.tzname() or "UTC"
        if tok[0] in ".,":
            digits = f"{t.microsecond:06d}000"[:len(tok) - 1]
            if tok[1] == "9":
                digits = digits.rstrip("0")
                return tok[0] + digits if digits else ""
            return tok[0] + digits
        off = t.utcoffset()
        secs = int(off.total_seconds()) if off is not None else 0
        if tok[0] == "Z" and secs == 0:
            return "Z"
        sign = "-" if secs < 0 else "+"
        hh, rest = divmod(abs(secs), 3600)
        mm, ss = divmod(rest, 60)
        body = tok[1:]
        if body == "07":
            return f"{sign}{hh:02d}"
        colon = ":" if ":" in body else ""
        out = f"{sign}{hh:02d}{colon}{mm:02d}"
        return out + f"{colon}{ss:02d}" if len(body.replace(":", "")) == 6 else out

    return _LAYOUT.sub(one, layout)


def _timestamp(layout: str) -> str:
    return go_time_format(layout, datetime.now().astimezone())


@dataclass(frozen=True, slots=True)
class Func:
    """A template function: ``params`` are the Go types of its arguments ("int", "string", "any");
    ``variadic`` the type of any further ones (None: a fixed count)."""

    fn: Callable[..., Any]
    params: tuple[str, ...]
    variadic: str | None = None


FUNCS: dict[str, Func] = {
    # Vault's sdk/helper/template
    "random": Func(_random, ("int",)),
    "truncate": Func(_truncate, ("int", "string")),
    "truncate_sha256": Func(_truncate_sha256, ("int", "string")),
    "uppercase": Func(str.upper, ("string",)),
    "lowercase": Func(str.lower, ("string",)),
    "replace": Func(lambda old, new, s: s.replace(old, new), ("string", "string", "string")),
    "sha256": Func(lambda s: hashlib.sha256(s.encode()).hexdigest(), ("string",)),
    "base64": Func(lambda s: base64.b64encode(s.encode()).decode(), ("string",)),
    "decode_base64": Func(_decode_base64, ("string",)),
    "hex": Func(lambda s: s.encode().hex(), ("string",)),
    "decode_hex": Func(_decode_hex, ("string",)),
    "unix_time": Func(lambda: str(int(time.time())), ()),
    "unix_time_millis": Func(lambda: str(time.time_ns() // 1_000_000), ()),
    "timestamp": Func(_timestamp, ("string",)),
    "uuid": Func(lambda: str(uuid.uuid4()), ()),
    "glob": Func(glob_match, ("string", "string")),
    # text/template builtins
    "printf": Func(_printf, ("string",), "any"),
    "print": Func(_print, (), "any"),
    "eq": Func(_eq, ("any",), "any"),
    "ne": Func(_ne, ("any", "any")),
    "not": Func(lambda v: not v, ("any",)),
    "and": Func(lambda a, *r: functools.reduce(lambda x, y: x and y, r, a), ("any",), "any"),
    "or": Func(lambda a, *r: functools.reduce(lambda x, y: x or y, r, a), ("any",), "any"),
}


# -- parse ---------------------------------------------------------------------------------------
_TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\\n]|\\.)*")|(?P<raw>`[^`]*`)|(?P<num>-?\d+)(?![\w.])'
                    r'|(?P<field>\.(?:[A-Za-z_]\w*)?)|(?P<ident>[A-Za-z_]\w*)|(?P<punct>[()|]))')


def _go_string(tok: str) -> str:
    try:
        return tok[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError:
        raise UsernameTemplateError(f"malformed string {tok}") from None


class _Parser:
    def __init__(self, src: str) -> None:
        self.toks: list[tuple[str, str]] = []
        self.i = 0
        pos, src = 0, src.rstrip()
        while pos < len(src):
            m = _TOKEN.match(src, pos)
            if m is None:
                raise UsernameTemplateError(f"unexpected {src[pos:].strip()[:20]!r} in action")
            kind = m.lastgroup or ""
            self.toks.append((kind, m.group(kind)))
            pos = m.end()

    def peek(self) -> str | None:
        return self.toks[self.i][1] if self.i < len(self.toks) else None

    def whole(self) -> Pipeline:
        pipe = self.pipeline(0)
        if self.i != len(self.toks):
            tok = self.toks[self.i][1]
            raise UsernameTemplateError("unexpected right paren" if tok == ")" else f"unexpected {tok!r} in action")
        return pipe

    def pipeline(self, depth: int) -> Pipeline:
        if depth > MAX_DEPTH:
            raise UsernameTemplateError(f"nested more than {MAX_DEPTH} levels deep")
        commands = [self.command(depth)]
        while self.peek() == "|":
            self.i += 1
            cmd = self.command(depth)
            if isinstance(cmd, FieldRef):
                cmd = Apply(cmd, ())  # the piped value is its argument
            elif not (isinstance(cmd, Call) or (isinstance(cmd, Apply) and isinstance(cmd.head, FieldRef))):
                raise UsernameTemplateError(f"non executable command in pipeline stage {len(commands) + 1}")
            commands.append(cmd)
        return Pipeline(tuple(commands))

    def command(self, depth: int) -> Operand:
        operands: list[Operand] = []
        while (tok := self.peek()) is not None and tok not in ("|", ")"):
            operands.append(self.operand(depth))
        if not operands:
            raise UsernameTemplateError("missing value for command")
        head = operands[0]
        if isinstance(head, Call):
            return Call(head.name, tuple(operands[1:]))
        if len(operands) > 1:
            assert not isinstance(head, Apply)
            return Apply(head, tuple(operands[1:]))
        return head

    def operand(self, depth: int) -> Operand:
        kind, tok = self.toks[self.i]
        self.i += 1
        if kind == "str":
            return Lit(_go_string(tok))
        if kind == "raw":
            return Lit(tok[1:-1])
        if kind == "num":
            return Lit(int(tok))
        if kind == "field":
            return FieldRef(tok[1:])
        if kind == "ident":
            if tok in ("true", "false"):
                return Lit(tok == "true")
            if tok not in FUNCS:
                raise UsernameTemplateError(f'function "{tok}" not defined')
            return Call(tok, ())
        if tok == "(":
            inner = self.pipeline(depth + 1)
            if self.peek() != ")":
                raise UsernameTemplateError("unclosed left paren")
            self.i += 1
            return inner
        raise UsernameTemplateError("unexpected right paren" if tok == ")" else f"unexpected {tok!r} in operand")


_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)


def parse(template: str) -> tuple[Node, ...]:
    """The template's node tree; :class:`UsernameTemplateError` says what is wrong with it."""
    if len(template) > MAX_LENGTH:
        raise UsernameTemplateError(f"longer than {MAX_LENGTH} characters")
    pieces: list[tuple[str, str]] = []  # ("text", s) | ("action", s)
    pos = 0
    trim_next = False
    for m in _ACTION.finditer(template):
        before = template[pos:m.start()]
        if trim_next:
            before = before.lstrip()
        if m.group(1):
            before = before.rstrip()
        if before:
            pieces.append(("text", before))
        body = m.group(2).strip()
        if body.startswith("/*"):
            if not body.endswith("*/"):
                raise UsernameTemplateError("unclosed comment")
        else:
            pieces.append(("action", body))
        trim_next = bool(m.group(3))
        pos = m.end()
    rest = template[pos:].lstrip() if trim_next else template[pos:]
    if "{{" in rest:
        raise UsernameTemplateError("unclosed action")
    if rest:
        pieces.append(("text", rest))
    nodes, _, end = _parse_nodes(pieces, 0, 0)
    if end:
        raise UsernameTemplateError(f"unexpected {{{{{end.split()[0]}}}}}")
    return nodes


def _parse_nodes(pieces: list[tuple[str, str]], i: int, depth: int) -> tuple[tuple[Node, ...], int, str]:
    """Nodes up to an ``else``/``end`` (returned as the third item, "" at the end of the text)."""
    if depth > MAX_DEPTH:
        raise UsernameTemplateError(f"nested more than {MAX_DEPTH} levels deep")
    nodes: list[Node] = []
    while i < len(pieces):
        kind, body = pieces[i]
        i += 1
        word = (body.split(None, 1) or [""])[0]
        if kind == "text":
            nodes.append(body)
        elif body in ("else", "end") or (word == "else" and body.split()[1:2] == ["if"]):
            return tuple(nodes), i, body
        elif word == "if":
            node, i = _parse_if(pieces, i, body[2:], depth)
            nodes.append(node)
        elif word in ("range", "with", "define", "template", "block", "break", "continue", "else"):
            raise UsernameTemplateError(f"unsupported action {word!r}")
        else:
            nodes.append(_Parser(body).whole())
    return tuple(nodes), i, ""


def _parse_if(pieces: list[tuple[str, str]], i: int, cond_src: str, depth: int) -> tuple[If, int]:
    if not cond_src.strip():
        raise UsernameTemplateError("missing value for if")
    cond = _Parser(cond_src).whole()
    then, i, end = _parse_nodes(pieces, i, depth + 1)
    otherwise: tuple[Node, ...] = ()
    if end == "else":
        otherwise, i, end = _parse_nodes(pieces, i, depth + 1)
    elif end.startswith("else"):  # else if C: an if in the else branch, sharing this {{end}}
        inner, i = _parse_if(pieces, i, end.split(None, 2)[2] if len(end.split()) > 2 else "", depth + 1)
        return If(cond, then, (inner,)), i
    if end.startswith("else"):
        raise UsernameTemplateError("expected end; found {{else}}")
    if end != "end":
        raise UsernameTemplateError("unexpected EOF: missing {{end}}")
    return If(cond, then, otherwise), i


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
            raise UsernameTemplateError(f"wrong type for value; expected {want_type}; got {_go_type(a)}")


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
            shown = json.dumps(v) if isinstance(v, str) else _go_str(v)
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
            out.append(_go_str(_operand(node, data, [])))


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


__all__ = ["FUNCS", "MAX_DEPTH", "MAX_LENGTH", "UsernameTemplateError", "UsernameTemplate", "compile_username_template",
           "go_time_format", "parse", "render"]
