"""Parsing username templates: the node tree (``Lit``, ``FieldRef``, ``Call``, ``Apply``, ``Pipeline``,
``If``) and ``parse``, which splits the text into ``{{ }}`` actions (trim markers, comments), tokenises
each action and builds its pipeline, with ``if``/``else if``/``else``/``end``. Parsing is linear, bounded
by ``MAX_LENGTH`` and ``MAX_DEPTH``; an unknown function is an error here, as in Go."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, TypeAlias

from strongroom.framework.usernames_funcs import FUNCS, UsernameTemplateError

#: Bounds on what is parsed: far past any username template.
MAX_LENGTH = 4096
MAX_DEPTH = 32


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
