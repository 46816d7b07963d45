"""Username templates (Vault's ``username_template``): the subset of Go's text/template that
Vault's templates use, evaluated over ``.Type`` ("IAM" or "STS"), ``.DisplayName`` and ``.PolicyName``.

Supported: literal text; actions ``{{ pipeline }}`` (``{{-``/``-}}`` trim whitespace); ``{{ if
pipeline }} ... {{ else }} ... {{ end }}``; pipelines of commands joined by ``|`` (the value piped
in is the last argument); operands: "strings", `raw strings`, integers, ``.Field``, ``(pipeline)``.
Functions (Vault's sdk/helper/template): ``printf`` (%s %d %v %%), ``eq``, ``ne``, ``random N``,
``truncate N s``, ``truncate_sha256 N s``, ``uppercase``, ``lowercase``, ``replace old new s``,
``sha256``, ``base64``, ``unix_time``, ``unix_time_millis``, ``uuid``. Anything else is refused
when the template is written (parse) or used (a 400), never half-rendered. Pure: the clock and the
randomness come from the caller (``secrets`` by default).
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
from typing import Any, TypeAlias

DEFAULT_TEMPLATE = (
    '{{ if (eq .Type "STS") }}{{ printf "vault-%s-%s"  (unix_time) (random 20) | truncate 32 }}'
    '{{ else }}{{ printf "vault-%s-%s-%s" (printf "%s-%s" (.DisplayName) (.PolicyName) | truncate 42) '
    '(unix_time) (random 20) | truncate 64 }}{{ end }}'
)
#: Bounds on what is parsed (recursion, time): far past any username template.
MAX_LENGTH = 4096
MAX_DEPTH = 32
IAM_MAX = 64
STS_MAX = 32
_ALPHANUM = string.ascii_letters + string.digits


class TemplateError(ValueError):
    pass


# -- parse ---------------------------------------------------------------------------------------
_TOKEN = re.compile(r'\s*(?:("(?:[^"\\]|\\.)*")|(`[^`]*`)|(-?\d+)|(\.[A-Za-z_]\w*|\.)|([A-Za-z_]\w*)|([()|]))')


@dataclass(frozen=True, slots=True)
class Lit:
    value: Any


@dataclass(frozen=True, slots=True)
class FieldRef:
    name: str


@dataclass(frozen=True, slots=True)
class Ident:
    name: str


@dataclass(frozen=True, slots=True)
class Pipeline:
    commands: tuple[tuple[Operand, ...], ...]


Operand: TypeAlias = "Lit | FieldRef | Ident | Pipeline"


@dataclass(frozen=True, slots=True)
class If:
    cond: Pipeline
    then: tuple[Node, ...]
    otherwise: tuple[Node, ...]


Node: TypeAlias = "str | Pipeline | If"


def _tokens(src: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    pos = 0
    src = src.rstrip()
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if m is None or m.end() == pos:
            raise TemplateError(f"unexpected {src[pos:].strip()[:20]!r} in action")
        kind = m.lastindex or 0
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _go_string(tok: str) -> str:
    body = tok[1:-1]
    try:
        return body.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError:
        raise TemplateError(f"bad string {tok}") from None


def _parse_pipeline(toks: list[tuple[int, str]], i: int, *, nested: bool, depth: int = 0) -> tuple[Pipeline, int]:
    if depth > MAX_DEPTH:
        raise TemplateError(f"nested more than {MAX_DEPTH} levels deep")
    commands: list[tuple[Operand, ...]] = []
    current: list[Operand] = []
    while i < len(toks):
        kind, tok = toks[i]
        if tok == ")" and kind == 6:
            if not nested:
                raise TemplateError("unexpected )")
            break
        i += 1
        if kind == 6 and tok == "|":
            if not current:
                raise TemplateError("missing command before |")
            commands.append(tuple(current))
            current = []
        elif kind == 6 and tok == "(":
            inner, i = _parse_pipeline(toks, i, nested=True, depth=depth + 1)
            if i >= len(toks):
                raise TemplateError("unclosed (")
            i += 1
            current.append(inner)
        elif kind in (1, 2):
            current.append(Lit(_go_string(tok) if kind == 1 else tok[1:-1]))
        elif kind == 3:
            current.append(Lit(int(tok)))
        elif kind == 4:
            current.append(FieldRef(tok[1:]))
        elif tok in ("true", "false"):
            current.append(Lit(tok == "true"))
        else:
            if tok not in FUNCS:
                raise TemplateError(f'function "{tok}" not defined')
            current.append(Ident(tok))
    if not current:
        raise TemplateError("missing value for command")
    commands.append(tuple(current))
    return Pipeline(tuple(commands)), i


def _pipeline(src: str) -> Pipeline:
    toks = _tokens(src)
    pipe, i = _parse_pipeline(toks, 0, nested=False)
    if i != len(toks):
        raise TemplateError("unexpected ) in action")
    return pipe


_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)


def parse(template: str) -> tuple[Node, ...]:
    """The template's node tree; :class:`TemplateError` says what is wrong with it."""
    if len(template) > MAX_LENGTH:
        raise TemplateError(f"longer than {MAX_LENGTH} characters")
    pieces: list[tuple[str, str]] = []  # ("text", s) | ("action", s)
    pos = 0
    for m in _ACTION.finditer(template):
        before = template[pos:m.start()]
        if m.group(1):
            before = before.rstrip()
        if pieces and pieces[-1][0] == "trim":
            pieces.pop()
            before = before.lstrip()
        if before:
            pieces.append(("text", before))
        pieces.append(("action", m.group(2).strip()))
        if m.group(3):
            pieces.append(("trim", ""))
        pos = m.end()
    rest = template[pos:]
    if pieces and pieces[-1][0] == "trim":
        pieces.pop()
        rest = rest.lstrip()
    if "{{" in rest:
        raise TemplateError("unclosed action")
    if rest:
        pieces.append(("text", rest))
    nodes, i, end = _parse_nodes(pieces, 0)
    if end:
        raise TemplateError(f"unexpected {{{{{end}}}}}")
    return nodes


def _parse_nodes(pieces: list[tuple[str, str]], i: int, depth: int = 0) -> tuple[tuple[Node, ...], int, str]:
    if depth > MAX_DEPTH:
        raise TemplateError(f"nested more than {MAX_DEPTH} levels deep")
    nodes: list[Node] = []
    while i < len(pieces):
        kind, body = pieces[i]
        i += 1
        if kind == "text":
            nodes.append(body)
        elif body in ("else", "end"):
            return tuple(nodes), i, body
        elif body.startswith("if ") or body == "if":
            cond = _pipeline(body[2:])
            then, i, end = _parse_nodes(pieces, i, depth + 1)
            otherwise: tuple[Node, ...] = ()
            if end == "else":
                otherwise, i, end = _parse_nodes(pieces, i, depth + 1)
            if end != "end":
                raise TemplateError("unexpected EOF: missing {{end}}")
            nodes.append(If(cond, then, otherwise))
        elif body.startswith(("/*", "range", "with", "define", "template", "block")):
            raise TemplateError(f"unsupported action {body.split()[0]!r}")
        else:
            nodes.append(_pipeline(body))
    return tuple(nodes), i, ""


# -- evaluate ------------------------------------------------------------------------------------
def _printf(fmt: str, *args: Any) -> str:
    it = iter(args)

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "%%":
            return "%"
        try:
            v = next(it)
        except StopIteration:
            return f"%!{m.group(0)[1]}(MISSING)"
        return str(v).lower() if isinstance(v, bool) else str(v)

    return re.sub(r"%[sdv%]", one, str(fmt))


def _truncate(n: int, s: str) -> str:
    if n < 0:
        raise TemplateError("max length must be >= 0")
    return str(s)[:n]


def _truncate_sha256(n: int, s: str) -> str:
    s = str(s)
    if len(s) <= n:
        return s
    if n <= 8:
        raise TemplateError("max length must be > 8")
    return s[:n - 8] + hashlib.sha256(s.encode()).hexdigest()[:8]


def _random(n: int) -> str:
    if not 1 <= int(n) <= 256:
        raise TemplateError("random length must be between 1 and 256")
    return "".join(secrets.choice(_ALPHANUM) for _ in range(int(n)))


def _replace(old: str, new: str, s: str) -> str:
    return str(s).replace(str(old), str(new))


FUNCS: dict[str, Callable[..., Any]] = {
    "printf": _printf,
    "eq": lambda a, *bs: any(a == b for b in bs),
    "ne": lambda a, b: a != b,
    "random": _random,
    "truncate": _truncate,
    "truncate_sha256": _truncate_sha256,
    "uppercase": lambda s: str(s).upper(),
    "lowercase": lambda s: str(s).lower(),
    "replace": _replace,
    "sha256": lambda s: hashlib.sha256(str(s).encode()).hexdigest(),
    "base64": lambda s: base64.b64encode(str(s).encode()).decode(),
    "unix_time": lambda: str(int(time.time())),
    "unix_time_millis": lambda: str(int(time.time() * 1000)),
    "uuid": lambda: str(uuid.uuid4()),
}


def _operand(op: Operand, data: Mapping[str, Any]) -> Any:
    if isinstance(op, Lit):
        return op.value
    if isinstance(op, FieldRef):
        if op.name == "":
            return dict(data)
        if op.name not in data:
            raise TemplateError(f"can't evaluate field {op.name}")
        return data[op.name]
    if isinstance(op, Pipeline):
        return _eval(op, data)
    return _call(op.name, [], data)


def _call(name: str, args: list[Any], data: Mapping[str, Any]) -> Any:
    try:
        return FUNCS[name](*args)
    except TemplateError:
        raise
    except (TypeError, ValueError) as e:
        raise TemplateError(f"error calling {name}: {e}") from None


def _eval(pipe: Pipeline, data: Mapping[str, Any]) -> Any:
    value: Any = None
    piped = False
    for command in pipe.commands:
        head, rest = command[0], command[1:]
        if isinstance(head, Ident):
            args = [_operand(a, data) for a in rest] + ([value] if piped else [])
            value = _call(head.name, args, data)
        else:
            if rest or piped:
                raise TemplateError("can't give argument to non-function")
            value = _operand(head, data)
        piped = True
    return value


def _truthy(v: Any) -> bool:
    return bool(v)


def _render(nodes: tuple[Node, ...], data: Mapping[str, Any], out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, If):
            _render(node.then if _truthy(_eval(node.cond, data)) else node.otherwise, data, out)
        else:
            v = _eval(node, data)
            out.append(str(v).lower() if isinstance(v, bool) else str(v))


def render(template: str | tuple[Node, ...], data: Mapping[str, Any]) -> str:
    nodes = parse(template) if isinstance(template, str) else template
    out: list[str] = []
    _render(nodes, data, out)
    return "".join(out)


_DISPLAY_BAD = re.compile(r"[^a-zA-Z0-9+=,.@_-]")


def normalize(name: str) -> str:
    """Vault's normalizeDisplayName: characters IAM does not take in names become "_"."""
    return _DISPLAY_BAD.sub("_", name)


def generate(template: str, kind: str, display_name: str = "", policy_name: str = "") -> str:
    """A username for ``kind`` "IAM" (at most 64 characters) or "STS" (at most 32)."""
    data = {"Type": kind, "DisplayName": normalize(display_name), "PolicyName": normalize(policy_name)}
    name = render(template or DEFAULT_TEMPLATE, data)
    limit = IAM_MAX if kind == "IAM" else STS_MAX
    if len(name) > limit:
        raise TemplateError(f"the username generated by the template exceeds the {kind} username length "
                            f"limits of {limit} chars")
    if not name:
        raise TemplateError("the username template generated an empty username")
    return name


__all__ = ["DEFAULT_TEMPLATE", "TemplateError", "generate", "normalize", "parse", "render"]
