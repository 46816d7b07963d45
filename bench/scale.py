"""Scale benchmark: read latency, memory and restart time with many KV entries, tokens and leases.

Not a test. Issue #4 asks that with 1M KV entries, 1M live tokens and 100k leases read latency
stays flat, memory grows by a documented amount per token and lease, and restart + unseal
restores every lease in under 10 s with no per-lease task or timer.

1. Populate (in-process, with the real core: Core.initialize 5/3, unseal with 3, kv-v2 writes
   through core.handle_request, tokens through TokenStore.create, whose create hook registers each
   TTL'd token's lease with the expiration manager). Thousands of requests are in flight at once,
   so sqlite's group commit batches them. Each set is cached under --data-dir and reused when
   present with the same sizes (and its tokens are still far from expiry).
2. Measure each set: read its database into the OS page cache (unless --cold), start the server
   on it (sqlite, a file audit device, pinned to CPU 0 with taskset), unseal with 3 keys over HTTP (timed), record RSS, then drive it with wrk (CPU 1):
   a hot kv-v2 key, random kv-v2 keys among all N, token lookup-self with random tokens from a
   sample recorded at population time. The sets are measured interleaved, --rounds times.

Leases: the only production code that creates leases today is the token store (every token with
a TTL gets a token lease; no dynamic-secrets engine ships yet). So L of the N tokens carry a TTL
(7 to 30 days, spread over ~550 hourly expiry buckets) and hence a lease; the other N - L never
expire (ttl 0). All are orphans with the default policy, as approle/userpass logins make them.

SECURITY: a populated set holds its unseal keys, root token and a sample of raw tokens in plain
files (meta.json, tokens.txt, mode 0600 in a 0700 directory). Benchmark data only: never point
--data-dir at anything else, and delete it when done.

    python bench/scale.py --kv 10000 --tokens 10000 --leases 10000 --small 0   # quick
    python bench/scale.py                                # 1M / 1M / 100k, plus the 10k and empty sets
    python bench/scale.py --rounds 3 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import shutil
import statistics
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import Server, call, run_wrk, start_strongroom, wait_ready

DAY = 86400
LEASE_TTL_RANGE = (7 * DAY, 30 * DAY)  # inside the default 768h max; keeps a cached set usable for days
MIN_REMAINING = 2 * DAY  # a cached set whose shortest TTL has less left than this is rebuilt
CHUNK = 2000  # requests in flight at once during population
FORMAT = 2  # bump when the population changes, so old cached sets are rebuilt


@dataclass(frozen=True)
class DataSet:
    kv: int
    tokens: int
    leases: int

    @property
    def name(self) -> str:
        return f"kv{self.kv}-tok{self.tokens}-lease{self.leases}"

    @property
    def label(self) -> str:
        return "empty" if self.kv == self.tokens == 0 else f"{_short(self.kv)}/{_short(self.tokens)}/{_short(self.leases)}"


def _short(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


# -- population ---------------------------------------------------------------------------------
async def in_chunks(fn: Callable[[int], Awaitable[Any]], items: Iterable[int], total: int, what: str) -> None:
    """Run ``fn`` over ``items`` with CHUNK calls in flight, printing progress now and then."""
    start, done, batch = time.monotonic(), 0, []
    for i in items:
        batch.append(i)
        if len(batch) == CHUNK:
            await asyncio.gather(*(fn(j) for j in batch))
            done, batch = done + len(batch), []
            if done % (CHUNK * 50) == 0:
                rate = done / (time.monotonic() - start)
                print(f"  {what}: {done}/{total} ({rate:.0f}/s)", flush=True)
    await asyncio.gather(*(fn(j) for j in batch))


async def populate(ds: DataSet, target: Path, sample_size: int) -> dict[str, Any]:
    """Build ``ds`` in ``target`` (a fresh directory) and return its meta.json content."""
    from strongroom.core import Core
    from strongroom.logical import Operation, Request
    from strongroom.storage.sqlite import open_sqlite

    storage = await open_sqlite({"path": str(target / "strongroom.db")})
    core = Core(storage)
    phases: dict[str, float] = {}
    t = time.monotonic()
    init = await core.initialize(5, 3)
    for key in init.keys[:3]:
        await core.unseal(key)
    root = init.root_token
    await core.mounts.mount(core.mounts.new_entry("mounts", "secret/", "kv", description="kv-v2",
                                                  options={"version": "2"}))
    phases["init"] = time.monotonic() - t

    async def put_kv(i: int) -> None:
        req = Request(Operation.UPDATE, f"secret/data/k{i}", {"data": {"password": f"{i:032d}"}}, client_token=root)
        await core.handle_request(req)

    t = time.monotonic()
    await in_chunks(put_kv, range(ds.kv), ds.kv, "kv entries")
    phases["kv"] = time.monotonic() - t

    rng = random.Random(ds.name)
    sampled = set(rng.sample(range(ds.tokens), min(sample_size, ds.tokens)))
    sample: list[str] = []
    lease_ids: list[str] = []
    now = time.time()

    async def make_token(i: int) -> None:
        # The first L tokens get a TTL, hence a token lease (registered by the store's create hook).
        ttl = rng.randint(*LEASE_TTL_RANGE) if i < ds.leases else 0
        token, entry = await core.tokens.create(policies=["default"], path="auth/token/create",
                                                display_name="token-scale", ttl=ttl)
        if i in sampled:
            sample.append(token)
        if ttl and len(lease_ids) < 100:
            lease_ids.append(core.expiration.token_lease_id(entry))

    t = time.monotonic()
    await in_chunks(make_token, range(ds.tokens), ds.tokens, "tokens")
    phases["tokens"] = time.monotonic() - t
    await core.seal()
    await storage.close()  # type: ignore[attr-defined]
    return {"format": FORMAT, "kv": ds.kv, "tokens": ds.tokens, "leases": ds.leases,
            "keys": [k.hex() for k in init.keys], "root_token": root, "created": now,
            "min_expire": now + LEASE_TTL_RANGE[0], "phases": phases, "populate_seconds": sum(phases.values()),
            "sample": sample, "lease_ids": lease_ids}


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def ensure_populated(ds: DataSet, root: Path, sample_size: int) -> dict[str, Any]:
    """The cached set ``ds`` under ``root``, built first if missing, stale or from an older format."""
    target = root / ds.name
    meta_file = target / "meta.json"
    if meta_file.exists():
        meta = json.loads(meta_file.read_text())
        fresh = meta.get("format") == FORMAT and meta["min_expire"] - time.time() > MIN_REMAINING
        if fresh and len(meta.get("sample", [])) >= min(sample_size, ds.tokens):
            print(f"{ds.label}: reusing {target} (populated in {meta['populate_seconds']:.0f} s)", flush=True)
            return meta
    shutil.rmtree(target, ignore_errors=True)
    partial = root / (ds.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True, mode=0o700)
    print(f"{ds.label}: populating {partial}", flush=True)
    meta = asyncio.run(populate(ds, partial, sample_size))
    # SECURITY: benchmark-only secrets (see the module docstring); 0600 inside a 0700 directory.
    _write_private(partial / "tokens.txt", "\n".join(meta["sample"]) + "\n")
    _write_private(partial / "meta.json", json.dumps(meta))
    partial.rename(target)
    size = sum(f.stat().st_size for f in target.iterdir()) / 2**20
    print(f"{ds.label}: populated in {meta['populate_seconds']:.0f} s "
          f"({', '.join(f'{k} {v:.0f} s' for k, v in meta['phases'].items())}), {size:.0f} MiB on disk", flush=True)
    return meta


# -- measurement --------------------------------------------------------------------------------
RANDOM_KV = """
init = function(args) math.randomseed(os.time() + os.clock() * 1e6) end
request = function()
  return wrk.format("GET", "/v1/secret/data/k" .. math.random(0, {last}))
end
"""

# Each request presents a random token of the sample as its own X-Vault-Token.
RANDOM_TOKEN = """
local tokens = {{}}
init = function(args)
  math.randomseed(os.time() + os.clock() * 1e6)
  for line in io.lines("{path}") do tokens[#tokens + 1] = line end
end
request = function()
  return wrk.format("GET", "/v1/auth/token/lookup-self", {{["X-Vault-Token"] = tokens[math.random(#tokens)]}})
end
"""


@dataclass
class Run:
    """One start + unseal + load of one set."""
    ds: DataSet
    start_to_listening: float = 0.0
    last_key_to_unsealed: float = 0.0
    start_to_serving: float = 0.0
    rss_unsealed_kib: int = 0
    rss_after_kib: dict[str, int] = field(default_factory=dict)
    wrk: dict[str, dict[str, Any]] = field(default_factory=dict)
    leases_found: int = 0
    leases_checked: int = 0


def put_slow(addr: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    """A PUT that may take long (the last unseal key on a big store, on a busy machine)."""
    req = urllib.request.Request(f"{addr}/v1/{path}", data=json.dumps(body).encode(), method="PUT")
    try:
        with urllib.request.urlopen(req, timeout=300) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def unseal(server: Server, meta: dict[str, Any], run: Run, started: float) -> None:
    run.start_to_listening = wait_ready(server.addr, timeout=120)
    for key in meta["keys"][:2]:
        call(server.addr, "PUT", "sys/unseal", body={"key": key})
    t = time.monotonic()
    status, body = put_slow(server.addr, "sys/unseal", {"key": meta["keys"][2]})
    run.last_key_to_unsealed = time.monotonic() - t
    assert status == 200 and body and not body["sealed"], (status, body)
    server.token = meta["root_token"]
    status, _ = call(server.addr, "GET", "auth/token/lookup-self", server.token)
    assert status == 200, status
    run.start_to_serving = time.monotonic() - started


def check_leases(server: Server, meta: dict[str, Any], run: Run) -> None:
    """Every recorded lease is known after the restart, with its expiry still ahead."""
    for lease_id in meta["lease_ids"]:
        status, body = call(server.addr, "PUT", "sys/leases/lookup", server.token, {"lease_id": lease_id})
        run.leases_checked += 1
        if status == 200 and body["data"]["ttl"] > 0:
            run.leases_found += 1


def scenarios(ds: DataSet, token_file: Path) -> dict[str, tuple[str, str]]:
    """name -> (path, wrk Lua script or "" for a plain GET), for what the set holds."""
    out: dict[str, tuple[str, str]] = {}
    if ds.kv:
        out["kv-v2 read, hot key"] = ("secret/data/k0", "")
        out["kv-v2 read, random of all keys"] = ("secret/data/k0", RANDOM_KV.format(last=ds.kv - 1))
    if ds.tokens:
        out["token lookup-self, random sampled tokens"] = ("auth/token/lookup-self",
                                                           RANDOM_TOKEN.format(path=token_file))
    return out


def warm_page_cache(db: Path) -> None:
    """Read the database files once, so every set starts with its file in the OS page cache (this
    machine's proactive reclaim evicts idle pages, and sqlite reads run on the event-loop thread:
    a read from disk would stall the server and measure the disk, not the store's size)."""
    for f in db.parent.glob(db.name + "*"):
        with open(f, "rb") as fh:
            while fh.read(1 << 23):
                pass


def measure(ds: DataSet, root: Path, meta: dict[str, Any], port: int, duration: int, conns: int,
            warm: bool, extra: str = "") -> Run:
    run = Run(ds)
    if warm:
        warm_page_cache(root / ds.name / "strongroom.db")
    started = time.monotonic()
    server = start_strongroom(port, root / ds.name / "strongroom.db", prefix="sr-scale-", extra=extra)
    try:
        unseal(server, meta, run, started)
        time.sleep(1)  # let the post-unseal work settle before reading RSS
        run.rss_unsealed_kib = server.rss_kib()
        check_leases(server, meta, run)
        for name, (path, script) in scenarios(ds, root / ds.name / "tokens.txt").items():
            run.wrk[name] = run_wrk(server, path, script, conns, duration)
            run.rss_after_kib[name] = server.rss_kib()
    finally:
        server.stop()  # removes the scratch dir only, never the cached set
    return run


def heap_probe(n: int) -> tuple[float, int]:
    """Worst case for lease memory, in-process: ``n`` leases all due within minutes (so restore
    loads every one into the scheduler's heap). Returns (bytes retained per lease, tasks started)."""
    import tracemalloc

    from strongroom.core.expiration import SchedulerConfig
    from strongroom.core.expiration.lease import digest, due_key
    from strongroom.core.expiration.scheduler import Scheduler
    from strongroom.storage.inmem import InmemStorage

    async def probe() -> tuple[float, int]:
        view = InmemStorage()
        config = SchedulerConfig()
        soon = int(time.time() * 1000) + 2 * 60 * 1000  # inside the loaded horizon (5-10 min)
        for i in range(n):
            lease_id = f"auth/token/create/h{i:064x}"
            await view.put(due_key(soon + i, digest(lease_id), config.bucket_seconds * 1000), lease_id.encode())

        async def never(*_: Any) -> None:
            raise AssertionError("nothing is due during the probe")

        scheduler = Scheduler(view, never, never, config, bucket_ms=config.bucket_seconds * 1000)
        tasks_before = len(asyncio.all_tasks())
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        await scheduler.start()
        retained = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        started = len(asyncio.all_tasks()) - tasks_before
        assert scheduler.stats()["scheduled"] == n
        await scheduler.stop()
        return retained / n, started

    return asyncio.run(probe())


# -- report -------------------------------------------------------------------------------------
def to_ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m.group(2)]


def span(values: list[float], fmt: str) -> str:
    """"a" for one value or equal values, "a–b" for a range."""
    lo, hi = min(values), max(values)
    return fmt.format(lo) if fmt.format(lo) == fmt.format(hi) else f"{fmt.format(lo)}–{fmt.format(hi)}"


def report(runs: list[Run], sets: list[DataSet], metas: dict[DataSet, dict[str, Any]], rounds: int,
           duration: int) -> None:
    by_set = {ds: [r for r in runs if r.ds == ds] for ds in sets}
    names = list(dict.fromkeys(n for r in runs for n in r.wrk))
    loaded = [ds for ds in sets if ds.kv or ds.tokens]
    print(f"\n### Read latency ({rounds} round(s), ranges over rounds; sets are kv/tokens/leases)\n")
    print("| scenario | set | req/s | p50 | p99 |\n|---|---|---|---|---|")
    for name in names:
        for ds in loaded:
            cells = [r.wrk[name] for r in by_set[ds] if name in r.wrk]
            if not cells:
                continue
            bad = " INVALID" if any(c["invalid"] for c in cells) else ""
            print(f"| {name} | {ds.label} | {span([c['rps'] for c in cells], '{:.0f}')}{bad} | "
                  f"{span([to_ms(c['p50']) for c in cells], '{:.2f}')} ms | "
                  f"{span([to_ms(c['p99']) for c in cells], '{:.2f}')} ms |")
    print("\n### Memory (server RSS, MiB)\n")
    print("| set | after unseal | " + " | ".join(f"after {n}" for n in names) + " |")
    print("|---|---|" + "---|" * len(names))
    for ds in sets:
        rs = by_set[ds]
        after = [span([r.rss_after_kib[n] / 1024 for r in rs if n in r.rss_after_kib], "{:.0f}")
                 if any(n in r.rss_after_kib for r in rs) else "" for n in names]
        print(f"| {ds.label} | {span([r.rss_unsealed_kib / 1024 for r in rs], '{:.0f}')} | " + " | ".join(after) + " |")
    print("\n### Restart (process start to unsealed and serving)\n")
    print("| set | populate | start → listening | last unseal key → unsealed | start → serving | leases found |")
    print("|---|---|---|---|---|---|")
    for ds in sets:
        rs = by_set[ds]
        found = f"{min(r.leases_found for r in rs)}/{rs[0].leases_checked}" if rs[0].leases_checked else "-"
        print(f"| {ds.label} | {metas[ds]['populate_seconds']:.0f} s | "
              f"{span([r.start_to_listening for r in rs], '{:.2f}')} s | "
              f"{span([r.last_key_to_unsealed for r in rs], '{:.3f}')} s | "
              f"{span([r.start_to_serving for r in rs], '{:.2f}')} s | {found} |")
    empty = next((ds for ds in sets if not ds.kv and not ds.tokens), None)
    big = max(sets, key=lambda d: d.tokens)
    if empty is not None and big.tokens:
        delta = (statistics.median(r.rss_unsealed_kib for r in by_set[big])
                 - statistics.median(r.rss_unsealed_kib for r in by_set[empty])) * 1024
        print(f"\nRSS after unseal, {big.label} minus empty: {delta / 2**20:.1f} MiB "
              f"= {delta / big.tokens:.1f} bytes per token (all of it charged to tokens; KV entries "
              f"and leases are in it too).")
    lookup = next((n for n in names if n.startswith("token lookup-self")), None)
    prev = names[names.index(lookup) - 1] if lookup and names.index(lookup) else None
    for ds in loaded:
        rs = [r for r in by_set[ds] if lookup in r.rss_after_kib and prev in r.rss_after_kib]
        if rs and lookup and prev:
            grew = statistics.median(r.rss_after_kib[lookup] - r.rss_after_kib[prev] for r in rs) * 1024
            size = len(metas[ds]["sample"])
            requests = statistics.median(r.wrk[lookup]["rps"] for r in rs) * duration
            used = size * (1 - math.exp(-requests / size))  # expected distinct tokens drawn
            print(f"{ds.label}: lookup-self over ~{used:.0f} distinct sampled tokens raised RSS by "
                  f"{grew / 2**20:.1f} MiB = {grew / used:.0f} bytes per token used "
                  f"(token cache + physical cache, both bounded).")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kv", type=int, default=1_000_000, help="KV v2 entries in the large set")
    ap.add_argument("--tokens", type=int, default=1_000_000, help="live tokens in the large set")
    ap.add_argument("--leases", type=int, default=100_000, help="how many of those tokens have a TTL (a lease)")
    ap.add_argument("--small", type=int, default=10_000,
                    help="also measure a set with this many KV entries, tokens and leases (0: skip)")
    ap.add_argument("--no-empty", action="store_true", help="skip the empty set (the memory baseline)")
    ap.add_argument("--data-dir", default="/var/tmp/strongroom-scale", help="where populated sets are cached")
    ap.add_argument("--token-sample", type=int, default=10_000, help="tokens recorded for lookup-self")
    ap.add_argument("--rounds", type=int, default=2, help="times each set is measured (interleaved)")
    ap.add_argument("--duration", type=int, default=5, help="seconds per wrk cell")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--port", type=int, default=18600)
    ap.add_argument("--heap-probe", type=int, default=100_000,
                    help="leases for the in-process worst-case heap memory probe (0: skip)")
    ap.add_argument("--cold", action="store_true",
                    help="do not read the database into the OS page cache before each start")
    ap.add_argument("--disable-cache", action="store_true",
                    help="start the server with disable_cache = true (no physical cache, no read cache): "
                         "every read misses, so the sets compare the miss path at each size (issue #12)")
    ap.add_argument("--populate-only", action="store_true")
    ap.add_argument("--json", help="also write the raw results to this file")
    args = ap.parse_args()
    if args.leases > args.tokens:
        ap.error("--leases cannot exceed --tokens (the leases are those tokens' leases)")
    if not shutil.which("wrk"):
        print("wrk not found: apt-get install wrk", file=sys.stderr)
        return 1
    sets = [] if args.no_empty else [DataSet(0, 0, 0)]
    if args.small:
        sets.append(DataSet(args.small, args.small, min(args.small, args.leases)))
    sets.append(DataSet(args.kv, args.tokens, args.leases))
    sets = list(dict.fromkeys(sets))
    root = Path(args.data_dir)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    metas = {ds: ensure_populated(ds, root, args.token_sample) for ds in sets}
    if args.populate_only:
        return 0
    runs: list[Run] = []
    for r in range(args.rounds):
        for i, ds in enumerate(sets):
            run = measure(ds, root, metas[ds], args.port + i, args.duration, args.connections, not args.cold,
                          "disable_cache = true\n" if args.disable_cache else "")
            print(f"round {r + 1} {ds.label}: serving {run.start_to_serving:.2f} s after start, "
                  f"unseal {run.last_key_to_unsealed:.3f} s, RSS {run.rss_unsealed_kib / 1024:.0f} MiB; "
                  + ", ".join(f"{n} {c['rps']:.0f}/s p99 {c['p99']}" for n, c in run.wrk.items()), flush=True)
            runs.append(run)
    report(runs, sets, metas, args.rounds, args.duration)
    if args.heap_probe:
        per_lease, tasks = heap_probe(args.heap_probe)
        print(f"\nWorst case, in-process: {args.heap_probe} leases all due within minutes restore into "
              f"the scheduler's heap at {per_lease:.0f} bytes per lease; the scheduler started {tasks} "
              f"tasks (one timer + its worker pool) whatever the number of leases.")
    if args.json:
        Path(args.json).write_text(json.dumps([{**r.__dict__, "ds": r.ds.__dict__} for r in runs], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
