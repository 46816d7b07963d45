"""SQLite backend specifics: durability across reopen, group commit, file modes, range lists."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.errors import Internal, InvalidRequest
from strongroom.storage import children
from strongroom.storage import sqlite as sqlite_module
from strongroom.storage.sqlite import _LIST_PAGE, SqliteStorage, open_sqlite, prefix_upper_bound


async def _open(path: Path) -> SqliteStorage:
    storage = await open_sqlite({"path": str(path)})
    assert isinstance(storage, SqliteStorage)
    return storage


async def test_requires_path() -> None:
    with pytest.raises(InvalidRequest, match="path"):
        await open_sqlite({})


async def test_survives_close_and_reopen(tmp_path: Path) -> None:
    db = tmp_path / "nested" / "dirs" / "vault.db"
    storage = await _open(db)
    await storage.put("core/thing", b"\x00persisted\xff")
    await storage.put("gone", b"x")
    await storage.delete("gone")
    await storage.close()

    reopened = await _open(db)
    try:
        assert await reopened.get("core/thing") == b"\x00persisted\xff"
        assert await reopened.get("gone") is None
        assert await reopened.list("") == ["core/"]
    finally:
        await reopened.close()


async def test_creates_parents_and_mode_0600(tmp_path: Path) -> None:
    db = tmp_path / "a" / "b" / "vault.db"
    storage = await _open(db)
    try:
        await storage.put("k", b"v")
        assert db.parent.is_dir()
        assert stat.S_IMODE(os.stat(db).st_mode) == 0o600
        wal = db.with_name(db.name + "-wal")
        assert wal.exists()
        assert stat.S_IMODE(os.stat(wal).st_mode) == 0o600
    finally:
        await storage.close()


async def test_wal_mode_full_sync_and_schema(tmp_path: Path) -> None:
    db = tmp_path / "vault.db"
    storage = await _open(db)
    await storage.put("k", b"v")
    await storage.close()
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'kv'").fetchone()[0]
        assert "WITHOUT ROWID" in sql
        assert conn.execute("SELECT value FROM kv WHERE key = 'k'").fetchone()[0] == b"v"
    finally:
        conn.close()


async def test_group_commit_batches_concurrent_writes(tmp_path: Path) -> None:
    storage = await _open(tmp_path / "vault.db")
    try:
        before = storage.commits
        await asyncio.gather(*(storage.put(f"k/{i:04}", b"x" * 32) for i in range(200)))
        commits = storage.commits - before
        assert 1 <= commits <= 20, commits  # 200 writes, a handful of fsyncs
        assert len(await storage.list("k/")) == 200
    finally:
        await storage.close()


async def test_sequential_writes_commit_one_by_one(tmp_path: Path) -> None:
    storage = await _open(tmp_path / "vault.db")
    try:
        for i in range(5):
            await storage.put(f"k{i}", b"v")
        assert storage.commits == 5
    finally:
        await storage.close()


async def test_read_your_writes(tmp_path: Path) -> None:
    storage = await _open(tmp_path / "vault.db")
    try:
        for i in range(50):
            await storage.put("counter", str(i).encode())
            assert await storage.get("counter") == str(i).encode()
            assert await storage.list("") == ["counter"]
        await storage.delete("counter")
        assert await storage.get("counter") is None
    finally:
        await storage.close()


async def test_mixed_batch_keeps_order(tmp_path: Path) -> None:
    storage = await _open(tmp_path / "vault.db")
    try:
        await asyncio.gather(
            storage.put("k", b"1"), storage.delete("k"), storage.put("k", b"3"), storage.put("j", b"4")
        )
        assert await storage.get("k") == b"3"
        assert await storage.get("j") == b"4"
    finally:
        await storage.close()


async def test_close_commits_queued_writes_and_stops_writer(tmp_path: Path) -> None:
    db = tmp_path / "vault.db"
    storage = await _open(db)
    pending = [asyncio.ensure_future(storage.put(f"q{i}", b"v")) for i in range(20)]
    await asyncio.sleep(0)  # let every put enqueue
    await storage.close()
    await asyncio.gather(*pending)
    assert not storage._thread.is_alive()
    await storage.close()  # idempotent
    with pytest.raises(Internal, match="closed"):
        await storage.put("late", b"v")
    with pytest.raises(Internal, match="closed"):
        await storage.get("q0")
    reopened = await _open(db)
    try:
        assert len(await reopened.list("")) == 20
    finally:
        await reopened.close()


async def test_list_range_handles_high_code_points(tmp_path: Path) -> None:
    storage = await _open(tmp_path / "vault.db")
    try:
        keys = ["a\U0010ffff/x", "a\U0010ffffb", "a\ud7ff/y", "a\ue000/z", "b"]
        for key in keys:
            await storage.put(key, b"v")
        assert await storage.list("a\U0010ffff") == ["/", "b"]
        assert await storage.list("a\ud7ff/") == ["y"]
        assert await storage.list("a") == ["\ud7ff/", "\ue000/", "\U0010ffff/", "\U0010ffffb"]
    finally:
        await storage.close()


def test_prefix_upper_bound_examples() -> None:
    assert prefix_upper_bound("abc/") == "abc0"
    assert prefix_upper_bound("a\U0010ffff") == "b"
    assert prefix_upper_bound("\U0010ffff\U0010ffff") is None
    assert prefix_upper_bound("x\ud7ff") == "x\ue000"


@given(st.text(min_size=1, max_size=6), st.text(max_size=6))
def test_prefix_upper_bound_property(prefix: str, suffix: str) -> None:
    upper = prefix_upper_bound(prefix)
    key = prefix + suffix
    # Every key with the prefix is inside [prefix, upper), in UTF-8 byte order as SQLite compares.
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError:
        return  # lone surrogates cannot be stored at all
    assert encoded >= prefix.encode("utf-8")
    if upper is not None:
        assert encoded < upper.encode("utf-8")


# -- write_batch: one transaction, all or nothing, within the group commit ------------------------
def _poison(db: Path) -> None:
    """A trigger that makes any write of the key "poison" fail inside the writer's transaction."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("CREATE TRIGGER poison BEFORE INSERT ON kv WHEN NEW.key = 'poison' "
                     "BEGIN SELECT RAISE(ABORT, 'poisoned'); END")
        conn.commit()
    finally:
        conn.close()


async def test_write_batch_is_one_commit_and_durable(tmp_path: Path) -> None:
    db = tmp_path / "vault.db"
    storage = await _open(db)
    await storage.put("doomed", b"d")
    before = storage.commits
    await storage.write_batch([("rec", b"r"), ("idx/1", b"i"), ("doomed", None)])
    assert storage.commits - before == 1
    await storage.close()
    reopened = await _open(db)
    try:
        assert await reopened.get("rec") == b"r"
        assert await reopened.get("idx/1") == b"i"
        assert await reopened.get("doomed") is None
    finally:
        await reopened.close()


async def test_failing_write_batch_leaves_nothing_and_spares_its_neighbours(tmp_path: Path) -> None:
    db = tmp_path / "vault.db"
    storage = await _open(db)
    try:
        await storage.put("keep", b"old")
        _poison(db)
        results = await asyncio.gather(
            storage.put("n1", b"1"),
            storage.write_batch([("a", b"1"), ("keep", None), ("poison", b"x"), ("b", b"2")]),
            storage.write_batch([("c", b"3"), ("d", b"4")]),
            return_exceptions=True,
        )
        assert results[0] is None and results[2] is None
        assert isinstance(results[1], Internal) and "poisoned" in str(results[1])
        # Nothing of the failed batch, not even the writes before the failing one.
        assert await storage.get("a") is None
        assert await storage.get("b") is None
        assert await storage.get("keep") == b"old"
        assert (await storage.get("n1"), await storage.get("c"), await storage.get("d")) == (b"1", b"3", b"4")
    finally:
        await storage.close()
    reopened = await _open(db)
    try:
        assert await reopened.get("a") is None and await reopened.get("keep") == b"old"
    finally:
        await reopened.close()


async def test_concurrent_batches_share_one_commit(tmp_path: Path) -> None:
    storage = await _open(tmp_path / "vault.db")
    try:
        before = storage.commits
        await asyncio.gather(*(storage.write_batch([(f"r/{i}", b"r"), (f"i/{i}", b"i")]) for i in range(50)))
        assert 1 <= storage.commits - before <= 10  # 100 writes, a handful of fsyncs
        assert len(await storage.list("r/")) == len(await storage.list("i/")) == 50
    finally:
        await storage.close()


_segment = st.text(alphabet="ab/-0_é\U0010ffff", min_size=1, max_size=3)


@settings(max_examples=100, deadline=None)
@given(keys=st.lists(st.lists(_segment, min_size=1, max_size=4).map("/".join), max_size=30),
       prefix=st.text(alphabet="ab/-0_é", max_size=4))
def test_skip_scan_list_agrees_with_the_reference_fold(tmp_path_factory: pytest.TempPathFactory,
                                                       keys: list[str], prefix: str) -> None:
    async def run() -> None:
        storage = await _open(tmp_path_factory.mktemp("list") / "vault.db")
        try:
            await storage.write_batch([(k, b"v") for k in set(keys)])
            assert await storage.list(prefix) == children(sorted(set(keys)), prefix)
            assert await storage.list("") == children(sorted(set(keys)), "")
        finally:
            await storage.close()

    asyncio.run(run())


async def test_list_crosses_pages_of_leaves_and_jumps_folders(tmp_path: Path) -> None:
    storage = await _open(tmp_path / "vault.db")
    try:
        leaves = [f"p/leaf{i:05d}" for i in range(_LIST_PAGE * 2 + 7)]
        folders = [f"p/dir{i:03d}/x/{j}" for i in range(40) for j in range(30)]
        await storage.write_batch([(k, b"v") for k in leaves + folders + ["p", "p/", "q/zzz"]])
        expected = sorted([k[2:] for k in leaves] + [f"dir{i:03d}/" for i in range(40)])
        assert await storage.list("p/") == expected
        assert await storage.list("") == ["p", "p/", "q/"]
    finally:
        await storage.close()


async def test_a_folder_costs_one_row_not_a_page(tmp_path: Path) -> None:
    """Listing many folders (the lease expiry buckets) probes each with a one-row query: a full
    page per folder fetched 512 rows to keep one (6,600 buckets of 15 keys: 0.9 s, now 0.04 s)."""
    storage = await _open(tmp_path / "vault.db")
    try:
        await storage.write_batch([(f"due/{b:07d}/{j:03d}", b"v") for b in range(50) for j in range(40)])
        queries: list[str] = []
        storage._reader.set_trace_callback(queries.append)
        assert await storage.list("due/") == [f"{b:07d}/" for b in range(50)]
        storage._reader.set_trace_callback(None)
        limits = [q.rsplit("LIMIT", 1)[1].strip() for q in queries if "LIMIT" in q]
        assert limits == [str(_LIST_PAGE)] + ["1"] * 50  # the first page, then one row per folder
    finally:
        await storage.close()


async def test_wal_checkpoints_run_off_the_writer(tmp_path: Path) -> None:
    # The writer's own auto-checkpoint is off (a checkpoint inside a commit stalls every caller of
    # that commit); the checkpointer thread moves the WAL into the database instead.
    storage = await _open(tmp_path / "vault.db")
    try:
        assert storage._writer.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        for i in range(600):
            await storage.put(f"k{i}", b"v" * 100)
        for _ in range(500):  # it runs every 256 commits, or within a second of any commit
            if storage.checkpoints:
                break
            await asyncio.sleep(0.01)
        assert storage.checkpoints >= 1
    finally:
        await storage.close()
    reopened = await _open(tmp_path / "vault.db")
    try:
        assert await reopened.get("k599") == b"v" * 100
    finally:
        await reopened.close()


def _small_wal_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """WAL limits small enough for a few hundred commits to cross them many times."""
    monkeypatch.setattr(sqlite_module, "_WAL_RESET_BYTES", 256 * 1024)
    monkeypatch.setattr(sqlite_module, "_WAL_KEEP_BYTES", 64 * 1024)
    monkeypatch.setattr(sqlite_module, "_CHECKPOINT_EVERY", 32)


async def test_wal_stays_bounded_under_sustained_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # SQLite rewinds a WAL only when a write begins while every frame is checkpointed and no reader
    # is in it; with commits back to back the PASSIVE checkpointer never catches up, and the WAL
    # grew by every commit (here to 11-19 MiB; 1.1 GB in a benchmark). The writer's RESTART bounds it.
    _small_wal_limits(monkeypatch)
    db = tmp_path / "vault.db"
    wal = db.with_name(db.name + "-wal")
    storage = await _open(db)
    written: dict[str, bytes] = {}
    largest = 0
    writing = True

    async def read_while_writing() -> int:
        nonlocal largest
        reads = 0
        while writing:
            key = f"k/{reads % 2000:04}"
            value = await storage.get(key)
            assert value is None or value.startswith(key.encode())
            if reads % 50 == 0:
                assert len(await storage.list("k/")) <= 2000
                largest = max(largest, wal.stat().st_size)
            reads += 1
            await asyncio.sleep(0)
        return reads

    async def write(worker: int) -> None:
        for i in range(900):
            key = f"k/{(i * 4 + worker) * 7 % 2000:04}"  # spread over the table: most puts dirty their own page
            value = f"{key}={i}:".encode() + os.urandom(400)
            await storage.put(key, value)
            written[key] = value

    try:
        reader = asyncio.create_task(read_while_writing())
        await asyncio.gather(*(write(worker) for worker in range(4)))
        writing = False
        assert await reader > 0
        largest = max(largest, wal.stat().st_size)
        # Reset size + a checkpoint interval of commits + the restart's tail: under 1 MiB here.
        assert largest < 3 * 1024 * 1024, largest
        assert storage.commits >= 900  # each writer awaits its put: a commit holds at most one of each
        assert storage.wal_resets >= 2
        for key, value in written.items():
            assert await storage.get(key) == value
    finally:
        await storage.close()
    reopened = await _open(db)
    try:
        assert len(written) == 2000
        for key, value in written.items():
            assert await reopened.get(key) == value
    finally:
        await reopened.close()


async def test_wal_reset_waits_out_a_reader_without_failing_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An outside reader (say a backup tool) holding a snapshot keeps the WAL from being rewound:
    # the writer's RESTART is busy. Writes must go on succeeding, and the reset happen once it leaves.
    _small_wal_limits(monkeypatch)
    db = tmp_path / "vault.db"
    storage = await _open(db)
    try:
        await storage.put("k/first", b"v")
        outsider = sqlite3.connect(db, isolation_level=None)
        try:
            outsider.execute("BEGIN")
            assert outsider.execute("SELECT value FROM kv WHERE key = 'k/first'").fetchone() == (b"v",)
            for i in range(300):
                await storage.put(f"k/{i % 50}", os.urandom(200))
            assert db.with_name(db.name + "-wal").stat().st_size > 256 * 1024  # a reset was due
            assert storage.wal_resets == 0
        finally:
            outsider.close()
        for i in range(300):
            await storage.put(f"k/{i % 50}", b"after:%d" % i)
        for _ in range(500):  # the next checkpoint round asks again (every 32 commits, or each second)
            if storage.wal_resets:
                break
            await storage.put("k/poke", b"p")
            await asyncio.sleep(0.01)
        assert storage.wal_resets >= 1
        assert await storage.get("k/49") == b"after:299"
    finally:
        await storage.close()
