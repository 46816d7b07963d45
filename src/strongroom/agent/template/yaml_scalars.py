"""How gopkg.in/yaml.v2 writes a scalar (for toYAML): whether a string would read back as another type (null,
bool, number, timestamp) and so needs quotes, the analysis of its characters, and the style it gets: plain,
single-quoted, double-quoted with escapes, or a literal block; long plain lines are folded at the best width."""

from __future__ import annotations

import math
import re
from typing import Any

from strongroom.agent.template.errors import EncodeError
from strongroom.agent.template.gofmt import format_float_g_shortest
from strongroom.agent.template.values import MISSING, JSONNumber, TypedNil, go_type


_BEST_WIDTH = 80

_YAML_NULLS = {"~", "null", "Null", "NULL", ""}
_YAML_BOOLS = {"y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "n", "N", "no", "No", "NO", "off", "Off", "OFF",
               "true", "True", "TRUE", "false", "False", "FALSE"}
_YAML_SPECIAL_FLOATS = {".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
                        "-.Inf", "-.INF"}
_YAML_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_BASE60 = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$")
_TIMESTAMP = re.compile(
    r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
    r"(?:(?:[Tt]| )[0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(?:\.[0-9]{1,9})?(?:Z|[+-][0-9]{1,2}:[0-9]{2})?)?$")
_GO_INT = re.compile(r"^[-+]?(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|0[0-7_]*|[1-9][0-9_]*)$")


def _resolves_to_non_string(s: str) -> bool:
    if s in _YAML_NULLS or s in _YAML_BOOLS or s in _YAML_SPECIAL_FLOATS or s == "<<":
        return True
    if not s or s[0] not in "+-.0123456789":
        return False
    if s[0] in "0123456789+-" and _TIMESTAMP.match(s):
        return True
    plain = s.replace("_", "")
    if _GO_INT.match(plain) and _go_parse_int_ok(plain):
        return True
    if _YAML_FLOAT.match(plain):
        return True
    if plain.startswith(("0b", "-0b")):
        try:
            int(plain.replace("0b", ""), 2)
            return True
        except ValueError:
            return False
    return False


def _go_parse_int_ok(s: str) -> bool:
    t = s.lstrip("+-")
    try:
        if t[:2] in ("0x", "0X", "0o", "0O", "0b", "0B"):
            int(t, 0)
        elif len(t) > 1 and t[0] == "0":
            int(t[1:], 8)
        else:
            int(t, 10)
    except ValueError:
        return False
    return True


def _yaml_printable(c: str) -> bool:
    o = ord(c)
    return (o == 0x0A or 0x20 <= o <= 0x7E or o == 0x85 or 0xA0 <= o <= 0xD7FF
            or (0xE000 <= o <= 0xFFFD and o != 0xFEFF) or 0x10000 <= o <= 0x10FFFF)


class _Analysis:
    __slots__ = ("block", "block_plain", "flow_plain", "multiline", "single")
    multiline: bool
    flow_plain: bool
    block_plain: bool
    single: bool
    block: bool


def _analyze(s: str) -> _Analysis:
    a = _Analysis()
    a.multiline = False
    a.flow_plain = a.block_plain = a.single = a.block = True
    if not s:
        a.flow_plain = a.block_plain = a.block = False
        return a
    block_ind = flow_ind = line_breaks = special = False
    leading_space = leading_break = trailing_space = trailing_break = False
    break_space = space_break = previous_space = previous_break = False
    if s.startswith(("---", "...")):
        block_ind = flow_ind = True
    preceded_ws = True
    n = len(s)
    for i, c in enumerate(s):
        followed_ws = i + 1 >= n or s[i + 1] in " \t\r\n\x85\u2028\u2029"
        if i == 0:
            if c in "#,[]{}&*!|>'\"%@`":
                flow_ind = block_ind = True
            if c in "?:":
                flow_ind = True
                if followed_ws:
                    block_ind = True
            if c == "-" and followed_ws:
                flow_ind = block_ind = True
        else:
            if c in ",?[]{}":
                flow_ind = True
            if c == ":":
                flow_ind = True
                if followed_ws:
                    block_ind = True
            if c == "#" and preceded_ws:
                flow_ind = block_ind = True
        if not _yaml_printable(c) or c == "\ufeff":
            special = True
        if c == " ":
            if i == 0:
                leading_space = True
            if i == n - 1:
                trailing_space = True
            if previous_break:
                break_space = True
            previous_space, previous_break = True, False
        elif c in "\r\n\x85\u2028\u2029":
            line_breaks = True
            if i == 0:
                leading_break = True
            if i == n - 1:
                trailing_break = True
            if previous_space:
                space_break = True
            previous_space, previous_break = False, True
        else:
            previous_space = previous_break = False
        preceded_ws = c in " \t\r\n\x85\u2028\u2029"
    a.multiline = line_breaks
    if leading_space or leading_break or trailing_space or trailing_break:
        a.flow_plain = a.block_plain = False
    if trailing_space:
        a.block = False
    if break_space:
        a.flow_plain = a.block_plain = a.single = False
    if space_break or special:
        a.flow_plain = a.block_plain = a.single = a.block = False
    if line_breaks:
        a.flow_plain = a.block_plain = False
    if flow_ind:
        a.flow_plain = False
    if block_ind:
        a.block_plain = False
    return a


_DQ_ESC = {"\0": "0", "\a": "a", "\b": "b", "\t": "t", "\n": "n", "\v": "v", "\f": "f", "\r": "r", "\x1b": "e",
           '"': '"', "\\": "\\", "\x85": "N", "\xa0": "_", "\u2028": "L", "\u2029": "P"}


def _double_quoted(s: str) -> str:
    out = ['"']
    for c in s:
        if c in _DQ_ESC:
            out.append("\\" + _DQ_ESC[c])
        elif not _yaml_printable(c) or c == "\ufeff" or c in "\r\n":
            o = ord(c)
            if o <= 0xFF:
                out.append(f"\\x{o:02X}")
            elif o <= 0xFFFF:
                out.append(f"\\u{o:04X}")
            else:
                out.append(f"\\U{o:08X}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def _folded(s: str, column: int, indent: int) -> str:
    """Plain/single-quoted writing: a space past the best width (not followed by a space) breaks the line."""
    out: list[str] = []
    spaces = False
    n = len(s)
    for i, c in enumerate(s):
        if c == " ":
            if not spaces and column > _BEST_WIDTH and not (i + 1 < n and s[i + 1] == " "):
                out.append("\n" + " " * indent)
                column = indent
            else:
                out.append(c)
                column += 1
            spaces = True
        else:
            out.append(c)
            column += 1
            spaces = False
    return "".join(out)


def _literal(s: str, indent: int) -> str:
    hints = ""
    if s[0] in " \n":
        hints += "2"
    if not s.endswith("\n"):
        hints += "-"
    elif s == "\n" or s.endswith("\n\n"):
        hints += "+"
    lines = s.split("\n")
    if s.endswith("\n"):
        lines = lines[:-1]
    body = "\n".join((" " * indent + ln) if ln else "" for ln in lines)
    return "|" + hints + "\n" + body


def _yaml_scalar_str(s: str, column: int, indent: int, simple_key: bool) -> str:
    can_plain = not _resolves_to_non_string(s) and not _BASE60.match(s)
    a = _analyze(s)
    if "\n" in s and not simple_key:
        if a.block:
            return _literal(s, indent)
        return _double_quoted(s)
    if not can_plain:
        return _double_quoted(s)
    if not a.block_plain or (simple_key and a.multiline) or not s:
        if a.single and not (simple_key and a.multiline):
            return _folded("'" + s.replace("'", "''") + "'", column, indent) if not simple_key else \
                "'" + s.replace("'", "''") + "'"
        return _double_quoted(s)
    return s if simple_key else _folded(s, column, indent)


def yaml_scalar(v: Any, column: int, indent: int, simple_key: bool = False) -> str:
    if v is None or v is MISSING or isinstance(v, TypedNil):
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, JSONNumber):
        try:
            i = int(v)
            if -(2**63) <= i < 2**63:
                return str(i)
        except ValueError:
            pass
        try:
            return _yaml_float(float(v))
        except ValueError:
            return _yaml_scalar_str(str(v), column, indent, simple_key)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _yaml_float(v)
    if isinstance(v, str):
        return _yaml_scalar_str(v, column, indent, simple_key)
    raise EncodeError(f"cannot marshal type: {go_type(v)}")


def _yaml_float(f: float) -> str:
    if math.isnan(f):
        return ".nan"
    if math.isinf(f):
        return ".inf" if f > 0 else "-.inf"
    return format_float_g_shortest(f)
