"""What consul-template's toJSON/toJSONPretty (Go's encoding/json) and toYAML (gopkg.in/yaml.v2) write."""

from __future__ import annotations

import base64
import functools
import math
import re
from typing import Any

from strongroom.agent.template.gofmt import format_float_g_shortest, format_float_json
from strongroom.agent.template.values import MISSING, GoStrings, GoStruct, JSONNumber, TypedNil, go_type


class EncodeError(ValueError):
    pass


# -- JSON ------------------------------------------------------------------------------------------
_JSON_ESC = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f",
             "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_JSON_NEEDS = re.compile(r'["\\\x00-\x1f<>&\u2028\u2029\ud800-\udfff]')


def _json_str(s: str, escape_html: bool = True) -> str:
    def rep(m: re.Match[str]) -> str:
        c = m.group(0)
        if not escape_html and c in "<>&":
            return c
        if c in _JSON_ESC:
            return _JSON_ESC[c]
        o = ord(c)
        if 0xD800 <= o <= 0xDFFF:
            return "\ufffd"
        return f"\\u{o:04x}"
    return '"' + _JSON_NEEDS.sub(rep, s) + '"'


_JSON_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")


def to_json(v: Any, indent: str | None = None, level: int = 0, escape_html: bool = True) -> str:
    """json.Marshal (or json.MarshalIndent(v, "", indent)); without HTML escaping as an Encoder with
    SetEscapeHTML(false)."""
    if v is None or v is MISSING or isinstance(v, TypedNil):
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            raise EncodeError(f"json: unsupported value: {format_float_g_shortest(v)}")
        return format_float_json(v)
    if isinstance(v, JSONNumber):
        if v == "":
            return "0"
        if not _JSON_NUMBER.fullmatch(v):
            raise EncodeError(f'json: invalid number literal "{v}"')
        return str(v)
    if isinstance(v, str):
        return _json_str(v, escape_html)
    if isinstance(v, bytes):
        return '"' + base64.b64encode(v).decode() + '"'
    items: list[tuple[str, Any]] | None = None
    if isinstance(v, dict):
        items = [(str(k), v[k]) for k in sorted(v, key=str)]
    elif isinstance(v, GoStruct):
        items = []
        for name, x in v.go_fields():
            items.append((name, x))
    if items is not None:
        if not items:
            return "{}"
        if indent is None:
            return "{" + ",".join(_json_str(k, escape_html) + ":" + to_json(x, None, 0, escape_html)
                                  for k, x in items) + "}"
        pad = "\n" + indent * (level + 1)
        return "{" + ",".join(pad + _json_str(k, escape_html) + ": " + to_json(x, indent, level + 1, escape_html)
                              for k, x in items) + \
            "\n" + indent * level + "}"
    if isinstance(v, list):
        if not v:
            return "[]"
        if indent is None:
            return "[" + ",".join(to_json(x, None, 0, escape_html) for x in v) + "]"
        pad = "\n" + indent * (level + 1)
        return "[" + ",".join(pad + to_json(x, indent, level + 1, escape_html) for x in v) + "\n" + \
            indent * level + "]"
    raise EncodeError(f"json: unsupported type: {go_type(v)}")


# -- YAML (gopkg.in/yaml.v2) -----------------------------------------------------------------------
_BEST_WIDTH = 80


def _is_letter(c: str) -> bool:
    return c.isalpha()


def _key_less(a: Any, b: Any) -> int:
    """yaml.v2's keyList.Less as a cmp function."""
    af = _key_float(a)
    bf = _key_float(b)
    if af is not None and bf is not None:
        if af != bf:
            return -1 if af < bf else 1
        return 0
    if not isinstance(a, str) or not isinstance(b, str):
        ka, kb = _kind_rank(a), _kind_rank(b)
        return -1 if ka < kb else (1 if ka > kb else 0)
    ar, br = a, b
    for i in range(min(len(ar), len(br))):
        if ar[i] == br[i]:
            continue
        al, bl = _is_letter(ar[i]), _is_letter(br[i])
        if al and bl:
            return -1 if ar[i] < br[i] else 1
        if al or bl:
            return -1 if bl else 1
        an = bn = 0
        if ar[i] == "0" or br[i] == "0":
            j = i - 1
            while j >= 0 and ar[j].isdigit():
                if ar[j] != "0":
                    an = bn = 1
                    break
                j -= 1
        ai = i
        while ai < len(ar) and ar[ai].isdigit():
            an = an * 10 + int(ar[ai])
            ai += 1
        bi = i
        while bi < len(br) and br[bi].isdigit():
            bn = bn * 10 + int(br[bi])
            bi += 1
        if an != bn:
            return -1 if an < bn else 1
        if ai != bi:
            return -1 if ai < bi else 1
        return -1 if ar[i] < br[i] else 1
    return -1 if len(ar) < len(br) else (1 if len(ar) > len(br) else 0)


def _key_float(v: Any) -> float | None:
    if isinstance(v, (bool, str)):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    return None


def _kind_rank(v: Any) -> int:
    # reflect.Kind order: Bool=1, Int=2, Float64=14, Map=21, Slice=23, String=24, Struct=25
    if isinstance(v, bool):
        return 1
    if isinstance(v, int):
        return 2
    if isinstance(v, float):
        return 14
    if isinstance(v, dict):
        return 21
    if isinstance(v, list):
        return 23
    if isinstance(v, str):
        return 24
    return 25


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


def _yaml_scalar(v: Any, column: int, indent: int, simple_key: bool = False) -> str:
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


def _as_map(v: Any) -> list[tuple[Any, Any]] | None:
    if isinstance(v, dict):
        return [(k, v[k]) for k in sorted(v, key=functools.cmp_to_key(_key_less))]
    if isinstance(v, GoStruct):  # yaml.v2 lowercases field names and writes nil slices and maps empty
        out: list[tuple[Any, Any]] = []
        for name, x in v.go_fields():
            if x is None:
                t = str(type(v).__dataclass_fields__[name].type)
                x = GoStrings() if "GoStrings" in t else ({} if "dict" in t else None)
            out.append((name.lower(), x))
        return out
    return None


def _is_empty_collection(v: Any) -> str | None:
    if isinstance(v, (dict, GoStruct)) and not (_as_map(v) or []):
        return "{}"
    if isinstance(v, list) and not v:
        return "[]"
    return None


def _yaml_node(v: Any, indent: int, lines: list[str], prefix: str) -> None:
    """Writes v whose first line starts with ``prefix`` (e.g. "key:" or "- "), block indentation ``indent``."""
    empty = _is_empty_collection(v)
    m = _as_map(v) if empty is None else None
    if m:
        first = True
        for k, x in m:
            key = _yaml_scalar(k, 0, indent, simple_key=True)
            head = (prefix if first and prefix.endswith("- ") else (" " * indent)) + key + ":"
            if first and prefix and not prefix.endswith("- "):
                lines.append(prefix)
            first = False
            _yaml_value(x, indent, lines, head)
        return
    if isinstance(v, list) and v:
        if prefix.endswith("- "):
            pre = prefix
        else:
            if prefix:
                lines.append(prefix)
            pre = " " * indent
        for idx, x in enumerate(v):
            item_prefix = (pre if idx == 0 else " " * indent) + "- "
            _yaml_item(x, indent, lines, item_prefix)
        return
    lines.append(prefix + (empty if empty is not None else _yaml_scalar(v, len(prefix), indent + 2)))


def _yaml_value(x: Any, indent: int, lines: list[str], head: str) -> None:
    """A mapping value after ``head`` ("key:")."""
    empty = _is_empty_collection(x)
    if empty is not None:
        lines.append(head + " " + empty)
    elif _as_map(x):
        lines.append(head)
        _yaml_node(x, indent + 2, lines, "")
    elif isinstance(x, list):
        lines.append(head)
        _yaml_node(x, indent, lines, "")  # yaml.v2 writes a sequence in a mapping without indenting it
    else:
        lines.append(head + " " + _yaml_scalar(x, len(head) + 1, indent + 2))


def _yaml_item(x: Any, indent: int, lines: list[str], item_prefix: str) -> None:
    """A sequence item after ``item_prefix`` ("  - ")."""
    empty = _is_empty_collection(x)
    if empty is not None:
        lines.append(item_prefix + empty)
    elif _as_map(x) or isinstance(x, list):
        _yaml_node(x, indent + 2, lines, item_prefix)
    else:
        lines.append(item_prefix + _yaml_scalar(x, len(item_prefix), indent + 2))


def to_yaml(v: Any) -> str:
    """yaml.Marshal(v) (the caller trims it, as consul-template does)."""
    lines: list[str] = []
    empty = _is_empty_collection(v)
    if empty is not None:
        return empty + "\n"
    if _as_map(v) or (isinstance(v, list) and v):
        _yaml_node(v, 0, lines, "")
    else:
        lines.append(_yaml_scalar(v, 0, 0))
    return "\n".join(lines) + "\n"
