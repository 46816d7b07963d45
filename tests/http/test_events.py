"""Change events over a real WebSocket (sys/events/subscribe/EVENT_TYPE): the handshake, kv-v2
events in order and in Vault's shape, the per-event ACL filter, globs, refusals before the upgrade,
ping/close, a slow subscriber that never blocks writers, and the ``strongroom events subscribe`` CLI."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import socket
import struct
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import httpx
import orjson
import pytest
from tests.http.test_tls import Certs, certs  # noqa: F401  (the certs fixture)
from tests.http.test_tls import listener as tls_listener

from strongroom.api.events import subscribe
from strongroom.api.errors import APIError
from strongroom.core import Core, CoreConfig
from strongroom.core.audit import AuditConfig
from strongroom.http.app import App
from strongroom.http.server import HttpServer
from strongroom.server import tls_context
from strongroom.testing import unsealed_core


@dataclass
class Running:
    core: Core
    server: HttpServer
    port: int

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, token: str = "root") -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.address, headers={"X-Vault-Token": token})


@asynccontextmanager
async def serving(config: CoreConfig | None = None) -> AsyncIterator[Running]:
    async with unsealed_core(config=config) as (core, _):
        server = HttpServer(App(core), asyncio.get_running_loop())
        await server.start("127.0.0.1", 0)
        try:
            yield Running(core, server, server.sockets[0].getsockname()[1])
        finally:
            await server.stop(grace=1)


class Listener:
    """A subscription read in the background into a queue."""

    def __init__(self, running: Running, event_type: str, token: str = "root") -> None:
        self.running = running
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        before = len(running.core.events.subscriptions)
        self.task = asyncio.create_task(self._run(event_type, token))
        self._before = before

    async def _run(self, event_type: str, token: str) -> None:
        async for event in subscribe(self.running.address, token, event_type):
            await self.queue.put(event)

    async def ready(self) -> Listener:
        for _ in range(200):
            if len(self.running.core.events.subscriptions) > self._before:
                return self
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.01)
        raise AssertionError("subscription not established")

    async def next(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.queue.get(), 5)

    async def nothing_more(self) -> None:
        await asyncio.sleep(0.2)
        assert self.queue.empty(), self.queue.get_nowait()

    def stop(self) -> None:
        self.task.cancel()


async def write(c: httpx.AsyncClient, path: str, data: dict[str, Any]) -> None:
    r = await c.post(f"/v1/secret/data/{path}", json={"data": data})
    assert r.status_code == 200, r.text


async def test_kv_v2_events_arrive_in_order_in_vaults_shape() -> None:
    async with serving() as s, s.client() as c:
        listener = await Listener(s, "kv-v2/*").ready()
        await write(c, "app/db", {"password": "one"})
        r = await c.patch("/v1/secret/data/app/db", json={"data": {"user": "u"}},
                          headers={"Content-Type": "application/merge-patch+json"})
        assert r.status_code == 200, r.text
        assert (await c.delete("/v1/secret/data/app/db")).status_code == 204
        events = [await listener.next() for _ in range(3)]
        listener.stop()
    mount = s.core.mounts.find("mounts", "secret/")
    assert mount is not None
    assert [e["data"]["event_type"] for e in events] == ["kv-v2/data-write", "kv-v2/data-patch", "kv-v2/data-delete"]
    first = events[0]
    assert set(first) == {"id", "source", "specversion", "type", "data", "datacontentype", "time"}
    assert first["specversion"] == "1.0" and first["datacontentype"] == "application/cloudevents"
    assert first["data"]["event"]["id"] == first["id"]
    assert first["data"]["event"]["metadata"] == {
        "current_version": "1", "data_path": "secret/data/app/db", "modified": "true", "oldest_version": "0",
        "operation": "data-write", "path": "secret/data/app/db"}
    assert first["data"]["plugin_info"] == {"mount_class": "secret", "mount_accessor": mount.accessor,
                                            "mount_path": "secret/", "plugin": "kv"}
    assert first["time"].endswith("Z") and "T" in first["time"]
    assert events[1]["data"]["event"]["metadata"]["current_version"] == "2"
    assert events[1]["data"]["event"]["metadata"]["operation"] == "data-patch"
    deleted = events[2]["data"]["event"]["metadata"]
    assert deleted["operation"] == "data-delete" and deleted["path"] == "secret/data/app/db"
    assert "data_path" not in deleted  # as Vault: a delete names no data path
    assert "password" not in str(events)  # events carry no secret data


async def test_events_only_for_paths_the_token_may_read() -> None:
    async with serving() as s, s.client() as c:
        policy = ('path "sys/events/subscribe/*" { capabilities = ["read"] }\n'
                  'path "secret/data/team/*" { capabilities = ["read"] }\n')
        assert (await c.put("/v1/sys/policies/acl/team", json={"policy": policy})).status_code == 204
        r = await c.post("/v1/auth/token/create", json={"policies": ["team"]})
        token = r.json()["auth"]["client_token"]
        listener = await Listener(s, "*", token).ready()
        everything = await Listener(s, "*").ready()
        await write(c, "other/x", {"a": "1"})
        await write(c, "team/y", {"a": "2"})
        await write(c, "other/z", {"a": "3"})
        await write(c, "team/w", {"a": "4"})
        seen = [(await listener.next())["data"]["event"]["metadata"]["path"] for _ in range(2)]
        assert seen == ["secret/data/team/y", "secret/data/team/w"]
        await listener.nothing_more()
        assert len([await everything.next() for _ in range(4)]) == 4
        # A revoked token's stream ends at the next event it would have been sent.
        assert (await c.post("/v1/auth/token/revoke", json={"token": token})).status_code == 204
        await write(c, "team/v", {"a": "5"})
        await asyncio.wait_for(listener.task, 5)
        assert listener.queue.empty()
        everything.stop()


async def test_glob_event_types() -> None:
    async with serving() as s, s.client() as c:
        writes = await Listener(s, "kv-v2/data-w*").ready()
        deletes = await Listener(s, "kv-v2/data-delete").ready()
        kv = await Listener(s, "kv*").ready()
        other = await Listener(s, "database/*").ready()
        await write(c, "g", {"a": "1"})
        assert (await c.delete("/v1/secret/data/g")).status_code == 204
        await write(c, "g", {"a": "2"})
        assert [(await writes.next())["data"]["event_type"] for _ in range(2)] == ["kv-v2/data-write"] * 2
        assert (await deletes.next())["data"]["event_type"] == "kv-v2/data-delete"
        assert [(await kv.next())["data"]["event_type"] for _ in range(3)] == [
            "kv-v2/data-write", "kv-v2/data-delete", "kv-v2/data-write"]
        await writes.nothing_more()
        await deletes.nothing_more()
        assert other.queue.empty()
        for listener in (writes, deletes, kv, other):
            listener.stop()


def handshake_request(path: str, token: str | None = "root", key: str | None = None, extra: str = "") -> tuple[bytes, str]:
    key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
    auth = f"X-Vault-Token: {token}\r\n" if token else ""
    return (f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{auth}{extra}\r\n").encode(), key


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    status = await asyncio.wait_for(reader.readline(), 5)
    headers = {}
    while (line := await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status.split()[1]), headers, body


def masked(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    b0, b1 = await asyncio.wait_for(reader.readexactly(2), 5)
    assert not b1 & 0x80, "server frames are never masked"
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", await reader.readexactly(2))[0]
    return b0 & 0x0F, await reader.readexactly(n)


async def test_handshake_ping_and_close_on_the_wire() -> None:
    async with serving() as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        request, key = handshake_request("/v1/sys/events/subscribe/kv-v2/data-write?json=true")
        writer.write(request)
        status, headers, _ = await read_head(reader)
        assert status == 101
        assert headers["upgrade"].lower() == "websocket" and headers["connection"].lower() == "upgrade"
        expected = base64.b64encode(hashlib.sha1(key.encode() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        assert headers["sec-websocket-accept"] == expected.decode()
        writer.write(masked(0x9, b"hello"))
        assert await read_frame(reader) == (0xA, b"hello")
        async with s.client() as c:
            await write(c, "wire", {"k": "v"})
        opcode, payload = await read_frame(reader)
        assert opcode == 0x1 and b'"kv-v2/data-write"' in payload
        writer.write(masked(0x8, struct.pack("!H", 1000)))
        opcode, payload = await read_frame(reader)
        assert opcode == 0x8 and struct.unpack("!H", payload[:2])[0] == 1000
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        for _ in range(100):
            if not s.core.events.subscriptions:
                break
            await asyncio.sleep(0.01)
        assert not s.core.events.subscriptions


async def test_unmasked_client_frame_is_a_protocol_error() -> None:
    async with serving() as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write(handshake_request("/v1/sys/events/subscribe/*")[0])
        assert (await read_head(reader))[0] == 101
        writer.write(bytes([0x89, 0]))  # an unmasked ping
        opcode, payload = await read_frame(reader)
        assert opcode == 0x8 and struct.unpack("!H", payload[:2])[0] == 1002
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()


@pytest.mark.parametrize("token,path,key,status", [
    (None, "/v1/sys/events/subscribe/kv-v2/data-write", None, 403),
    ("bogus", "/v1/sys/events/subscribe/kv-v2/data-write", None, 403),
    ("root", "/v1/sys/events/subscribe/kv-v2/data-write", "short", 400),
    ("root", "/v1/sys/events/subscribe/", None, 400),
])
async def test_refused_before_the_upgrade(token: str | None, path: str, key: str | None, status: int) -> None:
    async with serving() as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write(handshake_request(path, token, key)[0])
        got, headers, body = await read_head(reader)
        assert got == status and b'"errors"' in body
        assert "sec-websocket-accept" not in headers
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        assert not s.core.events.subscriptions


async def test_subscribe_needs_read_on_the_event_type_path() -> None:
    async with serving() as s, s.client() as c:
        policy = ('path "sys/events/subscribe/kv-v2/data-write" { capabilities = ["read"] }\n'
                  'path "secret/*" { capabilities = ["read", "create", "update"] }\n')
        assert (await c.put("/v1/sys/policies/acl/w", json={"policy": policy})).status_code == 204
        token = (await c.post("/v1/auth/token/create", json={"policies": ["w"]})).json()["auth"]["client_token"]
        with pytest.raises(APIError) as refused:
            async for _ in subscribe(s.address, token, "*"):
                pass
        assert refused.value.status == 403 and refused.value.errors == ["permission denied"]
        assert not s.core.events.subscriptions
        # The same path without the upgrade is no endpoint: nothing is subscribed.
        r = await c.get("/v1/sys/events/subscribe/kv-v2/data-write")
        assert r.status_code == 404, r.text


async def test_policy_allowed_subscription_works() -> None:
    async with serving() as s, s.client() as c:
        policy = ('path "sys/events/subscribe/kv-v2/data-write" { capabilities = ["read"] }\n'
                  'path "secret/*" { capabilities = ["read", "create", "update"] }\n')
        assert (await c.put("/v1/sys/policies/acl/w", json={"policy": policy})).status_code == 204
        token = (await c.post("/v1/auth/token/create", json={"policies": ["w"]})).json()["auth"]["client_token"]
        listener = await Listener(s, "kv-v2/data-write", token).ready()
        await write(c, "mine", {"a": "b"})
        assert (await listener.next())["data"]["event"]["metadata"]["data_path"] == "secret/data/mine"
        listener.stop()


async def test_a_slow_subscriber_never_blocks_writes() -> None:
    async with serving() as s, s.client() as c:
        s.core.events.queue_size = 4
        # A subscriber that never reads: a tiny receive buffer, so the server's writes back up.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", s.port))
        reader, writer = await asyncio.open_connection(sock=sock)
        writer.write(handshake_request("/v1/sys/events/subscribe/*")[0])
        assert (await read_head(reader))[0] == 101
        cast(asyncio.Transport, writer.transport).pause_reading()
        # ...and a small send buffer on the server's side of it (else the kernel holds megabytes).
        (conn,) = s.server.connections
        assert conn.transport is not None
        conn.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        s.core.events.queue_size = 1024
        good = await Listener(s, "*").ready()
        n = 200
        long_path = "p" * 2000
        began = time.monotonic()
        for i in range(n):
            await write(c, f"{long_path}/{i}", {"v": str(i)})
        elapsed = time.monotonic() - began
        assert s.core.events.dropped >= 1  # the slow one was cut off...
        assert len(s.core.events.subscriptions) == 1  # ...and only it
        got = [await good.next() for _ in range(n)]  # the reading subscriber missed nothing
        assert [e["data"]["event"]["metadata"]["current_version"] for e in got] == ["1"] * n
        assert got[-1]["data"]["event"]["metadata"]["path"].endswith(f"/{n - 1}")
        assert elapsed < 30
        good.stop()
        writer.close()


async def test_seal_ends_every_stream() -> None:
    async with serving() as s:
        listener = await Listener(s, "*").ready()
        await s.core.seal()
        await asyncio.wait_for(listener.task, 5)
        assert not s.core.events.subscriptions


async def test_cli_events_subscribe_prints_events() -> None:
    async with serving() as s, s.client() as c:
        env = {**os.environ, "VAULT_ADDR": s.address, "VAULT_TOKEN": "root"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "strongroom", "events", "subscribe", "-format=json", "kv-v2/data-write",
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            for _ in range(500):
                if s.core.events.subscriptions or proc.returncode is not None:
                    break
                await asyncio.sleep(0.02)
            assert s.core.events.subscriptions, (await proc.stderr.read()).decode() if proc.stderr else ""
            await write(c, "cli/one", {"a": "1"})
            await write(c, "cli/two", {"a": "2"})
            assert proc.stdout is not None
            lines = [await asyncio.wait_for(proc.stdout.readline(), 10) for _ in range(2)]
            events = [orjson.loads(line) for line in lines]
            assert [e["data"]["event"]["metadata"]["path"] for e in events] == [
                "secret/data/cli/one", "secret/data/cli/two"]
            proc.send_signal(2)  # SIGINT: stops cleanly
            assert await asyncio.wait_for(proc.wait(), 10) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def test_cli_events_subscribe_refused() -> None:
    async with serving() as s:
        env = {**os.environ, "VAULT_ADDR": s.address, "VAULT_TOKEN": "nope"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "strongroom", "events", "subscribe", "kv*",
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 2
        assert b"Error subscribing to events" in err and b"permission denied" in err


async def test_subscriptions_are_audited(tmp_path: Any) -> None:
    log = tmp_path / "audit.log"
    async with serving(CoreConfig(audit=AuditConfig(allow_api_creation=True))) as s, s.client() as c:
        r = await c.put("/v1/sys/audit/file", json={"type": "file", "options": {"file_path": str(log)}})
        assert r.status_code == 204, r.text
        listener = await Listener(s, "kv*").ready()
        with pytest.raises(APIError):
            async for _ in subscribe(s.address, "bogus-token", "kv*"):
                pass
        listener.stop()
    entries = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    subscribed = [(e["type"], e.get("error", "")) for e in entries
                  if e.get("request", {}).get("path") == "sys/events/subscribe/kv*"]
    assert ("request", "") in subscribed and ("response", "") in subscribed
    assert ("response", "permission denied") in subscribed


async def test_a_failing_stream_closes_with_1011_not_an_http_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    from strongroom.core.events import Subscriber

    async def broken(self: Subscriber) -> dict[str, Any] | None:
        raise RuntimeError("boom")

    monkeypatch.setattr(Subscriber, "next", broken)
    async with serving() as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write(handshake_request("/v1/sys/events/subscribe/*")[0])
        assert (await read_head(reader))[0] == 101
        opcode, payload = await read_frame(reader)
        assert opcode == 0x8 and struct.unpack("!H", payload[:2])[0] == 1011
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()


async def test_stream_outlives_the_idle_timeout_and_ends_when_the_client_vanishes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from strongroom.http import server as http_server

    monkeypatch.setattr(http_server, "IDLE_TIMEOUT", 0.1)
    async with serving() as s, s.client() as c:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write(handshake_request("/v1/sys/events/subscribe/*")[0])
        assert (await read_head(reader))[0] == 101
        await asyncio.sleep(0.5)  # several idle timeouts: a stream is not an idle keep-alive connection
        await write(c, "late", {"a": "1"})
        opcode, payload = await read_frame(reader)
        assert opcode == 0x1 and b"secret/data/late" in payload
        writer.transport.abort()  # gone without a close frame
        for _ in range(200):
            if not s.core.events.subscriptions and not s.server.connections:
                break
            await asyncio.sleep(0.01)
        assert not s.core.events.subscriptions and not s.server.connections


async def test_over_tls_with_the_cli(certs: Certs) -> None:
    async with unsealed_core() as (core, _):
        server = HttpServer(App(core), asyncio.get_running_loop())
        await server.start("127.0.0.1", 0, tls_context(tls_listener(certs)))
        port = server.sockets[0].getsockname()[1]
        try:
            env = {**os.environ, "VAULT_ADDR": f"https://127.0.0.1:{port}", "VAULT_TOKEN": "root",
                   "VAULT_CACERT": certs.pem("ca")}
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "strongroom", "events", "subscribe", "-timeout=20s", "kv*",
                env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            try:
                for _ in range(500):
                    if core.events.subscriptions or proc.returncode is not None:
                        break
                    await asyncio.sleep(0.02)
                assert core.events.subscriptions
                async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{port}", headers={"X-Vault-Token": "root"},
                                             verify=certs.client(None)) as c:
                    await write(c, "tls", {"a": "1"})
                assert proc.stdout is not None
                line = await asyncio.wait_for(proc.stdout.readline(), 10)
                assert orjson.loads(line)["data"]["event"]["metadata"]["path"] == "secret/data/tls"
            finally:
                proc.kill()
                await proc.wait()
        finally:
            await server.stop(grace=1)
