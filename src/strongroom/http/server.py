"""Strongroom's HTTP/1.1 server: httptools' parser under an asyncio.Protocol, calling ``App.handle``.

Why our own: an ASGI server spends more per request on its machinery (scope and message dicts, a
cycle object, two writes per response) than our pipeline spends answering a cached read. Here a
request is parsed into plain values, answered by one ``await app.handle(...)`` and written back
in one ``transport.write``.

Per connection: requests are answered one at a time, in order; pipelined requests wait in a
short queue (reading pauses when it is full, or while the transport's write buffer is over its
high-water mark, so a client that does not read cannot grow our memory). Keep-alive is HTTP/1.1's
default, HTTP/1.0 needs ``Connection: keep-alive``, ``Connection: close`` is honoured.
``Expect: 100-continue`` is answered before the body is read. A body over the listener's
max_request_size is answered 413 as soon as it is known to be too large (from Content-Length, or
while a chunked body streams in) and never buffered past the limit; like a malformed request it
then closes the connection. A request target over ``MAX_TARGET`` bytes (the reading bounds live in
http/reader.py, the reading half of a connection) is answered 414 and a request
head (request line and headers) over ``MAX_HEAD`` bytes 431, as soon as they are known to be too
long and before anything is routed; both then close the connection. Idle keep-alive connections
close after ``IDLE_TIMEOUT`` seconds, and a request whose head and body take longer than ``READ_TIMEOUT`` is dropped (slow-loris clients).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import orjson

from strongroom.errors import Internal, InvalidRequest
from strongroom.http import envelope, tls, websocket, wire
from strongroom.http.app import App
from strongroom.http.logical import Peer
from strongroom.http.reader import MAX_QUEUED, PendingRequest, RequestReader

if TYPE_CHECKING:
    from strongroom.core.events import Subscriber

log = logging.getLogger("strongroom.http")

IDLE_TIMEOUT = 5.0  # seconds a keep-alive connection may sit between requests
READ_TIMEOUT = 30.0  # seconds to receive one whole request (Vault's http_read_timeout default)
LINGER = 1.0  # seconds to drain a client still sending after we answered and stopped reading it


class HttpConnection(RequestReader):
    """One client connection: the answering half, over :class:`RequestReader` (parser callbacks
    build requests); ``_answer`` serves them."""

    def __init__(self, app: App, server: HttpServer) -> None:
        super().__init__(app, server.loop)
        self.server = server
        self.peer = Peer()
        self.worker: asyncio.Task[None] | None = None
        self.deferred = 0  # kept answers waiting for their audit write (see _enqueue)
        self.drained: asyncio.Future[None] | None = None
        self.lost = False
        self.peer_eof = False
        self.idle_since = 0.0
        self.timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TLS transport is not an asyncio.Transport subclass, but it has the same methods.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        peername = transport.get_extra_info("peername")
        # A TLS connection is made once the handshake is done: what the client presented is known.
        chain = tls.peer_chain(transport.get_extra_info("ssl_object"))
        cert = chain[0] if chain else None
        if isinstance(peername, tuple):
            self.peer = Peer(str(peername[0]), int(peername[1]), cert, chain)
        else:
            self.peer = Peer("", 0, cert, chain)
        self.server.connections.add(self)
        self.idle_since = self.loop.time()
        self._arm_timer(IDLE_TIMEOUT)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.ws is not None:
            self.ws.lost()
        self.reading = False
        self.queue.clear()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)
        # The handler in flight, if any, runs to its end (no half-done writes); its answer is dropped.
        if self.worker is None:
            self.server.forget(self)

    def pause_writing(self) -> None:
        self.write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)
        self._update_reading()

    def eof_received(self) -> bool | None:
        # The client has finished sending; answer what was asked, then close (a half-closed
        # client still reads). Nothing more will be parsed.
        self.reading = False
        self.peer_eof = True
        if self.ws is not None:
            self.ws.lost()  # a stream whose client stopped sending (no close frame can come) ends
        if not self._busy():
            return None  # close now
        return True

    # -- answering --------------------------------------------------------------------------------

    def _enqueue(self, request: PendingRequest) -> None:
        if (self.worker is None and not self.queue and request.keep_alive and request.error is None
                and not request.upgrade):
            # Nothing ahead of it but other kept answers: a kept answer to a repeated read goes out
            # without a task, now or once its audit entries are written at the start of the next
            # loop turn (before any task made in this turn runs, so answers stay in order).
            self.deferred += 1
            if self.app.answer_cached(request.method, request.path, request.query, request.headers,
                                      request.body, self.peer, partial(self._send_cached, request.http10)):
                return
            self.deferred -= 1
        self.queue.append(request)
        if self.worker is None:
            self.worker = self.loop.create_task(self._answer())
        elif len(self.queue) >= MAX_QUEUED:
            self._update_reading()

    def _send_cached(self, http10: bool, status: int, body: bytes) -> None:
        self.deferred -= 1
        self._write(wire.response(status, body, keep_alive=True, http10=http10))
        if not self._busy():
            self._idle()

    def _busy(self) -> bool:
        """Answering: a handler task, queued requests, or kept answers waiting for their audit write."""
        return self.worker is not None or bool(self.queue) or bool(self.deferred)

    async def _answer(self) -> None:
        """Answer queued requests in order, one at a time, until the queue is empty."""
        queue = self.queue
        try:
            while queue:
                request = queue.popleft()
                if request.error is not None:
                    self._write(wire.response(*request.error, keep_alive=False))
                    self._close_after()
                    return
                if request.upgrade:
                    await self._websocket(request)
                    return
                status, body = await self.app.handle(request.method, request.path, request.query,
                                                     request.headers, request.body, self.peer)
                keep_alive = request.keep_alive and not self.stopping
                self._write(wire.response(status, body, keep_alive=keep_alive, http10=request.http10,
                                          head=request.head))
                if not keep_alive:
                    self._close()
                    return
                if self.pending or self.read_paused or self.write_paused:
                    await self._backpressure()
        except Exception:  # our own bug, not the handler's (App.handle never raises): say so, close
            log.exception("HTTP connection failed")
            self._write(wire.response(*envelope.render_error(Internal("internal error")), keep_alive=False))
            self._close()
        finally:
            self.worker = None
            self._idle()

    async def _websocket(self, request: PendingRequest) -> None:
        """An events subscription: check the handshake, subscribe (authenticated and audited by
        the app), answer 101 and stream events as text frames until either side closes. Anything
        refused is answered as plain HTTP before switching protocols, then the connection closes."""
        try:
            reply = websocket.handshake(request.headers)
        except InvalidRequest as e:
            self._write(wire.response(*envelope.render_error(e), keep_alive=False))
            self._close_after()
            return
        subscriber = await self.app.subscribe(request.path, request.query, request.headers, self.peer)
        if isinstance(subscriber, tuple):
            self._write(wire.response(*subscriber, keep_alive=False))
            self._close_after()
            return
        transport = self.transport
        if self.lost or transport is None or transport.is_closing():
            subscriber.close()
            return
        ws = self.ws = websocket.WebSocket(self._write, self.loop)
        self._write(reply)
        self.read_paused = False
        transport.resume_reading()
        pump = self.loop.create_task(self._pump(subscriber, ws))
        failed = False
        try:
            await asyncio.wait([pump, ws.done], return_when=asyncio.FIRST_COMPLETED)
        finally:
            pump.cancel()
            subscriber.close()
            try:
                await pump
            except asyncio.CancelledError:
                pass
            except Exception:  # our bug: say so, and end this stream (never an HTTP answer now)
                log.exception("events stream failed")
                failed = True
        if failed:
            ws.close(websocket.INTERNAL, "internal error")
        elif subscriber.subscription.dropped:
            ws.close(websocket.INTERNAL, "subscriber too slow: events dropped")
        else:
            ws.close(websocket.NORMAL)
        self._close()

    async def _pump(self, subscriber: Subscriber, ws: websocket.WebSocket) -> None:
        """Events out as text frames, one JSON message each; waits while the client is behind
        (its queue in core then fills and it is dropped: writers never wait for it)."""
        while (event := await subscriber.next()) is not None:
            ws.send_text(orjson.dumps(event))
            if self.write_paused:
                await self._drain()

    async def _backpressure(self) -> None:
        """Between answers: parse what waited for room in the queue, resume reading, or wait for
        the client to take what we wrote."""
        if self.pending and len(self.queue) < MAX_QUEUED and self.reading:
            pending, self.pending = self.pending, b""
            self._feed_slices(pending)
        if self.read_paused:
            self._update_reading()
        if self.write_paused:
            await self._drain()

    def _write(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    async def _drain(self) -> None:
        self.drained = self.loop.create_future()
        try:
            await self.drained
        finally:
            self.drained = None

    def _idle(self) -> None:
        """After the last queued answer: close if the connection is done, else wait for more."""
        transport = self.transport
        if self.lost or transport is None or transport.is_closing():
            if self.lost:
                self.server.forget(self)
            return
        if self.stopping and not self.in_message:
            self._close()
            return
        if not self.reading and not self.in_message:
            self._close_after()
            return
        self.idle_since = self.loop.time()
        self._maybe_continue()

    # -- closing ----------------------------------------------------------------------------------

    def _close(self) -> None:
        self.reading = False
        if self.transport is not None:
            self.transport.close()  # what was written is flushed first

    def _close_after(self) -> None:
        """Close once the client stops sending (or after LINGER seconds), not at once: closing a
        socket with unread input makes the kernel send a reset, which can destroy our answer
        before the client reads it (e.g. a 413 while the client is still uploading)."""
        self.reading = False
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self.peer_eof:
            transport.close()
            return
        if self.read_paused:
            self.read_paused = False
            transport.resume_reading()
        if transport.can_write_eof():
            transport.write_eof()
        self._arm_timer(LINGER, linger=True)

    def _arm_timer(self, delay: float, *, linger: bool = False) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.loop.call_later(delay, self._on_timer, linger)

    def _on_timer(self, linger: bool) -> None:
        """One lazy timer per connection (not one per request): checks idle and read deadlines."""
        self.timer = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if linger:
            transport.close()
            return
        now = self.loop.time()
        if self.in_message:
            remaining = self.began + READ_TIMEOUT - now
        elif not self._busy():
            remaining = self.idle_since + IDLE_TIMEOUT - now
        else:
            remaining = IDLE_TIMEOUT  # answering: the handler has its own deadlines
        if remaining <= 0:
            self._close()
        else:
            self._arm_timer(remaining)

    def shutdown(self) -> None:
        """Graceful stop: an idle connection closes now, a busy one after its current answer."""
        self.stopping = True
        if self.ws is not None:
            self.ws.close(websocket.GOING_AWAY, "server shutting down")
        if not self._busy() and not self.in_message:
            self._close()

    def abort(self) -> None:
        """Forced stop: drop the connection and cancel its handler."""
        if self.worker is not None:
            self.worker.cancel()
        if self.transport is not None:
            self.transport.abort()


class HttpServer:
    """One listener: the asyncio server plus its live connections, for a graceful stop."""

    def __init__(self, app: App, loop: asyncio.AbstractEventLoop) -> None:
        self.app = app
        self.loop = loop
        self.connections: set[HttpConnection] = set()
        self.server: asyncio.Server | None = None
        self._all_gone: asyncio.Future[None] | None = None

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None = None,
                    backlog: int = 2048) -> None:
        self.server = await self.loop.create_server(lambda: HttpConnection(self.app, self), host, port,
                                                    ssl=ssl_context, reuse_address=True, backlog=backlog)

    def forget(self, connection: HttpConnection) -> None:
        self.connections.discard(connection)
        if not self.connections and self._all_gone is not None and not self._all_gone.done():
            self._all_gone.set_result(None)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, let requests in flight finish (up to ``grace`` seconds), close the rest."""
        if self.server is not None:
            self.server.close()
        self._all_gone = self.loop.create_future()
        for connection in list(self.connections):
            connection.shutdown()
        if self.connections:
            try:
                await asyncio.wait_for(asyncio.shield(self._all_gone), grace)
            except TimeoutError:
                log.warning("closing %d connection(s) still busy after %.0fs", len(self.connections), grace)
        for connection in list(self.connections):
            connection.abort()
        workers = [c.worker for c in self.connections if c.worker is not None]
        if workers:
            await asyncio.wait(workers, timeout=1.0)
        self.connections.clear()

    @property
    def sockets(self) -> Any:
        return self.server.sockets if self.server is not None else ()
