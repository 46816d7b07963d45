"""The lexer of Go's text/template: a template's text cut into items (text, delimiters, the tokens of actions).

It follows Go's rules: ``{{- `` and `` -}}`` (the dash followed/preceded by a space) trim the whitespace of the
neighbouring text, ``{{/* ... */}}`` is a comment, the delimiters can be changed, and every item carries its byte
offset and line for error messages.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from strongroom.agent.template.errors import TemplateSyntaxError


class T(enum.Enum):
    ERROR = "error"
    BOOL = "bool"
    CHAR = "char"  # a printable ASCII character that is not otherwise a token, e.g. ','
    CHAR_CONSTANT = "character constant"
    COMMENT = "comment"
    ASSIGN = "="
    DECLARE = ":="
    EOF = "EOF"
    FIELD = "field"
    IDENTIFIER = "identifier"
    LEFT_DELIM = "left delim"
    LEFT_PAREN = "("
    NUMBER = "number"
    PIPE = "|"
    RAW_STRING = "raw string"
    RIGHT_DELIM = "right delim"
    RIGHT_PAREN = ")"
    SPACE = "space"
    STRING = "string"
    TEXT = "text"
    VARIABLE = "variable"
    # keywords
    BLOCK = "block"
    BREAK = "break"
    CONTINUE = "continue"
    DOT = "."
    DEFINE = "define"
    ELSE = "else"
    END = "end"
    IF = "if"
    NIL = "nil"
    RANGE = "range"
    TEMPLATE = "template"
    WITH = "with"


KEYWORDS = {
    ".": T.DOT, "block": T.BLOCK, "break": T.BREAK, "continue": T.CONTINUE, "define": T.DEFINE, "else": T.ELSE,
    "end": T.END, "if": T.IF, "range": T.RANGE, "nil": T.NIL, "template": T.TEMPLATE, "with": T.WITH,
}

SPACE_CHARS = " \t\r\n"


@dataclass(slots=True)
class Item:
    typ: T
    pos: int
    val: str
    line: int

    def __str__(self) -> str:
        if self.typ is T.EOF:
            return "EOF"
        if self.typ is T.ERROR:
            return self.val
        if self.typ in (T.BLOCK, T.BREAK, T.CONTINUE, T.DEFINE, T.ELSE, T.END, T.IF, T.RANGE, T.NIL,
                        T.TEMPLATE, T.WITH):
            return f"<{self.val}>"
        if len(self.val) > 10:
            return f'"{self.val[:10]}"...'
        return f'"{self.val}"'


def _is_alnum(c: str) -> bool:
    return c == "_" or c.isalpha() or c.isdigit()


class Lexer:
    """Produces the list of items of one template (``lex()``); raises TemplateSyntaxError on a lexical error."""

    def __init__(self, name: str, text: str, left: str = "{{", right: str = "}}") -> None:
        self.name = name
        self.text = text
        self.left = left or "{{"
        self.right = right or "}}"
        self.pos = 0
        self.start = 0
        self.line = 1
        self.start_line = 1
        self.items: list[Item] = []
        self.paren_depth = 0

    # -- helpers ------------------------------------------------------------------------------------
    def _error(self, msg: str) -> TemplateSyntaxError:
        return TemplateSyntaxError(f"template: {self.name}:{self.start_line}: {msg}", self.start_line)

    def _emit(self, typ: T) -> None:
        val = self.text[self.start:self.pos]
        self.items.append(Item(typ, self.start, val, self.start_line))
        self.start = self.pos
        self.start_line = self.line

    def _ignore(self) -> None:
        self.start = self.pos
        self.start_line = self.line

    def _advance(self, n: int) -> None:
        self.line += self.text.count("\n", self.pos, self.pos + n)
        self.pos += n

    def _peek(self, k: int = 0) -> str:
        i = self.pos + k
        return self.text[i] if i < len(self.text) else ""

    def _next(self) -> str:
        if self.pos >= len(self.text):
            self.pos += 1  # so that a backup after EOF is balanced
            return ""
        c = self.text[self.pos]
        self.pos += 1
        if c == "\n":
            self.line += 1
        return c

    def _backup(self) -> None:
        self.pos -= 1
        if self.pos < len(self.text) and self.text[self.pos] == "\n":
            self.line -= 1

    # -- states -------------------------------------------------------------------------------------
    def lex(self) -> list[Item]:
        text = self.text
        while True:
            # text up to the next left delimiter
            x = text.find(self.left, self.pos)
            if x < 0:
                self.pos = len(text)
                if self.pos > self.start:
                    self.line += text.count("\n", self.start, self.pos)
                    self._emit(T.TEXT)
                self.items.append(Item(T.EOF, self.pos, "", self.line))
                return self.items
            self.pos = x
            trim_len = 0
            after = x + len(self.left)
            if _has_left_trim(text[after:]):
                trim_len = len(text[self.start:x]) - len(text[self.start:x].rstrip(SPACE_CHARS))
            self.pos -= trim_len
            if self.pos > self.start:
                self.line += text.count("\n", self.start, self.pos)
                self._emit(T.TEXT)
            self._advance(trim_len)
            self._ignore()
            self._lex_left_delim()

    def _lex_left_delim(self) -> None:
        text = self.text
        self._advance(len(self.left))
        trim = _has_left_trim(text[self.pos:])
        after_marker = 2 if trim else 0
        if text.startswith("/*", self.pos + after_marker):
            self._advance(after_marker)
            self._ignore()
            self._lex_comment()
            return
        self._emit(T.LEFT_DELIM)
        self._advance(after_marker)
        self._ignore()
        self.paren_depth = 0
        self._lex_inside_action()

    def _lex_comment(self) -> None:
        text = self.text
        x = text.find("*/", self.pos + 2)
        if x < 0:
            raise self._error("unclosed comment")
        self._advance(x + 2 - self.pos)
        delim, trim = self._at_right_delim()
        if not delim:
            raise self._error("comment ends before closing delimiter")
        self._emit(T.COMMENT)
        if trim:
            self._advance(2)
        self._advance(len(self.right))
        if trim:
            self._skip_trailing_space()
        self._ignore()

    def _at_right_delim(self) -> tuple[bool, bool]:
        text = self.text
        if _has_right_trim(text[self.pos:]) and text.startswith(self.right, self.pos + 2):
            return True, True
        if text.startswith(self.right, self.pos):
            return True, False
        return False, False

    def _skip_trailing_space(self) -> None:
        text = self.text
        end = self.pos
        while end < len(text) and text[end] in SPACE_CHARS:
            end += 1
        self.line += text.count("\n", self.pos, end)
        self.pos = end

    def _lex_right_delim(self, trim: bool) -> None:
        if trim:
            self._advance(2)
            self._ignore()
        self._advance(len(self.right))
        self._emit(T.RIGHT_DELIM)
        if trim:
            self._skip_trailing_space()
            self._ignore()

    def _lex_inside_action(self) -> None:
        while True:
            delim, trim = self._at_right_delim()
            if delim:
                if self.paren_depth == 0:
                    self._lex_right_delim(trim)
                    return
                raise self._error("unclosed left paren")
            c = self._next()
            if c == "":
                raise self._error("unclosed action")
            if c in SPACE_CHARS:
                self._backup()
                self._lex_space()
            elif c == "=":
                self._emit(T.ASSIGN)
            elif c == ":":
                if self._next() != "=":
                    raise self._error("expected :=")
                self._emit(T.DECLARE)
            elif c == "|":
                self._emit(T.PIPE)
            elif c == '"':
                self._lex_quote()
            elif c == "`":
                self._lex_raw_quote()
            elif c == "$":
                self._lex_field_or_variable(T.VARIABLE)
            elif c == "'":
                self._lex_char()
            elif c == ".":
                if self.pos < len(self.text) and self.text[self.pos].isdigit():
                    self._backup()
                    self._lex_number()
                else:
                    self._lex_field_or_variable(T.FIELD)
            elif c in "+-" or c.isdigit():
                self._backup()
                self._lex_number()
            elif _is_alnum(c):
                self._backup()
                self._lex_identifier()
            elif c == "(":
                self._emit(T.LEFT_PAREN)
                self.paren_depth += 1
            elif c == ")":
                self._emit(T.RIGHT_PAREN)
                self.paren_depth -= 1
                if self.paren_depth < 0:
                    raise self._error("unexpected right paren")
            elif c.isascii() and c.isprintable():
                self._emit(T.CHAR)
            else:
                raise self._error(f"unrecognized character in action: {_unicode_repr(c)}")

    def _lex_space(self) -> None:
        # stop before a right trim marker (" -}}")
        text = self.text
        while self.pos < len(text) and text[self.pos] in SPACE_CHARS:
            if _has_right_trim(text[self.pos:]) and text.startswith(self.right, self.pos + 2):
                break
            self._next()
        if self.pos > self.start:
            self._emit(T.SPACE)

    def _lex_identifier(self) -> None:
        while True:
            c = self._next()
            if c and _is_alnum(c):
                continue
            self._backup()
            word = self.text[self.start:self.pos]
            if not self._at_terminator():
                raise self._error(f"bad character {_unicode_repr(self._peek())}")
            if word in KEYWORDS and word != ".":
                self._emit(KEYWORDS[word])
            elif word in ("true", "false"):
                self._emit(T.BOOL)
            else:
                self._emit(T.IDENTIFIER)
            return

    def _lex_field_or_variable(self, typ: T) -> None:
        if self._at_terminator():  # a lone '.' or '$'
            self._emit(T.VARIABLE if typ is T.VARIABLE else T.DOT)
            return
        while True:
            c = self._next()
            if not (c and _is_alnum(c)):
                self._backup()
                break
        if not self._at_terminator():
            raise self._error(f"bad character {_unicode_repr(self._peek())}")
        self._emit(typ)

    def _at_terminator(self) -> bool:
        c = self._peek()
        if c == "" or c in SPACE_CHARS or c in ".,|:()=":
            return True
        return self.text.startswith(self.right, self.pos)

    def _lex_char(self) -> None:
        while True:
            c = self._next()
            if c == "\\":
                if self._next() not in ("", "\n"):
                    continue
                raise self._error("unterminated character constant")
            if c in ("", "\n"):
                raise self._error("unterminated character constant")
            if c == "'":
                break
        self._emit(T.CHAR_CONSTANT)

    def _lex_number(self) -> None:
        text = self.text
        i = self.pos
        if i < len(text) and text[i] in "+-":
            i += 1
        digits = "0123456789_"
        if text.startswith(("0x", "0X"), i):
            i += 2
            digits = "0123456789abcdefABCDEF_"
        elif text.startswith(("0o", "0O"), i):
            i += 2
            digits = "01234567_"
        elif text.startswith(("0b", "0B"), i):
            i += 2
            digits = "01_"
        while i < len(text) and text[i] in digits:
            i += 1
        if i < len(text) and text[i] == ".":
            i += 1
            while i < len(text) and text[i] in digits:
                i += 1
        exp = "pP" if digits.startswith("0123456789abcdef") else "eE"
        if i < len(text) and text[i] in exp:
            i += 1
            if i < len(text) and text[i] in "+-":
                i += 1
            while i < len(text) and text[i] in "0123456789_":
                i += 1
        if i < len(text) and text[i] == "i":
            i += 1
        self.pos = i
        if i < len(text) and _is_alnum(text[i]):
            raise self._error(f"bad number syntax: {text[self.start:i + 1]!r}".replace("'", '"'))
        self._emit(T.NUMBER)

    def _lex_quote(self) -> None:
        while True:
            c = self._next()
            if c == "\\":
                if self._next() not in ("", "\n"):
                    continue
                raise self._error("unterminated quoted string")
            if c in ("", "\n"):
                raise self._error("unterminated quoted string")
            if c == '"':
                break
        self._emit(T.STRING)

    def _lex_raw_quote(self) -> None:
        x = self.text.find("`", self.pos)
        if x < 0:
            raise self._error("unterminated raw quoted string")
        self.line += self.text.count("\n", self.pos, x)
        self.pos = x + 1
        self._emit(T.RAW_STRING)


def _has_left_trim(s: str) -> bool:
    return len(s) >= 2 and s[0] == "-" and s[1] in SPACE_CHARS


def _has_right_trim(s: str) -> bool:
    return len(s) >= 2 and s[0] in SPACE_CHARS and s[1] == "-"


def _unicode_repr(c: str) -> str:
    if not c:
        return "EOF"
    code = f"U+{ord(c):04X}"
    return f"{code} {c!r}" if c.isprintable() else code
