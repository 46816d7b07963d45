"""The server side of RFC 6455 WebSockets, just what the events stream needs.

http/server.py hands a connection here once it has answered ``101 Switching Protocols``. The
server sends text frames (never masked, never fragmented); it reads the client's frames only to
answer pings with pongs, to take a close (echoed, then the connection closes) and to refuse what
the RFC forbids (an unmasked client frame, a control frame over 125 bytes or fragmented, an
unknown opcode, a frame over ``MAX_FRAME``): close 1002/1009. No extensions, no subprotocols.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
from collections.abc import Callable

from strongroom.errors import InvalidRequest

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_FRAME = 64 * 1024  # largest client frame read; a subscriber sends nothing but control frames

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_KNOWN = frozenset({CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG})

NORMAL, GOING_AWAY, PROTOCOL_ERROR, TOO_BIG, INTERNAL = 1000, 1001, 1002, 1009, 1011


def is_upgrade(method: str, headers: dict[str, str]) -> bool:
    """A GET asking to switch to the WebSocket protocol (``Connection: Upgrade``, ``Upgrade: websocket``)."""
    connection = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    return method == "GET" and "upgrade" in connection and headers.get("upgrade", "").strip().lower() == "websocket"


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept for a client's Sec-WebSocket-Key."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + GUID).digest()).decode("ascii")


def handshake(headers: dict[str, str]) -> bytes:
    """The 101 answer to a valid opening handshake; InvalidRequest (400) for an invalid one."""
    key = headers.get("sec-websocket-key", "").strip()
    try:
        valid_key = len(base64.b64decode(key, validate=True)) == 16
    except ValueError:
        valid_key = False
    if not valid_key:
        raise InvalidRequest("websocket: not a websocket handshake: 'Sec-WebSocket-Key' header is missing or blank")
    if headers.get("sec-websocket-version", "").strip() != "13":
        raise InvalidRequest("websocket: unsupported version: 13 not found in 'Sec-Websocket-Version' header")
    return (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept_key(key).encode("ascii") + b"\r\n\r\n")


def frame(opcode: int, payload: bytes = b"") -> bytes:
    """One final, unmasked frame (what a server sends)."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


def close_frame(code: int, reason: str = "") -> bytes:
    return frame(CLOSE, struct.pack("!H", code) + reason.encode()[:123])


class ProtocolError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class FrameReader:
    """Incremental parser of client frames: ``feed(data)`` returns the whole frames read, as
    (opcode, payload, final), unmasked; raises ProtocolError on what RFC 6455 refuses."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.buffer = bytearray()
        self.max_frame = max_frame

    def feed(self, data: bytes) -> list[tuple[int, bytes, bool]]:
        self.buffer += data
        frames = []
        while (parsed := self._one()) is not None:
            frames.append(parsed)
        return frames

    def _one(self) -> tuple[int, bytes, bool] | None:
        buf = self.buffer
        if len(buf) < 2:
            return None
        b0, b1 = buf[0], buf[1]
        final, opcode, masked, n = bool(b0 & 0x80), b0 & 0x0F, bool(b1 & 0x80), b1 & 0x7F
        if b0 & 0x70:
            raise ProtocolError(PROTOCOL_ERROR, "reserved bits set (no extension was negotiated)")
        if opcode not in _KNOWN:
            raise ProtocolError(PROTOCOL_ERROR, "unknown opcode")
        if not masked:
            raise ProtocolError(PROTOCOL_ERROR, "client frames must be masked")
        if opcode >= CLOSE and (n > 125 or not final):
            raise ProtocolError(PROTOCOL_ERROR, "invalid control frame")
        at = 2
        if n == 126:
            if len(buf) < 4:
                return None
            n, at = struct.unpack_from("!H", buf, 2)[0], 4
        elif n == 127:
            if len(buf) < 10:
                return None
            n, at = struct.unpack_from("!Q", buf, 2)[0], 10
        if n > self.max_frame:
            raise ProtocolError(TOO_BIG, "frame too large")
        if len(buf) < at + 4 + n:
            return None
        mask = bytes(buf[at:at + 4])
        body = bytes(buf[at + 4:at + 4 + n])
        del buf[:at + 4 + n]
        if n:
            body = (int.from_bytes(body, "big") ^ int.from_bytes((mask * (n // 4 + 1))[:n], "big")).to_bytes(n, "big")
        return opcode, body, final


class WebSocket:
    """One upgraded connection: ``send_text`` frames out; ``feed`` takes what the client sent.

    ``done`` resolves once the connection is finished with (a close handshake, a protocol error,
    the connection lost): the owner then stops sending and closes the transport."""

    def __init__(self, write: Callable[[bytes], None], loop: asyncio.AbstractEventLoop) -> None:
        self._write = write
        self.reader = FrameReader()
        self.done: asyncio.Future[None] = loop.create_future()
        self.closing = False  # we sent a close frame
        self.close_code: int | None = None  # what the client's close frame said

    def send_text(self, text: str | bytes) -> None:
        if not self.closing:
            self._write(frame(TEXT, text.encode() if isinstance(text, str) else text))

    def close(self, code: int = NORMAL, reason: str = "") -> None:
        """Start the closing handshake (the client answers with its close frame)."""
        if not self.closing:
            self.closing = True
            self._write(close_frame(code, reason))

    def lost(self) -> None:
        self._finish()

    def feed(self, data: bytes) -> None:
        if self.done.done():
            return
        try:
            frames = self.reader.feed(data)
        except ProtocolError as e:
            self.close(e.code, e.reason)
            self._finish()
            return
        for opcode, payload, _ in frames:
            if opcode == PING:
                if not self.closing:
                    self._write(frame(PONG, payload))
            elif opcode == CLOSE:
                if len(payload) >= 2:
                    self.close_code = struct.unpack_from("!H", payload)[0]
                self.close(NORMAL)
                self._finish()
                return
            # TEXT, BINARY, CONTINUATION, PONG from a subscriber mean nothing: ignored.

    def _finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


__all__ = ["FrameReader", "ProtocolError", "WebSocket", "accept_key", "close_frame", "frame", "handshake",
           "is_upgrade"]
