"""Token creation as one batch: a token, its indexes and its lease commit together or not at all;
creates by one parent do not queue behind each other; a parent's revocation still catches every
child being created while it runs."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from strongroom.core.tokens import TokenEntry, TokenStore
from strongroom.core.tokens.store import ACCESSOR_PREFIX, ID_PREFIX, PARENT_PREFIX
from strongroom.errors import InvalidRequest
from strongroom.logical import WriteBatch

MakeStore = Any


def gated(storage_class: Any) -> Any:
    class Gated(storage_class):  # type: ignore[misc]
        """Records each batch; can park batches on a gate, or fail them."""

        def __init__(self) -> None:
            super().__init__()
            self.batches: list[list[str]] = []
            self.gate: asyncio.Event | None = None
            self.parked = 0
            self.fail = False

        async def write_batch(self, ops: Sequence[tuple[str, bytes | None]]) -> None:
            if self.fail:
                raise OSError("disk full")
            if self.gate is not None:
                self.parked += 1
                await self.gate.wait()
                self.parked -= 1
            self.batches.append([key for key, _ in ops])
            await super().write_batch(ops)

    return Gated()


async def _until(cond: Any) -> None:
    for _ in range(100):
        if cond():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


async def test_token_and_hook_writes_are_one_batch_in_crash_safe_order(storage_class: Any,
                                                                         make_store: MakeStore) -> None:
    storage = gated(storage_class)
    store: TokenStore = await make_store(storage)

    async def lease_hook(entry: TokenEntry, batch: WriteBatch) -> None:
        batch.put(storage, f"lease/{entry.id}", b"lease")

    store.add_create_hook(lease_hook)
    _, parent = await store.create(policies=["a"], path="p")
    storage.batches.clear()
    _, child = await store.create(policies=["a"], path="p", parent=parent)
    acc = store.hash(child.accessor)
    # Indexes, then the record, then the lease: any prefix of it is a state revocation handles.
    assert storage.batches == [[f"sys/token/{ACCESSOR_PREFIX}{acc}", f"sys/token/{PARENT_PREFIX}{parent.id}/{child.id}",
                                f"sys/token/{ID_PREFIX}{child.id}", f"lease/{child.id}"]]


async def test_a_failed_create_leaves_nothing(storage_class: Any, make_store: MakeStore) -> None:
    storage = gated(storage_class)
    store: TokenStore = await make_store(storage)
    _, parent = await store.create(policies=["a"], path="p")
    before = await storage.keys()
    storage.fail = True
    with pytest.raises(OSError, match="disk full"):
        await store.create(policies=["a"], path="p", parent=parent)
    storage.fail = False
    assert await storage.keys() == before
    assert len(store._cache) <= 1  # at most the parent: no half-made token is served from memory
    assert store._births == {}  # and the parent is not left looking busy
    await store.revoke(parent)


async def test_creates_by_one_parent_commit_concurrently(storage_class: Any, make_store: MakeStore) -> None:
    storage = gated(storage_class)
    store: TokenStore = await make_store(storage)
    _, parent = await store.create(policies=["a"], path="p")
    storage.gate = asyncio.Event()
    creates = [asyncio.ensure_future(store.create(policies=["a"], path="p", parent=parent)) for _ in range(4)]
    # All four reach storage together (one group commit), none waits for another's fsync.
    await _until(lambda: storage.parked == 4)
    storage.gate.set()
    children = [entry for _, entry in await asyncio.gather(*creates)]
    assert all(c.parent == parent.id for c in children)


async def test_revoking_a_parent_waits_for_a_child_being_created(storage_class: Any,
                                                                  make_store: MakeStore) -> None:
    storage = gated(storage_class)
    store: TokenStore = await make_store(storage)
    _, parent = await store.create(policies=["a"], path="p")
    storage.gate = asyncio.Event()
    creating = asyncio.ensure_future(store.create(policies=["a"], path="p", parent=parent))
    await _until(lambda: storage.parked == 1)  # the child's batch is on its way to storage
    revoking = asyncio.ensure_future(store.revoke(parent))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not revoking.done()  # it must not list the parent's children yet
    storage.gate.set()
    token, _ = await creating
    await revoking
    # The child was created, so it was revoked with its parent: nothing escapes the tree.
    assert await store.lookup(token) is None
    assert await storage.keys(f"sys/token/{ID_PREFIX}") == []
    assert store._births == {}


async def test_duplicate_custom_ids_race_to_one_winner(storage_class: Any, make_store: MakeStore) -> None:
    storage = gated(storage_class)
    store: TokenStore = await make_store(storage)
    storage.gate = asyncio.Event()
    racing = [asyncio.ensure_future(store.create(policies=["a"], path="p", token_id="my-token")) for _ in range(3)]
    await _until(lambda: storage.parked == 1)
    storage.gate.set()
    results = await asyncio.gather(*racing, return_exceptions=True)
    assert sum(isinstance(r, tuple) for r in results) == 1
    assert sum(isinstance(r, InvalidRequest) for r in results) == 2


async def test_revocation_removes_a_tokens_records_in_one_batch(storage_class: Any, make_store: MakeStore) -> None:
    storage = gated(storage_class)
    store: TokenStore = await make_store(storage)
    _, parent = await store.create(policies=["a"], path="p")
    _, child = await store.create(policies=["a"], path="p", parent=parent)
    storage.batches.clear()
    await store.revoke(child)
    assert storage.batches == [[f"sys/token/{ID_PREFIX}{child.id}", f"sys/token/{ACCESSOR_PREFIX}{store.hash(child.accessor)}",
                                f"sys/token/{PARENT_PREFIX}{parent.id}/{child.id}"]]
