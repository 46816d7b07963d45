"""Cached reads over a real socket: the server answers a repeated read without a task
(App.answer_cached), audited like any other request (hits of one loop turn share one audit write,
and no answer leaves before it), in order with pipelined requests, and fails closed."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from strongroom.audit.chain import verify
from strongroom.core import Core, CoreConfig
from strongroom.core.audit import AuditConfig
from strongroom.core.readcache import ReadCache
from strongroom.http.app import App
from strongroom.http.server import HttpServer
from strongroom.testing import app_client, unsealed_core

SECRET = "s3cr3t-value-never-in-the-log"


@dataclass
class Served:
    core: Core
    app: App
    port: int
    log: Path
    handled: list[str]  # paths that went through App.handle (the task path)


@asynccontextmanager
async def serving(tmp_path: Path, read_cache_size: int | None = None, **audit_options: str) -> AsyncIterator[Served]:
    config = CoreConfig(audit=AuditConfig(allow_api_creation=True))
    if read_cache_size is not None:
        config = dataclasses.replace(config, read_cache_size=read_cache_size)
    async with unsealed_core(config=config) as (core, root):
        log = tmp_path / "audit.log"
        async with app_client(core, root) as c:
            r = await c.put("/v1/sys/audit/file", json={"type": "file",
                                                         "options": {"file_path": str(log), **audit_options}})
            assert r.status_code == 204, r.text
            assert (await c.post("/v1/secret/data/db", json={"data": {"password": SECRET}})).status_code == 200
        app = App(core)
        handled: list[str] = []
        real = app.handle

        async def counting(method: str, path: str, *rest: Any) -> tuple[int, bytes]:
            handled.append(path)
            return await real(method, path, *rest)

        app.handle = counting  # type: ignore[method-assign]
        server = HttpServer(app, asyncio.get_running_loop())
        await server.start("127.0.0.1", 0)
        try:
            yield Served(core, app, server.sockets[0].getsockname()[1], log, handled)
        finally:
            await server.stop(grace=1)


def get(path: str, **headers: str) -> bytes:
    extra = "".join(f"{name.replace('_', '-')}: {value}\r\n" for name, value in headers.items())
    return f"GET {path} HTTP/1.1\r\nHost: x\r\nX-Vault-Token: root\r\n{extra}\r\n".encode()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, Any]]:
    status_line = await asyncio.wait_for(reader.readline(), 5)
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    body = await asyncio.wait_for(reader.readexactly(length), 5)
    return int(status_line.split()[1]), orjson.loads(body)


def entries(log: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in log.read_bytes().splitlines()]


async def test_a_repeated_read_is_answered_without_the_pipeline_and_audited(tmp_path: Path) -> None:
    async with serving(tmp_path) as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        local_port = writer.get_extra_info("sockname")[1]
        before = len(entries(s.log))
        answers = []
        for _ in range(3):
            writer.write(get("/v1/secret/data/db"))
            answers.append(await read_response(reader))
        writer.close()
        assert [status for status, _ in answers] == [200, 200, 200]
        assert all(body["data"]["data"] == {"password": SECRET} for _, body in answers)
        ids = [body["request_id"] for _, body in answers]
        assert len(set(ids)) == 3
        # Only the first went through App.handle; the others were kept answers.
        assert s.handled == ["/v1/secret/data/db"]
        assert s.core.reads.hits == 2
        logged = entries(s.log)[before:]
        assert [(e["type"], e["request"]["id"]) for e in logged] == [
            (kind, rid) for rid in ids for kind in ("request", "response")]
        first, hit = logged[1], logged[5]
        for e in logged:
            assert e["request"]["remote_port"] == local_port
            assert e["request"]["remote_address"] == "127.0.0.1"
        # The hit's response entry is the pipeline's, but for its time, id and chain.
        for e in (first, hit):
            del e["time"], e["request"]["id"], e["chain"]
        assert hit == first
        assert hit["response"]["data"]["data"]["password"].startswith("hmac-sha256:")
        assert SECRET.encode() not in s.log.read_bytes()
        assert verify(s.core.audit._get("file").entry.chain_key, s.log.read_bytes().splitlines()).ok


async def test_headers_strongroom_ignores_are_answered_without_the_pipeline(tmp_path: Path) -> None:
    async with serving(tmp_path) as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        asks = [get("/v1/secret/data/db", Content_Type="application/json"),  # kept from this one
                get("/v1/secret/data/db", Content_Type="application/json", Accept_Encoding="gzip"),
                get("/v1/secret/data/db", X_Random="1", X_Vault_Request="true"),
                get("/v1/secret/data/db", X_Vault_Wrap_TTL="60s")]  # means something: the pipeline
        answers = []
        for ask in asks:
            writer.write(ask)
            answers.append(await read_response(reader))
        writer.close()
        assert [body["data"]["data"] for _, body in answers[:3]] == [{"password": SECRET}] * 3
        assert answers[3][0] == 200 and answers[3][1]["wrap_info"]["ttl"] == 60
        assert s.handled == ["/v1/secret/data/db"] * 2  # the first and the wrapped one
        assert s.core.reads.hits == 2


async def test_a_miss_asks_the_admission_filter_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(tmp_path, read_cache_size=2) as s:
        async with app_client(s.core, "root") as c:
            for path in ("/v1/secret/data/other", "/v1/secret/data/third"):
                assert (await c.post(path, json={"data": {"n": "2"}})).status_code == 200
            for path in ("/v1/secret/data/db", "/v1/secret/data/other"):
                await c.get(path, headers={"X-Vault-Token": "root"})  # kept: there was room
        assert len(s.core.reads) == 2  # full now
        asked: list[Any] = []
        admit = ReadCache.admit

        def counted(cache: ReadCache, key: Any) -> bool:
            asked.append(key[1:])
            return admit(cache, key)

        monkeypatch.setattr(ReadCache, "admit", counted)
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        for n in range(3):
            writer.write(get("/v1/secret/data/third"))
            status, body = await read_response(reader)
            assert status == 200 and body["data"]["data"] == {"n": "2"}
            if n == 0:  # a first miss in a full cache: asked once, and not kept
                assert asked == [("secret/data/third", "")] and s.core.reads.hits == 0
        writer.close()
        # The second miss is kept, the third read is a hit: a new key is read through twice.
        assert asked == [("secret/data/third", "")] * 2
        assert s.handled == ["/v1/secret/data/third"] * 2 and s.core.reads.hits == 1


async def test_pipelined_reads_keep_their_order(tmp_path: Path) -> None:
    async with serving(tmp_path) as s:
        async with app_client(s.core, "root") as c:
            await c.post("/v1/secret/data/other", json={"data": {"n": "2"}})
            await c.get("/v1/secret/data/other", headers={"X-Vault-Token": "root"})  # kept (via App.handle)
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        # A miss, then a kept answer, a miss, a kept answer: all in one packet.
        writer.write(get("/v1/secret/data/db") + get("/v1/secret/data/other") + get("/v1/secret/data/nope")
                     + get("/v1/secret/data/other"))
        got = [await read_response(reader) for _ in range(4)]
        writer.close()
        assert [status for status, _ in got] == [200, 200, 404, 200]
        assert got[0][1]["data"]["data"] == {"password": SECRET}
        assert got[1][1]["data"]["data"] == got[3][1]["data"]["data"] == {"n": "2"}


async def test_a_hit_fails_closed_when_the_audit_device_cannot_write(tmp_path: Path) -> None:
    async with serving(tmp_path) as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write(get("/v1/secret/data/db"))
        assert (await read_response(reader))[0] == 200
        device = s.core.audit._get("file").device

        def broken(fd: int, data: bytes) -> int:
            raise OSError(28, "No space left on device")

        device.os_write = broken  # type: ignore[attr-defined]
        writer.write(get("/v1/secret/data/db"))
        status, body = await read_response(reader)
        writer.close()
        assert status == 500
        assert body == {"errors": ["audit: no enabled audit device could record the request"]}
        assert s.handled == ["/v1/secret/data/db"]  # the failure came from the kept answer's audit


async def test_a_device_that_does_not_write_inline_still_gets_the_hit_through_the_task(tmp_path: Path) -> None:
    async with serving(tmp_path, inline="false") as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        for _ in range(2):
            writer.write(get("/v1/secret/data/db"))
            assert (await read_response(reader))[0] == 200
        writer.close()
        # Not answerable synchronously: both went through App.handle, the second from the cache.
        assert s.handled == ["/v1/secret/data/db"] * 2
        assert s.core.reads.hits == 1  # answer_cached found it but could not write inline; handle gave it
        logged = entries(s.log)
        assert [e["type"] for e in logged[-4:]] == ["request", "response", "request", "response"]
        assert logged[-1]["request"]["id"] != logged[-3]["request"]["id"]


def counting_writes(s: Served) -> list[bytes]:
    """Every write(2) the file device makes from now on."""
    device = s.core.audit._get("file").device
    writes: list[bytes] = []
    real = device.os_write  # type: ignore[attr-defined]

    def write(fd: int, data: bytes) -> int:
        writes.append(data)
        return int(real(fd, data))

    device.os_write = write  # type: ignore[attr-defined]
    return writes


async def test_hits_of_one_turn_share_one_audit_write_and_answer_in_order(tmp_path: Path) -> None:
    async with serving(tmp_path) as s:
        async with app_client(s.core, "root") as c:
            await c.post("/v1/secret/data/other", json={"data": {"n": "2"}})
            for path in ("/v1/secret/data/db", "/v1/secret/data/other"):
                await c.get(path, headers={"X-Vault-Token": "root"})  # kept
        writes = counting_writes(s)
        readers = []
        for _ in range(3):  # three connections, each with two hits in one packet
            reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
            readers.append((reader, writer))
        for _, writer in readers:
            writer.write(get("/v1/secret/data/db") + get("/v1/secret/data/other"))
        for reader, writer in readers:
            first, second = await read_response(reader), await read_response(reader)
            writer.close()
            assert first[1]["data"]["data"] == {"password": SECRET}
            assert second[1]["data"]["data"] == {"n": "2"}
        assert s.handled == []  # all six were kept answers
        assert s.core.reads.hits == 6
        # 12 entries (6 pairs) in fewer writes than pairs: hits of one loop turn share one write.
        assert sum(w.count(b"\n") for w in writes) == 12
        assert len(writes) < 6
        assert verify(s.core.audit._get("file").entry.chain_key, s.log.read_bytes().splitlines()).ok


async def test_a_failed_shared_write_answers_500_to_each_and_the_chain_goes_on(tmp_path: Path) -> None:
    async with serving(tmp_path) as s:
        async with app_client(s.core, "root") as c:
            await c.get("/v1/secret/data/db", headers={"X-Vault-Token": "root"})  # kept
        device = s.core.audit._get("file").device
        head = device.head
        real = device.os_write  # type: ignore[attr-defined]

        def full(fd: int, data: bytes) -> int:
            raise OSError(28, "No space left on device")

        device.os_write = full  # type: ignore[attr-defined]
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write(get("/v1/secret/data/db") + get("/v1/secret/data/db"))
        got = [await read_response(reader) for _ in range(2)]
        assert got == [(500, {"errors": ["audit: no enabled audit device could record the request"]})] * 2
        assert device.head == head  # nothing reached the file: the chain did not move
        device.os_write = real  # type: ignore[attr-defined]
        writer.write(get("/v1/secret/data/db"))
        status, body = await read_response(reader)
        writer.close()
        assert status == 200 and body["data"]["data"] == {"password": SECRET}
        assert device.head[0] == head[0] + 2
        assert verify(s.core.audit._get("file").entry.chain_key, s.log.read_bytes().splitlines()).ok


async def test_staged_lines_come_first_when_the_pipeline_writes_in_the_same_turn(tmp_path: Path) -> None:
    async with serving(tmp_path) as s:
        async with app_client(s.core, "root") as c:
            await c.get("/v1/secret/data/db", headers={"X-Vault-Token": "root"})  # kept
        before = len(entries(s.log))
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        other_reader, other_writer = await asyncio.open_connection("127.0.0.1", s.port)
        # A hit and, in the same turn as far as the server can tell, a request through the pipeline.
        other_writer.write(get("/v1/secret/data/nope"))
        writer.write(get("/v1/secret/data/db"))
        assert (await read_response(reader))[0] == 200
        assert (await read_response(other_reader))[0] == 404
        writer.close()
        other_writer.close()
        lines = s.log.read_bytes().splitlines()
        assert verify(s.core.audit._get("file").entry.chain_key, lines).ok
        # Each request's entry precedes its response entry, whatever the interleaving.
        seen: dict[str, str] = {}
        logged = entries(s.log)[before:]
        assert len(logged) == 4
        for e in logged:
            rid = e["request"].get("id", "")
            if e["type"] == "response":
                assert seen.get(rid) == "request", rid
            seen[rid] = e["type"]


async def test_a_half_closed_client_still_gets_its_kept_answer(tmp_path: Path) -> None:
    async with serving(tmp_path) as s:
        async with app_client(s.core, "root") as c:
            await c.get("/v1/secret/data/db", headers={"X-Vault-Token": "root"})  # kept
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write(get("/v1/secret/data/db"))
        writer.write_eof()
        status, body = await read_response(reader)
        assert status == 200 and body["data"]["data"] == {"password": SECRET}
        assert await asyncio.wait_for(reader.read(), 5) == b""  # then the server closes
        writer.close()
