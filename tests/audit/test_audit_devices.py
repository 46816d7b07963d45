"""The devices against the real thing: files, a local TCP and UDP receiver, a UDP syslog receiver."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import socket
import stat
import time
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


# -- inline writes (regular files) and the move to the thread -------------------------------------
async def test_a_regular_file_is_written_inline_without_the_thread(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    dev = FileDevice({"file_path": str(path)}, KEY)
    for i in range(3):
        assert dev.write_inline(_entry(i))  # synchronous: the line is in the file on return
        assert len(path.read_bytes().splitlines()) == i + 1
    assert dev.inline and dev._drainer is None
    await dev.close()
    assert verify(KEY, path.read_bytes().splitlines(keepends=True)).ok


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "threaded"])
async def test_both_ways_reopen_a_rotated_file_and_continue_the_chain(tmp_path: Path, inline: bool) -> None:
    path = tmp_path / "audit.log"

    async def put(dev: FileDevice, entry: bytes) -> None:
        if inline:
            assert dev.write_inline(entry)
        else:
            await dev.write(entry)

    dev = FileDevice({"file_path": str(path)}, KEY)
    await put(dev, _entry(1))
    os.rename(path, tmp_path / "audit.log.1")
    await put(dev, _entry(2))
    await dev.close()
    dev = FileDevice({"file_path": str(path)}, KEY)  # a restart continues the new file's chain
    await put(dev, _entry(3))
    await dev.close()
    old = (tmp_path / "audit.log.1").read_bytes().splitlines(keepends=True)
    new = path.read_bytes().splitlines(keepends=True)
    assert (len(old), len(new)) == (1, 2)
    assert verify(KEY, old + new).ok


async def test_a_fifo_is_never_written_inline_and_never_hangs_the_loop(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    dev = FileDevice({"file_path": str(fifo)}, KEY)
    assert not dev.write_inline(_entry(1))  # no reader: opening would block; the thread's job
    assert not dev.inline
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        other = FileDevice({"file_path": str(fifo)}, KEY)
        assert not other.write_inline(_entry(1))  # a reader: opens, but it is no regular file
        await other.write(_entry(2))
        assert json.loads(os.read(reader, 65536))["request"]["id"] == "2"
        await other.close()
    finally:
        os.close(reader)
    await dev.close()
    assert not FileDevice({"file_path": "stdout"}, KEY).write_inline(_entry(1))
    assert not FileDevice({"file_path": str(tmp_path / "x"), "inline": "false"}, KEY).write_inline(_entry(1))
    assert FileDevice({"file_path": "discard"}, KEY).write_inline(_entry(1))


async def test_a_write_that_blocks_too_long_moves_the_device_to_its_thread(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    dev = FileDevice({"file_path": str(path)}, KEY)
    assert dev.write_inline(_entry(1))
    dev.slow_write = 0.001

    def stalling_write(fd: int, data: bytes) -> int:
        time.sleep(0.005)  # the thread blocks, as on a stalled disk
        return os.write(fd, data)

    dev.os_write = stalling_write
    assert dev.write_inline(_entry(2))  # this one is recorded...
    assert not dev.inline  # ...and the next ones go through the thread, under the deadline
    assert not dev.write_inline(_entry(3))
    await dev.write(_entry(3))
    await dev.close()
    lines = path.read_bytes().splitlines(keepends=True)
    assert [json.loads(line)["request"]["id"] for line in lines] == ["1", "2", "3"]
    assert verify(KEY, lines).ok


def test_a_slow_write_that_did_not_block_stays_inline_unless_it_broke_the_deadline(tmp_path: Path) -> None:
    dev = FileDevice({"file_path": str(tmp_path / "a.log"), "timeout": "1s"}, KEY)
    assert dev.slow_write == 0.05 and dev.deadline == 1.0
    dev._too_slow(0.2, blocked=False)  # descheduled on a busy host: not the file's doing
    assert dev.inline
    dev._too_slow(1.5, blocked=False)
    assert not dev.inline
    assert FileDevice({"file_path": "x", "timeout": "10ms"}, KEY).slow_write == 0.01


async def test_a_failed_inline_write_moves_nothing_on(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    dev = FileDevice({"file_path": str(path)}, KEY)
    assert dev.write_inline(_entry(1))

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    dev.os_write = full
    with pytest.raises(OSError):
        dev.write_inline(_entry(2))
    assert dev.head[0] == 1
    dev.os_write = os.write
    assert dev.write_inline(_entry(3))
    await dev.close()
    lines = path.read_bytes().splitlines(keepends=True)
    assert [json.loads(line)["request"]["id"] for line in lines] == ["1", "3"]
    assert verify(KEY, lines).ok


async def test_syslog_device_sends_inline() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(5)
        dev = open_device("syslog", {"address": f"127.0.0.1:{rx.getsockname()[1]}"}, KEY)
        assert dev.write_inline(_entry(4))  # type: ignore[attr-defined]
        await dev.close()
        assert json.loads(rx.recv(65536).partition(b": ")[2])["request"]["id"] == "4"


async def test_inline_the_path_is_checked_once_per_event_loop_turn(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    dev = FileDevice({"file_path": str(path)}, KEY)
    assert dev.write_inline(_entry(1))  # opens
    assert dev.write_inline(_entry(2))  # checks the path: this turn is covered
    os.rename(path, tmp_path / "audit.log.1")
    assert dev.write_inline(_entry(3))  # same turn: still the old file, complete and chained
    await asyncio.sleep(0)
    assert dev.write_inline(_entry(4))  # next turn: the rotation is seen
    await dev.close()
    old = (tmp_path / "audit.log.1").read_bytes().splitlines(keepends=True)
    new = path.read_bytes().splitlines(keepends=True)
    assert [json.loads(line)["request"]["id"] for line in old] == ["1", "2", "3"]
    assert [json.loads(line)["request"]["id"] for line in new] == ["4"]
    assert verify(KEY, old + new).ok


async def test_file_device_continues_the_chain_past_a_torn_last_line(tmp_path: Path) -> None:
    # A crash cut the last write short; after the restart the chain goes on around the torn line.
    path = tmp_path / "audit.log"
    dev = FileDevice({"file_path": str(path)}, KEY)
    for i in range(3):
        await dev.write(_entry(i))
    await dev.close()
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) - 40])
    dev = FileDevice({"file_path": str(path)}, KEY)
    await dev.write(_entry(9))
    assert dev.head[0] == 3  # the torn line's number, written again whole
    await dev.close()
    lines = path.read_bytes().splitlines(keepends=True)
    assert len(lines) == 4 and json.loads(lines[3])["request"]["id"] == "9"
    v = verify(KEY, lines)
    assert v.ok and v.torn == (3,) and v.last_seq == 3
