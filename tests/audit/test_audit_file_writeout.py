"""The file device hints the kernel to write its log out and drop it from the page cache, a few
chunks behind the newest, from its own thread (never the whole file, never on the event loop)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from strongroom.audit import file as audit_file
from strongroom.audit.file import WRITE_OUT_EVERY, FileDevice


async def test_write_out_hints_cover_the_chunks_before_the_newest(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int, int, str]] = []
    done = threading.Event()

    def advise(fd: int, start: int, length: int, advice: int) -> None:
        assert advice == os.POSIX_FADV_DONTNEED
        calls.append((fd, start, length, threading.current_thread().name))
        done.set()

    monkeypatch.setattr(audit_file.os, "posix_fadvise", advise)
    device = FileDevice({"file_path": str(tmp_path / "audit.log")}, b"k" * 32)
    entry = b'{"pad":"' + b"x" * 4000 + b'"}'
    lines = 0
    while len(calls) < 5:  # past 4 chunks, the window no longer starts at 0
        assert device.write_inline(entry)
        lines += 1
        if lines % 500 == 0:
            done.wait(1)
        assert lines < 10_000, "no write-out hint after ~40 MiB"
    size = (tmp_path / "audit.log").stat().st_size
    await device.close()
    assert all(name.startswith("audit-file") for *_, name in calls)  # the device's thread
    for _, start, length, _ in calls:
        assert length > 0  # 0 would mean the whole file
        assert length <= 3 * WRITE_OUT_EVERY
        assert start + length <= size - WRITE_OUT_EVERY + len(entry) * 2  # not the newest chunk
    assert calls[-1][1] > 0  # a window, not the file from its start
