"""LeaseStorage on storage that applies batches write by write (file storage, plain stores): a lease
being created is never mistaken for a crash's leftovers, and its batch keeps lease.py's order."""

from __future__ import annotations

import asyncio

from strongroom.barrier.view import StorageView
from strongroom.core.expiration.lease import DUE_PREFIX, ID_PREFIX, Lease
from strongroom.core.expiration.storage import LeaseStorage
from strongroom.logical import WriteBatch


class GatedPlainStorage:
    """A store without write_batch (so batches are applied in order), whose puts of lease records
    wait on a gate: the window between a lease's indexes and its record stays open."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.order: list[str] = []
        self.gate = asyncio.Event()

    async def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    async def put(self, key: str, value: bytes) -> None:
        if key.startswith("sys/expire/" + ID_PREFIX):
            await self.gate.wait()
        self.order.append(key)
        self.data[key] = value

    async def delete(self, key: str) -> None:
        self.data.pop(key, None)

    async def list(self, prefix: str) -> list[str]:
        out = {k[len(prefix):].split("/", 1)[0] + ("/" if "/" in k[len(prefix):] else "")
               for k in self.data if k.startswith(prefix)}
        return sorted(out)


async def test_tidy_does_not_drop_the_index_of_a_lease_being_created() -> None:
    physical = GatedPlainStorage()
    leases = LeaseStorage(StorageView(physical, "sys/expire/"), bucket_ms=3_600_000)
    scheduled: list[int] = []
    leases.on_index = lambda ms, d: scheduled.append(ms)
    lease = Lease(id="db/creds/ro/abc", path="db/creds/ro", expire_time=2_000_000_000.0, token_id="t1")
    batch = WriteBatch()
    leases.stage_create(lease, batch)
    creating = asyncio.ensure_future(batch.commit())
    for _ in range(5):
        await asyncio.sleep(0)
    assert any(k.startswith("sys/expire/" + DUE_PREFIX) for k in physical.data)  # index written, record not
    assert await leases.drop_dangling() == 0
    assert scheduled == []  # not scheduled before it is durable
    physical.gate.set()
    await creating
    assert scheduled == [lease.expire_ms]
    assert await leases.load(lease.id) == lease
    assert [k.split("/")[2] for k in physical.order] == ["due", "token", "id"]  # indexes, then record
    assert await leases.drop_dangling() == 0  # complete: nothing to drop
    assert leases._creating == set()
