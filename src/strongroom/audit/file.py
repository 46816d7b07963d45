"""The file device: appends one chained JSON line per entry to ``file_path`` ("stdout" and "discard"
are special, as in Vault).

Options: ``file_path`` (required), ``mode`` (octal, default "0600"; executable bits are dropped;
"0000" leaves the mode alone). Missing parent directories are created (0700). Strongroom's own
``inline`` (default "true"): "false" always writes on the worker thread (see below), for a file on a
network filesystem that may hang.

Each line carries a running HMAC (see :mod:`strongroom.audit.chain`). On start the chain continues
from the file's last line, so one file is one chain across restarts. The path is checked before
each batch of writes (inline: before the first write of each event-loop turn; a stat per entry
would cost as much as the write): if the file was moved or deleted (log rotation), it is reopened
and the chain goes on in the new file, which verifies together with the old one
(``strongroom audit verify OLD NEW``). Lines written in the turn of the rotation still go to the
old file, complete and chained.

Two ways to write:

- inline (:meth:`FileDevice.write_inline`): when ``file_path`` is a regular file, each entry is
  chained and appended with one ``os.write`` on an O_APPEND descriptor, right on the event loop.
  A regular file takes a write into the page cache in microseconds, far less than handing the
  line to a thread and back. SECURITY: the broker's deadline cannot interrupt such a write, so
  each one is watched, and the device moves to its thread for good (with a warning), where the
  deadline applies again, after one write that blocked (the thread slept: a voluntary context
  switch since the turn's first write, counted once per turn as a syscall per write would cost
  more than the write) and took longer than ``min(50 ms, timeout)``, or that took longer than
  ``timeout`` at all. A write that was merely descheduled on a busy host (an involuntary switch)
  is not the file's fault, and moving to the thread would not help it.
- staged (:meth:`FileDevice.stage_lines`, for answers the HTTP server gives from its read cache):
  the entries are chained at once and written, with everything else staged in the same event-loop
  turn, by one write at the start of the next turn; each waiter learns the outcome and only then
  may its answer leave (a failed write: nothing of the batch moves the chain, every waiter is
  told). Any other write to the device first writes what is staged, so the chain stays in order.
- threaded (:meth:`FileDevice.write`): anything else (a FIFO, a character device, stdout, or a
  file that was once slow) is written on one worker thread per device, in order, so a stalled
  target holds up this device only and the broker's deadline stops the server from waiting on
  it. Entries that arrive while the thread is busy are written together by its next job.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import resource
import stat
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from strongroom.audit import DEFAULT_TIMEOUT, parse_bool, parse_seconds
from strongroom.audit.chain import chained_line, is_torn, split_line
from strongroom.audit.mac import KeyedSha256
from strongroom.errors import InvalidRequest

log = logging.getLogger(__name__)

_TAIL_BLOCK = 64 * 1024
# An inline write that blocked for longer than this (capped by the device's timeout) moves the
# device to its thread.
SLOW_WRITE = 0.05
# Bytes between two hints to the kernel (from the device's thread) to write the log out and drop it
# from the page cache.
WRITE_OUT_EVERY = 2 * 1024 * 1024

# Linux counts context switches per thread; elsewhere per process (other threads' sleeps then count
# too: more cautious, never less).
_WHO = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)


def _slept() -> int:
    """How many times this thread has blocked so far (voluntary context switches)."""
    return resource.getrusage(_WHO).ru_nvcsw


def _write_out(fd: int, start: int, length: int) -> None:
    """On the device's thread: start writing the log's dirty pages out and let the kernel drop the
    clean ones. An audit log is written once and rarely read: left alone, a busy server's log piles
    up gigabytes of dirty page cache whose writeback later stalls every fsync on the disk (sqlite's
    commits). A hint only (it waits for nothing); an error (the file was closed meanwhile) is moot."""
    try:
        os.posix_fadvise(fd, start, length, os.POSIX_FADV_DONTNEED)
    except OSError:
        pass


def parse_mode(text: str) -> int:
    try:
        mode = int(text, 8)
    except ValueError:
        raise InvalidRequest(f'invalid mode "{text}": must be an octal number such as "0600"') from None
    if not 0 <= mode <= 0o7777:
        raise InvalidRequest(f'invalid mode "{text}"')
    return mode & 0o666  # SECURITY: never make an audit log executable (OpenBao drops x bits too)


class FileDevice:
    # It orders concurrent entries itself (one queue, one writer): the broker need not serialise.
    concurrent_writes = True

    def __init__(self, options: Mapping[str, str], chain_key: bytes) -> None:
        self.path = options.get("file_path", "") or options.get("path", "")
        if not self.path:
            raise InvalidRequest("file_path is required")
        self.mode = parse_mode(options.get("mode", "") or "0600")
        self.deadline = parse_seconds(options, "timeout", DEFAULT_TIMEOUT)
        self.slow_write = min(SLOW_WRITE, self.deadline)
        self._key = KeyedSha256(chain_key)
        self._fd: int | None = None
        self._checked = False  # inline: the path was checked in this event-loop turn
        self._turn_slept = 0  # inline: this thread's voluntary context switches when the turn began
        # Staged (see stage_lines): chained lines waiting for the turn's one write, the chain head
        # they end at, and who waits for the outcome.
        self._staged: list[bytes] = []
        self._staged_head: tuple[int, str] = (0, "")
        self._staged_done: list[Callable[[bool], None]] = []
        self._unflushed = 0  # bytes written since the last _write_out
        self._size = 0  # of the open file, as far as our writes go (we are its only writer)
        self._ident: tuple[int, int] | None = None
        self._needs_newline = False
        # Chain head: the last line's sequence number and HMAC (what `sys/audit-chain` reports).
        self.seq = 0
        self.prev = ""
        self.discard = self.path == "discard"
        # True while entries are written from the event loop; False once they go to the thread.
        self.inline = self.path != "stdout" and parse_bool(options, "inline", True)
        # What appends bytes to the descriptor (tests slow it down to see the device move to its thread).
        self.os_write: Callable[[int, bytes], int] = os.write
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-file")
        self._pending: list[tuple[bytes, asyncio.Future[None]]] = []
        self._drainer: asyncio.Task[None] | None = None

    @property
    def head(self) -> tuple[int, str]:
        return self.seq, self.prev

    # -- inline, on the event loop ---------------------------------------------------------------
    def write_inline(self, entry: bytes) -> bool:
        """Record ``entry`` now, from the event loop, if this device writes inline: True once it is
        in the file, False if it must go through :meth:`write` instead. Raises if the write failed."""
        return self.write_inline_lines((entry,))

    def ready_inline(self) -> bool:
        """Whether :meth:`write_inline_lines` would write now rather than answer False (it checks
        the path as that would, so a write right after cannot find it changed: same turn)."""
        if self.discard:
            return True
        if not self.inline:
            return False
        if not self._checked:  # the turn's first write: one getrusage per turn, not per write
            self._turn_slept = _slept()
        return self._current(inline=True) is not None

    def stage_lines(self, entries: Sequence[bytes], done: Callable[[bool], None]) -> bool:
        """Queue ``entries`` for one write of everything staged in this event-loop turn, made at the
        start of the next; ``done(recorded)`` is called after it. False (nothing staged) unless the
        device would write inline right now. The caller must not act on the entries' behalf (send
        an answer) before ``done(True)``: this is still a fail-closed write, only a shared one."""
        if self.discard or not self.ready_inline():
            return False
        seq, prev = self._staged_head if self._staged else (self.seq, self.prev)
        for entry in entries:
            seq += 1
            line, prev = chained_line(self._key, prev, seq, entry)
            self._staged.append(line)
        if not self._staged_done:
            asyncio.get_running_loop().call_soon(self.flush_staged)
        self._staged_head = (seq, prev)
        self._staged_done.append(done)
        return True

    def flush_staged(self) -> None:
        """Write what :meth:`stage_lines` queued, with one write, and tell each waiter. Runs before
        any other write to the device (the chain continues from the staged lines)."""
        if not self._staged_done:
            return
        lines, done, head = self._staged, self._staged_done, self._staged_head
        self._staged, self._staged_done = [], []
        recorded = False
        start = time.monotonic()
        try:
            if self._fd is None:
                raise OSError(errno.EBADF, "the audit file is closed")
            self._write_all(self._fd, b"".join(lines))
            self.seq, self.prev = head
            recorded = True
        except Exception as e:  # noqa: BLE001 - every waiter learns its entries were not recorded
            log.error("audit file %s: a staged write failed: %s: %s", self.path, type(e).__name__, e)
        finally:
            self._watch(start)
            for callback in done:
                try:
                    callback(recorded)
                except Exception:  # one waiter's failure must not keep the others waiting
                    log.exception("audit file %s: a staged write's waiter failed", self.path)

    def write_inline_lines(self, entries: Sequence[bytes]) -> bool:
        """:meth:`write_inline` for several entries, in order, with one write (all or none)."""
        if self.discard:
            return True
        self.flush_staged()
        start = time.monotonic()
        try:
            if not self.ready_inline():
                return False  # on its thread, or not a regular file: the thread opens and writes it
            assert self._fd is not None
            self._append(self._fd, entries)
            return True
        finally:
            self._watch(start)

    def _watch(self, start: float) -> None:
        """After an inline write begun at ``start``: if it was slow, see :meth:`_too_slow`."""
        took = time.monotonic() - start
        if took > self.slow_write:
            self._too_slow(took, blocked=_slept() != self._turn_slept)

    def _too_slow(self, took: float, *, blocked: bool) -> None:
        """After a slow inline write: to the thread if the file blocked us, or the deadline broke."""
        if self.inline and (blocked or took > self.deadline):
            self.inline = False
            log.warning("audit file %s: a write blocked the event loop for %.0f ms; writing on a worker "
                        "thread, under the device's deadline, from now on", self.path, took * 1000)

    # -- threaded --------------------------------------------------------------------------------
    async def write(self, entry: bytes) -> None:
        if self.discard:
            return
        self.flush_staged()  # staged lines come first in the chain
        self.inline = False  # from now on the thread owns the file: never both at once
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
                except Exception as e:  # noqa: BLE001 - every waiter learns its entry was not recorded
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
        self.flush_staged()
        if self._drainer is not None:
            await asyncio.gather(self._drainer, return_exceptions=True)
        if self.inline:
            self._close()  # the thread never held the file
        else:
            await asyncio.get_running_loop().run_in_executor(self._pool, self._close)
        self._pool.shutdown(wait=False)

    def _write_batch(self, entries: list[bytes]) -> None:
        """On the worker thread: chain and write ``entries`` in order with one write."""
        if self.path == "stdout":
            self._append_stdout(entries)
            return
        fd = self._current(inline=False)
        assert fd is not None
        self._append(fd, entries)

    def _append_stdout(self, entries: list[bytes]) -> None:
        seq, prev, lines = self.seq, self.prev, []
        for entry in entries:
            seq += 1
            line, prev = chained_line(self._key, prev, seq, entry)
            lines.append(line)
        out = sys.stdout.buffer
        out.write(b"".join(lines))
        out.flush()
        self.seq, self.prev = seq, prev

    # -- either side -----------------------------------------------------------------------------
    def _append(self, fd: int, entries: Sequence[bytes]) -> None:
        """Chain ``entries`` and append them with one write; all or nothing moves the chain on."""
        seq, prev = self.seq, self.prev
        lines = []
        for entry in entries:
            seq += 1
            line, prev = chained_line(self._key, prev, seq, entry)
            lines.append(line)
        self._write_all(fd, lines[0] if len(lines) == 1 else b"".join(lines))
        # Only lines that reached the file move the chain on: a failed write leaves no gap.
        self.seq, self.prev = seq, prev

    def _write_all(self, fd: int, data: bytes) -> None:
        self._unflushed += len(data)
        self._size += len(data)
        if self._unflushed >= WRITE_OUT_EVERY:
            self._unflushed = 0
            # The few chunks before the newest, short bursts of kernel work: the newest is still
            # being written, and each chunk gets a few rounds to reach the disk and be dropped.
            start = max(0, self._size - 4 * WRITE_OUT_EVERY)
            length = self._size - WRITE_OUT_EVERY - start
            if length > 0:  # (0 would mean "to the end")
                try:
                    self._pool.submit(_write_out, fd, start, length)
                except RuntimeError:  # the device's thread is gone (closing): a hint can be skipped
                    pass
        if self._needs_newline:
            data = b"\n" + data
        done = 0
        try:
            while done < len(data):
                done += self.os_write(fd, data[done:] if done else data)
        except BaseException:
            if done:
                self._needs_newline = True  # half a line is in the file: the next one starts afresh
            raise
        self._needs_newline = False

    def _current(self, *, inline: bool) -> int | None:
        """The open descriptor, reopened if ``path`` no longer names it (rotated, deleted, replaced).
        Inline: None when the path is not a regular file (the device then moves to its thread)."""
        if self._fd is not None:
            if inline and self._checked:
                return self._fd
            try:
                st = os.stat(self.path)
                same = (st.st_dev, st.st_ino) == self._ident
            except OSError:
                same = False
            if same:
                if inline:
                    self._checked = True
                    asyncio.get_running_loop().call_soon(self._next_turn)
                return self._fd
            self._close()
        return self._open(inline=inline)

    def _next_turn(self) -> None:
        self._checked = False

    def _open(self, *, inline: bool) -> int | None:
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        try:
            # Inline, O_NONBLOCK: opening a FIFO with no reader fails at once instead of hanging
            # the event loop (it does nothing to a regular file).
            fd = os.open(self.path, flags | (os.O_NONBLOCK if inline else 0), self.mode or 0o600)
        except OSError as e:
            if inline and e.errno == errno.ENXIO:
                self.inline = False
                return None
            raise
        try:
            st = os.fstat(fd)
            if inline and not stat.S_ISREG(st.st_mode):
                os.close(fd)
                self.inline = False
                return None
            if self.mode and (st.st_mode & 0o7777) != self.mode:
                os.fchmod(fd, self.mode)
            if self._ident is None and st.st_size and stat.S_ISREG(st.st_mode):
                self._resume(st.st_size)
            self._ident = (st.st_dev, st.st_ino)
            self._size = st.st_size
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return fd

    def _resume(self, size: int) -> None:
        """First open of an existing file: continue the chain from its last line, or from the one
        before it when the last is torn (a write cut short by a crash): the next line then takes
        the torn one's sequence number, on a line of its own, and the chain runs on unbroken."""
        with open(self.path, "rb") as r:
            r.seek(max(0, size - 1))
            self._needs_newline = r.read(1) != b"\n"
            start = size
            tail = b""
            # Two whole lines at most are looked at: the last, and the one before it.
            while start > 0 and tail.rstrip(b"\n").count(b"\n") < 2:
                start = max(0, start - _TAIL_BLOCK)
                r.seek(start)
                tail = r.read(size - start)
        lines = tail.rstrip(b"\n").split(b"\n")
        last = lines[-1]
        if len(lines) > 1 and split_line(last) is None and is_torn(last):
            last = lines[-2]
        parts = split_line(last)
        if parts is not None:
            self.seq, self.prev = parts[1], parts[2]

    def _close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)
