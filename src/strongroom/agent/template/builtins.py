"""Go text/template's predefined functions: and, or, not, len, index, slice, eq/ne/lt/le/gt/ge, print,
printf, println, html, js, urlquery."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_plus

from strongroom.agent.template.gofmt import fmt_value, sprint, sprintf, sprintln
from strongroom.agent.template.gofunc import FuncError, GoFunc
from strongroom.agent.template.values import MISSING, GoStruct, TypedNil, go_type, truth

_BAD_CMP = "incompatible types for comparison"
_BAD_CMP_TYPE = "invalid type for comparison"


def _basic_kind(v: Any) -> str:
    if v is MISSING or v is None:
        return "invalid"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    return "other"


def _eq(arg1: Any, *arg2: Any) -> bool:
    if not arg2:
        raise FuncError("missing argument for comparison")
    k1 = _basic_kind(arg1)
    for arg in arg2:
        k2 = _basic_kind(arg)
        result = False
        if k1 != k2:
            if k1 != "invalid" and k2 != "invalid":
                raise FuncError(f"{_BAD_CMP}: {go_type(arg1)} and {go_type(arg)}")
        elif k1 in ("bool", "int", "float", "string"):
            result = str(arg1) == str(arg) if k1 == "string" else arg1 == arg
        elif k1 == "invalid":
            result = True
        else:
            if isinstance(arg1, (dict, list)) or isinstance(arg, (dict, list)):
                raise FuncError(f"non-comparable type {fmt_value(arg)}: {go_type(arg)}")
            if isinstance(arg1, TypedNil) or isinstance(arg, TypedNil):
                result = isinstance(arg1, TypedNil) and isinstance(arg, TypedNil)
            else:
                result = arg1 is arg
        if result:
            return True
    return False


def _ne(a: Any, b: Any) -> bool:
    return not _eq(a, b)


def _lt(a: Any, b: Any) -> bool:
    k1, k2 = _basic_kind(a), _basic_kind(b)
    if k1 in ("invalid", "other") or k2 in ("invalid", "other"):
        raise FuncError(_BAD_CMP_TYPE)
    if k1 != k2:
        raise FuncError(f"{_BAD_CMP}: {go_type(a)} and {go_type(b)}")
    if k1 == "bool":
        raise FuncError(_BAD_CMP_TYPE)
    if k1 == "string":
        return bool(str(a).encode("utf-8", "surrogateescape") < str(b).encode("utf-8", "surrogateescape"))
    return bool(a < b)


def _le(a: Any, b: Any) -> bool:
    return _lt(a, b) or _eq(a, b)


def _gt(a: Any, b: Any) -> bool:
    return not _le(a, b)


def _ge(a: Any, b: Any) -> bool:
    return not _lt(a, b)


def _not(a: Any) -> bool:
    return not truth(a)


def _length(item: Any) -> int:
    if item is None or isinstance(item, TypedNil):
        raise FuncError("len of nil pointer")
    if item is MISSING:
        raise FuncError("reflect: call of reflect.Value.Type on zero Value")
    if isinstance(item, str):
        return len(item.encode("utf-8", "surrogateescape"))
    if isinstance(item, (list, dict)):
        return len(item)
    raise FuncError(f"len of type {go_type(item)}")


def _index_arg(index: Any, size: int) -> int:
    if index is MISSING or index is None:
        raise FuncError("cannot index slice/array with nil")
    if not isinstance(index, int) or isinstance(index, bool):
        raise FuncError(f"cannot index slice/array with type {go_type(index)}")
    if index < 0 or index >= size:
        raise FuncError(f"index out of range: {index}")
    return index


def _index(item: Any, *indexes: Any) -> Any:
    if item is MISSING or item is None:
        raise FuncError("index of untyped nil")
    for index in indexes:
        if isinstance(item, TypedNil) or item is None:
            raise FuncError("index of nil pointer")
        if isinstance(item, list):
            item = item[_index_arg(index, len(item))]
        elif isinstance(item, str):
            b = item.encode("utf-8", "surrogateescape")
            item = b[_index_arg(index, len(b))]
        elif isinstance(item, dict):
            if index is MISSING or index is None:
                raise FuncError("value is nil; should be of type string")
            if go_type(index) != "string":
                raise FuncError(f"value has type {go_type(index)}; should be string")
            item = item.get(index)
        elif isinstance(item, GoStruct):
            raise FuncError(f"can't index item of type {item.go_type.lstrip('*')}")
        else:
            raise FuncError(f"can't index item of type {go_type(item)}")
    return item


def _slice(item: Any, *indexes: Any) -> Any:
    if item is MISSING or item is None:
        raise FuncError("slice of untyped nil")
    if len(indexes) > 3:
        raise FuncError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) == 3:
            raise FuncError("cannot 3-index slice a string")
        b = item.encode("utf-8", "surrogateescape")
        size = len(b)
    elif isinstance(item, list):
        size = len(item)
    else:
        raise FuncError(f"can't slice item of type {go_type(item)}")
    idx = [0, size]
    for i, index in enumerate(indexes):
        if index is MISSING or index is None:
            raise FuncError("cannot index slice/array with nil")
        if not isinstance(index, int) or isinstance(index, bool):
            raise FuncError(f"cannot index slice/array with type {go_type(index)}")
        if index < 0 or index > size:
            raise FuncError(f"index out of range: {index}")
        if i < 2:
            idx[i] = index
    if idx[0] > idx[1]:
        raise FuncError(f"invalid slice index: {idx[0]} > {idx[1]}")
    if isinstance(item, str):
        return item.encode("utf-8", "surrogateescape")[idx[0]:idx[1]].decode("utf-8", "surrogateescape")
    return type(item)(item[idx[0]:idx[1]])


def _eval_args(args: tuple[Any, ...]) -> str:
    if len(args) == 1 and type(args[0]) is str:
        return args[0]
    return sprint(["<no value>" if a is None or a is MISSING else a for a in args])


def html_escape(s: str) -> str:
    out = []
    for c in s:
        if c == "<":
            out.append("&lt;")
        elif c == ">":
            out.append("&gt;")
        elif c == "&":
            out.append("&amp;")
        elif c == "'":
            out.append("&#39;")
        elif c == '"':
            out.append("&#34;")
        elif c == "\0":
            out.append("\ufffd")
        else:
            out.append(c)
    return "".join(out)


def js_escape(s: str) -> str:
    out = []
    for c in s:
        o = ord(c)
        if c == "\\":
            out.append("\\\\")
        elif c == "'":
            out.append("\\'")
        elif c == '"':
            out.append('\\"')
        elif c == "<":
            out.append("\\u003C")
        elif c == ">":
            out.append("\\u003E")
        elif c == "&":
            out.append("\\u0026")
        elif c == "=":
            out.append("\\u003D")
        elif o < 0x20:
            out.append(f"\\u{o:04X}")
        elif o < 0x80 or c.isprintable():
            out.append(c)
        else:
            out.append(f"\\u{o:04X}")
    return "".join(out)


def _html(*args: Any) -> str:
    return html_escape(_eval_args(args))


def _js(*args: Any) -> str:
    return js_escape(_eval_args(args))


def _urlquery(*args: Any) -> str:
    return quote_plus(_eval_args(args), safe="~")


def _print(*args: Any) -> str:
    return sprint(list(args))


def _println(*args: Any) -> str:
    return sprintln(list(args))


def _printf(fmt: str, *args: Any) -> str:
    return sprintf(fmt, list(args))


def _short_circuit_placeholder(*args: Any) -> Any:  # the executor evaluates and/or itself
    raise FuncError("and/or evaluated directly")


BUILTINS: dict[str, GoFunc] = {
    "and": GoFunc(_short_circuit_placeholder, ("value",), "value", short_circuit=True),
    "or": GoFunc(_short_circuit_placeholder, ("value",), "value", short_circuit=True),
    "not": GoFunc(_not, ("value",)),
    "len": GoFunc(_length, ("value",)),
    "index": GoFunc(_index, ("value",), "value"),
    "slice": GoFunc(_slice, ("value",), "value"),
    "eq": GoFunc(_eq, ("value",), "value"),
    "ne": GoFunc(_ne, ("value", "value")),
    "lt": GoFunc(_lt, ("value", "value")),
    "le": GoFunc(_le, ("value", "value")),
    "gt": GoFunc(_gt, ("value", "value")),
    "ge": GoFunc(_ge, ("value", "value")),
    "print": GoFunc(_print, (), "any"),
    "printf": GoFunc(_printf, ("string",), "any"),
    "println": GoFunc(_println, (), "any"),
    "html": GoFunc(_html, (), "any"),
    "js": GoFunc(_js, (), "any"),
    "urlquery": GoFunc(_urlquery, (), "any"),
}
