"""http/server.py over a real loopback socket: keep-alive, pipelining, closing, 100-continue, chunked
bodies, the body limit, malformed input, LIST, HEAD, timeouts, flow control and graceful stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from strongroom.core import Core
from strongroom.http import reader as http_reader
from strongroom.http import server as http_server
from strongroom.http.app import App
from strongroom.http.logical import Peer
from strongroom.http.server import HttpServer
from strongroom.testing import unsealed_core

Handler = Callable[[str, str, str, dict[str, str], bytes, Peer], Awaitable[tuple[int, bytes]]]


@dataclass
class Running:
    core: Core
    app: App
    server: HttpServer
    port: int

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)


@asynccontextmanager
async def serving(**app_options: Any) -> AsyncIterator[Running]:
    async with unsealed_core() as (core, _):
        app = App(core, **app_options)
        server = HttpServer(app, asyncio.get_running_loop())
        await server.start("127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            yield Running(core, app, server, port)
        finally:
            await server.stop(grace=1)


async def read_response(reader: asyncio.StreamReader, *, head: bool = False) -> tuple[int, dict[str, str], bytes]:
    status_line = await asyncio.wait_for(reader.readline(), 5)
    assert status_line.startswith(b"HTTP/1.1 "), status_line
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = 0 if head else int(headers.get("content-length", "0"))
    body = await asyncio.wait_for(reader.readexactly(length), 5)
    return int(status_line.split()[1]), headers, body


async def closed(reader: asyncio.StreamReader) -> bool:
    """True if the server closed the connection (EOF, or a reset after its answer)."""
    try:
        return await asyncio.wait_for(reader.read(1), 5) == b""
    except ConnectionResetError:
        return True


def get(path: str, extra: str = "", version: str = "1.1") -> bytes:
    return f"GET {path} HTTP/{version}\r\nHost: x\r\nX-Vault-Token: root\r\n{extra}\r\n".encode()


def post(path: str, body: bytes, extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nX-Vault-Token: root\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
            .encode() + body)


def echo_path(delays: dict[str, float] | None = None) -> Handler:
    """A stand-in for App.handle answering with the request's path, after an optional delay."""
    async def handle(method: str, path: str, query: str, headers: dict[str, str], body: bytes,
                     peer: Peer) -> tuple[int, bytes]:
        await asyncio.sleep((delays or {}).get(path, 0))
        return 200, orjson.dumps({"method": method, "path": path, "query": query, "body": body.decode()})
    return handle


async def test_keep_alive_serves_two_requests_on_one_connection() -> None:
    async with serving() as srv:
        reader, writer = await srv.connect()
        for _ in range(2):
            writer.write(get("/v1/sys/health"))
            status, headers, body = await read_response(reader)
            assert status == 200 and orjson.loads(body)["sealed"] is False
            assert headers["content-type"] == "application/json" and headers["cache-control"] == "no-store"
            assert "connection" not in headers
        writer.close()


async def test_pipelined_requests_are_answered_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving() as srv:
        monkeypatch.setattr(srv.app, "handle", echo_path({"/slow": 0.05}))
        reader, writer = await srv.connect()
        writer.write(get("/slow") + get("/fast") + post("/third", b"x"))
        paths = [orjson.loads((await read_response(reader))[2])["path"] for _ in range(3)]
        assert paths == ["/slow", "/fast", "/third"]
        writer.close()


async def test_http10_closes_unless_keep_alive_asked() -> None:
    async with serving() as srv:
        reader, writer = await srv.connect()
        writer.write(get("/v1/sys/health", version="1.0"))
        status, headers, _ = await read_response(reader)
        assert status == 200 and headers["connection"] == "close"
        assert await closed(reader)

        reader, writer = await srv.connect()
        writer.write(get("/v1/sys/health", "Connection: keep-alive\r\n", version="1.0"))
        _, headers, _ = await read_response(reader)
        assert headers["connection"] == "keep-alive"
        writer.write(get("/v1/sys/health", "Connection: keep-alive\r\n", version="1.0"))
        assert (await read_response(reader))[0] == 200
        writer.close()


async def test_connection_close_is_honoured() -> None:
    async with serving() as srv:
        reader, writer = await srv.connect()
        writer.write(get("/v1/sys/health", "Connection: close\r\n"))
        _, headers, _ = await read_response(reader)
        assert headers["connection"] == "close"
        assert await closed(reader)


async def test_expect_100_continue_is_answered_before_the_body() -> None:
    async with serving() as srv:
        reader, writer = await srv.connect()
        body = orjson.dumps({"data": {"k": "v" * 2000}})
        head = post("/v1/secret/data/big", b"", "Expect: 100-continue\r\n").replace(
            b"Content-Length: 0", b"Content-Length: %d" % len(body))
        writer.write(head)
        assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5) == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(body)
        assert (await read_response(reader))[0] == 200
        writer.write(get("/v1/secret/data/big"))
        assert orjson.loads((await read_response(reader))[2])["data"]["data"]["k"] == "v" * 2000
        writer.close()


async def test_chunked_request_body() -> None:
    async with serving() as srv:
        reader, writer = await srv.connect()
        writer.write(b"PUT /v1/secret/data/c HTTP/1.1\r\nHost: x\r\nX-Vault-Token: root\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n5\r\n{\"dat\r\n")
        await writer.drain()
        await asyncio.sleep(0.01)
        rest = b'a": {"k": "chunk"}}'
        writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(rest), rest))
        assert (await read_response(reader))[0] == 200
        writer.write(get("/v1/secret/data/c"))
        assert orjson.loads((await read_response(reader))[2])["data"]["data"] == {"k": "chunk"}
        writer.close()


async def test_body_over_the_limit_is_413_without_reading_it() -> None:
    async with serving(max_request_size=1024) as srv:
        reader, writer = await srv.connect()
        # Announced too large: answered at once, though the body never comes.
        writer.write(b"POST /v1/secret/data/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        status, headers, body = await read_response(reader)
        assert (status, orjson.loads(body)) == (413, {"errors": ["http: request body too large"]})
        assert headers["connection"] == "close" and await closed(reader)

        # Chunked, so only known while it streams in: answered once the limit is passed.
        reader, writer = await srv.connect()
        writer.write(b"POST /v1/secret/data/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(3):
            writer.write(b"200\r\n" + b"a" * 0x200 + b"\r\n")
        status, _, body = await read_response(reader)
        assert status == 413 and await closed(reader)


async def test_body_within_the_limit_and_unlimited() -> None:
    big = orjson.dumps({"data": {"k": "v" * 5000}})
    async with serving(max_request_size=-1) as srv:  # -1: Vault's "no limit"
        reader, writer = await srv.connect()
        writer.write(post("/v1/secret/data/x", big))
        assert (await read_response(reader))[0] == 200
        writer.close()


async def test_malformed_request_is_400_and_closes() -> None:
    async with serving() as srv:
        reader, writer = await srv.connect()
        writer.write(b"GET /v1/sys/health HTTP/1.1\r\nBad Header\r\n\r\n")
        status, headers, body = await read_response(reader)
        assert status == 400 and headers["connection"] == "close"
        assert "malformed HTTP request" in orjson.loads(body)["errors"][0]
        assert await closed(reader)


async def test_answers_before_a_malformed_pipelined_request_still_come_first() -> None:
    async with serving() as srv:
        reader, writer = await srv.connect()
        writer.write(get("/v1/sys/health") + b"NOT HTTP AT ALL\r\n\r\n")
        assert (await read_response(reader))[0] == 200
        assert (await read_response(reader))[0] == 400
        assert await closed(reader)


async def test_list_method_split_across_packets() -> None:
    async with serving() as srv:
        reader, writer = await srv.connect()
        writer.write(post("/v1/secret/data/a/b", b'{"data": {"x": 1}}'))
        assert (await read_response(reader))[0] == 200
        for piece in (b"LI", b"ST /v1/secret/meta", b"data/a HTTP/1.1\r\nHost: x\r\n", b"X-Vault-Token: root\r\n\r\n"):
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.01)
        status, _, body = await read_response(reader)
        assert status == 200 and orjson.loads(body)["data"] == {"keys": ["b"]}
        writer.close()


async def test_a_body_starting_with_list_is_not_rewritten(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving() as srv:
        monkeypatch.setattr(srv.app, "handle", echo_path())
        reader, writer = await srv.connect()
        writer.write(b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 21\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.01)
        writer.write(b"LIST /v1/x HTTP/1.1\r\n")
        out = orjson.loads((await read_response(reader))[2])
        assert out == {"method": "POST", "path": "/p", "query": "", "body": "LIST /v1/x HTTP/1.1\r\n"}
        writer.close()


async def test_path_is_percent_decoded_and_query_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving() as srv:
        monkeypatch.setattr(srv.app, "handle", echo_path())
        reader, writer = await srv.connect()
        writer.write(get("/v1/secret/data/a%20b?version=2&x="))
        out = orjson.loads((await read_response(reader))[2])
        assert (out["path"], out["query"]) == ("/v1/secret/data/a b", "version=2&x=")
        writer.close()


async def test_head_has_the_length_but_no_body() -> None:
    async with serving() as srv:
        reader, writer = await srv.connect()
        writer.write(get("/v1/sys/health"))
        _, _, body = await read_response(reader)
        writer.write(get("/v1/sys/health").replace(b"GET", b"HEAD", 1) + get("/v1/sys/seal-status"))
        status, headers, nothing = await read_response(reader, head=True)
        assert status == 200 and int(headers["content-length"]) == len(body) and nothing == b""
        # The next answer starts right after the head: no stray body bytes on the wire.
        status, _, body = await read_response(reader)
        assert status == 200 and "sealed" in orjson.loads(body)
        writer.close()


async def test_handler_failure_is_500_and_the_connection_lives_on(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving() as srv:
        async def boom(req: object) -> None:
            raise RuntimeError("secret detail that must not leak")

        monkeypatch.setattr(srv.core, "handle_request", boom)
        reader, writer = await srv.connect()
        writer.write(get("/v1/secret/data/x"))
        status, _, body = await read_response(reader)
        assert (status, orjson.loads(body)) == (500, {"errors": ["internal error"]})
        writer.write(get("/v1/sys/health"))
        assert (await read_response(reader))[0] == 200
        writer.close()


async def test_idle_keep_alive_connection_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_server, "IDLE_TIMEOUT", 0.1)
    async with serving() as srv:
        reader, writer = await srv.connect()
        writer.write(get("/v1/sys/health"))
        assert (await read_response(reader))[0] == 200
        assert await closed(reader)
        assert not srv.server.connections


async def test_a_request_that_never_finishes_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_server, "IDLE_TIMEOUT", 0.05)
    monkeypatch.setattr(http_server, "READ_TIMEOUT", 0.2)
    async with serving() as srv:
        reader, writer = await srv.connect()
        writer.write(b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n")  # and then nothing
        assert await closed(reader)


async def test_reading_pauses_while_answers_back_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_reader, "FEED_SLICE", 32)  # under one request: the queue bound is exact
    async with serving() as srv:
        release = asyncio.Event()
        inner = echo_path()

        async def blocked(*args: Any) -> tuple[int, bytes]:
            await release.wait()
            return await inner(*args)

        monkeypatch.setattr(srv.app, "handle", blocked)
        reader, writer = await srv.connect()
        writer.write(b"".join(get(f"/{i}") for i in range(200)))
        await asyncio.sleep(0.1)
        (conn,) = srv.server.connections
        assert conn.read_paused and len(conn.queue) <= http_reader.MAX_QUEUED
        release.set()
        paths = [orjson.loads((await read_response(reader))[2])["path"] for _ in range(200)]
        assert paths == [f"/{i}" for i in range(200)]
        assert not conn.read_paused
        writer.close()


async def test_upgrade_requests_are_answered_as_http11_then_closed() -> None:
    async with serving() as srv:
        reader, writer = await srv.connect()
        writer.write(get("/v1/sys/health", "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                                           "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"))
        assert (await read_response(reader))[0] == 200
        assert await closed(reader)


async def test_client_gone_mid_request_is_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving() as srv:
        monkeypatch.setattr(srv.app, "handle", echo_path({"/slow": 0.05}))
        _, writer = await srv.connect()
        writer.write(get("/slow"))
        await writer.drain()
        await asyncio.sleep(0.01)
        writer.transport.abort()
        await asyncio.sleep(0.1)
        assert not srv.server.connections


async def test_graceful_stop_finishes_the_request_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving() as srv:
        monkeypatch.setattr(srv.app, "handle", echo_path({"/slow": 0.1}))
        busy_reader, busy_writer = await srv.connect()
        idle_reader, _ = await srv.connect()
        busy_writer.write(get("/slow"))
        await busy_writer.drain()
        await asyncio.sleep(0.02)
        stopping = asyncio.create_task(srv.server.stop(grace=5))
        assert await closed(idle_reader)  # idle connections close at once
        status, headers, body = await read_response(busy_reader)
        assert status == 200 and orjson.loads(body)["path"] == "/slow" and headers["connection"] == "close"
        assert await closed(busy_reader)
        await stopping
        with pytest.raises(OSError):
            await srv.connect()  # no longer accepting


async def test_reading_pauses_while_the_client_does_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving() as srv:
        async def big(*args: Any) -> tuple[int, bytes]:
            return 200, b"x" * 1_000_000

        monkeypatch.setattr(srv.app, "handle", big)
        reader, writer = await srv.connect()
        writer.transport.pause_reading()  # a client that sends but does not read
        writer.write(b"".join(get(f"/{i}") for i in range(40)))
        await asyncio.sleep(0.2)
        (conn,) = srv.server.connections
        assert conn.write_paused and conn.read_paused
        writer.transport.resume_reading()
        for _ in range(40):
            assert len((await read_response(reader))[2]) == 1_000_000
        writer.close()


async def test_tls_client_certificate_reaches_the_request(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import ssl

    from tests.test_server import _cert

    from strongroom.config import ListenerConfig
    from strongroom.server import tls_context

    ca_key, ca_name = _cert(tmp_path / "ca", "test-ca", ca=True)
    _cert(tmp_path / "server", "127.0.0.1", ca_key, ca_name)
    _cert(tmp_path / "client", "client", ca_key, ca_name)
    listener = ListenerConfig(tls_cert_file=str(tmp_path / "server.pem"), tls_key_file=str(tmp_path / "server.key"),
                              tls_client_ca_file=str(tmp_path / "ca.pem"))
    seen: list[Any] = []
    async with unsealed_core() as (core, _):
        async def capture(req: Any) -> None:
            seen.append(req.connection)

        monkeypatch.setattr(core, "handle_request", capture)
        server = HttpServer(App(core), asyncio.get_running_loop())
        await server.start("127.0.0.1", 0, tls_context(listener))
        port = server.sockets[0].getsockname()[1]
        client_ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        client_ctx.load_cert_chain(str(tmp_path / "client.pem"), str(tmp_path / "client.key"))
        try:
            for ctx in (client_ctx, ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))):
                reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
                writer.write(get("/v1/secret/data/x"))
                assert (await read_response(reader))[0] == 204
                writer.close()
        finally:
            await server.stop(grace=1)
    client_der = ssl.PEM_cert_to_DER_cert((tmp_path / "client.pem").read_text())
    assert [c.peer_certificate for c in seen] == [client_der, None]
    assert seen[0].remote_addr == "127.0.0.1" and seen[0].remote_port > 0


async def test_an_unparseable_target_is_400_and_nothing_after_it_is_served(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving() as srv:
        seen: list[str] = []
        inner = echo_path({"/first": 0.05})

        async def record(method: str, path: str, *args: Any) -> tuple[int, bytes]:
            seen.append(path)
            return await inner(method, path, *args)

        monkeypatch.setattr(srv.app, "handle", record)
        reader, writer = await srv.connect()
        writer.write(get("/first") + b"GET http://[bad HTTP/1.1\r\nHost: x\r\n\r\n" + get("/after"))
        assert orjson.loads((await read_response(reader))[2])["path"] == "/first"
        status, _, body = await read_response(reader)
        assert (status, orjson.loads(body)) == (400, {"errors": ["malformed request target"]})
        assert await closed(reader)
        assert seen == ["/first"]


async def test_a_failure_outside_the_handler_is_500_and_closes(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving() as srv:
        async def broken(*args: Any) -> tuple[int, bytes]:
            raise RuntimeError("secret detail that must not leak")

        monkeypatch.setattr(srv.app, "handle", broken)
        reader, writer = await srv.connect()
        writer.write(get("/v1/sys/health"))
        status, headers, body = await read_response(reader)
        assert (status, orjson.loads(body)) == (500, {"errors": ["internal error"]})
        assert headers["connection"] == "close" and await closed(reader)


async def test_an_overlong_target_is_414_before_it_is_routed(monkeypatch: pytest.MonkeyPatch) -> None:
    # A path of 160,000 segments once held the event loop for ~10 s (see tests/core/test_router.py).
    async with serving() as srv:
        seen: list[str] = []
        inner = echo_path()

        async def record(method: str, path: str, *args: Any) -> tuple[int, bytes]:
            seen.append(path)
            return await inner(method, path, *args)

        monkeypatch.setattr(srv.app, "handle", record)
        reader, writer = await srv.connect()
        writer.write(b"GET /v1/x/" + b"a/" * 160_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = await read_response(reader)
        assert (status, orjson.loads(body)) == (414, {"errors": ["request URI too long"]})
        assert headers["connection"] == "close" and await closed(reader)
        # Just under the bound is still served, LIST included.
        reader, writer = await srv.connect()
        path = "/v1/x/" + "a" * (http_reader.MAX_TARGET - 30)
        writer.write(get(path))
        assert (await read_response(reader))[0] == 200
        writer.close()
        reader, writer = await srv.connect()
        writer.write(f"LIST {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert (await read_response(reader))[0] == 200
        writer.close()
        assert seen == [path, path]


async def test_an_overlong_head_is_431(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_reader, "MAX_HEAD", 64 * 1024)
    async with serving() as srv:
        # One header that never ends: refused once past the bound, not held until the read timeout.
        reader, writer = await srv.connect()
        writer.write(b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\nX-Big: ")
        for _ in range(10):
            writer.write(b"v" * 16384)
        await writer.drain()
        status, headers, body = await read_response(reader)
        assert (status, orjson.loads(body)) == (431, {"errors": ["request header fields too large"]})
        assert headers["connection"] == "close" and await closed(reader)
        # Many headers, each short.
        reader, writer = await srv.connect()
        writer.write(get("/v1/sys/health", "".join(f"X-H{i}: {'v' * 100}\r\n" for i in range(1000))))
        assert (await read_response(reader))[0] == 431
        # Under the bound, and a large body after a small head, are fine.
        reader, writer = await srv.connect()
        writer.write(get("/v1/sys/health", "".join(f"X-H{i}: v\r\n" for i in range(100))))
        assert (await read_response(reader))[0] == 200
        writer.write(post("/v1/secret/data/big", orjson.dumps({"data": {"k": "v" * 200_000}})))
        assert (await read_response(reader))[0] == 200
        writer.close()


async def test_an_unknown_method_is_405_and_garbage_still_400() -> None:
    # Go's server takes any token as a method, so OpenBao answers 405; llhttp refuses the line.
    async with serving() as srv:
        reader, writer = await srv.connect()
        writer.write(b"FOO /v1/secret/data/x HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = await read_response(reader)
        assert (status, orjson.loads(body)) == (405, {"errors": ["unsupported method FOO"]})
        assert headers["connection"] == "close" and await closed(reader)
        for garbage in (b"NOT HTTP AT ALL\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", b"GET\r\n\r\n"):
            reader, writer = await srv.connect()
            writer.write(garbage)
            assert (await read_response(reader))[0] == 400, garbage
            assert await closed(reader)
