"""Strongroom's HTTP client: an async ``Client`` speaking Vault's ``/v1`` API.

This package is what the CLI and agent use to reach a server; it never imports the server.

    ClientError
     ├── APIError        the server answered >= 400
     └── TransportError  no HTTP answer at all

The errors load eagerly; ``Client`` and the kv helpers (and with them httpx, ~20 MB and ~100 ms)
load on first use, so a process that only catches client errors (``strongroom server``) never
pays for the HTTP stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from strongroom.api.errors import (
    JSON,
    WARNINGS_TITLE,
    APIError,
    ClientError,
    TransportError,
    format_warnings,
)

if TYPE_CHECKING:
    from strongroom.api.client import Client
    from strongroom.api.kv import KVMount, kv_mount, kv_path

_LAZY = {"Client": "strongroom.api.client", "KVMount": "strongroom.api.kv", "kv_mount": "strongroom.api.kv",
         "kv_path": "strongroom.api.kv"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "JSON",
    "WARNINGS_TITLE",
    "APIError",
    "Client",
    "ClientError",
    "KVMount",
    "TransportError",
    "format_warnings",
    "kv_mount",
    "kv_path",
]
