"""What consul-template's toJSON and toJSONPretty write (Go's encoding/json: json.Marshal and MarshalIndent),
and toUnescapedJSON (an Encoder with SetEscapeHTML(false))."""

from __future__ import annotations

import base64
import math
import re
from typing import Any

from strongroom.agent.template.errors import EncodeError
from strongroom.agent.template.gofmt import format_float_g_shortest, format_float_json
from strongroom.agent.template.values import MISSING, GoStruct, JSONNumber, TypedNil, go_type


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
