"""core/events.py: globs, the bounded per-subscriber queue (a slow subscriber is dropped, a
publisher never waits), closing, and the CloudEvents message."""

from __future__ import annotations

import asyncio

import pytest

from strongroom.core.events import Event, EventBus, glob

INFO = {"mount_class": "secret", "mount_accessor": "kv_1", "mount_path": "secret/", "plugin": "kv"}


def event(event_type: str, path: str = "secret/data/a") -> Event:
    return Event(event_type, {"path": path, "data_path": path}, INFO)


@pytest.mark.parametrize("pattern,event_type,matches", [
    ("*", "kv-v2/data-write", True),
    ("kv*", "kv-v2/data-write", True),
    ("kv-v2/data-write", "kv-v2/data-write", True),
    ("kv-v2/data-write", "kv-v2/data-writes", False),
    ("kv-v2/*-delete", "kv-v2/metadata-delete", True),
    ("kv-v2/data-?", "kv-v2/data-w", False),  # only * is special, as in Vault
    ("kv-v2/data-[wp]*", "kv-v2/data-write", False),
    ("database/*", "kv-v2/data-write", False),
])
def test_glob(pattern: str, event_type: str, matches: bool) -> None:
    assert (glob(pattern).fullmatch(event_type) is not None) is matches


async def test_slow_subscriber_dropped_publisher_never_waits() -> None:
    bus = EventBus(queue_size=3)
    slow = bus.subscribe("*")
    fast = bus.subscribe("kv*")
    got = []
    for i in range(10):
        bus.publish(event("kv-v2/data-write", f"secret/data/{i}"))  # synchronous: never waits
        e = await fast.next()
        assert e is not None
        got.append(e.metadata["path"])
    assert got == [f"secret/data/{i}" for i in range(10)]
    assert slow.dropped and slow.closed and bus.dropped == 1
    assert await slow.next() is None  # what was queued is gone with it
    assert bus.subscriptions == {fast}
    assert bus.published == 10


async def test_next_waits_and_close_wakes() -> None:
    bus = EventBus()
    sub = bus.subscribe("*")
    waiting = asyncio.create_task(sub.next())
    await asyncio.sleep(0)
    bus.publish(event("kv-v2/data-write"))
    first = await asyncio.wait_for(waiting, 1)
    assert first is not None and first.event_type == "kv-v2/data-write"
    waiting = asyncio.create_task(sub.next())
    await asyncio.sleep(0)
    bus.close_all()
    assert await asyncio.wait_for(waiting, 1) is None
    assert not bus.subscriptions


def test_cloudevent_shape() -> None:
    e = Event("kv-v2/data-write", {"path": "secret/data/a", "operation": "data-write"}, INFO, id="abc", time=0.5)
    assert e.cloudevent() == {
        "id": "abc", "source": "https://vaultproject.io/", "specversion": "1.0", "type": "*",
        "data": {"event": {"id": "abc", "metadata": {"path": "secret/data/a", "operation": "data-write"}},
                 "event_type": "kv-v2/data-write", "plugin_info": INFO},
        "datacontentype": "application/cloudevents", "time": "1970-01-01T00:00:00.500000Z"}
    assert e.data_path == "secret/data/a"
