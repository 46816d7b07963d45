"""What consul-template's toYAML writes (gopkg.in/yaml.v2's yaml.Marshal): maps with yaml.v2's key order,
structs with lowercased field names, block sequences and mappings, empty collections in flow style; each
scalar as yaml_scalars.py writes it."""

from __future__ import annotations

import functools
from typing import Any

from strongroom.agent.template.values import GoStrings, GoStruct
from strongroom.agent.template.yaml_scalars import yaml_scalar


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
            key = yaml_scalar(k, 0, indent, simple_key=True)
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
    lines.append(prefix + (empty if empty is not None else yaml_scalar(v, len(prefix), indent + 2)))


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
        lines.append(head + " " + yaml_scalar(x, len(head) + 1, indent + 2))


def _yaml_item(x: Any, indent: int, lines: list[str], item_prefix: str) -> None:
    """A sequence item after ``item_prefix`` ("  - ")."""
    empty = _is_empty_collection(x)
    if empty is not None:
        lines.append(item_prefix + empty)
    elif _as_map(x) or isinstance(x, list):
        _yaml_node(x, indent + 2, lines, item_prefix)
    else:
        lines.append(item_prefix + yaml_scalar(x, len(item_prefix), indent + 2))


def to_yaml(v: Any) -> str:
    """yaml.Marshal(v) (the caller trims it, as consul-template does)."""
    lines: list[str] = []
    empty = _is_empty_collection(v)
    if empty is not None:
        return empty + "\n"
    if _as_map(v) or (isinstance(v, list) and v):
        _yaml_node(v, 0, lines, "")
    else:
        lines.append(yaml_scalar(v, 0, 0))
    return "\n".join(lines) + "\n"
