"""Cached reads over a real socket: the server answers a repeated read synchronously (App.answer_now,
no task), audited like any other request, in order with pipelined requests, and fails closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from strongroom.audit.chain import verify
from strongroom.core import Core, CoreConfig
from strongroom.core.audit import AuditConfig
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
async def serving(tmp_path: Path, **audit_options: str) -> AsyncIterator[Served]:
    config = CoreConfig(audit=AuditConfig(allow_api_creation=True))
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


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\nX-Vault-Token: root\r\n\r\n".encode()


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
        assert s.core.reads.hits == 1  # answer_now found it but could not write inline; handle gave it
        logged = entries(s.log)
        assert [e["type"] for e in logged[-4:]] == ["request", "response", "request", "response"]
        assert logged[-1]["request"]["id"] != logged[-3]["request"]["id"]
