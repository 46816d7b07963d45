"""Reading HTTP/1.1 requests off a connection: httptools' parser callbacks turn bytes into
:class:`PendingRequest` values, with every bound on what a client may send (see http/server.py's
docstring for the rules). :class:`RequestReader` is the reading half of a connection; the
answering half (http/server.py's ``HttpConnection``) provides ``_enqueue`` and ``_busy``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
from typing import TYPE_CHECKING
from urllib.parse import unquote

import httptools

from strongroom.errors import HeadersTooLarge, Internal, InvalidRequest, UnsupportedOperation, URITooLong
from strongroom.http import envelope, websocket, wire
from strongroom.http.app import EVENTS_PREFIX, too_large

if TYPE_CHECKING:
    from strongroom.http.app import App

log = logging.getLogger("strongroom.http")

MAX_QUEUED = 16  # pipelined requests parsed ahead of the one being answered before reading pauses
# A larger read is parsed this much at a time, stopping while MAX_QUEUED requests wait: one read
# of tiny pipelined requests must not turn into thousands of queued request objects.
FEED_SLICE = 16384
# Longest request target (path and query) we read. Go's server, under OpenBao, bounds only the
# whole head (1 MiB, then 431); a path is nowhere near this long in practice (proxies in front of
# Vault commonly refuse 8 KiB), while a path of 100,000s of segments is only an attack.
MAX_TARGET = wire.MAX_LIST_LINE - 64
# Longest request head (request line and headers): Go's http.DefaultMaxHeaderBytes, which OpenBao keeps.
MAX_HEAD = 1 << 20


_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")}


class PendingRequest:
    """One parsed request waiting for (or in) its turn. ``error`` set: answer it and close."""

    __slots__ = ("body", "error", "head", "headers", "http10", "keep_alive", "method", "path", "query", "upgrade")

    def __init__(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes,
                 keep_alive: bool, http10: bool) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive
        self.http10 = http10
        self.head = method == "HEAD"
        self.error: tuple[int, bytes] | None = None
        self.upgrade = False  # a WebSocket upgrade of an events subscription (see _websocket)


def failure(status_body: tuple[int, bytes]) -> PendingRequest:
    req = PendingRequest("", "", "", {}, b"", False, False)
    req.error = status_body
    return req


# A whole request line: method token, target, version (what Go's server would take).
_REQUEST_LINE = re.compile(rb"([A-Za-z0-9!#$%&'*+.^_`|~-]{1,32}) [!-~]+ HTTP/\d\.\d\r?\n")


class _NoCallbacks:
    pass


def unknown_method(start: bytes) -> str:
    """The method of the well-formed request line ``start`` begins with, when llhttp does not know
    it; "" otherwise (the parser failed on something else: garbage, not a method)."""
    m = _REQUEST_LINE.match(start)
    if m is None:
        return ""
    probe = httptools.HttpRequestParser(_NoCallbacks())
    try:
        probe.feed_data(m.group(1) + b" / HTTP/1.1\r\n\r\n")
    except httptools.HttpParserInvalidMethodError:
        return m.group(1).decode("ascii")
    except httptools.HttpParserError:
        pass
    return ""


class StopParsing(Exception):
    """Raised from a parser callback to stop httptools mid-buffer (the rest is not to be read)."""


class RequestReader(asyncio.Protocol):
    """The reading half of a connection: parse state, the queue bound, backpressure on reads."""

    def __init__(self, app: App, loop: asyncio.AbstractEventLoop) -> None:
        self.app = app
        self.loop = loop
        self.limit = app.max_request_size if app.max_request_size >= 0 else None
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.queue: collections.deque[PendingRequest] = collections.deque()
        # Parse state of the message being read.
        self.in_message = False
        self.url = b""
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.size = 0
        self.head_size = 0  # bytes read of the head being parsed (overcounted by at most one read)
        self.in_head = False
        self.awaiting_continue = False
        self.began = 0.0
        self.stopping = False  # a graceful stop: no request read from now on is kept alive
        self.held = b""  # the start of a possible LIST request line, waiting for its end
        self.pending = b""  # read but not yet parsed: the queue was full
        self.reading = True  # False once we stop parsing input (error, 413, upgrade, close)
        self.write_paused = False
        self.read_paused = False
        self.ws: websocket.WebSocket | None = None  # set once upgraded: every read goes to it

    # -- the answering half's ---------------------------------------------------------------------

    def _enqueue(self, request: PendingRequest) -> None:
        raise NotImplementedError

    def _busy(self) -> bool:
        raise NotImplementedError

    # -- asyncio.Protocol -------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.ws is not None:
            self.ws.feed(data)
            return
        if not self.reading:
            return  # draining a client we stopped listening to (see _close_after)
        if self.pending:
            data, self.pending = self.pending + data, b""
        if len(data) > FEED_SLICE:
            self._feed_slices(data)
        elif self.in_message or not (self.held or data[0] == 76):  # 76: "L", maybe LIST
            at_start = not self.in_message
            try:
                self.parser.feed_data(data)  # the common case, without _feed's extra call
            except (httptools.HttpParserError, httptools.HttpParserUpgrade) as e:
                self._parse_failed(e, data if at_start else b"")
            if self.in_head:
                self._count_head(len(data))
        else:
            self._feed(data)

    def _feed_slices(self, data: bytes) -> None:
        """Parse a large read in slices; keep the rest for later while the queue is full."""
        start = 0
        while start < len(data) and self.reading:
            if len(self.queue) >= MAX_QUEUED:
                self.pending = data[start:]
                self._update_reading()
                return
            self._feed(data[start:start + FEED_SLICE])
            start += FEED_SLICE

    def _feed(self, data: bytes) -> None:
        if not self.in_message and (self.held or data[:1] == b"L"):
            data = self._rewrite_list(data)
            if not data:
                return
        at_start = not self.in_message
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as e:
            self._parse_failed(e, data if at_start else b"")
        if self.in_head:
            self._count_head(len(data))

    def _count_head(self, size: int) -> None:
        """After a read that ended inside a request head: refuse a head past MAX_HEAD (the parser
        would otherwise keep growing a header it has not finished). The read may have begun with
        the end of the previous request, so this counts up to one read too many."""
        self.head_size += size
        if self.head_size > MAX_HEAD and self.reading:
            self._fail(*envelope.render_error(HeadersTooLarge("request header fields too large")))

    def _parse_failed(self, e: Exception, start: bytes) -> None:
        """``start``: what was fed, when it began at a message boundary (else empty)."""
        if isinstance(e, httptools.HttpParserInvalidMethodError) and (method := unknown_method(start)):
            # A well-formed request line with a method llhttp does not know: Vault answers 405
            # (Go's server takes any token as a method). The rest of it was not parsed: close.
            self._fail(*envelope.render_error(UnsupportedOperation(f"unsupported method {method}")))
        elif isinstance(e, httptools.HttpParserUpgrade):
            # An Upgrade (h2c, websocket) we do not speak: the request is answered as plain
            # HTTP/1.1, then the connection closes instead of switching protocols.
            self._stop_reading()
        elif isinstance(e, httptools.HttpParserCallbackError):
            if not isinstance(e.__context__, StopParsing):  # our bug in a callback: say so, close
                log.error("HTTP request parsing failed", exc_info=e.__context__)
                self._fail(*envelope.render_error(Internal("internal error")))
        else:
            self._fail(*envelope.render_error(InvalidRequest(f"malformed HTTP request: {e}")))

    # -- httptools callbacks ----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_message = True
        self.url = b""
        self.headers = {}
        self.body = []
        self.size = 0
        self.head_size = 0
        self.in_head = True
        self.began = self.loop.time()

    def on_url(self, url: bytes) -> None:
        if len(self.url) + len(url) > MAX_TARGET:
            # Refused before it is routed or even held whole: work on a path must not grow
            # without bound (see core/router.py).
            self.url = b""
            self._fail(*envelope.render_error(URITooLong("request URI too long")))
            raise StopParsing
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.in_head = False
        length = self.headers.get("content-length")
        if self.limit is not None and length is not None and length.isdigit() and int(length) > self.limit:
            self._too_large()
        if self.headers.get("expect", "").lower() == "100-continue" and self.parser.get_http_version() == "1.1":
            self.awaiting_continue = True
            self._maybe_continue()

    def on_body(self, body: bytes) -> None:
        self.awaiting_continue = False  # the client did not wait for our 100
        self.size += len(body)
        if self.limit is not None and self.size > self.limit:
            self._too_large()
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.in_message = False
        self.awaiting_continue = False
        try:
            request = self._request()
        except InvalidRequest as e:
            self._fail(*envelope.render_error(e))
            raise StopParsing from None
        self._enqueue(request)

    # -- reading ----------------------------------------------------------------------------------

    def _request(self) -> PendingRequest:
        url = self.url
        if url[:1] != b"/":  # absolute-form or garbage: let the URL parser sort it out
            try:
                parsed = httptools.parse_url(url)
            except httptools.HttpParserInvalidURLError:
                raise InvalidRequest("malformed request target") from None
            raw_path, raw_query = parsed.path or b"/", parsed.query or b""
        else:
            raw_path, _, raw_query = url.partition(b"?")
            raw_query = raw_query.partition(b"#")[0]
        path = raw_path.decode("utf-8", "replace")
        if "%" in path:
            path = unquote(path)
        body = b"".join(self.body) if len(self.body) != 1 else self.body[0]
        self.body = []
        version = self.parser.get_http_version()
        keep_alive = self.parser.should_keep_alive() and not self.stopping
        method = self.parser.get_method()
        request = PendingRequest(_METHODS.get(method) or method.decode("ascii"), path, raw_query.decode("latin-1"),
                           self.headers, body, keep_alive, version == "1.0")
        if path.startswith(EVENTS_PREFIX) and websocket.is_upgrade(request.method, self.headers):
            request.upgrade = True
        return request

    def _rewrite_list(self, data: bytes) -> bytes:
        """Rewrite a LIST request line at a message boundary; hold data until the line is whole.

        Only a request line is touched, never a body that happens to start with "LIST ". A LIST
        pipelined behind another request in the same packet still reaches the parser (400): the
        clients that send LIST do not pipeline."""
        if self.held:
            data, self.held = self.held + data, b""
        if len(data) < len(wire.LIST_PREFIX) and wire.LIST_PREFIX.startswith(data):
            self.held = data  # "LI" may be all that arrived so far
            return b""
        if data.startswith(wire.LIST_PREFIX):
            if b"\r\n" in data:
                return wire.rewrite_list(data)
            if len(data) < wire.MAX_LIST_LINE:
                self.held = data
                return b""
        return data

    def _too_large(self) -> None:
        self.body = []
        self._fail(*too_large())
        raise StopParsing

    def _fail(self, status: int, body: bytes) -> None:
        """Stop reading; answer ``status`` after the requests already queued, then close."""
        self._stop_reading()
        self.in_message = self.in_head = False
        self._enqueue(failure((status, body)))

    def _stop_reading(self) -> None:
        self.reading = False
        self.awaiting_continue = False

    def _maybe_continue(self) -> None:
        """Send ``100 Continue`` for the message being read, once every earlier answer is out."""
        if self.awaiting_continue and not self._busy() and self.transport is not None:
            self.awaiting_continue = False
            self.transport.write(wire.CONTINUE)

    def _update_reading(self) -> None:
        """Pause reading while writes back up or too many requests wait; resume when both clear."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        pause = self.write_paused or len(self.queue) >= MAX_QUEUED or bool(self.pending)
        if pause and not self.read_paused:
            self.read_paused = True
            transport.pause_reading()
        elif not pause and self.read_paused:
            self.read_paused = False
            transport.resume_reading()

