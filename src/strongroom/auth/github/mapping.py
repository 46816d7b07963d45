"""map/teams/<team> and map/users/<user>: what a GitHub team or user is worth in policies.

Vault's PolicyMap: keys are ``[-\\w]+``, case-insensitive (stored lower-case); the value is a
comma-separated policy list kept as written (``{"value": "a,b"}``); the entry named ``default``
applies to every login. LIST (or a read of ``map/teams``) gives the keys.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeAlias

import orjson

from strongroom.auth.github.config import storage
from strongroom.errors import NotFound
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response
from strongroom.logical import Storage

if TYPE_CHECKING:
    from strongroom.auth.github import GitHubBackend

TEAMS = "teams"
USERS = "users"
DEFAULT_KEY = "default"

_Handler: TypeAlias = "Callable[[GitHubBackend, Request, FieldData], Awaitable[Response | None]]"
_Exists: TypeAlias = "Callable[[GitHubBackend, Request, FieldData], Awaitable[bool]]"


def _prefix(kind: str) -> str:
    return f"map/{kind}/"


def paths() -> list[Path[GitHubBackend]]:
    out: list[Path[GitHubBackend]] = []
    for kind in (TEAMS, USERS):
        out += [
            Path(f"map/{kind}/?", operations={Op.LIST: _lister(kind), Op.READ: _lister(kind)},
                 synopsis=f"Read mappings for {kind}"),
            Path(f"map/{kind}/(?P<key>[-\\w]+)", fields={
                "key": Field(FieldType.STRING, f"Key for the {kind} mapping"),
                "value": Field(FieldType.STRING, f"Value for {kind} mapping"),
            }, operations={Op.READ: _reader(kind), Op.CREATE: _writer(kind), Op.UPDATE: _writer(kind),
                           Op.DELETE: _deleter(kind)}, exists=_exists(kind),
                synopsis=f"Read/write/delete a single {kind} mapping"),
        ]
    return out


async def get_value(s: Storage, kind: str, key: str) -> str | None:
    raw = await s.get(_prefix(kind) + key.lower())
    return None if raw is None else str(orjson.loads(raw).get("value", ""))


async def policies(s: Storage, kind: str, names: list[str]) -> list[str]:
    """The sorted union of the policies mapped to ``default`` and to each of ``names``."""
    found: set[str] = set()
    for name in dict.fromkeys(n.lower() for n in [DEFAULT_KEY, *names] if n):
        value = await get_value(s, kind, name)
        if value:
            found.update(p.strip() for p in value.split(",") if p.strip())
    return sorted(found)


def _lister(kind: str) -> _Handler:
    async def handler(b: GitHubBackend, req: Request, d: FieldData) -> Response | None:
        keys = await storage(req).list(_prefix(kind))
        if not keys:
            raise NotFound()
        return Response(data={"keys": keys})
    return handler


def _reader(kind: str) -> _Handler:
    async def handler(b: GitHubBackend, req: Request, d: FieldData) -> Response | None:
        value = await get_value(storage(req), kind, d.get("key"))
        if value is None:
            raise NotFound()
        return Response(data={"value": value})
    return handler


def _writer(kind: str) -> _Handler:
    async def handler(b: GitHubBackend, req: Request, d: FieldData) -> Response | None:
        await storage(req).put(_prefix(kind) + d.get("key").lower(), orjson.dumps({"value": d.get("value") or ""}))
        return None
    return handler


def _deleter(kind: str) -> _Handler:
    async def handler(b: GitHubBackend, req: Request, d: FieldData) -> Response | None:
        await storage(req).delete(_prefix(kind) + d.get("key").lower())
        return None
    return handler


def _exists(kind: str) -> _Exists:
    async def handler(b: GitHubBackend, req: Request, d: FieldData) -> bool:
        return await get_value(storage(req), kind, d.get("key")) is not None
    return handler
