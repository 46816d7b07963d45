"""A small HCL reader for server config files and ACL policies: ``loads(text) -> dict``.

Why our own: the general-purpose parser we used builds a grammar engine on first use, which cost
~80 ms of import and ~15 MB of resident memory for the whole life of the server, to read a
ten-line file. This module reads the HCL that Vault/OpenBao users write (HCL1 as Vault accepts
it, which is also what most HCL2 files look like) with one regular expression and a short
recursive-descent parser, in linear time.

Accepted: ``#``, ``//`` and ``/* */`` comments; attributes ``key = value``; blocks with zero or
more labels ``type "label" ... { body }``, nested and repeated; keys bare (letters, digits, ``_``,
``-``, ``.``) or quoted; strings with escapes (``\\n \\t \\" \\\\ \\uXXXX \\UXXXXXXXX``, Go's others);
heredocs ``<<EOT`` and indented ``<<-EOT``; numbers (decimal, float, exponent, hex, negative);
``true``/``false``/``null``; lists (commas between items, one trailing comma allowed, newlines
anywhere); objects ``{ k = v, k2: v2 }`` (commas optional, as in HCL1).

Output shape (the same as the JSON forms Vault accepts, so callers read both alike):

* an attribute is ``key: value``; an object value is a plain ``dict``;
* a block is appended to the list ``key: [...]``, its body a :class:`Block` (a ``dict`` subclass,
  so callers can tell ``x { }`` from ``x = { }``), wrapped in one ``{label: ...}`` per label:
  ``path "a" { }`` gives ``{"path": [{"a": Block()}]}``;
* a heredoc's value has no final line break (the config reader relies on this for paths).

Errors raise :class:`HCLError` (a ``ValueError``) carrying the line and column.

SECURITY: policies arrive from API clients, so the parser must stay cheap on hostile input:
tokens are scanned lazily (a huge document fails at its first error without being tokenised
whole), no regular expression here can backtrack super-linearly, nesting is capped at
:data:`MAX_DEPTH`, and numbers that Python cannot represent sanely (over 4000 digits, infinite
floats) and escapes naming surrogates are refused rather than passed on to the JSON encoder.
"""

from __future__ import annotations

import math
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["MAX_DEPTH", "Block", "HCLError", "load_file", "loads"]

#: Deepest nesting of blocks, objects and lists. Real configs and policies use three or four.
MAX_DEPTH = 100


class HCLError(ValueError):
    """The document is not valid HCL. ``str()`` reads "At LINE:COLUMN: what went wrong"."""

    def __init__(self, line: int, column: int, detail: str) -> None:
        super().__init__(f"At {line}:{column}: {detail}")
        self.line, self.column, self.detail = line, column, detail


class Block(dict[str, Any]):
    """The body of a block (``name "label" { ... }``), as opposed to an object value ``{ ... }``."""

    __slots__ = ()


# One alternative per token kind. SECURITY: every repetition below consumes characters that no
# other branch of the same repetition can, so matching is linear in the input.
_TOKEN = re.compile(
    r"""
      (?P<skip>(?:[ \t\r\n\f\ufeff]|\#[^\n]*|//[^\n]*|/\*.*?\*/)+)
    | (?P<str>"(?:[^"\\\n]|\\[^\n])*")
    | (?P<heredoc><<(?P<indent>-?)(?P<marker>[A-Za-z_][A-Za-z0-9_-]*)[ \t]*\r?\n)
    | (?P<num>-?(?:0[xX][0-9a-fA-F]{1,4000}|[0-9]{1,4000}(?:\.[0-9]{1,4000})?(?:[eE][+-]?[0-9]{1,4})?)
        (?![A-Za-z0-9_.\-]))
    | (?P<word>[A-Za-z_][A-Za-z0-9_.\-]*)
    | (?P<punct>[{}\[\]=,:])
    """,
    re.VERBOSE | re.DOTALL,
)
# A surrogate pair written as two \u escapes (as JSON encoders write characters beyond U+FFFF) is
# one character; a lone surrogate is an error.
_ESCAPE = re.compile(r"\\(?:u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})"
                     r"|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|(.))", re.DOTALL)
_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\",
                   "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
_WORDS: dict[str, object] = {"true": True, "false": False, "null": None}

# (kind, value, offset): kind is "str", "num", "word", one of the punctuation characters, or "eof".
_Token = tuple[str, Any, int]


def loads(text: str) -> dict[str, Any]:
    """Parse an HCL document into plain Python values (see the module docstring for the shape)."""
    parser = _Parser(text)
    doc: dict[str, Any] = {}
    parser.body(doc, depth=0, closing=False, is_object=False)
    return doc


def load_file(path: Path, error: Callable[[str], Exception]) -> dict[str, Any]:
    """A client's configuration file (the agent's, the bridge's) as one object: ``.json`` as JSON,
    anything else as HCL. One reader so that both word a bad file alike; ``error`` makes the
    exception the caller's own ``ConfigError``."""
    try:
        text = path.read_text()
    except OSError as e:
        raise error(f"error loading configuration from {path}: {e.strerror or e}") from None
    try:
        raw = json.loads(text) if path.suffix == ".json" else loads(text)
    except (HCLError, ValueError) as e:
        raise error(f"error parsing {path}: {e}") from None
    if not isinstance(raw, dict):
        raise error(f"error parsing {path}: the top level must be an object")
    return raw


class _Parser:
    """Recursive descent over a lazily scanned token stream, one token of look-ahead."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.tok: _Token = self._scan()

    # ------------------------------------------------------------------ errors and tokens

    def error(self, offset: int, detail: str) -> HCLError:
        line = self.text.count("\n", 0, offset) + 1
        return HCLError(line, offset - (self.text.rfind("\n", 0, offset) + 1) + 1, detail)

    def describe(self, tok: _Token) -> str:
        kind, value, _ = tok
        if kind == "eof":
            return "end of input"
        if kind == "str":
            return f"string {value[:40]!r}"
        return repr(value)

    def advance(self) -> _Token:
        tok, self.tok = self.tok, self._scan()
        return tok

    def _scan(self) -> _Token:
        text, pos = self.text, self.pos
        m = _TOKEN.match(text, pos)
        if m is not None and m.lastgroup == "skip":
            pos = m.end()
            m = _TOKEN.match(text, pos)
        if pos >= len(text):
            self.pos = pos
            return ("eof", None, pos)
        if m is None:
            raise self._bad_char(pos)
        self.pos = m.end()
        kind = m.lastgroup
        if kind == "str":
            return ("str", self._unescape(m.group(), pos), pos)
        if kind == "num":
            return ("num", self._number(m.group(), pos), pos)
        if kind == "word":
            return ("word", m.group(), pos)
        if kind == "punct":
            return (m.group(), m.group(), pos)
        return ("str", self._heredoc(m), pos)

    def _bad_char(self, pos: int) -> HCLError:
        text = self.text
        if text.startswith("/*", pos):
            return self.error(pos, "comment not terminated")
        if text[pos] == '"':
            return self.error(pos, "string not terminated (strings cannot span lines)")
        if text.startswith("<<", pos):
            return self.error(pos, "invalid heredoc: expected <<MARKER or <<-MARKER and a line break")
        if text[pos] in "-0123456789":
            return self.error(pos, f"invalid number {text[pos:pos + 20].split()[0]!r}")
        return self.error(pos, f"unexpected character {text[pos]!r}")

    def _unescape(self, raw: str, offset: int) -> str:
        body = raw[1:-1]
        if "\\" not in body:
            return body

        def one(m: re.Match[str]) -> str:
            high, low, hex4, hex8, simple = m.groups()
            if simple is not None:
                if simple in _SIMPLE_ESCAPES:
                    return _SIMPLE_ESCAPES[simple]
                raise self.error(offset + 1 + m.start(), f"invalid escape sequence \\{simple}")
            if high is not None:
                return chr(0x10000 + ((int(high, 16) - 0xD800) << 10) + (int(low, 16) - 0xDC00))
            code = int(hex4 or hex8, 16)
            # SECURITY: a lone surrogate would make every later UTF-8 encode of this value fail.
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise self.error(offset + 1 + m.start(), f"invalid unicode escape {m.group()}")
            return chr(code)

        return _ESCAPE.sub(one, body)

    def _number(self, raw: str, offset: int) -> int | float:
        digits = raw.lstrip("-")
        if digits[:2] in ("0x", "0X"):
            value: int | float = int(digits, 16)
        elif any(c in digits for c in ".eE"):
            value = float(digits)
            if not math.isfinite(value):
                raise self.error(offset, f"number out of range: {raw[:20]!r}")
        elif len(digits) > 1 and digits[0] == "0" and digits.isdigit() and "8" not in digits and "9" not in digits:
            value = int(digits, 8)  # HCL1 reads numbers as Go's base 0 does: 0640 is octal (file modes)
        else:
            value = int(digits)
        return -value if raw.startswith("-") else value

    def _heredoc(self, m: re.Match[str]) -> str:
        close = re.compile(rf"^[ \t]*{re.escape(m.group('marker'))}[ \t]*\r?$", re.MULTILINE)
        end = close.search(self.text, m.end())
        if end is None:
            raise self.error(m.start(), f"heredoc not terminated: no line with {m.group('marker')}")
        self.pos = end.end()
        lines = self.text[m.end():end.start()].replace("\r\n", "\n").split("\n")[:-1]
        if m.group("indent"):
            widths = [len(line) - len(line.lstrip(" \t")) for line in lines if line.strip()]
            cut = min(widths, default=0)
            lines = [line[cut:] for line in lines]
        return "\n".join(lines)

    # ------------------------------------------------------------------ grammar

    def body(self, out: dict[str, Any], depth: int, closing: bool, is_object: bool) -> None:
        """Items up to the closing '}' (consumed) or the end of input. Commas between are optional."""
        if depth > MAX_DEPTH:
            raise self.error(self.tok[2], f"nesting deeper than {MAX_DEPTH} levels")
        kinds: dict[str, str] = {}  # key → "attribute" | "block", to refuse mixing and redefining
        while True:
            kind, key, offset = self.tok
            if kind == "}" and closing:
                self.advance()
                return
            if kind == "eof" and not closing:
                return
            if kind not in ("word", "str"):
                expected = "a key or '}'" if closing else "a key"
                raise self.error(offset, f"expected {expected}, got {self.describe(self.tok)}")
            self.advance()
            self.item(out, kinds, key, offset, depth, is_object)
            if self.tok[0] == ",":
                self.advance()

    def item(self, out: dict[str, Any], kinds: dict[str, str], key: str, offset: int,
             depth: int, is_object: bool) -> None:
        labels: list[str] = []
        while self.tok[0] in ("word", "str"):
            labels.append(self.advance()[1])
        kind, _, at = self.tok
        if kind == "=" or (kind == ":" and is_object):
            if labels:
                raise self.error(at, f"expected '{{' after the labels of block {key!r}")
            self.advance()
            value = self.value(depth + 1)
            if key in kinds:
                # HCL1 (what Vault and OpenBao read) appends a repeated list attribute to the first:
                # `capabilities = ["read"]` twice with ["list"] grants both. Anything else is ambiguous.
                if kinds[key] == "attribute" and isinstance(out[key], list) and isinstance(value, list):
                    out[key] = out[key] + value
                    return
                raise self.error(offset, f"{key!r} is already defined as {'an' if kinds[key] == 'attribute' else 'a'}"
                                         f" {kinds[key]} in this scope")
            kinds[key] = "attribute"
            out[key] = value
        elif kind == "{":
            if kinds.get(key) == "attribute":
                raise self.error(offset, f"{key!r} is already defined as an attribute in this scope")
            kinds[key] = "block"
            self.advance()
            node: dict[str, Any] = Block()
            self.body(node, depth + 1, closing=True, is_object=False)
            for label in reversed(labels):
                node = {label: node}
            out.setdefault(key, []).append(node)
        else:
            raise self.error(at, f"expected '=' or '{{' after {key!r}, got {self.describe(self.tok)}")

    def value(self, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise self.error(self.tok[2], f"nesting deeper than {MAX_DEPTH} levels")
        kind, value, offset = self.advance()
        if kind in ("str", "num"):
            return value
        if kind == "word":
            if value in _WORDS:
                return _WORDS[value]
            raise self.error(offset, f"unexpected {value!r}: strings must be quoted")
        if kind == "[":
            return self.list(depth)
        if kind == "{":
            obj: dict[str, Any] = {}
            self.body(obj, depth, closing=True, is_object=True)
            return obj
        raise self.error(offset, f"expected a value, got {self.describe((kind, value, offset))}")

    def list(self, depth: int) -> list[Any]:
        items: list[Any] = []
        while True:
            if self.tok[0] == "]":
                self.advance()
                return items
            items.append(self.value(depth + 1))
            kind, _, offset = self.tok
            if kind == ",":
                self.advance()
            elif kind != "]":
                raise self.error(offset, f"expected ',' or ']' in list, got {self.describe(self.tok)}")
