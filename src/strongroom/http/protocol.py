"""uvicorn's httptools protocol, taught Vault's LIST method, writing each response in one syscall.

llhttp (behind httptools) knows a fixed set of methods and rejects LIST, which hvac, Terraform and
curl users send. Vault treats ``LIST /v1/p`` and ``GET /v1/p?list=true`` identically, so at the start
of each request we rewrite a LIST request line into the GET form before the parser sees it. Only the
request line at a message boundary is touched: a body that happens to start with "LIST " is never
rewritten. A LIST pipelined behind another request in the same packet is still refused (400) by the
parser; the clients that send LIST do not pipeline.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_LIST = b"LIST "
# A request line longer than this without CRLF is not ours to fix: let the parser reject it.
_MAX_LINE = 16384


def rewrite_list(data: bytes) -> bytes:
    """``LIST /path?q HTTP/1.1`` → ``GET /path?q&list=true HTTP/1.1`` (the rest of ``data`` unchanged)."""
    end = data.index(b"\r\n")
    line = data[len(_LIST):end]
    target, sep, version = line.rpartition(b" ")
    if not sep:
        return data
    joiner = b"&" if b"?" in target else b"?"
    return b"GET " + target + joiner + b"list=true " + version + data[end:]


class CoalescingTransport:
    """A transport whose writes within one event-loop turn leave in one ``send`` syscall.

    uvicorn writes a response's status line and headers, then its body, as two writes: two
    syscalls (and often two TCP segments) per request. Here writes are gathered and flushed by a
    callback scheduled on the first write of a turn; close() and write_eof() flush first, so
    nothing is reordered or lost. Everything else is the real transport's.
    """

    __slots__ = ("_buffer", "_loop", "_scheduled", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._buffer: list[bytes] = []
        self._scheduled = False

    def write(self, data: bytes) -> None:
        self._buffer.append(data)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if self._buffer:
            data = b"".join(self._buffer)
            self._buffer.clear()
            self._transport.write(data)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class VaultHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_message = False
        self._held = b""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        if not self._in_message:
            if self._held:
                data, self._held = self._held + data, b""
            if data[:5] == _LIST[: len(data)] and len(data) < 5:
                self._held = data  # "LI" may be all that arrived so far
                return
            if data.startswith(_LIST):
                if b"\r\n" not in data:
                    if len(data) < _MAX_LINE:
                        self._held = data
                        return
                else:
                    data = rewrite_list(data)
        super().data_received(data)

    def on_message_begin(self) -> None:
        self._in_message = True
        super().on_message_begin()

    def on_message_complete(self) -> None:
        self._in_message = False
        super().on_message_complete()
