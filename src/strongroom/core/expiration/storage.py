"""LeaseStorage: the lease records and their two indexes (layout and write order: see lease.py).

Every change to a lease's expiry goes through here, so the due/ index and the scheduler never
disagree with the id/ record: ``on_index`` is told after an index entry is written, ``on_forget``
after a lease is gone.

A new lease is written as part of a :class:`~strongroom.logical.WriteBatch` (``stage_create``), so
it can share one durable commit with whatever it belongs to: the token it tracks, or nothing else
(``create``). Its writes keep the order of lease.py (indexes, then the record) inside the batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import orjson

from strongroom.core.expiration.lease import (
    DUE_PREFIX,
    ID_PREFIX,
    KIND_SECRET,
    LAYOUT_KEY,
    LEGACY_BUCKET_SECONDS,
    TOKEN_PREFIX,
    Lease,
    digest,
    due_key,
    parse_due_name,
)
from strongroom.errors import Internal
from strongroom.framework.locks import StripedLocks
from strongroom.logical import Storage, WriteBatch, WriteOp, apply_writes


def _noop_index(expire_ms: int, lease_digest: str) -> None:
    return None


def _noop_forget(lease_digest: str) -> None:
    return None


async def recorded_bucket_seconds(view: Storage, default: int) -> int:
    """The bucket width of this store's due/ keys, recorded on first use (the rule: lease.py,
    "Bucket width"). ``default`` is what a store without any due/ entry starts with."""
    raw = await view.get(LAYOUT_KEY)
    if raw is not None:
        try:
            width = orjson.loads(raw).get("bucket_seconds")
        except (ValueError, AttributeError):
            width = None
        if not isinstance(width, int) or isinstance(width, bool) or width <= 0:
            # Guessing would strand every lease whose key the guess cannot find.
            raise Internal(f"lease layout record is invalid: {raw!r}")
        return width
    width = LEGACY_BUCKET_SECONDS if await view.list(DUE_PREFIX) else default
    await view.put(LAYOUT_KEY, orjson.dumps({"bucket_seconds": width}))
    return width


class LeaseStorage:
    def __init__(self, view: Storage, bucket_ms: int) -> None:
        self._view = view
        # The width of this store's due/ keys: the manager sets it at setup (recorded_bucket_seconds).
        self.bucket_ms = bucket_ms
        self._locks = StripedLocks()
        self.on_index: Callable[[int, str], None] = _noop_index
        self.on_forget: Callable[[str], None] = _noop_forget
        # Ids of leases whose creating batch has not settled: their indexes may be durable before
        # their record (storage that applies a batch write by write), which tidy must not take for
        # a crash's leftovers.
        self._creating: set[str] = set()

    def lock(self, lease_id: str) -> asyncio.Lock:
        """The lock for any read-modify-write of this lease (one of a fixed set of stripes)."""
        return self._locks.lock_for(lease_id)

    async def load(self, lease_id: str) -> Lease | None:
        if not lease_id:
            return None
        raw = await self._view.get(ID_PREFIX + lease_id)
        return Lease.from_json(orjson.loads(raw)) if raw is not None else None

    def _owner_key(self, lease: Lease) -> str | None:
        if lease.kind != KIND_SECRET or not lease.token_id:
            return None
        return f"{TOKEN_PREFIX}{lease.token_id}/{digest(lease.id)}"

    async def create(self, lease: Lease, then: Callable[[WriteBatch], None] | None = None) -> None:
        """Persist a new lease in one commit, then schedule it. Under the lease's lock, so that
        where storage applies the batch write by write, a revocation that finds the owner index
        early waits for the record. ``then`` adds writes to the same commit, after the lease's
        (the backend's write-ahead entries' deletes: framework/wal.py)."""
        batch = WriteBatch()
        self.stage_create(lease, batch)
        if then is not None:
            then(batch)
        async with self.lock(lease.id):
            await batch.commit()

    def stage_create(self, lease: Lease, batch: WriteBatch) -> None:
        """Add a new lease's writes to ``batch``: indexes first, the record last (see lease.py).
        It is scheduled once the batch has committed. The id must be new (nobody else can hold
        it yet), so no lock is taken."""
        d, expire_ms, value = digest(lease.id), lease.expire_ms, lease.id.encode()
        batch.put(self._view, due_key(expire_ms, d, self.bucket_ms), value)
        owner = self._owner_key(lease)
        if owner is not None:
            batch.put(self._view, owner, value)
        batch.put(self._view, ID_PREFIX + lease.id, orjson.dumps(lease.to_json()))
        self._creating.add(lease.id)
        batch.on_commit(lambda: self.on_index(expire_ms, d))
        batch.on_settled(lambda: self._creating.discard(lease.id))

    async def move(self, lease: Lease, expire_time: float) -> None:
        """Give the lease a new expiry (renewal, or "now" to queue its revocation). Caller holds its lock.
        One commit: the new index entry, the record, then the old entry's delete."""
        d = digest(lease.id)
        old = due_key(lease.expire_ms, d, self.bucket_ms)
        lease.expire_time = expire_time
        new = due_key(lease.expire_ms, d, self.bucket_ms)
        record = (ID_PREFIX + lease.id, orjson.dumps(lease.to_json()))
        ops: list[WriteOp] = [record] if new == old else [(new, lease.id.encode()), record, (old, None)]
        await apply_writes(self._view, ops)
        self.on_index(lease.expire_ms, d)

    async def park(self, lease: Lease) -> None:
        """Take the lease off the schedule but keep its record (irrevocable). Caller holds its lock."""
        d = digest(lease.id)
        await apply_writes(self._view, [(ID_PREFIX + lease.id, orjson.dumps(lease.to_json())),
                                        (due_key(lease.expire_ms, d, self.bucket_ms), None)])
        self.on_forget(d)

    async def delete(self, lease: Lease) -> None:
        """Record first, indexes after (see lease.py), in one commit. Caller holds the lease's lock."""
        d = digest(lease.id)
        ops: list[WriteOp] = [(ID_PREFIX + lease.id, None), (due_key(lease.expire_ms, d, self.bucket_ms), None)]
        owner = self._owner_key(lease)
        if owner is not None:
            ops.append((owner, None))
        await apply_writes(self._view, ops)
        self.on_forget(d)

    async def walk(self, prefix: str) -> AsyncIterator[str]:
        """Every key under ``prefix``, relative to it, depth first."""
        pending = [""]
        while pending:
            folder = pending.pop()
            for child in await self._view.list(prefix + folder):
                if child.endswith("/"):
                    pending.append(folder + child)
                else:
                    yield folder + child

    async def drop_dangling(self) -> int:
        """Delete index entries whose lease is gone or has moved (left by a crash). Returns how many."""
        dropped = 0
        async for key in self.walk(DUE_PREFIX):
            parsed = parse_due_name(key.rsplit("/", 1)[-1])
            if await self._drop_if_dangling(DUE_PREFIX + key, None if parsed is None else parsed[0]):
                dropped += 1
        async for key in self.walk(TOKEN_PREFIX):
            if await self._drop_if_dangling(TOKEN_PREFIX + key, None):
                dropped += 1
        return dropped

    async def _drop_if_dangling(self, key: str, expire_ms: int | None) -> bool:
        raw = await self._view.get(key)
        if raw is None:
            return False
        lease_id = raw.decode()
        # An index entry written by a create in progress is not a leftover (create writes the
        # indexes before the record; see _creating), nor is one of a move under the lease's lock.
        async with self.lock(lease_id):
            if lease_id in self._creating:
                return False
            lease = await self.load(lease_id)
            if lease is not None and (expire_ms is None or lease.expire_ms == expire_ms):
                return False
            await self._view.delete(key)
        return True
