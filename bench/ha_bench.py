"""High availability on PostgreSQL, side by side: Strongroom and OpenBao, same PostgreSQL, same run.

Not a test. Each server gets its own database on the local PostgreSQL (127.0.0.1:5432, user
postgres, trust auth), created for the run and dropped afterwards (OpenBao's tables are created
first, with the schema from OpenBao's postgresql storage docs). Nodes are initialised with 5 key
shares / threshold 3 and unsealed with 3; request forwarding is on (the default of both).

    python bench/ha_bench.py                            # 5 kills, 10 s cells, reads with 1,2,4 nodes
    python bench/ha_bench.py --kills 2 --duration 2     # a quick check that everything runs
    python bench/ha_bench.py --only strongroom --sr-ttl 15s
    python bench/ha_bench.py --skip reads

Parts:
  failover   3 nodes of each, pinned to CPU 0. An open-loop client (CPU 1) sends a kv-v2 write every
             --interval seconds, round-robin over the three nodes (a refused connection, the dead
             node, costs nothing). Each kill: SIGKILL of the active, then the time from the kill to
             the acknowledgement (200) of the first write SENT after the kill; the killed node is
             restarted and unsealed (it rejoins as a standby) and the cluster left to settle before
             the next kill. Every non-200 answer during the rounds is counted by status and error
             (OpenBao's standbys answer 500 "active cluster node not found" while they lose track
             of the active). Strongroom's lock TTL is --sr-ttl (ha_lock_ttl); OpenBao's PostgreSQL
             lock has a fixed TTL of 15 s (not configurable).
  writes     the same clusters with their standbys stopped: wrk (CPU 1), --connections connections,
             --duration s of kv-v2 writes to random keys of 10k on the active node (CPU 0).
  reads      Strongroom only, 1, 2 then 4 nodes on one store, NOT pinned (every core): one wrk per
             node, the --connections split among them, kv-v2 reads of one secret; req/s summed.
             With standby_reads = true: each standby answers these reads itself (docs/ha.md).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import RANDOM_WRITE, Server, settle  # noqa: E402
from ha_cluster import DEAD_LEADER, Cluster, Node, dispose, leader, start_cluster, wait_until  # noqa: E402


# -- failover ----------------------------------------------------------------------------------------

@dataclass
class Write:
    sent: float
    acked: float
    node: str
    status: int  # 0: no HTTP answer
    error: str
    redirected: bool  # answered after following a 307 (as the bao CLI and hvac do)


def classify(status: int, body: str) -> str:
    if status == 0:
        return body
    if DEAD_LEADER in body:
        return f"{status} {DEAD_LEADER}"
    m = re.search(r'"errors":\s*\["([^"]{0,80})', body)
    return f"{status} {m.group(1) if m else body[:80]}"


async def one_write(client: httpx.AsyncClient, cluster: Cluster, node: Node, n: int, log: list[Write]) -> None:
    sent, redirected = time.monotonic(), False
    try:
        r = await client.post(f"{node.addr}/v1/secret/data/ha/{n % 1000}", json={"data": {"n": str(n)}},
                              headers={"X-Vault-Token": cluster.token})
        status, error = r.status_code, ("" if r.status_code == 200 else classify(r.status_code, r.text))
        redirected = bool(r.history)
    except httpx.ConnectError:
        status, error = 0, "connection refused"
    except httpx.TimeoutException:
        status, error = 0, "timeout"
    except httpx.TransportError as e:
        status, error = 0, type(e).__name__
    log.append(Write(sent, time.monotonic(), node.name, status, error, redirected))


async def writer(cluster: Cluster, interval: float, stop: asyncio.Event, log: list[Write]) -> None:
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=10, limits=limits, follow_redirects=True) as client:
        tasks: set[asyncio.Task[None]] = set()
        n = 0
        while not stop.is_set():
            node = cluster.nodes[n % len(cluster.nodes)]
            n += 1
            task = asyncio.create_task(one_write(client, cluster, node, n, log))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            await asyncio.sleep(interval)
        if tasks:
            await asyncio.wait(tasks)


async def settled(log: list[Write], cluster: Cluster, quiet: float, timeout: float) -> list[str]:
    """Waits (at most ``timeout``) until every write sent in the last ``quiet`` seconds, to any node,
    was acknowledged; the nodes that still failed some (OpenBao's leaderless standbys never recover)."""
    deadline = time.monotonic() + timeout
    bad: set[str] = set()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        since = time.monotonic() - quiet - 0.5
        recent = [w for w in log if w.sent >= since and w.acked <= time.monotonic() - 0.5]
        bad = {w.node for w in recent if w.status != 200} | ({n.name for n in cluster.nodes} - {w.node for w in recent})
        if not bad:
            break
    return sorted(bad)


async def failover_rounds(cluster: Cluster, kills: int, interval: float, limit: float,
                          settle: float) -> dict[str, Any]:
    log: list[Write] = []
    stop = asyncio.Event()
    task = asyncio.create_task(writer(cluster, interval, stop, log))
    times: list[float] = []
    unsettled: list[str] = []
    try:
        if bad := await settled(log, cluster, 1.0, 60):
            raise RuntimeError(f"{cluster.kind}: {bad} do not answer writes before the first kill")
        start = time.monotonic()
        for k in range(kills):
            victim = await asyncio.to_thread(cluster.active)
            if victim is None:
                raise RuntimeError(f"{cluster.kind}: no active node before kill {k + 1}")
            killed = time.monotonic()
            await asyncio.to_thread(victim.kill)
            took = None
            while time.monotonic() - killed < limit:
                done = [w.acked for w in log if w.sent >= killed and w.status == 200]
                if done:
                    took = min(done) - killed
                    break
                await asyncio.sleep(0.01)
            if took is None:
                print(f"  {cluster.kind}: kill {k + 1}: no write acknowledged within {limit:.0f}s", flush=True)
            else:
                times.append(took)
                print(f"  {cluster.kind}: kill {k + 1} ({victim.name}): first write acknowledged "
                      f"{took:.2f}s after the kill", flush=True)
            await asyncio.to_thread(cluster.join, victim)
            if bad := await settled(log, cluster, 1.0, settle):
                unsettled += bad
                print(f"  {cluster.kind}: {', '.join(bad)} still failed writes {settle:.0f}s after the restart "
                      f"(kill {k + 1})", flush=True)
        end = time.monotonic()
    finally:
        stop.set()
        await task
    during = [w for w in log if start <= w.sent <= end]
    errors = Counter(w.error for w in during if w.status != 200)
    return {"times": times, "failed": kills - len(times), "errors": errors, "unsettled": unsettled,
            "writes": sum(1 for w in during if w.status == 200),
            "redirected": sum(1 for w in during if w.redirected)}


# -- throughput --------------------------------------------------------------------------------------

# Prints the first answer of each non-200 status (wrk's -t1 thread writes to its stdout).
SHOW_ERRORS = """
local seen = {}
response = function(status, headers, body)
  if status ~= 200 and not seen[status] then
    seen[status] = true
    io.write("answer " .. status .. " " .. string.sub(body, 1, 160) .. "\\n")
  end
end
"""


def writes_cell(cluster: Cluster, connections: int, duration: int) -> dict[str, Any]:
    """The active alone (standbys stopped): kv-v2 writes to random keys with wrk (CPU 1)."""
    active = cluster.active()
    assert active is not None and active.proc is not None
    for n in cluster.nodes:
        if n is not active:
            n.stop()
    settle(Server(cluster.kind, active.addr, active.proc, str(cluster.work)))
    lua = cluster.work / "writes.lua"
    lua.write_text(RANDOM_WRITE + SHOW_ERRORS)
    out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
                          "-s", str(lua), "-H", f"X-Vault-Token: {cluster.token}", f"{active.addr}/v1/secret/data/k0"],
                         capture_output=True, text=True, check=True).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    answers = re.findall(r"^answer (.*)$", out, re.M)
    for a in answers:
        print(f"  {cluster.kind} writes: non-200 answer {a}", flush=True)
    return {"rps": float(rps.group(1)) if rps else 0.0, "p50": lat.get("50", "?"), "p99": lat.get("99", "?"),
            "non2xx": int(bad.group(1)) if bad else 0, "still_active": leader(active).get("is_self") is True}


def wrk_parallel(cluster: Cluster, nodes: list[Node], connections: int, duration: int) -> dict[str, Any]:
    """One wrk per node (not pinned), ``connections`` split among them, GETs of secret/data/bench."""
    per = max(1, connections // len(nodes))
    for n in nodes:  # every node serves the read before the measurement
        last: list[str] = []

        def ok(n: Node = n, last: list[str] = last) -> bool:
            r = httpx.get(f"{n.addr}/v1/secret/data/bench", headers={"X-Vault-Token": cluster.token}, timeout=10)
            last[:] = [f"{r.status_code} {r.text[:120]}"]
            return r.status_code == 200
        if not wait_until(ok, 30, f"{n.name} to serve reads"):
            print(f"  {n.name} answers: {last[0]}", flush=True)
    procs = [subprocess.Popen(["wrk", "-t1", f"-c{per}", f"-d{duration}s", "--latency",
                               "-H", f"X-Vault-Token: {cluster.token}", f"{n.addr}/v1/secret/data/bench"],
                              stdout=subprocess.PIPE, text=True) for n in nodes]
    outs = [p.communicate()[0] for p in procs]
    found = [re.search(r"Requests/sec:\s+([\d.]+)", o) for o in outs]
    rps = sum(float(m.group(1)) if m else 0.0 for m in found)
    bad = sum(int(m.group(1)) for o in outs for m in [re.search(r"Non-2xx or 3xx responses: (\d+)", o)] if m)
    return {"rps": rps, "non2xx": bad, "connections": per * len(nodes)}


def reads_cells(counts: list[int], ttl: str, connections: int, duration: int) -> dict[int, dict[str, Any]]:
    cluster = start_cluster("strongroom", 1, "", ttl, extra="standby_reads = true\n")
    results: dict[int, dict[str, Any]] = {}
    try:
        for count in counts:
            while len(cluster.nodes) < count:
                cluster.join(cluster.add_node("", ttl))
            time.sleep(1)
            results[count] = wrk_parallel(cluster, cluster.nodes[:count], connections, duration)
            print(f"  reads with {count} node(s): {results[count]['rps']:.0f} req/s", flush=True)
    finally:
        dispose(cluster)
    return results


# -- report ------------------------------------------------------------------------------------------

def fmt_times(r: dict[str, Any]) -> str:
    t = r["times"]
    if not t:
        return "no failover"
    return (f"{statistics.median(t):.2f} s (min {min(t):.2f}, max {max(t):.2f}, n={len(t)}"
            + (f", {r['failed']} never" if r["failed"] else "") + ")")


def report(names: list[str], fail: dict[str, dict[str, Any]], writes: dict[str, dict[str, Any]],
           reads: dict[int, dict[str, Any]], args: argparse.Namespace) -> None:
    two = len(names) == 2
    print(f"\n| cell | {' | '.join(names)} |" + (" ratio |" if two else ""))
    print("|---|" + "---|" * len(names) + ("---|" if two else ""))
    if fail:
        row = [fmt_times(fail[n]) for n in names]
        ratio = ""
        if two and all(fail[n]["times"] for n in names):
            ratio = f" {statistics.median(fail[names[1]]['times']) / statistics.median(fail[names[0]]['times']):.1f}x faster |"
        print(f"| failover after kill -9 of the active (median of {args.kills}) | " + " | ".join(row) + " |"
              + (ratio or (" |" if two else "")))
        tests: tuple[tuple[str, Callable[[str], bool]], ...] = ((f'500 "{DEAD_LEADER}" (a standby that lost the active)',
                             lambda e: e.startswith("500") and DEAD_LEADER in e),
                            (f'503 "{DEAD_LEADER}" (no active node yet)',
                             lambda e: e.startswith("503") and DEAD_LEADER in e),
                            ("of other 5xx", lambda e: e[:1] == "5" and DEAD_LEADER not in e
                             and "sealed" not in e))
        for label, test in tests:
            row = [str(sum(c for e, c in fail[n]["errors"].items() if test(e))) for n in names]
            print(f"| answers {label} during the rounds | " + " | ".join(row) + " |" + (" |" if two else ""))
    if writes:
        cells = [writes.get(n) for n in names]
        row = [f"{c['rps']:.0f} req/s (p50 {c['p50']}, p99 {c['p99']})"
               + (f" INVALID: {c['non2xx']} non-2xx" if c["non2xx"] else "")
               + ("" if c["still_active"] else ", lost its lock") if c else "n/a" for c in cells]
        ratio = ""
        if two and cells[0] and cells[1] and cells[1]["rps"]:
            ratio = f" {cells[0]['rps'] / cells[1]['rps']:.2f}x |"
        print(f"| kv-v2 writes, postgresql storage, c={args.connections} | " + " | ".join(row) + " |"
              + (ratio or (" |" if two else "")))
    for count, r in reads.items():
        texts = [f"{r['rps']:.0f} req/s" + (f" ({r['non2xx']} non-2xx)" if r["non2xx"] else "")
                 if n == "strongroom" else "" for n in names]
        print(f"| kv-v2 reads, {count} Strongroom node(s), c={r['connections']} | " + " | ".join(texts) + " |"
              + (" |" if two else ""))
    for n in names:
        if n in fail:
            f = fail[n]
            print(f"\n{n}: {f['writes']} writes acknowledged during the rounds; other answers: "
                  + (", ".join(f"{e!r} x{c}" for e, c in f["errors"].most_common()) or "none")
                  + f"; {f['redirected']} answers came after following a 307 redirect"
                  + (f"; still failing writes {args.settle:.0f}s after a restart: {', '.join(f['unsettled'])}"
                     if f["unsettled"] else ""))
    print(f"\nStrongroom ha_lock_ttl = {args.sr_ttl}; OpenBao's PostgreSQL lock TTL is fixed (15 s). "
          f"Write interval {args.interval * 1000:.0f} ms, round-robin over the 3 nodes; 'connection refused' is "
          "the dead node, 'Vault is sealed' the restarted node before its unseal.")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--duration", type=int, default=10, help="seconds of each wrk cell")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--interval", type=float, default=0.02, help="seconds between two writes of the failover client")
    ap.add_argument("--limit", type=float, default=120, help="give up on a failover after this many seconds")
    ap.add_argument("--settle", type=float, default=15,
                    help="after a restart, wait at most this long for every node to answer writes")
    ap.add_argument("--sr-ttl", default="1s", help="Strongroom's ha_lock_ttl")
    ap.add_argument("--reads", default="1,2,4", help="Strongroom node counts of the reads part")
    ap.add_argument("--only", choices=["strongroom", "openbao"])
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: failover,writes,reads")
    args = ap.parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if not shutil.which("wrk"):
        print("wrk not found: apt-get install wrk", file=sys.stderr)
        return 1
    names = [args.only] if args.only else ["strongroom", "openbao"]
    fail: dict[str, dict[str, Any]] = {}
    writes: dict[str, dict[str, Any]] = {}
    reads: dict[int, dict[str, Any]] = {}
    began = time.monotonic()
    for name in names:
        if {"failover", "writes"} <= skip:
            break
        print(f"{name}: starting 3 nodes on PostgreSQL", flush=True)
        cluster = start_cluster(name, 3, "0", args.sr_ttl)
        try:
            if "failover" not in skip:
                fail[name] = asyncio.run(failover_rounds(cluster, args.kills, args.interval, args.limit,
                                                         args.settle))
            if "writes" not in skip:
                writes[name] = writes_cell(cluster, args.connections, args.duration)
                print(f"  {name}: {writes[name]['rps']:.0f} writes/s", flush=True)
        finally:
            dispose(cluster)
    if "reads" not in skip and "strongroom" in names:
        # A long lock TTL here: with 1 s, a node starved of CPU by the load loses its lock (fencing) and
        # the cell measures failovers, not reads.
        reads = reads_cells([int(c) for c in args.reads.split(",")], "15s", args.connections, args.duration)
    report(names, fail, writes, reads, args)
    print(f"\n(run took {time.monotonic() - began:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
