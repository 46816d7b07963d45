"""High availability on PostgreSQL, side by side: Strongroom and OpenBao, same PostgreSQL, same run.

Not a test. Each server gets its own database on the local PostgreSQL (127.0.0.1:5432, user
postgres, trust auth), created for the run and dropped afterwards (OpenBao's tables are created
first, with the schema from OpenBao's postgresql storage docs). Nodes are initialised with 5 key
shares / threshold 3 and unsealed with 3; request forwarding is on (the default of both).

    python bench/ha_bench.py                            # 5 kills, 10 s cells, reads with 1,2,4 nodes
    python bench/ha_bench.py --kills 2 --duration 2     # a quick check that everything runs
    python bench/ha_bench.py --only strongroom --sr-ttl 15s
    python bench/ha_bench.py --skip reads
    python bench/ha_bench.py --only strongroom --skip failover,writes --read-nodes 1,2,3 --node-cpu 0.45

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
  reads      Strongroom only, 1, 2 then 4 nodes (--read-nodes) on one store, NOT pinned (every core):
             one wrk per node, the --connections split among them, kv-v2 reads of one secret; req/s
             summed. With standby_reads = true: each standby answers these reads itself (docs/ha.md).
             --node-cpu C gives each node C cores and no more: its server process (every thread) in
             a cgroup of its own (cgroup v1 cpu controller, CFS quota C x period), so N nodes are
             given N x C cores, the rest left to wrk and PostgreSQL. Per node, over each cell: its
             CPU time (/proc/PID/stat), the kv-v2 reads it served (its own sys/metrics) and the share
             of CFS periods in which its budget ran out (throttled).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
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
from ha_cluster import (  # noqa: E402
    DEAD_LEADER, CgroupError, Cluster, CpuBudget, Node, cpu_seconds, dispose, leader, start_cluster, wait_until)


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


# sys/metrics: the reads a node answered on the secret/ mount through its pipeline (a read forwarded to
# the active counts there), and those answered from its read cache (core/readcache.py, no pipeline).
READ_COUNTS = (("Samples", "vault.route.read.secret-"), ("Counters", "strongroom.read_cache.hit"))


def node_reads(node: Node) -> int | None:
    """kv-v2 reads ``node`` answered so far, from its own sys/metrics (None: not measurable)."""
    try:
        r = httpx.get(f"{node.addr}/v1/sys/metrics", timeout=10)
        if r.status_code != 200:
            return None
        body = r.json()
        return sum(int(m["Count"]) for kind, name in READ_COUNTS for m in body.get(kind) or [] if m["Name"] == name)
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


def node_sample(cluster: Cluster, node: Node) -> dict[str, Any]:
    """What a node has used and done so far: CPU seconds, reads served, CFS periods (all, throttled)."""
    assert node.proc is not None
    periods = cluster.budget.throttling(node.name) if cluster.budget else (0, 0)
    return {"cpu": cpu_seconds(node.proc.pid), "reads": node_reads(node), "periods": periods}


def wrk_parallel(cluster: Cluster, nodes: list[Node], connections: int, duration: int) -> dict[str, Any]:
    """One wrk per node (not pinned), ``connections`` split among them, GETs of secret/data/bench; with
    each node's CPU time, reads served and throttling over the cell."""
    split = [connections // len(nodes) + (i < connections % len(nodes)) for i in range(len(nodes))]
    for n in nodes:  # every node serves the read before the measurement
        last: list[str] = []

        def ok(n: Node = n, last: list[str] = last) -> bool:
            r = httpx.get(f"{n.addr}/v1/secret/data/bench", headers={"X-Vault-Token": cluster.token}, timeout=10)
            last[:] = [f"{r.status_code} {r.text[:120]}"]
            return r.status_code == 200
        if not wait_until(ok, 30, f"{n.name} to serve reads"):
            print(f"  {n.name} answers: {last[0]}", flush=True)
    roles = {n.name: "active" if leader(n).get("is_self") is True else "standby" for n in nodes}
    before = {n.name: node_sample(cluster, n) for n in nodes}
    began = time.monotonic()
    procs = [subprocess.Popen(["wrk", "-t1", f"-c{max(1, c)}", f"-d{duration}s", "--latency",
                               "-H", f"X-Vault-Token: {cluster.token}", f"{n.addr}/v1/secret/data/bench"],
                              stdout=subprocess.PIPE, text=True) for n, c in zip(nodes, split, strict=True)]
    outs = [p.communicate()[0] for p in procs]
    seconds = time.monotonic() - began
    after = {n.name: node_sample(cluster, n) for n in nodes}
    found = [re.search(r"Requests/sec:\s+([\d.]+)", o) for o in outs]
    rps = sum(float(m.group(1)) if m else 0.0 for m in found)
    bad = sum(int(m.group(1)) for o in outs for m in [re.search(r"Non-2xx or 3xx responses: (\d+)", o)] if m)
    per_node = []
    for n in nodes:
        b, a = before[n.name], after[n.name]
        periods, throttled = (a["periods"][0] - b["periods"][0], a["periods"][1] - b["periods"][1])
        served = None if a["reads"] is None or b["reads"] is None else a["reads"] - b["reads"]
        per_node.append({"name": n.name, "role": roles[n.name], "cpu": a["cpu"] - b["cpu"], "reads": served,
                         "throttled": throttled / periods if periods else None})
    return {"rps": rps, "non2xx": bad, "connections": sum(max(1, c) for c in split), "seconds": seconds,
            "nodes": per_node, "cores": cluster.budget.cores * len(nodes) if cluster.budget else None}


def reads_cells(counts: list[int], ttl: str, connections: int, duration: int,
                budget: CpuBudget | None = None) -> dict[int, dict[str, Any]]:
    cluster = start_cluster("strongroom", 1, "", ttl, extra="standby_reads = true\n", budget=budget,
                            node_metrics=True)
    results: dict[int, dict[str, Any]] = {}
    try:
        for count in counts:
            while len(cluster.nodes) < count:
                cluster.join(cluster.add_node("", ttl))
            time.sleep(1)
            results[count] = wrk_parallel(cluster, cluster.nodes[:count], connections, duration)
            given = results[count]["cores"]
            print(f"  reads with {count} node(s): {results[count]['rps']:.0f} req/s"
                  + (f" on {given:.2f} cores given" if given else ""), flush=True)
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
    base = next(iter(reads), 0)
    for count, r in reads.items():
        given = f" ({r['cores']:.2f} cores given)" if r["cores"] else ""
        per_core = f", {r['rps'] / r['cores']:.0f} req/s per core given" if r["cores"] else ""
        scale = f", {r['rps'] / reads[base]['rps']:.2f}x {base} node(s)" if count != base and reads[base]["rps"] else ""
        text = (f"{r['rps']:.0f} req/s" + per_core + scale
                + (f" ({r['non2xx']} non-2xx)" if r["non2xx"] else ""))
        texts = [text if n == "strongroom" else "" for n in names]
        print(f"| kv-v2 reads, {count} Strongroom node(s){given}, c={r['connections']} | " + " | ".join(texts)
              + " |" + (" |" if two else ""))
    if reads:
        report_nodes(reads, args.node_cpu)
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


def report_nodes(reads: dict[int, dict[str, Any]], node_cpu: float) -> None:
    """Per node of each reads cell: reads served, CPU used and reads per CPU-second."""
    print("\nReads per node (CPU time from /proc/PID/stat over the cell; reads from each node's own "
          "sys/metrics" + (f"; budget {node_cpu:g} core per node, throttled: share of CFS periods in which "
                           "it ran out" if node_cpu else "; no CPU budget (--node-cpu 0)") + "):")
    print("\n| nodes | node | reads/s | CPU used (cores) | reads per CPU-second |"
          + (" throttled |" if node_cpu else ""))
    print("|---|---|---|---|---|" + ("---|" if node_cpu else ""))
    for count, r in reads.items():
        secs = r["seconds"]
        for n in r["nodes"]:
            served = n["reads"]
            row = [str(count), f"{n['name']} ({n['role']})",
                   f"{served / secs:.0f}" if served is not None else "n/a",
                   f"{n['cpu'] / secs:.2f}",
                   f"{served / n['cpu']:.0f}" if served is not None and n["cpu"] > 0 else "n/a"]
            if node_cpu:
                row.append(f"{n['throttled']:.0%}" if n["throttled"] is not None else "n/a")
            print("| " + " | ".join(row) + " |")
        cpu = sum(n["cpu"] for n in r["nodes"])
        served_all = [n["reads"] for n in r["nodes"]]
        total = sum(x for x in served_all if x is not None) if None not in served_all else None
        print(f"| {count} | all | " + (f"{total / secs:.0f}" if total is not None else "n/a")
              + f" | {cpu / secs:.2f} | " + (f"{total / cpu:.0f}" if total is not None and cpu > 0 else "n/a")
              + " |" + (" |" if node_cpu else ""))


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
    ap.add_argument("--read-nodes", "--reads", dest="reads", default="1,2,4",
                    help="Strongroom node counts of the reads part, in order (e.g. 1,2,3)")
    ap.add_argument("--node-cpu", type=float, default=0.0,
                    help="reads part: cores given to each node (its own cgroup with a CFS quota; root and a "
                         "writable cgroup v1 cpu controller needed); 0: no limit")
    ap.add_argument("--only", choices=["strongroom", "openbao"])
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: failover,writes,reads")
    args = ap.parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if not shutil.which("wrk"):
        print("wrk not found: apt-get install wrk", file=sys.stderr)
        return 1
    counts = [int(c) for c in args.reads.split(",") if c.strip()]
    if not counts or min(counts) < 1:
        print("--read-nodes: node counts of 1 or more, comma-separated", file=sys.stderr)
        return 2
    budget: CpuBudget | None = None
    if args.node_cpu < 0:
        print("--node-cpu: 0 (off) or more", file=sys.stderr)
        return 2
    if args.node_cpu and "reads" not in skip:
        budget = CpuBudget(args.node_cpu)
        try:
            budget.check()
        except CgroupError as e:
            print(e, file=sys.stderr)
            return 2
        cores = os.cpu_count() or 1
        if args.node_cpu * max(counts) >= cores:
            print(f"note: {max(counts)} nodes x {args.node_cpu:g} core = {args.node_cpu * max(counts):.2f} of "
                  f"this machine's {cores} cores, little left for wrk and PostgreSQL", flush=True)
    # SIGTERM as an interrupt: the finally blocks stop the nodes, drop the databases, remove the cgroups.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
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
        reads = reads_cells(counts, "15s", args.connections, args.duration, budget)
    report(names, fail, writes, reads, args)
    print(f"\n(run took {time.monotonic() - began:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
