"""A backend's JSON records in its storage view (encrypted by the barrier below it): one way to
read and write them, for the many stores that keep a config and roles as ``to_json`` / ``from_json``
dataclasses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import orjson

from strongroom.logical import Storage

T = TypeVar("T")


class Record(Protocol):
    def to_json(self) -> dict[str, Any]: ...


async def load_record(storage: Storage, key: str, decode: Callable[[Any], T]) -> T | None:
    """The record at ``key``, decoded (e.g. ``Role.from_json``); None when there is none."""
    raw = await storage.get(key)
    return None if raw is None else decode(orjson.loads(raw))


async def save_record(storage: Storage, key: str, record: Record) -> None:
    await storage.put(key, orjson.dumps(record.to_json()))
