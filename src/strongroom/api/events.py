"""A client for Vault's events stream: ``sys/events/subscribe/EVENT_TYPE`` over a WebSocket.

A small RFC 6455 client over asyncio streams (no third-party WebSocket library): the opening
handshake (Sec-WebSocket-Accept checked), masked frames out, pings answered, the close handshake.
:func:`subscribe` yields each event's JSON message as a dict until the server closes the stream.
A refused subscription (403, 400) raises :class:`APIError` as any request would.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import ssl
import struct
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import orjson

from strongroom.api.errors import APIError, TransportError

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_TEXT, _BINARY, _CLOSE, _PING, _PONG = 0x1, 0x2, 0x8, 0x9, 0xA
MAX_MESSAGE = 16 * 1024 * 1024


def _frame(opcode: int, payload: bytes = b"") -> bytes:
    """One final client frame, masked as RFC 6455 requires of clients."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    body = (int.from_bytes(payload, "big") ^ int.from_bytes((mask * (n // 4 + 1))[:n], "big")).to_bytes(n, "big") \
        if n else b""
    return head + mask + body


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bool, bytes]:
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", await reader.readexactly(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", await reader.readexactly(8))[0]
    if n > MAX_MESSAGE:
        raise ValueError("frame too large")
    mask = await reader.readexactly(4) if b1 & 0x80 else b""
    payload = await reader.readexactly(n)
    if mask and n:
        payload = (int.from_bytes(payload, "big")
                   ^ int.from_bytes((mask * (n // 4 + 1))[:n], "big")).to_bytes(n, "big")
    return b0 & 0x0F, bool(b0 & 0x80), payload


async def subscribe(address: str, token: str | None, event_type: str, *,
                    verify: ssl.SSLContext | bool = True, headers: Mapping[str, str] | None = None,
                    namespace: str | None = None) -> AsyncIterator[dict[str, Any]]:
    """Each event of type ``event_type`` (a glob: ``kv*``, ``*``) the token may see, in order."""
    url = urlsplit(address.rstrip("/"))
    secure = url.scheme == "https"
    host = url.hostname or "127.0.0.1"
    port = url.port or (443 if secure else 80)
    target = f"/v1/sys/events/subscribe/{quote(event_type, safe='*/')}?json=true"
    shown = f"{address.rstrip('/')}{target}"
    context: ssl.SSLContext | None = None
    if secure:
        if isinstance(verify, ssl.SSLContext):
            context = verify
        else:
            context = ssl.create_default_context()
            if not verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
    try:
        reader, writer = await asyncio.open_connection(host, port, ssl=context)
    except (OSError, ssl.SSLError) as e:
        raise TransportError("GET", shown, str(e)) from e
    try:
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        lines = [f"GET {target} HTTP/1.1", f"Host: {url.netloc}", "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        if token:
            lines.append(f"X-Vault-Token: {token}")
        if namespace:
            lines.append(f"X-Vault-Namespace: {namespace}")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        try:
            status, head = await _read_head(reader)
        except (OSError, asyncio.IncompleteReadError, ValueError) as e:
            raise TransportError("GET", shown, f"no answer to the subscription: {e}") from e
        if status != 101:
            length = int(head.get("content-length", "0") or 0)
            raw = (await reader.readexactly(length)).decode("utf-8", "replace") if length else ""
            try:
                body = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                body = None
            errors = [str(e) for e in body.get("errors", [])] if isinstance(body, dict) else []
            raise APIError(status, errors, method="GET", url=shown, raw=raw, body=body)
        expected = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()
        if head.get("sec-websocket-accept", "") != expected:
            raise TransportError("GET", shown, "invalid Sec-WebSocket-Accept in the server's handshake")
        message = b""
        while True:
            try:
                opcode, final, payload = await _read_frame(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                return  # the connection ended without a close handshake
            if opcode == _PING:
                writer.write(_frame(_PONG, payload))
            elif opcode == _CLOSE:
                writer.write(_frame(_CLOSE, payload[:2]))
                return
            elif opcode in (_TEXT, _BINARY, 0x0):
                message += payload
                if len(message) > MAX_MESSAGE:
                    raise TransportError("GET", shown, "event message too large")
                if final:
                    yield orjson.loads(message)
                    message = b""
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (OSError, ssl.SSLError):
            pass


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    status_line = await reader.readline()
    parts = status_line.split()
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
        raise ValueError(f"not an HTTP answer: {status_line[:80]!r}")
    head: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        head[name.strip().lower()] = value.strip()
    return int(parts[1]), head


__all__ = ["subscribe"]
