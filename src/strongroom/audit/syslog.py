"""The syslog device: one message per entry to the local syslog daemon (or a given receiver).

Options: ``facility`` (default "AUTH"), ``tag`` (default "strongroom"), and Strongroom's own
``address``: empty for the local daemon at /dev/log, an absolute path for another UNIX datagram
socket, or "host:port" for a UDP receiver. Messages are RFC 3164 lines at severity INFO, as
Vault's device writes them. Entries larger than one datagram fail (and count as not recorded).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from logging.handlers import SysLogHandler

from strongroom.audit.socket import host_port
from strongroom.errors import InvalidRequest

DEV_LOG = "/dev/log"
SEVERITY_INFO = 6


class SyslogDevice:
    def __init__(self, options: Mapping[str, str]) -> None:
        name = (options.get("facility", "") or "AUTH").lower()
        facility = SysLogHandler.facility_names.get(name)
        if facility is None:
            raise InvalidRequest(f'invalid facility "{options.get("facility")}"')
        self.priority = facility * 8 + SEVERITY_INFO
        self.tag = options.get("tag", "") or "strongroom"
        self.address = options.get("address", "") or DEV_LOG
        if not self.address.startswith("/"):
            host_port(self.address)
        self._sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        if self.address.startswith("/"):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            target: str | tuple[str, int] = self.address
        else:
            host, port = host_port(self.address)
            s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
            target = (host, port)
        s.setblocking(False)
        try:
            s.connect(target)
        except OSError:
            s.close()
            raise
        return s

    async def write(self, entry: bytes) -> None:
        self.write_inline(entry)

    def write_inline(self, entry: bytes) -> bool:
        """Send now: the socket is non-blocking (a full buffer fails the entry, never waits), so the
        broker needs no deadline, timer or lock for this device."""
        stamp = time.strftime("%b %d %H:%M:%S", time.localtime()).encode()
        msg = b"<%d>%s %s[%d]: %s" % (self.priority, stamp, self.tag.encode(), os.getpid(), entry)
        try:
            self._send(msg)
        except OSError:
            self._send(msg)  # reconnect once, as Vault's device does; a second failure is the entry's
        return True

    def _send(self, msg: bytes) -> None:
        if self._sock is None:
            self._sock = self._connect()
        try:
            self._sock.send(msg)
        except OSError:
            self._sock.close()
            self._sock = None
            raise

    async def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
