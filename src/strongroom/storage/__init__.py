"""Physical storage: untrusted bytes, no crypto.

Every backend implements :class:`strongroom.logical.Storage` (get/put/delete/list of bytes). The
barrier sits on top and is the only caller; a backend therefore never sees plaintext.

Backends are looked up by the name used in the server config (``storage "sqlite" {...}``) through
:func:`open_storage`. A factory takes the config block (a ``dict[str, str]``) and returns an
object with the Storage methods plus ``async close()``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from strongroom.errors import InvalidRequest
from strongroom.logical import Storage


class PhysicalStorage(Storage, Protocol):
    """Storage that owns resources (files, connections) and must be closed on shutdown."""

    async def close(self) -> None: ...


Factory = Callable[[dict[str, Any]], Awaitable[PhysicalStorage]]

# HA change feeds (``changes()``): an item starting with this is not a storage key (keys never start
# with "!") but ``INDEX_PREFIX + "<epoch> <n>"``: every write numbered up to n has been delivered
# before it (core/write_index.py; PostgreSQL: the active's NOTIFY, etcd: the watch's revision).
INDEX_PREFIX = "!index "


def _factories() -> dict[str, Factory]:
    # Imported lazily so `import strongroom.storage` stays cheap and optional drivers stay optional.
    from strongroom.storage import file, inmem, sqlite

    factories: dict[str, Factory] = {"inmem": inmem.open_inmem, "sqlite": sqlite.open_sqlite, "file": file.open_file}
    factories["postgresql"] = _open_postgresql
    factories["etcd"] = _open_etcd
    return factories


async def _open_etcd(options: dict[str, Any]) -> PhysicalStorage:
    from strongroom.storage import etcd

    return await etcd.open_etcd(options)


async def _open_postgresql(options: dict[str, Any]) -> PhysicalStorage:
    from strongroom.storage import postgresql  # psycopg is imported only when configured

    return await postgresql.open_postgresql(options)


async def open_storage(kind: str, options: dict[str, Any]) -> PhysicalStorage:
    factories = _factories()
    if kind not in factories:
        raise InvalidRequest(f'unknown storage type "{kind}" (supported: {", ".join(sorted(factories))})')
    return await factories[kind](options)


def children(keys: list[str], prefix: str) -> list[str]:
    """Vault list semantics over a flat sorted key list: immediate children of ``prefix``, folders once with '/'."""
    out: list[str] = []
    seen: set[str] = set()
    n = len(prefix)
    for key in keys:
        if not key.startswith(prefix):
            continue
        rest = key[n:]
        slash = rest.find("/")
        child = rest if slash < 0 else rest[: slash + 1]
        if child and child not in seen:
            seen.add(child)
            out.append(child)
    return sorted(out)


__all__ = ["INDEX_PREFIX", "PhysicalStorage", "Storage", "children", "open_storage"]
