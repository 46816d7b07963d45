"""A backend's JSON records in its storage view (encrypted by the barrier below it): one way to
read and write them, for the many stores that keep a config and roles as ``to_json`` / ``from_json``
dataclasses. :class:`RecordAt` and :class:`NamedRecords` give a store's ``get_config``/``put_role``
functions in one line each."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import orjson

from strongroom.logical import Storage

T = TypeVar("T")


class Record(Protocol):
    def to_json(self) -> dict[str, Any]: ...


class NamedRecord(Record, Protocol):
    name: str


R = TypeVar("R", bound=Record)
N = TypeVar("N", bound=NamedRecord)


async def load_record(storage: Storage, key: str, decode: Callable[[Any], T]) -> T | None:
    """The record at ``key``, decoded (e.g. ``Role.from_json``); None when there is none."""
    raw = await storage.get(key)
    return None if raw is None else decode(orjson.loads(raw))


async def save_record(storage: Storage, key: str, record: Record) -> None:
    await storage.put(key, orjson.dumps(record.to_json()))


@dataclass(frozen=True, slots=True)
class RecordAt(Generic[R]):
    """The one record at ``key`` (a mount's config)."""

    key: str
    decode: Callable[[Any], R]

    async def get(self, storage: Storage) -> R | None:
        return await load_record(storage, self.key, self.decode)

    async def put(self, storage: Storage, record: R) -> None:
        await save_record(storage, self.key, record)


@dataclass(frozen=True, slots=True)
class NamedRecords(Generic[N]):
    """Records kept one per name under ``prefix`` (roles); names are case-insensitive, stored
    lower-case, as in Vault."""

    prefix: str
    decode: Callable[[Any], N]

    async def get(self, storage: Storage, name: str) -> N | None:
        return await load_record(storage, self.prefix + name.lower(), self.decode)

    async def put(self, storage: Storage, record: N) -> None:
        await save_record(storage, self.prefix + record.name.lower(), record)
