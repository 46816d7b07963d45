"""Rendering: the table, JSON and YAML shapes Vault's CLI prints. Pure functions over decoded JSON.

Vault's CLI is written in Go, so its tables show values the way Go's ``%v`` does (``<nil>``,
``map[k:v]``, ``[a b]``); ``go_value`` reproduces that. Numbers under keys ending in ``ttl``,
``period`` or ``duration`` print as durations ("768h"), and empty strings as ``n/a``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from strongroom.durations import format_duration

FORMATS = ("table", "json", "yaml")

_DURATION_KEY = re.compile(r"(ttl|period|duration)$")


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty dict: for walking untrusted responses."""
    return value if isinstance(value, dict) else {}


# --- Go-style values -------------------------------------------------------------------------

def go_value(v: Any) -> str:
    """A JSON value as Go's ``fmt.Sprint`` shows it after ``json.Unmarshal`` into ``interface{}``."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(int(v)) if v.is_integer() and abs(v) < 1e21 else repr(v)
    if isinstance(v, Mapping):
        return "map[" + " ".join(f"{k}:{go_value(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(go_value(x) for x in v) + "]"
    return str(v)


def go_quoted_list(items: Iterable[Any]) -> str:
    """Go's ``%q`` of a string slice: ``["default" "admin"]``."""
    return "[" + " ".join(json.dumps(str(i)) for i in items) + "]"


def table_value(key: str, v: Any) -> str:
    """One value in a Key/Value table: TTL-ish numbers as durations, "" as ``n/a``."""
    if isinstance(v, (int, float)) and not isinstance(v, bool) and _DURATION_KEY.search(key):
        return format_duration(int(v))
    if v == "":
        return "n/a"
    return go_value(v)


def go_time(rfc3339: str) -> str:
    """An RFC 3339 timestamp as Go's ``time.Time.String()`` prints it."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", rfc3339)
    if not m:
        return rfc3339
    frac = (m.group(3) or "").rstrip("0")
    frac = "" if frac == "." else frac
    zone = m.group(4)
    if zone == "Z":
        return f"{m.group(1)} {m.group(2)}{frac} +0000 UTC"
    return f"{m.group(1)} {m.group(2)}{frac} {zone.replace(':', '')}"


def short_time(rfc3339: str) -> str:
    """Go's RFC 822 layout ("02 Jan 06 15:04 UTC"), used by ``operator key-status``."""
    try:
        dt = datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", rfc3339))
    except ValueError:
        return rfc3339
    offset = dt.utcoffset()
    zone = "UTC" if offset is None or offset.total_seconds() == 0 else dt.strftime("%z")
    return dt.strftime("%d %b %y %H:%M ") + zone


# --- tables -----------------------------------------------------------------------------------

def columns(rows: Sequence[Sequence[str]]) -> str:
    """Rows aligned in columns four spaces apart, as the ``columnize`` library lays them out."""
    if not rows:
        return ""
    ncol = max(len(r) for r in rows)
    widths = [max((len(r[i]) for r in rows if i < len(r)), default=0) for i in range(ncol)]
    lines = []
    for r in rows:
        cells = [c.ljust(widths[i]) if i < len(r) - 1 else c for i, c in enumerate(r)]
        lines.append("    ".join(cells).rstrip(" ") if r else "")
    return "\n".join(lines)


def kv_table(pairs: Iterable[tuple[str, str]], header: tuple[str, ...] = ("Key", "Value")) -> str:
    rows: list[Sequence[str]] = []
    if header:
        rows.append(header)
        rows.append(tuple("-" * len(h) for h in header))
    rows.extend(pairs)
    return columns(rows)


def data_pairs(data: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    data = data or {}
    return [(k, table_value(k, data[k])) for k in sorted(data)]


def header(name: str, width: int) -> str:
    """A section title padded with ``=`` to about ``width`` columns: ``== Data ==``."""
    pad = width - len(name) - 2
    side = 2 if pad <= 0 else (pad + 1) // 2
    return f"{'=' * side} {name} {'=' * side}"


def section_width(data: Mapping[str, Any] | None) -> int:
    """The width Vault gives a section title over a Key/Value table of ``data``."""
    return max((len(k) for k in data or {}), default=0) + 9


# --- secrets (the Vault response envelope) ----------------------------------------------------

_AUTH_ORDER = ("client_token", "accessor", "policies", "token_policies", "identity_policies", "metadata",
               "orphan", "entity_id", "lease_duration", "renewable", "mfa_requirement")
_AUTH_DEFAULTS: dict[str, Any] = {"client_token": "", "accessor": "", "orphan": False, "entity_id": "",
                                  "lease_duration": 0, "renewable": False}
_WRAP_ORDER = ("token", "accessor", "ttl", "creation_time", "creation_path", "wrapped_accessor")


_ENVELOPE_KEYS = ("data", "auth", "wrap_info", "request_id", "lease_id", "warnings")


def envelope(resp: Mapping[str, Any]) -> dict[str, Any]:
    """A response as a Vault envelope. Some sys endpoints answer with bare fields (``sys/leader``);
    Vault's CLI shows those as the data, and so do we."""
    if any(k in resp for k in _ENVELOPE_KEYS):
        return dict(resp)
    return {"data": dict(resp)}


def secret_json(resp: Mapping[str, Any]) -> dict[str, Any]:
    """The response envelope in the field order Vault's CLI prints (its ``api.Secret``)."""
    out: dict[str, Any] = {
        "request_id": resp.get("request_id", ""),
        "lease_id": resp.get("lease_id", ""),
        "lease_duration": resp.get("lease_duration", 0),
        "renewable": resp.get("renewable", False),
        "data": resp.get("data"),
        "warnings": resp.get("warnings"),
    }
    wrap = resp.get("wrap_info")
    if isinstance(wrap, Mapping):
        out["wrap_info"] = {k: wrap.get(k, 0 if k == "ttl" else "") for k in _WRAP_ORDER}
    auth = resp.get("auth")
    if isinstance(auth, Mapping):
        out["auth"] = {k: auth.get(k, _AUTH_DEFAULTS.get(k)) for k in _AUTH_ORDER}
    return out


def secret_pairs(resp: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The Key/Value rows of a generic response: lease, auth, wrapping, then data."""
    rows: list[tuple[str, str]] = []
    lease = resp.get("lease_duration") or 0
    if isinstance(lease, (int, float)) and lease > 0:
        if resp.get("lease_id"):
            rows += [("lease_id", str(resp["lease_id"])), ("lease_duration", format_duration(int(lease))),
                     ("lease_renewable", go_value(bool(resp.get("renewable"))))]
        else:
            rows.append(("refresh_interval", format_duration(int(lease))))
    auth = resp.get("auth")
    if isinstance(auth, Mapping):
        rows += auth_pairs(auth)
    wrap = resp.get("wrap_info")
    if isinstance(wrap, Mapping):
        created = str(wrap.get("creation_time", ""))
        rows += [("wrapping_token:", str(wrap.get("token", ""))),
                 ("wrapping_accessor:", str(wrap.get("accessor", ""))),
                 ("wrapping_token_ttl:", format_duration(int(wrap.get("ttl") or 0))),
                 ("wrapping_token_creation_time:", go_time(created)),
                 ("wrapping_token_creation_path:", str(wrap.get("creation_path", "")))]
        if wrap.get("wrapped_accessor"):
            rows.append(("wrapped_accessor:", str(wrap["wrapped_accessor"])))
    data = resp.get("data")
    if isinstance(data, Mapping):
        rows += data_pairs(data)
    return rows


def auth_pairs(auth: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows = [("token", str(auth.get("client_token", ""))),
            ("token_accessor", str(auth.get("accessor", ""))),
            ("token_duration", format_duration(int(auth.get("lease_duration") or 0))
             if auth.get("lease_duration") else "∞"),
            ("token_renewable", go_value(bool(auth.get("renewable")))),
            ("token_policies", go_quoted_list(auth.get("token_policies") or [])),
            ("identity_policies", go_quoted_list(auth.get("identity_policies") or [])),
            ("policies", go_quoted_list(auth.get("policies") or []))]
    meta = auth.get("metadata")
    if isinstance(meta, Mapping):
        rows += [(f"token_meta_{k}", go_value(meta[k])) for k in sorted(meta)]
    return rows


def secret_field(resp: Mapping[str, Any], name: str) -> tuple[bool, str]:
    """``-field=NAME`` of a response: the auth/wrap pseudo-fields first, then the data."""
    auth = resp.get("auth")
    if isinstance(auth, Mapping):
        auth_fields = {"token": auth.get("client_token"), "token_accessor": auth.get("accessor"),
                       "token_duration": auth.get("lease_duration"), "token_renewable": auth.get("renewable"),
                       "token_policies": auth.get("token_policies"),
                       "identity_policies": auth.get("identity_policies"), "policies": auth.get("policies")}
        if name in auth_fields:
            value = auth_fields[name]
            return True, go_value(value if value is not None else [] if "polic" in name else "")
        meta = auth.get("metadata")
        if name.startswith("token_meta_") and isinstance(meta, Mapping) and name[11:] in meta:
            return True, go_value(meta[name[11:]])
    wrap = resp.get("wrap_info")
    if isinstance(wrap, Mapping):
        wrap_fields = {"wrapping_token": "token", "wrapping_accessor": "accessor", "wrapping_token_ttl": "ttl",
                       "wrapping_token_creation_time": "creation_time",
                       "wrapping_token_creation_path": "creation_path", "wrapped_accessor": "wrapped_accessor"}
        if name in wrap_fields:
            return True, go_value(wrap.get(wrap_fields[name]))
    if name == "refresh_interval" and resp.get("lease_duration"):
        return True, go_value(resp.get("lease_duration"))
    if name in ("lease_id", "lease_duration", "lease_renewable") and resp.get("lease_id"):
        return True, go_value(resp.get("renewable" if name == "lease_renewable" else name))
    data = resp.get("data")
    if isinstance(data, Mapping) and name in data:
        return True, go_value(data[name])
    return False, ""


# --- JSON and YAML ----------------------------------------------------------------------------

def to_json(value: Any) -> str:
    """Indented JSON as Go's ``json.MarshalIndent`` writes it (HTML characters escaped)."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


_YAML_SPECIAL_WORDS = {"", "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE",
                       "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON",
                       "off", "Off", "OFF", ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "-.inf", "+.inf"}
_YAML_NUMBER = re.compile(r"[-+]?(0x[0-9a-fA-F_]+|0o?[0-7_]+|0b[01_]+|(\d[\d_]*)?\.?\d[\d_]*([eE][-+]?\d+)?)")
_YAML_TIME = re.compile(r"\d{4}-\d\d?-\d\d?([Tt ].*)?")
_YAML_INDICATORS = set("-?:,[]{}#&*!|>'\"%@`")


def _yaml_scalar(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return go_value(v)
    s = str(v)
    if s in _YAML_SPECIAL_WORDS or _YAML_NUMBER.fullmatch(s) or _YAML_TIME.fullmatch(s):
        return json.dumps(s, ensure_ascii=False)
    if (s[0] in _YAML_INDICATORS and not (s[0] in "-?:" and len(s) > 1 and s[1] != " ")) \
            or s[0] == " " or s[-1] == " " or ": " in s or " #" in s or s.endswith(":") or "\t" in s:
        return "'" + s.replace("'", "''") + "'"
    return s


def _yaml_key(k: str) -> str:
    return _yaml_scalar(k)


def _yaml_lines(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    if isinstance(value, Mapping):
        if not value:
            return [pad + "{}"]
        out: list[str] = []
        for k in sorted(value):
            out += _yaml_entry(pad + _yaml_key(str(k)) + ":", value[k], indent, seq=False)
        return out
    if isinstance(value, (list, tuple)):
        if not value:
            return [pad + "[]"]
        out = []
        for item in value:
            out += _yaml_entry(pad + "-", item, indent, seq=True)
        return out
    return [pad + _yaml_scalar(value)]


def _yaml_entry(prefix: str, v: Any, indent: int, *, seq: bool) -> list[str]:
    if isinstance(v, str) and "\n" in v:
        chomp = "" if v.endswith("\n") and not v.endswith("\n\n") else "-"
        body = v[:-1] if chomp == "" else v
        return [f"{prefix} |{chomp}"] + [(" " * (indent + 2) + line).rstrip(" ") if line else ""
                                         for line in body.split("\n")]
    if isinstance(v, Mapping) and v:
        if seq:  # "- key: value" with the rest of the map aligned under the first key
            inner = _yaml_lines(v, indent + 2)
            return [prefix + " " + inner[0].lstrip(" ")] + inner[1:]
        return [prefix] + _yaml_lines(v, indent + 2)
    if isinstance(v, (list, tuple)) and v:
        if seq:
            inner = _yaml_lines(v, indent + 2)
            return [prefix + " " + inner[0].lstrip(" ")] + inner[1:]
        return [prefix] + _yaml_lines(v, indent)  # Go's yaml keeps "- " level with the key
    return [prefix + " " + _yaml_lines(v, 0)[0]]


def to_yaml(value: Any) -> str:
    """YAML in the layout of Go's yaml encoder as Vault uses it: sorted keys, quoted ambiguities."""
    return "\n".join(_yaml_lines(value, 0))


def render(value: Any, fmt: str) -> str:
    """``value`` as JSON or YAML; tables are built by each command."""
    return to_yaml(value) if fmt == "yaml" else to_json(value)
