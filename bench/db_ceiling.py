"""PostgreSQL's own ceiling for the statements behind database/creds (issue #13): no Strongroom, no OpenBao.

Not a test. bench/db_bench.py's role creates each user with two statements (``db_bench.CREATE_ROLE``:
CREATE ROLE ... WITH LOGIN PASSWORD ... VALID UNTIL ...; ``db_bench.GRANT_CONNECT``: GRANT CONNECT ON
DATABASE postgres TO ...). This script runs exactly those statements straight at PostgreSQL with
asyncpg (127.0.0.1:5432, user postgres, as db_bench.py), one transaction per user, N connections each
running ``BEGIN; <statements with a fresh name, password, expiration>; COMMIT`` in a loop (one Query
message per transaction, as Strongroom sends a role's statements), and reports transactions/s with
p50/p99 (4 connections: db_bench.py's max_open_connections, the most either server uses). A
transaction aborted with "tuple concurrently updated" (concurrent GRANTs on the one pg_database row)
is run again, as Strongroom's plugin does, and counted as retried. Variants isolate where the time goes:

    create              CREATE ROLE only, plain password (PostgreSQL hashes it: SCRAM-SHA-256, 4096 rounds)
    create+grant        both statements: what db_bench.py's role runs
    .../async           the same with SET LOCAL synchronous_commit = off (diagnostic only: what the
                        commit's WAL flush costs; never how credentials should be issued)
    .../scram           the password given as a precomputed SCRAM verifier, 4096 iterations (what
                        password_authentication = scram-sha-256 sends). PostgreSQL still runs one
                        4096-iteration hash: CREATE ROLE checks that the verifier is not the empty
                        password's (plain_crypt_verify(role, verifier, "") in user.c)
    .../scram1          the same with a 1-iteration verifier (diagnostic: what that hash costs)
    .../lock            SELECT pg_advisory_xact_lock(...) between CREATE ROLE and GRANT: the GRANTs
                        queue on the lock (held to commit) instead of failing "tuple concurrently
                        updated" and redoing the whole transaction; the hashes still run in parallel

    python bench/db_ceiling.py                        # every variant at 1/4/16/64 connections, 5 s each
    python bench/db_ceiling.py --duration 3 --sample            # + wait events at c=16, sampled each second
    python bench/db_ceiling.py --variants create,create+grant --connections 16 --sample-interval 0.25

Every role it makes is named ``dbceil-...``; they are dropped after each cell (outside the
measurement), at the end, on Ctrl-C/SIGTERM, and at the start (leftovers of a killed run). Needs asyncpg
(``pip install asyncpg``; not a project dependency).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import asyncpg
except ImportError:  # pragma: no cover - a bench, not a test
    raise SystemExit("bench/db_ceiling.py needs asyncpg: pip install asyncpg") from None

sys.path.insert(0, str(Path(__file__).resolve().parent))
from db_bench import CREATE_ROLE, GRANT_CONNECT

from strongroom.engines.database.plugins.postgresql import expiration_text
from strongroom.engines.database.plugins.scram import ITERATIONS, verifier

PREFIX = "dbceil-"  # no '_': it is a LIKE pattern
APP = "db_ceiling"  # application_name of the measured connections, so the sampler sees only them
LOCK_KEY = 1313001  # the advisory lock of the /lock variants
RETRIES = 20  # as Strongroom's postgresql plugin
VERIFIERS = 64  # precomputed SCRAM verifiers, used in turn (PostgreSQL stores each as given)


@dataclass(frozen=True)
class Variant:
    name: str
    grant: bool  # GRANT_CONNECT after CREATE_ROLE
    scram: int  # 0: a plain password; else a precomputed verifier of this many iterations
    async_commit: bool  # SET LOCAL synchronous_commit = off
    lock: bool = False  # an advisory transaction lock before the GRANT: waits instead of aborts

    def statements(self) -> str:
        lock = f" SELECT pg_advisory_xact_lock({LOCK_KEY});" if self.lock else ""
        return CREATE_ROLE + (lock + " " + GRANT_CONNECT if self.grant else "")


def _variants() -> dict[str, Variant]:
    out: dict[str, Variant] = {}
    for scram in (0, ITERATIONS, 1):
        for async_commit in (False, True):
            for grant in (False, True):
                name = "create" + ("+grant" if grant else "") + (
                    "" if not scram else "/scram" if scram == ITERATIONS else f"/scram{scram}") + (
                    "/async" if async_commit else "")
                out[name] = Variant(name, grant, scram, async_commit)
                if grant:
                    out[name + "/lock"] = Variant(name + "/lock", grant, scram, async_commit, lock=True)
    return out


VARIANTS = _variants()
DEFAULT_VARIANTS = ["create", "create+grant", "create/async", "create+grant/async", "create/scram",
                    "create+grant/scram", "create/scram/async", "create+grant/scram/async", "create/scram1",
                    "create+grant/scram1", "create+grant/lock", "create+grant/scram1/lock"]


@dataclass
class Cell:
    variant: str
    connections: int
    start: float = 0.0  # perf_counter at the start of the measurement
    seconds: float = 0.0
    done: list[float] = field(default_factory=list)  # completion times (perf_counter)
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)  # aborted by a concurrent one, run again
    client_cpu: float = 0.0  # this process's CPU seconds during the cell
    cleanup_s: float = 0.0
    waits: Counter[str] = field(default_factory=Counter)  # wait_type:wait_event -> samples
    locks: Counter[str] = field(default_factory=Counter)  # ungranted lock kind -> samples
    samples: int = 0

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)

        def pct(p: float) -> float:
            return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else 0.0

        n = len(self.done)
        start = self.start
        third = self.seconds / 3
        first = sum(1 for t in self.done if t - start < third) / third if n and third else 0.0
        last = sum(1 for t in self.done if t - start >= 2 * third) / third if n and third else 0.0
        return {"variant": self.variant, "connections": self.connections,
                "tps": n / self.seconds if self.seconds else 0,
                "p50_ms": pct(0.50), "p99_ms": pct(0.99), "transactions": n, "errors": dict(self.errors),
                "retries": dict(self.retries),
                "tps_first_third": first, "tps_last_third": last,
                "client_cpu_pct": 100 * self.client_cpu / self.seconds if self.seconds else 0,
                "cleanup_s": self.cleanup_s, "samples": self.samples,
                "waits": dict(self.waits.most_common()), "locks": dict(self.locks.most_common())}


def password() -> str:
    return "A1a-" + secrets.token_urlsafe(15)  # 20+ characters, none that needs quoting


def transaction(v: Variant, verifiers: dict[int, list[str]], i: int) -> str:
    name = f"{PREFIX}{secrets.token_hex(8)}-{int(time.time())}"
    pool = verifiers.get(v.scram, [])
    values = {"name": name, "password": pool[i % len(pool)] if v.scram else password(),
              "expiration": expiration_text(time.time() + 1800)}
    stmts = v.statements()
    for key, value in values.items():
        stmts = stmts.replace("{{" + key + "}}", value)
    return "BEGIN; " + ("SET LOCAL synchronous_commit = off; " if v.async_commit else "") + stmts + " COMMIT;"


async def worker(conn: asyncpg.Connection, v: Variant, verifiers: dict[int, list[str]], deadline: float,
                 cell: Cell, seed: int) -> None:
    """Credentials in a loop until ``deadline``. A transaction PostgreSQL aborts because a concurrent one
    updated the same catalog row ("tuple concurrently updated": concurrent GRANTs on one database) is
    run again after a jittered pause, as Strongroom's postgresql plugin does; its latency counts from
    the first attempt."""
    i = seed
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        for attempt in range(RETRIES):
            q = transaction(v, verifiers, i)
            i += 1
            try:
                await conn.execute(q)  # no arguments: simple protocol, the whole transaction in one message
            except asyncpg.PostgresError as e:
                await conn.execute("ROLLBACK")
                text = f"{type(e).__name__}: {e}"[:120]
                if "concurrently updated" in text or e.sqlstate in ("40001", "40P01"):
                    cell.retries[text] += 1
                    await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))
                    continue
                cell.errors[text] += 1
                break
            t1 = time.perf_counter()
            cell.latencies.append(t1 - t0)
            cell.done.append(t1)
            break
        else:
            cell.errors["gave up after retries"] += 1


SAMPLE_WAITS = """SELECT coalesce(wait_event_type, 'CPU') AS t, coalesce(wait_event, 'running') AS e, state
                  FROM pg_stat_activity WHERE application_name = $1"""
SAMPLE_LOCKS = """SELECT l.locktype, l.mode, coalesce(l.relation::regclass::text, '') AS rel
                  FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                  WHERE NOT l.granted AND a.application_name = $1"""


async def sampler(conn: asyncpg.Connection, stop: asyncio.Event, interval: float, cell: Cell) -> None:
    """Once per ``interval``: what each measured backend waits on, and which locks they wait for."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), interval)
            return
        except TimeoutError:
            pass
        for r in await conn.fetch(SAMPLE_WAITS, APP):
            what = f"{r['t']}:{r['e']}"
            if r["state"] == "idle in transaction":
                what += " (idle in transaction)"
            cell.waits[what] += 1
        for r in await conn.fetch(SAMPLE_LOCKS, APP):
            cell.locks[f"{r['locktype']} {r['mode']}" + (f" on {r['rel']}" if r["rel"] else "")] += 1
        cell.samples += 1


async def drop_roles(admin: asyncpg.Connection) -> int:
    """Drop every ``dbceil-`` role, 200 per transaction (DROP OWNED revokes the CONNECT grant too)."""
    # Wait for measured backends to go: a transaction of a closed connection may still be committing.
    for _ in range(100):
        if not await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", APP):
            break
        await asyncio.sleep(0.05)
    names = [r["rolname"] for r in await admin.fetch("SELECT rolname FROM pg_roles WHERE rolname LIKE $1",
                                                     PREFIX + "%")]
    for i in range(0, len(names), 200):
        idents = ", ".join('"' + n.replace('"', '""') + '"' for n in names[i:i + 200])
        await admin.execute(f"BEGIN; DROP OWNED BY {idents}; DROP ROLE {idents}; COMMIT;")
    return len(names)


async def run_cell(dsn: str, admin: asyncpg.Connection, v: Variant, n: int, duration: float,
                   verifiers: dict[int, list[str]], sample: float | None) -> Cell:
    cell = Cell(v.name, n)
    conns = await asyncio.gather(*(asyncpg.connect(dsn, server_settings={"application_name": APP})
                                   for _ in range(n)))
    stop = asyncio.Event()
    sampling = asyncio.create_task(sampler(admin, stop, sample, cell)) if sample else None
    try:
        cpu0, t0 = time.process_time(), time.perf_counter()
        cell.start = t0
        deadline = t0 + duration
        await asyncio.gather(*(worker(c, v, verifiers, deadline, cell, k * 7919)
                               for k, c in enumerate(conns)))
        cell.seconds = time.perf_counter() - t0  # to the last answer, the cell's requests all counted
        cell.client_cpu = time.process_time() - cpu0
    finally:
        stop.set()
        if sampling:
            await asyncio.gather(sampling, return_exceptions=True)
        await asyncio.gather(*(c.close(timeout=5) for c in conns), return_exceptions=True)
        for c in conns:
            if not c.is_closed():  # busy when interrupted
                c.terminate()
        c0 = time.perf_counter()
        await drop_roles(admin)
        cell.cleanup_s = time.perf_counter() - c0
    return cell


def fmt_row(s: dict[str, Any]) -> str:
    errs, retries = sum(s["errors"].values()), sum(s["retries"].values())
    return (f"| {s['variant']} | {s['connections']} | {s['tps']:.0f} | {s['p50_ms']:.2f} ms "
            f"| {s['p99_ms']:.2f} ms | {s['tps_first_third']:.0f} -> {s['tps_last_third']:.0f} | {retries} "
            f"| {s['client_cpu_pct']:.0f}% "
            f"| {errs} |")


async def amain(args: argparse.Namespace) -> int:
    variants = [VARIANTS[v] for v in args.variants.split(",")]
    conns = [int(c) for c in args.connections.split(",")]
    main = asyncio.current_task()
    assert main is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)  # cleanup as on Ctrl-C
    verifiers = {n: [verifier(password(), iterations=n) for _ in range(VERIFIERS)]
                 for n in {v.scram for v in variants if v.scram}}
    admin = await asyncpg.connect(args.dsn, server_settings={"application_name": APP + "-admin"})
    results: list[dict[str, Any]] = []
    try:
        settings = {r["name"]: r["setting"] for r in await admin.fetch(
            "SELECT name, setting FROM pg_settings WHERE name = ANY($1::text[])",
            ["password_encryption", "synchronous_commit", "fsync", "wal_sync_method", "commit_delay",
             "max_connections", "server_version"])}
        print("PostgreSQL:", ", ".join(f"{k}={v}" for k, v in sorted(settings.items())), flush=True)
        left = await drop_roles(admin)
        if left:
            print(f"dropped {left} leftover {PREFIX} roles", flush=True)
        print("\n| variant | conns | tx/s | p50 | p99 | tx/s first -> last third | retried | client cpu "
              "| errors |")
        print("|---|---|---|---|---|---|---|---|---|", flush=True)
        for v in variants:
            for n in conns:
                sample = args.sample_interval if (args.sample or args.sample_interval) and n == 16 else None
                cell = await run_cell(args.dsn, admin, v, n, args.duration, verifiers, sample)
                s = cell.summary()
                results.append(s)
                print(fmt_row(s), flush=True)
        sampled = [s for s in results if s["samples"]]
        if sampled:
            print("\nWait events of the measured backends at c=16 (share of backend samples; CPU:running = "
                  "on CPU or runnable, Client:ClientRead = waiting for the client's next transaction):")
            for s in sampled:
                total = sum(s["waits"].values()) or 1
                top = ", ".join(f"{k} {100 * c / total:.0f}%" for k, c in list(s["waits"].items())[:6])
                print(f"  {s['variant']} ({s['samples']} samples): {top}")
                if s["locks"]:
                    per = ", ".join(f"{k} x{c / s['samples']:.1f}" for k, c in list(s["locks"].items())[:4])
                    print(f"      ungranted locks, mean waiters per sample: {per}")
        for s in results:
            for err, count in s["errors"].items():
                print(f"errors in {s['variant']} c={s['connections']}: {count} x {err}")
            for err, count in s["retries"].items():
                print(f"retried in {s['variant']} c={s['connections']}: {count} x {err}")
        if args.json:
            Path(args.json).write_text(json.dumps({"settings": settings, "results": results}, indent=2))
    finally:
        try:
            left = await asyncio.shield(drop_roles(admin))
        finally:
            await admin.close()
        if left:
            print(f"dropped {left} {PREFIX} roles on the way out", file=sys.stderr)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per cell")
    ap.add_argument("--connections", default="1,4,16,64",
                    help="4: db_bench.py's max_open_connections, what each server uses at most")
    ap.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                    help="comma-separated, of: " + ", ".join(VARIANTS))
    ap.add_argument("--sample", action="store_true",
                    help="at 16 connections, sample pg_stat_activity wait events and ungranted pg_locks")
    ap.add_argument("--sample-interval", type=float, default=None, help="seconds between samples (implies "
                    "--sample; default 1)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    if args.sample and args.sample_interval is None:
        args.sample_interval = 1.0
    for v in args.variants.split(","):
        if v not in VARIANTS:
            ap.error(f"unknown variant {v!r}; known: {', '.join(VARIANTS)}")
    try:
        return asyncio.run(amain(args))
    except KeyboardInterrupt:
        print("interrupted (the dbceil- roles were dropped)", file=sys.stderr)
        return 130
    except asyncio.CancelledError:  # SIGTERM
        print("terminated (the dbceil- roles were dropped)", file=sys.stderr)
        return 143


if __name__ == "__main__":
    raise SystemExit(main())
