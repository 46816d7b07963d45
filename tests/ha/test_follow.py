"""Standbys follow the active's writes (core/follow.py): two cores in this process on one real store,
the first active, the second a standby whose caches (policy, mount table, physical cache) must show
the active's writes within a second: PostgreSQL LISTEN/NOTIFY and etcd watch."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from strongroom.core import Core, CoreConfig
from strongroom.core.follow import Follower
from strongroom.core.ha import HA
from strongroom.errors import StrongroomError
from strongroom.server import follow_writes
from strongroom.storage import INDEX_PREFIX, PhysicalStorage, open_storage
from strongroom.storage.cache import CachedStorage
from strongroom.testing import app_client
from tests.storage.services import PG_URL, EtcdServer


@dataclass
class Node:
    core: Core
    physical: PhysicalStorage
    follower: Follower | None


async def _node(physical: PhysicalStorage, name: str) -> Node:
    core = Core(CachedStorage(physical), CoreConfig(api_addr=f"http://{name}"))
    lock = getattr(physical, "ha")
    core.ha = HA(lock, f"http://{name}")
    return Node(core, physical, follow_writes(core, physical))


async def _until(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if await check():
            return time.monotonic() - start
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


async def _pair(open_one: Callable[[], Awaitable[PhysicalStorage]]) -> AsyncIterator[tuple[Node, Node, str]]:
    a = await _node(await open_one(), "a")
    b: Node | None = None
    try:
        key, root = await a.core.dev_bootstrap("root")
        await _until(lambda: _true(a.core.serving_active))
        b = await _node(await open_one(), "b")
        await b.core.unseal(key)
        assert not b.core.serving_active and b.follower is not None
        await asyncio.wait_for(b.follower.subscribed.wait(), 5)
        yield a, b, root
    finally:
        for n in (b, a):
            if n is not None:
                if n.follower is not None:
                    await n.follower.stop()
                await n.core.seal()
                await n.physical.close()


async def _true(value: bool) -> bool:
    return value


async def _check_follows(a: Node, b: Node, root: str) -> None:
    assert a.follower is not None
    applied_on_active = a.follower.applied
    # 1. The physical cache: the standby has the key cached; the active rewrites it.
    await a.core.barrier.put("test/follow", b"one")
    assert await b.core.barrier.get("test/follow") == b"one"
    await asyncio.sleep(0.3)  # the write's own notification has come and gone
    assert await b.core.barrier.get("test/follow") == b"one"
    hits = b.core.physical.hits  # type: ignore[attr-defined]
    assert await b.core.barrier.get("test/follow") == b"one"
    assert b.core.physical.hits == hits + 1  # type: ignore[attr-defined]  # served from the cache
    await a.core.barrier.put("test/follow", b"two")
    took = await _until(lambda: _equals(b.core.barrier.get("test/follow"), b"two"))
    assert took < 1.0, f"the standby's cache followed after {took:.2f}s"
    await a.core.barrier.delete("test/follow")
    assert await _until(lambda: _equals(b.core.barrier.get("test/follow"), None)) < 1.0
    async with app_client(a.core, root) as c:
        # 2. A policy the standby has cached.
        r = await c.put("/v1/sys/policies/acl/app", json={"policy": 'path "a/*" { capabilities = ["read"] }'})
        assert r.status_code == 204
        got = await b.core.policies.get("app")
        assert got is not None and '"a/*"' in got.text
        r = await c.put("/v1/sys/policies/acl/app", json={"policy": 'path "b/*" { capabilities = ["list"] }'})
        assert r.status_code == 204

        async def policy_followed() -> bool:
            p = await b.core.policies.get("app")
            return p is not None and '"b/*"' in p.text

        assert await _until(policy_followed) < 1.0
        # 3. The mount table: a new mount appears on the standby.
        assert "fresh/" not in [e.path for e in b.core.mounts.entries()]
        r = await c.post("/v1/sys/mounts/fresh", json={"type": "kv", "options": {"version": "2"}})
        assert r.status_code == 204
        assert await _until(lambda: _true("fresh/" in [e.path for e in b.core.mounts.entries()])) < 1.0
    # 4. A key rotation: the standby re-reads the keyring and decrypts what the new term wrote.
    await a.core.barrier.rotate()
    await a.core.barrier.put("test/rotated", b"new-term")

    async def decrypts() -> bool:
        try:
            return await b.core.barrier.get("test/rotated") == b"new-term"
        except StrongroomError:
            return False  # a term it does not know (yet)

    assert await _until(decrypts) < 1.0
    assert b.core.barrier.key_status()[0] == a.core.barrier.key_status()[0]
    assert b.follower is not None and b.follower.applied > 0
    assert a.follower.applied == applied_on_active  # the active ignores the feed (its own writes)
    # 5. X-Vault-Index (core/write_index.py): once the standby covers the index of the active's last
    # write, its caches show that write (PostgreSQL: the active's announcement; etcd: the revision).
    await a.core.barrier.put("test/index", b"one")
    assert await b.core.barrier.get("test/index") == b"one"  # cached on the standby
    await a.core.barrier.put("test/index", b"two")
    index = a.follower.index.mark()
    assert index is not None and index.startswith("sr1.")
    assert await b.follower.index.covers(index, 1.0)
    assert await b.core.barrier.get("test/index") == b"two"  # no waiting: covered means applied
    epoch, n = index.split(".")[1:]
    assert not await b.follower.index.covers(f"sr1.{epoch}.{int(n) + 1000}", 0.05)  # ahead of the feed


async def _equals(got: Awaitable[Any], want: Any) -> bool:
    return bool(await got == want)


async def test_standby_follows_on_postgresql(tables: tuple[str, str]) -> None:
    async def open_one() -> PhysicalStorage:
        return await open_storage("postgresql", {"connection_url": PG_URL, "table": tables[0], "ha_enabled": "true",
                                                 "ha_table": tables[1], "ha_lock_ttl": "1s"})

    async for a, b, root in _pair(open_one):
        await _check_follows(a, b, root)


async def test_standby_follows_on_etcd(etcd_fast: EtcdServer) -> None:
    path = f"/sr-follow-{uuid.uuid4().hex[:8]}/"

    async def open_one() -> PhysicalStorage:
        return await open_storage("etcd", {"address": etcd_fast.address, "path": path, "ha_enabled": "true",
                                           "session_ttl": "1s"})

    async for a, b, root in _pair(open_one):
        await _check_follows(a, b, root)


async def test_lost_notifications_drop_the_cache_and_resubscribe(tables: tuple[str, str]) -> None:
    async def open_one() -> PhysicalStorage:
        return await open_storage("postgresql", {"connection_url": PG_URL, "table": tables[0], "ha_enabled": "true",
                                                 "ha_table": tables[1], "ha_lock_ttl": "1s"})

    async for a, b, _root in _pair(open_one):
        assert b.follower is not None
        await a.core.barrier.put("test/gap", b"one")
        assert await _until(lambda: _equals(b.core.barrier.get("test/gap"), b"one")) < 1.0
        resets = b.follower.resets
        channel = getattr(b.physical, "channel")
        # The standby's LISTEN connection dies; the active writes while nobody listens.
        async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as admin:
            await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = %s",
                                (f'LISTEN "{channel}"',))
            a_pub = getattr(a.physical, "publishing")
            setattr(a.physical, "publishing", False)  # this write is never notified: only the reset can save us
            await a.core.barrier.put("test/gap", b"two")
            setattr(a.physical, "publishing", a_pub)
        await _until(lambda: _true(b.follower is not None and b.follower.resets > resets))
        await asyncio.wait_for(b.follower.subscribed.wait(), 5)
        assert await b.core.barrier.get("test/gap") == b"two"
        # And it follows again.
        await a.core.barrier.put("test/gap", b"three")
        assert await _until(lambda: _equals(b.core.barrier.get("test/gap"), b"three")) < 1.0


async def test_etcd_watch_reopens_after_silence_without_missing_a_change(etcd_fast: EtcdServer) -> None:
    from strongroom.storage.etcd import EtcdStorage
    from strongroom.storage.etcd_watch import watch

    path = f"/sr-watch-{uuid.uuid4().hex[:8]}/"
    writer = await open_storage("etcd", {"address": etcd_fast.address, "path": path})
    reader = await open_storage("etcd", {"address": etcd_fast.address, "path": path})
    assert isinstance(reader, EtcdStorage)
    seen: list[str | None] = []

    async def follow() -> None:
        async for key in watch(reader, silence=0.3):
            seen.append(key)

    task = asyncio.create_task(follow())
    try:
        await _until(lambda: _true(None in seen))  # then the revision the new watch starts at
        await writer.put("a", b"1")
        await _until(lambda: _true("a" in seen))
        await asyncio.sleep(0.5)  # silent past 0.3 s: the stream is re-opened from the last revision
        await writer.put("b", b"2")
        await writer.delete("a")
        await _until(lambda: _true(seen.count("a") == 2 and "b" in seen))
        keys = [k for k in seen if k is None or not k.startswith(INDEX_PREFIX)]
        assert keys == [None, "a", "b", "a"]  # announced once; every change once, none missed
        # After each change, the revision it brought the watch to: the writer's own revision last
        # (X-Vault-Index on etcd, core/write_index.py), in increasing order.
        assert isinstance(writer, EtcdStorage)
        written = writer.write_revision()
        assert written is not None
        await _until(lambda: _true(seen[-1] == f"{INDEX_PREFIX}{written[0]} {written[1]}"))
        revisions = [int(k.split(" ")[-1]) for k in seen if k is not None and k.startswith(INDEX_PREFIX)]
        assert revisions == sorted(set(revisions)) and len(revisions) >= 3
        await writer.delete("absent")  # a delete that finds nothing is no write: the revision stays
        assert writer.write_revision() == written
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await writer.close()
        await reader.close()


async def test_postgresql_writes_notify_their_keys_at_commit(tables: tuple[str, str]) -> None:
    from strongroom.storage.postgresql import PostgresqlStorage

    options = {"connection_url": PG_URL, "table": tables[0]}
    writer, reader = await open_storage("postgresql", options), await open_storage("postgresql", options)
    assert isinstance(writer, PostgresqlStorage) and isinstance(reader, PostgresqlStorage)
    seen: list[str | None] = []

    async def follow() -> None:
        async for key in reader.changes():
            seen.append(key)

    task = asyncio.create_task(follow())
    try:
        await _until(lambda: _true(seen == [None]))
        await writer.put("quiet", b"0")  # not publishing: no notification (HA off costs nothing)
        writer.publish_changes()
        await writer.put("a/b", b"1")
        await writer.delete("a/b")
        await writer.write_batch([("c", b"3"), ("d/e", None), ("c", b"4")])
        await writer.put("long/" + "x" * 8000, b"5")  # too long for a payload: "something changed"
        await _until(lambda: _true(len(seen) >= 6))
        await asyncio.sleep(0.1)
        assert seen == [None, "a/b", "a/b", "c", "d/e", None]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await writer.close()
        await reader.close()


async def test_etcd_watch_reports_the_revision_its_events_reached(monkeypatch: Any) -> None:
    """The watch's ``INDEX_PREFIX`` items (X-Vault-Index on etcd) name only revisions whose events
    have all been yielded: not a catching-up message's header, a progress notification's or a
    re-opened watch's start; the re-opened watch resumes past the progress notification."""
    import base64
    import json

    import httpx

    from strongroom.storage import etcd_watch

    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    def msg(revision: int, **result: Any) -> str:
        return json.dumps({"result": {"header": {"cluster_id": "7", "revision": str(revision)}, **result}})

    def put(key: str, revision: int) -> dict[str, Any]:
        return {"kv": {"key": b64("/p/" + key), "mod_revision": str(revision)}}

    streams = [
        [msg(10, created=True), msg(20, events=[put("a", 11), put("b", 12)]), msg(25)],  # catching up; progress
        [msg(30, created=True), msg(30, events=[put("c", 30)])],  # re-opened past 25
    ]
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content)["create_request"])
        lines = streams.pop(0) if streams else []
        if not lines:
            raise httpx.ConnectError("no more")
        return httpx.Response(200, content="\n".join(lines).encode())

    real = httpx.AsyncClient
    monkeypatch.setattr(etcd_watch.httpx, "AsyncClient",
                        lambda **kw: real(transport=httpx.MockTransport(handler), **kw))

    class Store:
        path = "/p/"
        endpoints = ("http://etcd",)

        async def auth_headers(self) -> dict[str, str]:
            return {}

    seen: list[str | None] = []
    try:
        async for item in etcd_watch.watch(Store()):  # type: ignore[arg-type]
            seen.append(item)
    except StrongroomError:
        pass  # the third stream cannot be opened
    assert seen == [None, f"{INDEX_PREFIX}7 10", "a", "b", f"{INDEX_PREFIX}7 12", "c", f"{INDEX_PREFIX}7 30"]
    assert "start_revision" not in bodies[0] and bodies[1]["start_revision"] == "26"
