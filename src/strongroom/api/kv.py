"""KV mounts: which version a path lives under, and how v2 API paths are spelled.

Vault's CLI asks ``sys/internal/ui/mounts/<path>`` which mount holds a path; a mount whose
``options.version`` is "2" is KV v2, whose API puts a segment after the mount:
``secret/foo`` is read at ``secret/data/foo`` and listed at ``secret/metadata/foo``.
"""

from __future__ import annotations

from dataclasses import dataclass

from strongroom.api.client import Client
from strongroom.api.errors import APIError


@dataclass(frozen=True, slots=True)
class KVMount:
    """The mount that holds a KV path: its path with a trailing slash ("" if unknown), version."""

    path: str
    version: int


async def kv_mount(client: Client, path: str) -> KVMount:
    """Ask the server which mount holds ``path`` and its KV version.

    A server without the endpoint (404) is treated as KV v1 at an unknown mount, as Vault's
    CLI does for old servers; any other error propagates.
    """
    try:
        resp = await client.request("GET", f"sys/internal/ui/mounts/{path.strip('/')}")
    except APIError as e:
        if e.status == 404:
            return KVMount("", 1)
        raise
    data = resp.get("data") if isinstance(resp, dict) else None
    if not isinstance(data, dict):
        return KVMount("", 1)
    options = data.get("options") or {}
    version = str(options.get("version", "1")) if isinstance(options, dict) else "1"
    mount = str(data.get("path") or "")
    if mount and not mount.endswith("/"):
        mount += "/"
    return KVMount(mount, 2 if version == "2" else 1)


def kv_path(path: str, mount: str, segment: str) -> str:
    """``secret/foo`` under mount ``secret/`` with segment ``data`` → ``secret/data/foo``."""
    path = path.strip("/")
    if not mount:
        return path
    if path + "/" == mount:
        rest = ""
    elif path.startswith(mount):
        rest = path[len(mount):]
    else:
        return path
    return f"{mount}{segment}/{rest}" if rest else f"{mount}{segment}"
