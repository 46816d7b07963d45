"""Canonical formatting of HCL policy documents, for ``policy fmt``.

A small tokenizer and parser for the HCL subset policies use (blocks, attributes, strings,
lists, objects, comments, heredocs), and a printer that indents by two spaces, aligns the
``=`` of consecutive one-line attributes, puts blank lines around multi-line items, and keeps
every comment. Anything it cannot parse raises ``HCLError`` with a line and column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


class HCLError(Exception):
    """The document is not valid HCL."""


@dataclass(slots=True)
class Token:
    kind: str  # STRING WORD HEREDOC COMMENT NL { } [ ] = , EOF
    text: str
    line: int
    col: int


_WORD = re.compile(r"[A-Za-z0-9_.\-+*/:%$]+")
_HEREDOC = re.compile(r"<<(-?)([A-Za-z_][A-Za-z0-9_]*)\n")


def tokenize(src: str) -> list[Token]:
    toks: list[Token] = []
    i, line, line_start = 0, 1, 0
    n = len(src)
    while i < n:
        ch = src[i]
        col = i - line_start + 1
        if ch in " \t\r":
            i += 1
        elif ch == "\n":
            toks.append(Token("NL", "\n", line, col))
            i += 1
            line, line_start = line + 1, i
        elif ch == "#" or src.startswith("//", i):
            end = src.find("\n", i)
            end = n if end < 0 else end
            toks.append(Token("COMMENT", src[i:end].rstrip(), line, col))
            i = end
        elif src.startswith("/*", i):
            end = src.find("*/", i + 2)
            if end < 0:
                raise HCLError(f"At {line}:{col}: comment not terminated")
            text = src[i:end + 2]
            toks.append(Token("COMMENT", text, line, col))
            line += text.count("\n")
            if "\n" in text:
                line_start = i + text.rfind("\n") + 1
            i = end + 2
        elif ch == '"':
            j = i + 1
            while j < n and src[j] != '"':
                if src[j] == "\n":
                    raise HCLError(f"At {line}:{col}: literal not terminated")
                j += 2 if src[j] == "\\" else 1
            if j >= n:
                raise HCLError(f"At {line}:{col}: literal not terminated")
            toks.append(Token("STRING", src[i:j + 1], line, col))
            i = j + 1
        elif src.startswith("<<", i):
            m = _HEREDOC.match(src, i)
            if not m:
                raise HCLError(f"At {line}:{col}: invalid heredoc")
            end_re = re.compile(rf"^[ \t]*{m.group(2)}[ \t]*$", re.MULTILINE)
            close = end_re.search(src, m.end())
            if not close:
                raise HCLError(f"At {line}:{col}: heredoc not terminated")
            text = src[i:close.end()]
            toks.append(Token("HEREDOC", text, line, col))
            line += text.count("\n")
            line_start = close.end() - len(close.group(0))
            i = close.end()
        elif ch in "{}[]=,":
            toks.append(Token(ch, ch, line, col))
            i += 1
        else:
            m = _WORD.match(src, i)
            if not m:
                raise HCLError(f"At {line}:{col}: illegal char {ch!r}")
            toks.append(Token("WORD", m.group(0), line, col))
            i = m.end()
    toks.append(Token("EOF", "", line, i - line_start + 1))
    return toks


@dataclass(slots=True)
class Value:
    kind: str  # scalar | list | object
    text: str = ""
    items: list[tuple[Value | None, str]] = field(default_factory=list)  # (value or None for a comment, comment)
    multiline: bool = False
    body: list[Node] = field(default_factory=list)


@dataclass(slots=True)
class Node:
    kind: str  # attr | block | comment
    keys: list[str] = field(default_factory=list)
    value: Value | None = None
    body: list[Node] = field(default_factory=list)
    comment: str = ""
    blank_before: bool = False


class _Parser:
    def __init__(self, src: str) -> None:
        self.toks = tokenize(src)
        self.pos = 0

    def peek(self) -> Token:
        return self.toks[self.pos]

    def next(self) -> Token:
        tok = self.toks[self.pos]
        self.pos += 1
        return tok

    def fail(self, tok: Token, what: str) -> HCLError:
        got = "EOF" if tok.kind == "EOF" else tok.text
        return HCLError(f"At {tok.line}:{tok.col}: {what} got: {got}")

    def body(self, closing: bool) -> list[Node]:
        nodes: list[Node] = []
        newlines = 0
        while True:
            tok = self.peek()
            if tok.kind == "NL":
                newlines += 1
                self.next()
                continue
            blank = newlines >= 2 and bool(nodes)
            newlines = 0
            if tok.kind == "EOF":
                if closing:
                    raise self.fail(tok, "object expected closing RBRACE")
                return nodes
            if tok.kind == "}":
                if not closing:
                    raise self.fail(tok, "unexpected RBRACE")
                return nodes
            if tok.kind == "COMMENT":
                self.next()
                nodes.append(Node("comment", comment=tok.text, blank_before=blank))
                continue
            node = self.item()
            node.blank_before = blank
            nodes.append(node)

    def item(self) -> Node:
        keys: list[str] = []
        while self.peek().kind in ("WORD", "STRING"):
            keys.append(self.next().text)
        if not keys:
            raise self.fail(self.peek(), "expected a key")
        tok = self.next()
        if tok.kind == "=":
            if len(keys) != 1:
                raise self.fail(tok, "nested object expected: LBRACE")
            node = Node("attr", keys, value=self.value())
        elif tok.kind == "{":
            node = Node("block", keys, body=self.body(closing=True))
            self.next()
        else:
            raise self.fail(tok, "key expected EQUALS or LBRACE")
        if self.peek().kind == ",":
            self.next()
        if self.peek().kind == "COMMENT":
            node.comment = self.next().text
        tok = self.peek()
        if tok.kind not in ("NL", "EOF", "}"):
            raise self.fail(tok, "unexpected token after item")
        return node

    def value(self) -> Value:
        tok = self.next()
        if tok.kind in ("STRING", "WORD", "HEREDOC"):
            return Value("scalar", tok.text)
        if tok.kind == "{":
            body = self.body(closing=True)
            self.next()
            return Value("object", body=body)
        if tok.kind == "[":
            return self.list_value()
        raise self.fail(tok, "expected a value")

    def list_value(self) -> Value:
        v = Value("list")
        while True:
            tok = self.peek()
            if tok.kind == "NL":
                v.multiline = True
                self.next()
            elif tok.kind == "COMMENT":
                self.next()
                v.multiline = True
                last = v.items[-1] if v.items else None
                if last is not None and last[0] is not None and not last[1] and self.toks[self.pos - 2].kind != "NL":
                    v.items[-1] = (last[0], tok.text)
                else:
                    v.items.append((None, tok.text))
            elif tok.kind == "]":
                self.next()
                return v
            elif tok.kind == "EOF":
                raise self.fail(tok, "list expected closing RBRACK")
            else:
                v.items.append((self.value(), ""))
                if self.peek().kind == ",":
                    self.next()
                elif self.peek().kind not in ("]", "NL", "COMMENT"):
                    raise self.fail(self.peek(), "list expected COMMA or RBRACK")


def parse(src: str) -> list[Node]:
    """Parse a document; raises HCLError."""
    return _Parser(src).body(closing=False)


# --- printing ---------------------------------------------------------------------------------

def _is_multiline(node: Node) -> bool:
    if node.kind == "block":
        return True
    v = node.value
    return v is not None and (v.kind == "object" or (v.kind == "list" and v.multiline) or "\n" in v.text)


def _value(v: Value, indent: int) -> str:
    pad = " " * indent
    if v.kind == "scalar":
        return v.text
    if v.kind == "object":
        if not v.body:
            return "{}"
        return "{\n" + _body(v.body, indent + 2, top=False) + f"\n{pad}}}"
    if not v.multiline:
        return "[" + ", ".join(_value(item, indent) for item, _ in v.items if item is not None) + "]"
    lines = ["["]
    for item, comment in v.items:
        if item is None:
            lines.append(f"{pad}  {comment}")
        else:
            lines.append(f"{pad}  {_value(item, indent + 2)}," + (f" {comment}" if comment else ""))
    lines.append(f"{pad}]")
    return "\n".join(lines)


def _body(nodes: list[Node], indent: int, *, top: bool) -> str:
    pad = " " * indent
    out: list[str] = []
    # width of "=" alignment: runs of consecutive one-line attributes
    widths: dict[int, int] = {}
    run: list[int] = []
    for i, node in enumerate([*nodes, Node("comment")]):
        if node.kind == "attr" and not _is_multiline(node) and not (run and node.blank_before):
            run.append(i)
            continue
        for j in run:
            widths[j] = max(len(nodes[k].keys[0]) for k in run)
        run = [i] if node.kind == "attr" and not _is_multiline(node) else []
    prev: Node | None = None
    for i, node in enumerate(nodes):
        if prev is not None:
            separate = node.blank_before or _is_multiline(node) or (
                _is_multiline(prev) and prev.kind != "comment")
            if prev.kind == "comment" and not node.blank_before:
                separate = False
            if separate:
                out.append("")
        if node.kind == "comment":
            out.append(pad + node.comment.replace("\n", "\n" + pad) if not node.comment.startswith("/*")
                       else pad + node.comment)
        elif node.kind == "attr":
            assert node.value is not None
            key = node.keys[0].ljust(widths.get(i, len(node.keys[0])))
            line = f"{pad}{key} = {_value(node.value, indent)}"
            out.append(line + (f" {node.comment}" if node.comment else ""))
        else:
            head = " ".join(node.keys)
            inner = _body(node.body, indent + 2, top=False)
            text = f"{pad}{head} {{\n{inner}\n{pad}}}" if node.body else f"{pad}{head} {{}}"
            out.append(text + (f" {node.comment}" if node.comment else ""))
        prev = node
    return "\n".join(out)


def format_hcl(src: str) -> str:
    """The canonical form of an HCL document; raises HCLError if it does not parse."""
    text = _body(parse(src), 0, top=True)
    return text + "\n" if text else ""
