"""The file device: appends one chained JSON line per entry to ``file_path`` ("stdout" and "discard"
are special, as in Vault).

Options: ``file_path`` (required), ``mode`` (octal, default "0600"; executable bits are dropped;
"0000" leaves the mode alone). Missing parent directories are created (0700).

Each line carries a running HMAC (see :mod:`strongroom.audit.chain`). On start the chain continues
from the file's last line, so one file is one chain across restarts. The path is checked before
each write: if the file was moved or deleted (log rotation), it is reopened and the chain goes on
in the new file, which verifies together with the old one (``strongroom audit verify OLD NEW``).

Writes run on one worker thread per device, in order, so a stalled disk holds up this device only;
the broker's deadline stops the server from waiting on it. Entries that arrive while the thread is
busy are written together by its next job (one write and one flush for the batch): under load the
event loop hands work to the thread a few times per many requests, not twice per request.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO

from strongroom.audit.chain import chained_line, split_line
from strongroom.errors import InvalidRequest

_TAIL_BLOCK = 64 * 1024


def parse_mode(text: str) -> int:
    try:
        mode = int(text, 8)
    except ValueError:
        raise InvalidRequest(f'invalid mode "{text}": must be an octal number such as "0600"') from None
    if not 0 <= mode <= 0o7777:
        raise InvalidRequest(f'invalid mode "{text}"')
    return mode & 0o666  # SECURITY: never make an audit log executable (OpenBao drops x bits too)


class FileDevice:
    def __init__(self, options: Mapping[str, str], chain_key: bytes) -> None:
        self.path = options.get("file_path", "") or options.get("path", "")
        if not self.path:
            raise InvalidRequest("file_path is required")
        self.mode = parse_mode(options.get("mode", "") or "0600")
        self._key = chain_key
        self._file: BinaryIO | None = None
        self._ident: tuple[int, int] | None = None
        self._needs_newline = False
        # Chain head: the last line's sequence number and HMAC (what `sys/audit-chain` reports).
        self.seq = 0
        self.prev = ""
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-file")
        self._pending: list[tuple[bytes, asyncio.Future[None]]] = []
        self._drainer: asyncio.Task[None] | None = None

    @property
    def head(self) -> tuple[int, str]:
        return self.seq, self.prev

    async def write(self, entry: bytes) -> None:
        if self.path == "discard":
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((entry, done))
        if self._drainer is None:
            self._drainer = loop.create_task(self._drain())
        await done

    async def _drain(self) -> None:
        """Hand queued entries to the worker thread, a batch per job, until none are left."""
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    await loop.run_in_executor(self._pool, self._write_batch, [e for e, _ in batch])
                    error: BaseException | None = None
                except Exception as e:  # every waiter learns its entry was not recorded
                    error = e
                for _, done in batch:
                    if done.done():
                        continue  # its waiter gave up (deadline); the line may still have been written
                    if error is None:
                        done.set_result(None)
                    else:
                        done.set_exception(error)
        finally:
            self._drainer = None

    async def close(self) -> None:
        if self._drainer is not None:
            await asyncio.gather(self._drainer, return_exceptions=True)
        await asyncio.get_running_loop().run_in_executor(self._pool, self._close)
        self._pool.shutdown(wait=False)

    # -- on the worker thread --------------------------------------------------------------------
    def _write_batch(self, entries: list[bytes]) -> None:
        """Chain and write ``entries`` in order with one write and one flush; all or nothing
        moves the chain on."""
        out: BinaryIO
        if self.path == "stdout":
            out = sys.stdout.buffer
        else:
            out = self._current()  # first: opening an existing file resumes its chain
        seq, prev = self.seq, self.prev
        lines = [b"\n"] if self._needs_newline and out is not sys.stdout.buffer else []
        for entry in entries:
            seq += 1
            line, prev = chained_line(self._key, prev, seq, entry)
            lines.append(line)
        out.write(b"".join(lines))
        out.flush()
        self._needs_newline = False
        # Only lines that reached the file move the chain on: a failed write leaves no gap.
        self.seq, self.prev = seq, prev

    def _current(self) -> BinaryIO:
        """The open file, reopened if ``path`` no longer names it (rotated, deleted, replaced)."""
        if self._file is not None:
            try:
                st = os.stat(self.path)
                same = (st.st_dev, st.st_ino) == self._ident
            except OSError:
                same = False
            if same:
                return self._file
            self._close()
        return self._open()

    def _open(self) -> BinaryIO:
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, self.mode or 0o600)
        f = os.fdopen(fd, "ab")
        try:
            st = os.fstat(fd)
            if self.mode and (st.st_mode & 0o7777) != self.mode:
                os.fchmod(fd, self.mode)
            if self._ident is None and st.st_size:
                self._resume(st.st_size)
            self._ident = (st.st_dev, st.st_ino)
        except BaseException:
            f.close()
            raise
        self._file = f
        return f

    def _resume(self, size: int) -> None:
        """First open of an existing file: continue the chain from its last line."""
        with open(self.path, "rb") as r:
            r.seek(max(0, size - 1))
            self._needs_newline = r.read(1) != b"\n"
            start = size
            tail = b""
            while start > 0 and b"\n" not in tail.rstrip(b"\n"):
                start = max(0, start - _TAIL_BLOCK)
                r.seek(start)
                tail = r.read(size - start)
        last = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
        parts = split_line(last)
        if parts is not None:
            self.seq, self.prev = parts[1], parts[2]

    def _close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            finally:
                self._file = None
