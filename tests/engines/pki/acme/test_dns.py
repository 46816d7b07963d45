"""The dns-01 TXT lookup's parsing: resolver addresses, and answers that are malformed or hostile."""

from __future__ import annotations

import struct

import pytest

from strongroom.engines.pki.acme.dns import DnsError, encode_name, parse_resolver, parse_txt


def test_resolver_addresses() -> None:
    assert parse_resolver("10.0.0.1") == ("10.0.0.1", 53)
    assert parse_resolver("10.0.0.1:5353") == ("10.0.0.1", 5353)
    assert parse_resolver("[::1]:53") == ("::1", 53)
    assert parse_resolver("::1") == ("::1", 53)
    for bad in ("dns.example", "10.0.0.1:0", "10.0.0.1:x", "[::1]:99999"):
        with pytest.raises(ValueError):
            parse_resolver(bad)


def answer(qid: int, flags: int, rdatas: list[bytes]) -> bytes:
    q = encode_name("_acme-challenge.example.org") + struct.pack("!HH", 16, 1)
    out = struct.pack("!HHHHHH", qid, flags, 1, len(rdatas), 0, 0) + q
    for rd in rdatas:
        out += b"\xc0\x0c" + struct.pack("!HHIH", 16, 1, 60, len(rd)) + rd
    return out


def test_txt_answers() -> None:
    assert parse_txt(answer(7, 0x8180, [b"\x03abc\x02de", b"\x01x"]), 7) == ["abcde", "x"]
    assert parse_txt(answer(7, 0x8183, []), 7) == []  # NXDOMAIN: no records
    bad = [
        answer(8, 0x8180, [b"\x01x"]),  # another question's id
        answer(7, 0x0100, []),  # a query, not an answer
        answer(7, 0x8382, []),  # truncated
        answer(7, 0x8182, []),  # SERVFAIL
        answer(7, 0x8180, [b"\x01x"])[:-3],  # cut short
        b"\x00\x07",
    ]
    for msg in bad:
        with pytest.raises(DnsError):
            parse_txt(msg, 7)
    with pytest.raises(DnsError):
        encode_name("a" * 64 + ".example")
