"""http/websocket.py: the opening handshake (RFC 6455's own example), frames out, client frames in
(split across reads, extended lengths) and what the RFC refuses."""

from __future__ import annotations

import asyncio
import os
import struct

import pytest

from strongroom.errors import InvalidRequest
from strongroom.http import websocket as ws


def masked(opcode: int, payload: bytes, *, final: bool = True) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([(0x80 if final else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def test_accept_key_rfc_example() -> None:
    assert ws.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_handshake_validation() -> None:
    reply = ws.handshake({"sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13"})
    assert reply.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in reply and reply.endswith(b"\r\n\r\n")
    with pytest.raises(InvalidRequest):
        ws.handshake({"sec-websocket-version": "13"})
    with pytest.raises(InvalidRequest):
        ws.handshake({"sec-websocket-key": "not base64!", "sec-websocket-version": "13"})
    with pytest.raises(InvalidRequest):
        ws.handshake({"sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "8"})


@pytest.mark.parametrize("method,headers,expected", [
    ("GET", {"connection": "Upgrade", "upgrade": "websocket"}, True),
    ("GET", {"connection": "keep-alive, Upgrade", "upgrade": "WebSocket"}, True),
    ("POST", {"connection": "Upgrade", "upgrade": "websocket"}, False),
    ("GET", {"connection": "keep-alive", "upgrade": "websocket"}, False),
    ("GET", {"connection": "Upgrade", "upgrade": "h2c"}, False),
])
def test_is_upgrade(method: str, headers: dict[str, str], expected: bool) -> None:
    assert ws.is_upgrade(method, headers) is expected


@pytest.mark.parametrize("size", [0, 5, 125, 126, 300, 70000])
def test_frames_out_and_in(size: int) -> None:
    payload = os.urandom(size)
    out = ws.frame(ws.TEXT, payload)
    assert out[0] == 0x81 and not out[1] & 0x80  # final text, unmasked
    reader = ws.FrameReader(max_frame=1 << 20)
    data = masked(ws.BINARY, payload)
    frames = []
    for i in range(0, len(data), 7):  # split across many reads
        frames += reader.feed(data[i:i + 7])
    assert frames == [(ws.BINARY, payload, True)]


@pytest.mark.parametrize("data,code", [
    (bytes([0x81, 0x05]) + b"hello", ws.PROTOCOL_ERROR),  # unmasked
    (bytes([0xC1, 0x80]) + b"\0\0\0\0", ws.PROTOCOL_ERROR),  # RSV1 without an extension
    (bytes([0x83, 0x80]) + b"\0\0\0\0", ws.PROTOCOL_ERROR),  # opcode 3
    (masked(ws.PING, b"x" * 126), ws.PROTOCOL_ERROR),  # control frame too long
    (masked(ws.PING, b"x", final=False), ws.PROTOCOL_ERROR),  # fragmented control frame
    (masked(ws.TEXT, b"x" * (ws.MAX_FRAME + 1)), ws.TOO_BIG),
])
def test_refused_frames(data: bytes, code: int) -> None:
    with pytest.raises(ws.ProtocolError) as refused:
        ws.FrameReader().feed(data)
    assert refused.value.code == code


async def test_session_ping_close() -> None:
    sent: list[bytes] = []
    session = ws.WebSocket(sent.append, asyncio.get_running_loop())
    second = masked(ws.PING, b"p2")
    session.feed(masked(ws.PING, b"p1") + masked(ws.TEXT, b"ignored") + second[:3])
    assert sent == [ws.frame(ws.PONG, b"p1")]
    session.feed(second[3:])  # the rest of the second ping
    assert sent == [ws.frame(ws.PONG, b"p1"), ws.frame(ws.PONG, b"p2")]
    session.feed(masked(ws.CLOSE, struct.pack("!H", 1001)))
    assert session.done.done() and session.close_code == 1001
    assert sent[-1] == ws.close_frame(ws.NORMAL)
    session.send_text("late")  # after the close: nothing more goes out
    assert sent[-1] == ws.close_frame(ws.NORMAL)
