"""core/write_index.py: the active numbers its writes and announces the highest; a standby covers an
index once it has received an announcement at least that high, in the same epoch."""

from __future__ import annotations

import asyncio

from strongroom.core.write_index import PREFIX, RevisionIndex, WriteIndex


async def test_the_active_numbers_and_announces_the_highest_number_given() -> None:
    sent: list[str] = []
    gate = asyncio.Event()

    async def announce(payload: str) -> None:
        sent.append(payload)
        await gate.wait()

    active = WriteIndex(announce)
    first = active.mark()
    await asyncio.sleep(0)  # the first announcement is under way (held by the gate)
    second, third = active.mark(), active.mark()
    assert (first, second, third) == tuple(f"sr1.{active.epoch}.{n}" for n in (1, 2, 3))
    gate.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert sent == [f"{PREFIX}{active.epoch} 1", f"{PREFIX}{active.epoch} 3"]  # 2 is covered by 3
    assert WriteIndex(None).mark() is None  # a store that cannot announce: no index given


async def test_a_standby_covers_what_it_has_received_waiting_a_little() -> None:
    standby = WriteIndex(None)
    assert not await standby.covers("sr1.e1.1", 0.01)
    standby.seen(f"{PREFIX}e1 5")
    assert await standby.covers("sr1.e1.5", 0) and await standby.covers("sr1.e1.2", 0)
    assert not await standby.covers("sr1.e1.6", 0.01)
    waiter = asyncio.create_task(standby.covers("sr1.e1.7", 1.0))
    await asyncio.sleep(0.02)
    standby.seen(f"{PREFIX}e1 7")
    assert await waiter
    for other in ("sr1.e2.1", "strongroom-1", "sr1.e1.x", "sr1.e1", "", f"{PREFIX}e1 7"):
        assert not await standby.covers(other, 0)  # another epoch, or not an index of ours
    for n in range(2, 7):  # a few epochs are remembered, the oldest forgotten
        standby.seen(f"{PREFIX}e{n} 1")
    assert not await standby.covers("sr1.e1.1", 0) and await standby.covers("sr1.e6.1", 0)
    standby.seen(f"{PREFIX}garbage")  # ignored


async def test_on_a_store_with_revisions_the_index_is_the_last_write_revision() -> None:
    written: list[tuple[str, int]] = []
    active = RevisionIndex(lambda: written[-1] if written else None)
    assert active.mark() is None  # nothing written yet: no index (the answer's is opaque, http/app.py)
    written.append(("42", 7))
    assert active.mark() == "sr1.42.7" and active.mark() == "sr1.42.7"  # nothing announced: the store numbers
    standby = RevisionIndex(lambda: None)
    waiter = asyncio.create_task(standby.covers("sr1.42.7", 1.0))
    standby.seen(f"{PREFIX}42 6")  # the watch's revision so far
    await asyncio.sleep(0.02)
    assert not waiter.done()
    standby.seen(f"{PREFIX}42 9")  # past it (other writes too)
    assert await waiter
    assert not await standby.covers("sr1.42.10", 0.01) and not await standby.covers("sr1.43.1", 0)
