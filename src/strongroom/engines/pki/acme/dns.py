"""A minimal DNS TXT lookup for dns-01 (RFC 1035 over UDP), so no resolver library is needed.

One question, one UDP answer from the resolver (``dns_resolver`` of config/acme, else the first
``nameserver`` of /etc/resolv.conf, else 127.0.0.1:53), matched by a random id and the resolver's
address, bounded by a timeout. Answers are parsed defensively: anything malformed or truncated is a
:class:`DnsError`, NXDOMAIN is no records.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import struct

TXT = 16
MAX_ANSWER = 4096


class DnsError(Exception):
    pass


def parse_resolver(value: str) -> tuple[str, int]:
    """``IP``, ``IP:PORT`` or ``[IPv6]:PORT`` -> (ip, port); ValueError otherwise."""
    host, port = value, 53
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        if rest:
            port = int(rest.removeprefix(":"))
    elif value.count(":") == 1:
        host, _, p = value.partition(":")
        port = int(p)
    ip = ipaddress.ip_address(host)
    if not 0 < port < 65536:
        raise ValueError("port out of range")
    return str(ip), port


def system_resolver() -> tuple[str, int]:
    try:
        with open("/etc/resolv.conf", encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    try:
                        return str(ipaddress.ip_address(parts[1].split("%")[0])), 53
                    except ValueError:
                        continue
    except OSError:
        pass
    return "127.0.0.1", 53


def encode_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode("ascii")
        if not 0 < len(raw) < 64:
            raise DnsError(f"invalid name {name!r}")
        out += bytes([len(raw)]) + raw
    return out + b"\0"


def _skip_name(msg: bytes, off: int) -> int:
    for _ in range(128):
        length = msg[off]
        if length == 0:
            return off + 1
        if length & 0xC0 == 0xC0:
            return off + 2
        off += 1 + length
    raise DnsError("name too long")


def parse_txt(msg: bytes, qid: int) -> list[str]:
    try:
        rid, flags, qd, an, _, _ = struct.unpack("!HHHHHH", msg[:12])
        if rid != qid or not flags & 0x8000:
            raise DnsError("not the answer to our question")
        if flags & 0x0200:
            raise DnsError("truncated answer")
        rcode = flags & 0xF
        if rcode == 3:
            return []
        if rcode:
            raise DnsError(f"resolver answered rcode {rcode}")
        off = 12
        for _ in range(qd):
            off = _skip_name(msg, off) + 4
        out = []
        for _ in range(an):
            off = _skip_name(msg, off)
            rtype, _, _, rdlen = struct.unpack("!HHIH", msg[off:off + 10])
            off += 10
            rdata = msg[off:off + rdlen]
            if len(rdata) != rdlen:
                raise DnsError("short answer")
            off += rdlen
            if rtype == TXT:
                parts, i = [], 0
                while i < len(rdata):
                    n = rdata[i]
                    parts.append(rdata[i + 1:i + 1 + n])
                    i += 1 + n
                out.append(b"".join(parts).decode("ascii", "replace"))
        return out
    except (IndexError, struct.error):
        raise DnsError("malformed answer") from None


class _Query(asyncio.DatagramProtocol):
    def __init__(self, addr: tuple[str, int], answer: asyncio.Future[bytes]) -> None:
        self.addr = addr
        self.answer = answer

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if (str(addr[0]), addr[1]) == self.addr and not self.answer.done():
            self.answer.set_result(data[:MAX_ANSWER])

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)


async def txt_records(name: str, resolver: tuple[str, int], timeout: float) -> list[str]:
    """The TXT strings at ``name`` (each record's character-strings joined)."""
    qid = secrets.randbelow(65536)
    question = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + encode_name(name) + struct.pack("!HH", TXT, 1)
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[bytes] = loop.create_future()
    transport, _ = await loop.create_datagram_endpoint(lambda: _Query(resolver, answer), remote_addr=resolver)
    try:
        transport.sendto(question)
        msg = await asyncio.wait_for(answer, timeout)
    finally:
        transport.close()
    return parse_txt(msg, qid)
