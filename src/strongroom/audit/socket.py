"""The socket device: one JSON line per entry to a TCP, UDP or UNIX stream socket.

Options: ``address`` ("127.0.0.1:9090", or a path for "unix"), ``socket_type`` ("tcp", "udp" or
"unix"; default "tcp"), ``write_timeout`` (default "2s"; "0" waits as long as the broker's deadline).
A failed write reconnects and tries once more, as Vault's device does; a write abandoned half way
(timeout, cancellation) drops the connection, so the receiver never gets half a line glued to the next.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping

from strongroom.audit import parse_seconds
from strongroom.errors import InvalidRequest

SOCKET_TYPES = ("tcp", "udp", "unix")


def host_port(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise InvalidRequest(f'invalid address "{address}": expected host:port')
    return host.strip("[]"), int(port)


class SocketDevice:
    def __init__(self, options: Mapping[str, str]) -> None:
        self.address = options.get("address", "")
        self.socket_type = options.get("socket_type", "") or "tcp"
        if self.socket_type not in SOCKET_TYPES:
            raise InvalidRequest(f'unsupported socket_type "{self.socket_type}": use tcp, udp or unix')
        if not self.address:
            raise InvalidRequest("address is required")
        if self.socket_type != "unix":
            host_port(self.address)
        self.write_timeout = parse_seconds(options, "write_timeout", 2.0) or None
        self._writer: asyncio.StreamWriter | None = None
        self._udp: socket.socket | None = None

    async def write(self, entry: bytes) -> None:
        line = entry + b"\n"
        try:
            await self._send(line)
        except asyncio.CancelledError:
            self._reset()
            raise
        except Exception:  # noqa: BLE001 - any failure: reconnect once, then let the second one out
            self._reset()
            try:
                await self._send(line)
            except BaseException:
                self._reset()
                raise

    async def _send(self, line: bytes) -> None:
        if self.socket_type == "udp":
            if self._udp is None:
                s = socket.socket(socket.AF_INET6 if ":" in host_port(self.address)[0] else socket.AF_INET,
                                  socket.SOCK_DGRAM)
                s.setblocking(False)
                try:
                    s.connect(host_port(self.address))
                except OSError:
                    s.close()
                    raise
                self._udp = s
            self._udp.send(line)  # a refused earlier datagram surfaces here as ConnectionRefusedError
            return
        writer = await self._stream()
        writer.write(line)
        await asyncio.wait_for(writer.drain(), self.write_timeout)
        if writer.is_closing():
            raise ConnectionResetError("connection closed by the receiver")

    async def _stream(self) -> asyncio.StreamWriter:
        if self._writer is None:
            if self.socket_type == "unix":
                connect = asyncio.open_unix_connection(self.address)
            else:
                connect = asyncio.open_connection(*host_port(self.address))
            _, writer = await asyncio.wait_for(connect, self.write_timeout)
            self._writer = writer
            return writer
        return self._writer

    def _reset(self) -> None:
        if self._writer is not None:
            self._writer.transport.abort()  # discard anything unsent: no half lines
            self._writer = None
        if self._udp is not None:
            self._udp.close()
            self._udp = None

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                await asyncio.wait_for(self._writer.wait_closed(), self.write_timeout or 2.0)
            except (OSError, TimeoutError):
                pass
            self._writer = None
        self._reset()
