"""Write-ahead rollback log: how a backend that creates things outside Strongroom (a database user,
a cloud key) makes sure a crash never leaves one behind without a lease to revoke it.

The rule, for every external create whose undo is the lease's revocation:

    1  wal_id = await b.put_wal("user", {"name": name})     # durable before anything exists outside
    2  create the user in the database
    3  return kind.response(data, internal, wal_ids=[wal_id])

and core does the rest: in the register step (core/pipeline.py) the lease is written and the WAL
entries the response names are deleted **in the same storage commit** (``stage_wal_deletes`` into
the lease's WriteBatch; both views live over the one barrier store, so the commit is atomic). So:

    crash before 1           nothing exists anywhere
    crash between 1 and the  the entry stays; the backend's ``rollback(kind, data)`` drops the user:
    lease commit             on the active node's ``activate`` after restart/unseal (every entry
                             no running request of this process owns is an orphan, whatever its
                             age), and from ``periodic(now)`` for any entry older than the minimum age
    after the commit         the lease exists and the entry does not: revocation drops the user

Why not Vault's way (the backend deletes its entry itself once the handler is done, and the rollback
waits out a minimum age so the lease has been written meanwhile): our handler returns *before* core
writes the lease, so an entry deleted by the handler could be gone while the lease never became
durable (the lease write failed, the process died in between): an orphan outside, forever. Deleting
in the lease's own commit has no such window and needs no guess at how long a request takes.
A response without a registered lease (no ``secret``, or a backend that ``generates_leases`` is
False) has its entries deleted right after the backend returned (pipeline.register).

Where the store is not one atomic store, the batch writes the lease before the entry's delete: a
crash between leaves both, and the rollback then drops a user whose lease revocation will find it
gone (a revoke must tolerate that: DROP ... IF EXISTS). Never the reverse (an orphan).

A backend may also delete its entries itself (``delete_wal``) when its undo is not a lease (e.g. it
wrote a role to its own storage after the external create).

Entries are kept in the backend's own storage under ``wal/`` as JSON ``{"type", "data",
"created_at"}`` (the fields Vault's framework uses). ``data`` must be JSON-encodable; it is stored
barrier-encrypted like every other key of the mount, but keep secrets out of it anyway: the undo
needs names, not passwords.

Entries put by this process and not yet deleted are remembered in memory (``in_flight``): the
``activate`` of a backend rebuilt in this process (tune, remount, a mount-table reload) must not
roll back the work of a request still running in the old one. A process that dies forgets them,
which is the point.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from strongroom.errors import Internal
from strongroom.logical import Storage, WriteBatch

#: Reserved key prefix in a backend's storage.
WAL_PREFIX = "wal/"
#: Seconds an entry must have aged before ``periodic`` rolls it back (Vault's default: 10 minutes).
DEFAULT_MIN_AGE = 600.0

#: Undo the work a WAL entry describes: ``(kind, data) -> True/None`` done (the entry is deleted),
#: ``False`` not done yet (kept for the next round); raising also keeps it.
Rollback = Callable[[str, Any], Awaitable["bool | None"]]

log = logging.getLogger(__name__)

# Ids of entries this process put and has not deleted (see the module docstring).
_in_flight: set[str] = set()


@dataclass(frozen=True, slots=True)
class WALEntry:
    id: str
    kind: str
    data: Any
    created: float  # seconds since the epoch


@dataclass(frozen=True, slots=True)
class RollbackRound:
    """What one rollback round did: entries undone (and deleted), entries kept for later."""

    rolled_back: int = 0
    kept: int = 0


def _key(wal_id: str) -> str:
    # SECURITY: an id comes from our own storage listing or a backend's response; never let one
    # name a key outside the prefix.
    if not wal_id or "/" in wal_id or wal_id in (".", ".."):
        raise Internal(f"invalid write-ahead log id {wal_id!r}")
    return WAL_PREFIX + wal_id


async def put_wal(storage: Storage, kind: str, data: Any, *, now: float | None = None) -> str:
    """Record (durably, before returning) that the work ``kind``/``data`` is about to be done
    outside. Returns the entry's id."""
    wal_id = str(uuid.uuid4())
    created = time.time() if now is None else now
    value = orjson.dumps({"type": kind, "data": data, "created_at": created})
    _in_flight.add(wal_id)
    try:
        await storage.put(_key(wal_id), value)
    except BaseException:
        _in_flight.discard(wal_id)
        raise
    return wal_id


async def get_wal(storage: Storage, wal_id: str) -> WALEntry | None:
    """The entry, or None if there is none. A malformed entry is an Internal error."""
    raw = await storage.get(_key(wal_id))
    if raw is None:
        return None
    try:
        body = orjson.loads(raw)
        return WALEntry(wal_id, str(body["type"]), body.get("data"), float(body["created_at"]))
    except (ValueError, TypeError, KeyError):
        raise Internal(f"write-ahead log entry {wal_id} is malformed") from None


async def delete_wal(storage: Storage, wal_id: str) -> None:
    await storage.delete(_key(wal_id))
    _in_flight.discard(wal_id)


async def list_wal(storage: Storage) -> list[str]:
    """Ids of every entry, in no promised order."""
    return [k for k in await storage.list(WAL_PREFIX) if not k.endswith("/")]


def stage_wal_deletes(batch: WriteBatch, storage: Storage, wal_ids: Iterable[str]) -> None:
    """Add the deletes of ``wal_ids`` (in ``storage``, the backend's own) to ``batch``, after
    whatever the batch already holds (the lease): see the module docstring for the order."""
    ids = list(wal_ids)
    for wal_id in ids:
        batch.delete(storage, _key(wal_id))
    batch.on_commit(lambda: _in_flight.difference_update(ids))


async def commit_wal_deletes(storage: Storage, wal_ids: Iterable[str]) -> None:
    """Delete ``wal_ids`` in one commit (a response whose entries no lease commit took)."""
    batch = WriteBatch()
    stage_wal_deletes(batch, storage, wal_ids)
    await batch.commit()


def in_flight(wal_id: str) -> bool:
    """Whether a request of this process put the entry and has not finished with it."""
    return wal_id in _in_flight


def forget_in_flight() -> None:
    """Forget every entry this process put, as a process that died would. For tests that stand
    a crash in for a second core in the same process."""
    _in_flight.clear()


async def rollback_wal(storage: Storage, rollback: Rollback, *, now: float, min_age: float = DEFAULT_MIN_AGE,
                       orphans: bool = False, logger: logging.Logger = log) -> RollbackRound:
    """One rollback round over every entry in ``storage``: an entry older than ``min_age``, or with
    ``orphans`` (after a restart) any entry no running request of this process owns, is handed to
    ``rollback``; undone, it is deleted, otherwise kept for the next round. Never raises for one
    entry's failure (each is logged); the caller serialises rounds."""
    rolled = kept = 0
    for wal_id in await list_wal(storage):
        try:
            entry = await get_wal(storage, wal_id)
        except Internal as e:
            logger.error("cannot roll back %s: %s", wal_id, e)
            kept += 1
            continue
        if entry is None:  # committed meanwhile
            continue
        young = now - entry.created < min_age
        if young and (not orphans or in_flight(wal_id)):
            continue
        try:
            done = await rollback(entry.kind, entry.data)
        except Exception as e:  # noqa: BLE001 - a failed undo is retried next round, never fatal
            logger.warning("rollback of %s entry %s failed (kept for the next round): %s", entry.kind, wal_id, e)
            kept += 1
            continue
        if done is False:
            kept += 1
            continue
        await delete_wal(storage, wal_id)
        rolled += 1
    if rolled or kept:
        logger.info("write-ahead log rollback: %d rolled back, %d kept", rolled, kept)
    return RollbackRound(rolled, kept)


__all__ = [
    "DEFAULT_MIN_AGE",
    "WAL_PREFIX",
    "Rollback",
    "RollbackRound",
    "WALEntry",
    "commit_wal_deletes",
    "delete_wal",
    "forget_in_flight",
    "get_wal",
    "in_flight",
    "list_wal",
    "put_wal",
    "rollback_wal",
    "stage_wal_deletes",
]
