"""The devices against the real thing: files, a local TCP and UDP receiver, a UDP syslog receiver."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
from pathlib import Path

import pytest

from strongroom.audit import CommonOptions, open_device
from strongroom.audit.chain import verify
from strongroom.audit.file import FileDevice
from strongroom.errors import InvalidRequest

KEY = b"c" * 32


def _entry(i: int) -> bytes:
    return json.dumps({"type": "request", "request": {"id": str(i)}}).encode()


async def test_file_device_appends_chained_lines_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "audit.log"
    dev = open_device("file", {"file_path": str(path)}, KEY)
    for i in range(3):
        await dev.write(_entry(i))
    await dev.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = path.read_bytes().splitlines(keepends=True)
    assert [json.loads(line)["request"]["id"] for line in lines] == ["0", "1", "2"]
    assert verify(KEY, lines).ok


async def test_file_device_continues_the_chain_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    for round_ in range(2):
        dev = FileDevice({"file_path": str(path), "mode": "0640"}, KEY)
        await dev.write(_entry(round_))
        await dev.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    lines = path.read_bytes().splitlines(keepends=True)
    v = verify(KEY, lines)
    assert v.ok and v.last_seq == 2


async def test_file_device_reopens_a_rotated_file_and_the_chain_spans_both(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    dev = FileDevice({"file_path": str(path)}, KEY)
    await dev.write(_entry(1))
    os.rename(path, tmp_path / "audit.log.1")  # logrotate
    await dev.write(_entry(2))
    await dev.close()
    old = (tmp_path / "audit.log.1").read_bytes().splitlines(keepends=True)
    new = path.read_bytes().splitlines(keepends=True)
    assert len(old) == len(new) == 1
    assert verify(KEY, old + new).ok
    assert not verify(KEY, new).ok  # alone, the new file starts mid-chain


async def test_file_device_special_paths_and_bad_options(capfd: pytest.CaptureFixture[str]) -> None:
    dev = open_device("file", {"file_path": "stdout"}, KEY)
    await dev.write(_entry(7))
    await dev.close()
    assert json.loads(capfd.readouterr().out)["request"]["id"] == "7"
    discard = open_device("file", {"file_path": "discard"}, KEY)
    await discard.write(_entry(8))
    await discard.close()
    with pytest.raises(InvalidRequest, match="file_path is required"):
        open_device("file", {}, KEY)
    with pytest.raises(InvalidRequest, match="unknown backend type"):
        open_device("bogus", {}, KEY)
    with pytest.raises(InvalidRequest, match='unknown format type "xml"'):
        CommonOptions.parse({"format": "xml"})
    with pytest.raises(InvalidRequest, match="ParseBool"):
        CommonOptions.parse({"log_raw": "maybe"})
    assert CommonOptions.parse({"timeout": "250ms"}).timeout == 0.25


async def test_socket_device_over_tcp_reconnects_after_the_receiver_restarts() -> None:
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            received.append(line)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    dev = open_device("socket", {"address": f"127.0.0.1:{port}", "socket_type": "tcp"}, KEY)
    await dev.write(_entry(1))
    await dev.write(_entry(2))
    await dev.close()
    for _ in range(100):
        if len(received) == 2:
            break
        await asyncio.sleep(0.01)
    server.close()
    await server.wait_closed()
    assert [json.loads(line)["request"]["id"] for line in received] == ["1", "2"]
    assert all(line.endswith(b"\n") for line in received)


async def test_socket_device_fails_when_nothing_listens() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        dev = open_device("socket", {"address": f"127.0.0.1:{port}"}, KEY)
        with pytest.raises(OSError):
            await dev.write(_entry(1))
        await dev.close()


async def test_socket_device_over_udp() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(5)
        dev = open_device("socket", {"address": f"127.0.0.1:{rx.getsockname()[1]}", "socket_type": "udp"}, KEY)
        await dev.write(_entry(5))
        await dev.close()
        assert json.loads(rx.recv(65536))["request"]["id"] == "5"


async def test_syslog_device_sends_rfc3164_to_a_udp_receiver() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(5)
        dev = open_device("syslog", {"address": f"127.0.0.1:{rx.getsockname()[1]}", "facility": "LOCAL0",
                                     "tag": "vaultish"}, KEY)
        await dev.write(_entry(9))
        await dev.close()
        msg = rx.recv(65536)
    assert msg.startswith(b"<134>")  # local0 (16) * 8 + info (6)
    head, _, body = msg.partition(b": ")
    assert b" vaultish[" in head and json.loads(body)["request"]["id"] == "9"
    with pytest.raises(InvalidRequest, match="facility"):
        open_device("syslog", {"facility": "nope"}, KEY)


@pytest.mark.skipif(not os.path.exists("/dev/log"), reason="no local syslog daemon at /dev/log")
async def test_syslog_device_to_dev_log() -> None:
    dev = open_device("syslog", {}, KEY)
    await dev.write(_entry(1))
    await dev.close()


async def test_concurrent_entries_are_batched_in_order_and_chain(tmp_path: Path) -> None:
    key = b"k" * 32
    device = FileDevice({"file_path": str(tmp_path / "a.log")}, key)
    entries = [json.dumps({"n": i}).encode() for i in range(200)]
    await asyncio.gather(*(device.write(e) for e in entries))
    await device.close()
    lines = (tmp_path / "a.log").read_bytes().splitlines()
    assert [json.loads(line)["n"] for line in lines] == list(range(200))
    assert device.seq == 200
    assert verify(key, (tmp_path / "a.log").read_bytes().splitlines(keepends=True)).ok
