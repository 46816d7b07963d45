"""Strongroom's HTTP client: an async ``Client`` speaking Vault's ``/v1`` API.

This package is what the CLI and agent use to reach a server; it never imports the server.

    ClientError
     ├── APIError        the server answered >= 400
     └── TransportError  no HTTP answer at all
"""

from strongroom.api.client import (
    JSON,
    WARNINGS_TITLE,
    APIError,
    Client,
    ClientError,
    TransportError,
    format_warnings,
)
from strongroom.api.kv import KVMount, kv_mount, kv_path

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
