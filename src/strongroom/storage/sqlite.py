"""SQLite physical storage: the embedded default. One file, WAL mode, group commit.

Durability is a product promise: once ``put``/``delete``/``write_batch`` returns, the change
survives a crash or power loss (``synchronous=FULL`` fsyncs the WAL on every commit). To keep that
affordable, writes are grouped: a single writer thread owns the write connection, drains every
pending request from a queue, applies them in ONE transaction, commits (one fsync), and then hands
all their outcomes back to the event loop in one callback. Concurrent writers therefore share
fsyncs. ``write_batch`` is one queue entry: its writes commit together or not at all.

Reads run directly on the event-loop thread through a separate read-only connection: a WAL point
select costs ~4 us, while a hop through a thread costs ~40 us. In WAL mode each autocommit read
sees the latest committed transaction, and a writer's future is resolved only after its COMMIT,
so a caller that awaited ``put`` always reads its own write.

Keeping the WAL bounded. Frames are copied from the WAL into the database by a checkpointer
thread (PASSIVE checkpoints: they never block the writer or readers), but copying alone never
shrinks the WAL: SQLite starts writing at the WAL's beginning again only when a write transaction
begins while *every* frame has been copied and no reader is using the WAL. Under sustained writes
the checkpointer always lags a few commits behind, that instant never comes, and the WAL grew
without bound (1.1 GB in a benchmark of ~100k commits). So once the checkpointer sees more than
``_WAL_RESET_BYTES`` of WAL, it queues a request to the writer thread, which, between two batches
(no transaction open), runs ``wal_checkpoint(RESTART)`` on its own connection: it copies only the
tail the checkpointer has not yet copied (0.5-3 ms in tests; 1-20 ms in the benchmark), waits
briefly for readers to leave the WAL, and the next commit starts the WAL from its beginning
(``journal_size_limit`` keeps the file at ``_WAL_KEEP_BYTES``). Restarts stall writes, so they are
rare: see ``_WAL_RESET_BYTES``. If a reader holds the WAL (say an external backup tool), the
restart gives up after ``_RESET_BUSY_MS`` and is retried after the next PASSIVE round: a caller's
write is never failed for it. Durability is unchanged: commits still fsync the WAL, and SQLite
lets the WAL restart only after the checkpoint has fsynced the database file.

Schema: ``kv(key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID``.
"""

from __future__ import annotations

import asyncio
import functools
import os
import queue
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strongroom.errors import Internal, InvalidRequest
from strongroom.logical import WriteOp
from strongroom.storage import PhysicalStorage

_SCHEMA = "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID"
_GET = "SELECT value FROM kv WHERE key = ?"
# One page of at most ? keys from a cursor (inclusive after a folder jump, exclusive after a leaf),
# optionally below the prefix's upper bound.
_LIST_PAGE = 512
_PAGE = {
    (">=", False): "SELECT key FROM kv WHERE key >= ? ORDER BY key LIMIT ?",
    (">", False): "SELECT key FROM kv WHERE key > ? ORDER BY key LIMIT ?",
    (">=", True): "SELECT key FROM kv WHERE key >= ? AND key < ? ORDER BY key LIMIT ?",
    (">", True): "SELECT key FROM kv WHERE key > ? AND key < ? ORDER BY key LIMIT ?",
}
_ROWS_PER_STATEMENT = 64  # multi-row statements: bounded so the statement cache stays small
_MAX_BATCH = 1000  # writes per transaction (soft: a write_batch is never split), bounds queued latency
_BUSY_TIMEOUT_MS = 5000
# KiB of page cache for the reader connection (sqlite defaults to 2000).
_READER_CACHE_KIB = 512
_CHECKPOINT_EVERY = 256  # commits between WAL checkpoints (a few MB of WAL for typical writes)
# WAL bound (module docstring): past this many bytes of frames, the writer restarts the WAL ...
# A restart stalls writes: it copies what the checkpointer has not (up to _CHECKPOINT_EVERY
# commits of frames) and fsyncs the database, and the first commit after it is slow too (20-45 ms
# together in the benchmark's token creates, whose commits add ~64 MiB of WAL a second). At 64 MiB
# that was once a second and doubled the p99 of writes; at 512 MiB it is once every ~8 s of the
# heaviest sustained writes.
_WAL_RESET_BYTES = 512 * 1024 * 1024
# ... and the first commit after a restart truncates the file to this (journal_size_limit). Equal
# to the reset size: a restarted WAL is overwritten in place, never shrunk and grown again block
# by block (new blocks make every fsync journal the file's size and extents too).
_WAL_KEEP_BYTES = 512 * 1024 * 1024
# How long the writer's RESTART waits for readers to leave the WAL before retrying later. Our own
# reads hold the WAL for microseconds; only an outside reader holds it longer.
_RESET_BUSY_MS = 20
_WAL_FRAME_HEADER = 24  # bytes before each page in a WAL frame
_MAX_CODE_POINT = 0x10FFFF


@dataclass(slots=True)
class _Write:
    """One caller's request: its writes are applied in one transaction, all or nothing."""

    ops: Sequence[WriteOp]  # (key, value); value None = delete
    future: asyncio.Future[None]


_STOP = object()  # queue sentinel: the writer finishes what is queued before it, then exits
_RESET_WAL = object()  # queue sentinel from the checkpointer: restart the WAL after this batch


class SqliteStorage:
    """Storage in one SQLite file. Create with :func:`open_sqlite`; always ``await close()``."""

    __slots__ = ("_checkpoint_due", "_checkpointer", "_closed", "_loop", "_queue", "_reader", "_reset_queued",
                 "_thread", "_writer", "checkpoints", "commits", "path", "wal_resets")

    def __init__(self, path: Path, reader: sqlite3.Connection, writer: sqlite3.Connection) -> None:
        self.path = path
        #: Number of transactions the writer committed; group commit keeps it far below the write count.
        self.commits = 0
        #: Number of times the writer restarted the WAL from its beginning (see module docstring).
        self.wal_resets = 0
        self._reset_queued = threading.Event()  # a _RESET_WAL is in the queue: do not add another
        self._loop = asyncio.get_running_loop()
        self._reader = reader
        self._writer = writer
        self._queue: queue.SimpleQueue[_Write | object] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(
            target=self._write_loop, name=f"sqlite-writer:{path.name}", daemon=True
        )
        self._thread.start()
        # WAL checkpoints run on their own thread and connection (the writer's auto-checkpoint is
        # off, see _connect): copying the WAL into the database and fsyncing it takes tens of ms,
        # and inside a commit that is a latency spike for every caller waiting on that commit.
        self.checkpoints = 0
        self._checkpoint_due = threading.Event()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop, name=f"sqlite-checkpoint:{path.name}", daemon=True
        )
        self._checkpointer.start()

    # -- reads: on the event-loop thread ---------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        self._check_open()
        # fetchall() steps the statement to completion, which resets it and ends its implicit read
        # transaction; a half-read statement would pin an old snapshot and break read-your-writes.
        rows = self._reader.execute(_GET, (key,)).fetchall()
        return bytes(rows[0][0]) if rows else None

    async def list(self, prefix: str) -> list[str]:
        """Immediate children of ``prefix``. A skip scan: leaves are read a page at a time, and on
        reaching a folder the scan jumps past everything inside it. Listing a mount's top level
        therefore costs one indexed probe per child, not a read of every key below (at 1M keys,
        the kv upgrade check at unseal went from 2.6 s to milliseconds). The probe after a folder
        fetches one row, not a page: what follows a folder is most often another folder (a mount's
        top level, the lease expiry buckets), which needs no more, and a run of leaves gets full
        pages again from its second row on (6,600 folders of 15 keys: 0.04 s, was 0.9 s)."""
        self._check_open()
        upper = prefix_upper_bound(prefix) if prefix else None
        n = len(prefix)
        out: list[str] = []
        cursor, op, limit = prefix, ">=", _LIST_PAGE
        while True:
            args = (cursor, limit) if upper is None else (cursor, upper, limit)
            rows = self._reader.execute(_PAGE[(op, upper is not None)], args).fetchall()
            for (key,) in rows:
                rest = key[n:]
                slash = rest.find("/")
                if slash < 0:
                    if rest:  # the prefix itself is not its own child
                        out.append(rest)
                    cursor, op = key, ">"
                    continue
                child = rest[: slash + 1]
                out.append(child)
                after = prefix_upper_bound(prefix + child)
                if after is None:
                    return sorted(out)
                cursor, op, limit = after, ">=", 1
                break  # re-query from past the folder
            else:
                if len(rows) < limit:
                    return sorted(out)
                limit = _LIST_PAGE

    # -- writes: queued to the writer thread -------------------------------------------------------

    async def put(self, key: str, value: bytes) -> None:
        await self._enqueue(((key, bytes(value)),))

    async def delete(self, key: str) -> None:
        await self._enqueue(((key, None),))

    async def write_batch(self, ops: Sequence[WriteOp]) -> None:
        """Every write in ``ops`` in one transaction: all durable when this returns, or none."""
        if ops:
            await self._enqueue([(key, None if value is None else bytes(value)) for key, value in ops])

    async def _enqueue(self, ops: Sequence[WriteOp]) -> None:
        self._check_open()
        future: asyncio.Future[None] = self._loop.create_future()
        self._queue.put(_Write(ops, future))
        # If the caller is cancelled while waiting, the write may still commit: it is already queued.
        await future

    async def close(self) -> None:
        """Let the writer commit everything queued, stop it, then close both connections."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join)
        self._checkpoint_due.set()
        await asyncio.to_thread(self._checkpointer.join)
        self._reader.close()

    def _check_open(self) -> None:
        if self._closed:
            raise Internal("sqlite storage is closed")

    # -- the writer thread -----------------------------------------------------------------------

    def _write_loop(self) -> None:
        try:
            stopping = False
            while not stopping:
                batch: list[_Write] = []
                size = 0
                reset = False
                item = self._queue.get()  # block for the first write ...
                while True:
                    if item is _STOP:
                        stopping = True
                        break
                    if item is _RESET_WAL:
                        reset = True
                        break
                    assert isinstance(item, _Write)
                    batch.append(item)
                    size += len(item.ops)
                    if size >= _MAX_BATCH:
                        break
                    try:
                        item = self._queue.get_nowait()  # ... then take whatever else is waiting
                    except queue.Empty:
                        break
                if batch:
                    self._commit_batch(batch)
                    if self.commits % _CHECKPOINT_EVERY == 0:
                        self._checkpoint_due.set()
                if reset:
                    self._reset_wal()
        finally:
            self._writer.close()

    def _reset_wal(self) -> None:
        """Between batches: copy the WAL's unchecked tail and make the next commit restart the WAL.

        On the writer's connection because RESTART takes the write lock: another connection
        would have to catch a gap between the writer's transactions (polling with sleeps), and
        the writer's next BEGIN would then poll, sleeping, until it finished. Here no transaction
        is open, so it only waits for readers, and for at most _RESET_BUSY_MS: busy means "try
        again after the next PASSIVE round". RESTART rather than TRUNCATE: an emptied file would
        be grown again, block by block, by the next commits; journal_size_limit trims only the
        part past _WAL_KEEP_BYTES.
        """
        conn = self._writer
        try:
            conn.execute(f"PRAGMA busy_timeout = {_RESET_BUSY_MS}")
            try:
                row = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
            finally:
                conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        except sqlite3.Error:  # e.g. locked by another process: the WAL stays valid, retry later
            row = None
        finally:
            self._reset_queued.clear()  # the checkpointer may ask again
        if row is not None and row[0] == 0:  # busy == 0: every frame copied, no reader in the WAL
            self.wal_resets += 1

    def _checkpoint_loop(self) -> None:
        """PASSIVE checkpoints (never block the writer or readers) every _CHECKPOINT_EVERY commits,
        and at least once a second while writes happen; a last one when the store closes. When
        the WAL has grown past _WAL_RESET_BYTES it asks the writer to restart it."""
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA cache_size = -64")  # it copies WAL frames; it reads nothing back
            # The database must be fsynced before a checkpoint counts frames as copied: the WAL
            # restart then overwrites them. FULL is the usual build default; do not rely on it.
            conn.execute("PRAGMA synchronous = FULL")
            frame_bytes = int(conn.execute("PRAGMA page_size").fetchone()[0]) + _WAL_FRAME_HEADER
            done = 0
            while True:
                self._checkpoint_due.wait(timeout=1.0)
                self._checkpoint_due.clear()
                stopping = self._closed and not self._thread.is_alive()
                if self.commits != done or stopping:
                    done = self.commits
                    try:
                        _busy, wal_frames, _copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                        self.checkpoints += 1
                    except sqlite3.Error:  # e.g. busy: the next round retries; the WAL stays valid
                        wal_frames = -1
                    # wal_frames is -1 when another checkpoint was running: then nothing is known.
                    if wal_frames * frame_bytes > _WAL_RESET_BYTES and not self._reset_queued.is_set():
                        self._reset_queued.set()
                        self._queue.put(_RESET_WAL)
                if stopping:
                    return
        finally:
            conn.close()

    def _commit_batch(self, batch: Sequence[_Write]) -> None:
        outcomes: list[tuple[asyncio.Future[None], Exception | None]]
        # Exception, not just sqlite3.Error: if this thread died, every waiting caller would hang.
        try:
            self._apply(batch)
        except Exception:  # noqa: BLE001 - any failure must reach the waiting callers
            # One bad request must not fail its neighbours: retry each in its own transaction so
            # every caller gets its own outcome (and a write_batch stays all or nothing).
            outcomes = []
            for write in batch:
                try:
                    self._apply([write])
                except Exception as exc:  # noqa: BLE001 - reported to that caller
                    outcomes.append((write.future, exc))
                else:
                    outcomes.append((write.future, None))
        else:
            outcomes = [(write.future, None) for write in batch]
        self._resolve(outcomes)

    def _apply(self, batch: Iterable[_Write]) -> None:
        # Within one transaction only each key's last write matters, so the batch collapses to one
        # multi-row upsert and one multi-row delete: a few statements per commit instead of one per
        # write (each statement step drops and retakes the GIL the event loop is using).
        final: dict[str, bytes | None] = {}
        for write in batch:
            for key, value in write.ops:
                final[key] = value
        puts = [(key, value) for key, value in final.items() if value is not None]
        deletes = [key for key, value in final.items() if value is None]
        conn = self._writer
        conn.execute("BEGIN IMMEDIATE")
        try:
            for start in range(0, len(puts), _ROWS_PER_STATEMENT):
                rows = puts[start : start + _ROWS_PER_STATEMENT]
                conn.execute(_put_many(len(rows)), [part for row in rows for part in row])
            for start in range(0, len(deletes), _ROWS_PER_STATEMENT):
                keys = deletes[start : start + _ROWS_PER_STATEMENT]
                conn.execute(_delete_many(len(keys)), keys)
            # With synchronous=FULL this returns only once the WAL is fsynced: durability point.
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self.commits += 1

    def _resolve(self, outcomes: Sequence[tuple[asyncio.Future[None], Exception | None]]) -> None:
        # Futures belong to the loop: touch them only from its thread. One callback per commit,
        # not one per caller: each call_soon_threadsafe takes a lock and wakes the loop.
        try:
            self._loop.call_soon_threadsafe(_settle, outcomes)
        except RuntimeError:
            pass  # the loop is closed: nobody is waiting any more


@functools.cache
def _put_many(rows: int) -> str:
    values = ", ".join(["(?, ?)"] * rows)
    return f"INSERT INTO kv (key, value) VALUES {values} ON CONFLICT (key) DO UPDATE SET value = excluded.value"


@functools.cache
def _delete_many(rows: int) -> str:
    return f"DELETE FROM kv WHERE key IN ({', '.join(['?'] * rows)})"


def _settle(outcomes: Sequence[tuple[asyncio.Future[None], Exception | None]]) -> None:
    for future, error in outcomes:
        if future.cancelled():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(Internal(f"sqlite storage write failed: {error}"))


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix`` (None: no bound).

    SQLite's default BINARY collation compares UTF-8 bytes, which orders like code points, so
    incrementing the last code point that can be incremented gives the exclusive upper bound.
    """
    chars = list(prefix)
    while chars:
        last = ord(chars.pop())
        if last < _MAX_CODE_POINT:
            following = last + 1
            if 0xD800 <= following <= 0xDFFF:  # surrogates cannot be encoded; skip past them
                following = 0xE000
            return "".join(chars) + chr(following)
    return None


async def open_sqlite(options: dict[str, Any]) -> PhysicalStorage:
    """Factory for ``storage "sqlite" { path = "..." }``."""
    raw_path = options.get("path")
    if not raw_path or not isinstance(raw_path, (str, os.PathLike)):
        raise InvalidRequest('sqlite storage requires a "path" option (the database file)')
    path = Path(raw_path)
    reader, writer = await asyncio.to_thread(_connect, path)
    return SqliteStorage(path, reader, writer)


def _connect(path: Path) -> tuple[sqlite3.Connection, sqlite3.Connection]:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # SECURITY: the file holds ciphertext only, but key names and sizes are still metadata: create
    # it 0600 before SQLite does. SQLite gives the -wal and -shm files the database file's mode.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)

    # isolation_level=None: we issue BEGIN/COMMIT ourselves; check_same_thread=False because the
    # writer connection is created here and then used only by the writer thread.
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        writer.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        mode = writer.execute("PRAGMA journal_mode = WAL").fetchone()
        if mode is None or str(mode[0]).lower() != "wal":
            raise Internal(f"sqlite storage could not enable WAL mode at {path}")
        writer.execute("PRAGMA synchronous = FULL")  # fsync on every commit: see module docstring
        writer.execute("PRAGMA wal_autocheckpoint = 0")  # the checkpointer thread does it instead
        writer.execute(f"PRAGMA journal_size_limit = {_WAL_KEEP_BYTES}")  # applied when the WAL restarts
        writer.execute(_SCHEMA)
        reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        reader.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        reader.execute("PRAGMA query_only = ON")
        # Hot values sit in CachedStorage above (and decoded, in core's caches): the reader's page
        # cache only needs the B-tree's inner pages, not sqlite's default 2 MiB.
        reader.execute(f"PRAGMA cache_size = -{_READER_CACHE_KIB}")
    except BaseException:
        writer.close()
        raise
    return reader, writer


__all__ = ["SqliteStorage", "open_sqlite", "prefix_upper_bound"]
