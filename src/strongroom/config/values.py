"""Value converters shared by the config modules: each checks one key's value and names the key on error.

They raise :class:`_Bad` (the key and the message), which the loader turns into a
:class:`ConfigError` naming the file once it knows which file the value came from.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from typing import TypeVar
from urllib.parse import urlsplit

from strongroom import hcl
from strongroom.durations import parse_duration
from strongroom.errors import InvalidRequest


class ConfigError(InvalidRequest):
    """An unreadable or invalid configuration. The message starts with the file it came from."""

    def __init__(self, source: str, message: str, *, key: str = "") -> None:
        super().__init__(f"{source}: {message}" if source else message)
        self.source = source
        self.key = key



T = TypeVar("T")


class _Bad(Exception):
    """A value or key problem, before we know which file (and stanza) to blame."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


class _Repeated(list[object]):
    """The values of a key a JSON object repeats (HCL's JSON syntax treats that as several blocks)."""


def _typename(value: object) -> str:
    if isinstance(value, dict):
        return "a block"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _str(value: object, key: str) -> str:
    if not isinstance(value, str):
        raise _Bad(key, f"{key} must be a string, not {_typename(value)}")
    return value


_TRUE = frozenset({"1", "t", "true"})
_FALSE = frozenset({"0", "f", "false"})


def _bool(value: object, key: str) -> bool:
    # Vault accepts Go's strconv.ParseBool spellings ("true", "1", "t", ...) as well as real booleans.
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return value == 1
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _Bad(key, f"{key} must be true or false, not {json.dumps(value, default=str)}")


def _int(value: object, key: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    raise _Bad(key, f"{key} must be an integer, not {json.dumps(value, default=str)}")


def _duration(value: object, key: str) -> int:
    try:
        return parse_duration(value, name=key)
    except InvalidRequest as exc:
        raise _Bad(key, exc.message) from None


def _tls_version(value: object, key: str) -> str:
    raw = _str(value, key)
    text = raw.strip().lower()
    if text in ("tls10", "tls11"):
        raise _Bad(key, f'{key} "{raw}" is refused: TLS 1.0 and 1.1 are insecure (use tls12 or tls13)')
    if text not in ("tls12", "tls13"):
        raise _Bad(key, f'{key} "{raw}" is invalid (tls12 or tls13)')
    return text


_LOG_LEVELS = {"trace": "trace", "debug": "debug", "info": "info", "warn": "warn", "warning": "warn",
               "err": "error", "error": "error"}


def _log_level(value: object, key: str) -> str:
    raw = _str(value, key)
    if raw.strip().lower() not in _LOG_LEVELS:
        raise _Bad(key, f'{key} "{raw}" is invalid (trace, debug, info, warn or error)')
    return _LOG_LEVELS[raw.strip().lower()]


_HOST = re.compile(r"[A-Za-z0-9._-]*")


def _no_template(text: str, key: str) -> None:
    if "{{" in text:
        raise _Bad(key, f'{key} "{text}": go-sockaddr templates are not supported yet')


def _address(value: object, key: str) -> str:
    """A listen address, ``host:port`` or ``[ipv6]:port``; an empty host means all interfaces."""
    text = _str(value, key).strip()
    _no_template(text, key)
    host, sep, port = text.rpartition(":")
    hint = f'{key} "{text}" is invalid: expected host:port, e.g. "127.0.0.1:8200"'
    if "/" in text:
        raise _Bad(key, hint + " (no scheme or path)")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise _Bad(key, hint)
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise _Bad(key, hint) from None
    elif ":" in host:
        raise _Bad(key, f'{key} "{text}" is invalid: put IPv6 addresses in brackets, e.g. "[::1]:8200"')
    elif not _HOST.fullmatch(host):
        raise _Bad(key, hint)
    return text


def _optional_address(value: object, key: str) -> str:
    return _address(value, key) if _str(value, key).strip() else ""


def _url(value: object, key: str) -> str:
    """An advertised address (api_addr, cluster_addr): a full URL such as https://10.0.0.1:8200."""
    text = _str(value, key).strip()
    if not text:
        return ""
    _no_template(text, key)
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        parts = None
    if parts is None or not parts.scheme or not parts.hostname:
        raise _Bad(key, f'{key} "{text}" is invalid: expected a full URL, e.g. "https://10.0.0.1:8200"')
    if key == "api_addr" and parts.scheme not in ("http", "https"):
        raise _Bad(key, f'{key} "{text}" is invalid: the scheme must be http or https')
    return text


def _get(values: Mapping[str, object], key: str, conv: Callable[[object, str], T], default: T) -> T:
    return conv(values[key], key) if key in values else default


def _plain(value: object) -> object:
    """Plain dicts and lists, recursively (HCL block bodies are a dict subclass)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, _Repeated):
        return _Repeated(_plain(v) for v in value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _option_str(value: object, key: str) -> str:
    """A storage option as the string Vault would pass to the backend."""
    if isinstance(value, _Repeated):
        raise _Bad(key, f'"{key}" is set more than once')
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"))


def _is_set(value: object) -> bool:
    """Whether a value would turn a feature on (so ignoring it would change behaviour)."""
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "f", "false")
    if isinstance(value, dict):
        return any(_is_set(v) for v in value.values())
    if isinstance(value, list):
        return any(_is_set(v) for v in value)
    return bool(value)



Block = tuple[tuple[str, ...], dict[str, object]]


def _blocks(value: object, labels: int, shape: str) -> list[Block]:
    """Every block under a key, in any of the forms HCL and Vault's JSON allow.

    ``listener "tcp" {...}`` (once or repeated), ``"listener": {"tcp": {...}}``,
    ``"listener": [{"tcp": {...}}]`` and ``"listener": {"tcp": [{...}, {...}]}`` all land here as
    lists of ``((label, ...), body)``.
    """
    name = shape.split()[0]
    out: list[Block] = []

    def walk(item: object, seen: tuple[str, ...]) -> None:
        if isinstance(item, list):  # a list of blocks, or a JSON key repeated with list values
            for each in item:
                walk(each, seen)
            return
        if not isinstance(item, dict):
            raise _Bad(name, f"{name} must be written as {shape}, not {_typename(item)}")
        if len(seen) == labels:
            out.append((seen, {k: _plain(v) for k, v in item.items()}))
            return
        if isinstance(item, hcl.Block):  # an HCL block with too few labels
            raise _Bad(name, f"{name} must be written as {shape}")
        for label, sub in item.items():
            if not label:
                raise _Bad(name, f"{name} labels must not be empty")
            walk(sub, (*seen, label))

    walk(value, ())
    return out
