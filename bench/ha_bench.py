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
             Standbys currently forward reads to the active, so no growth is expected yet.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import RANDOM_WRITE, Server, free_port, run_wrk  # noqa: E402

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
BAO_SCHEMA = """
CREATE TABLE IF NOT EXISTS openbao_kv_store (
  parent_path TEXT COLLATE "C" NOT NULL,
  path        TEXT COLLATE "C",
  key         TEXT COLLATE "C",
  value       BYTEA,
  CONSTRAINT pkey PRIMARY KEY (path, key)
);
CREATE INDEX IF NOT EXISTS parent_path_idx ON openbao_kv_store (parent_path);
CREATE TABLE IF NOT EXISTS openbao_ha_locks (
  ha_key      TEXT COLLATE "C" NOT NULL,
  ha_identity TEXT COLLATE "C" NOT NULL,
  ha_value    TEXT COLLATE "C",
  valid_until TIMESTAMP WITH TIME ZONE NOT NULL,
  CONSTRAINT ha_key PRIMARY KEY (ha_key)
);
"""
DEAD_LEADER = "active cluster node not found"


def bao_binary() -> str:
    return shutil.which("bao") or str(Path(sys.executable).with_name("bao"))


# -- databases ---------------------------------------------------------------------------------------

def create_db(kind: str) -> str:
    name = f"habench_{kind}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    if kind == "openbao":
        with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={name}", autocommit=True) as conn:
            conn.execute(BAO_SCHEMA)
    return name


def drop_db(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- nodes and clusters ------------------------------------------------------------------------------

@dataclass
class Node:
    kind: str
    name: str
    port: int
    config: Path
    cpu: str  # taskset's CPU list, "" for none
    proc: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None

    @property
    def addr(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 60) -> None:
        if self.kind == "strongroom":
            cmd = [sys.executable, "-m", "strongroom", "server", f"-config={self.config}"]
        else:
            cmd = [bao_binary(), "server", f"-config={self.config}"]
        if self.cpu:
            cmd = ["taskset", "-c", self.cpu, *cmd]
        self.log = open(self.config.with_suffix(".log"), "ab")  # noqa: SIM115 - closed by stop()/kill()
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: " + self.config.with_suffix(".log").read_text()[-2000:])
            try:
                httpx.get(f"{self.addr}/v1/sys/seal-status", timeout=2)
                return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not start")

    def _closed(self) -> None:
        if self.log is not None:
            self.log.close()
            self.log = None

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._closed()

    def stop(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._closed()


def leader(node: Node) -> dict[str, Any]:
    try:
        data: dict[str, Any] = httpx.get(f"{node.addr}/v1/sys/leader", timeout=3).json()
        return data
    except (httpx.HTTPError, ValueError):
        return {}


def wait_until(check: Any, timeout: float, what: str) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    print(f"  (gave up waiting for {what} after {timeout:.0f}s)", flush=True)
    return False


@dataclass
class Cluster:
    kind: str
    db: str
    work: Path
    nodes: list[Node] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    token: str = ""

    def add_node(self, cpu: str, ttl: str) -> Node:
        name = f"{self.kind}-{len(self.nodes)}"
        port, cport = free_port(), free_port()
        url = f"postgresql://postgres@127.0.0.1:5432/{self.db}?sslmode=disable"
        if self.kind == "strongroom":
            storage = (f'storage "postgresql" {{\n  connection_url = "{url}"\n  table = "strongroom_kv"\n'
                       f'  ha_enabled = "true"\n  ha_table = "strongroom_ha_locks"\n  ha_lock_ttl = "{ttl}"\n}}\n')
            listener = f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n}}\n'
        else:
            storage = (f'storage "postgresql" {{\n  connection_url = "{url}"\n  table = "openbao_kv_store"\n'
                       '  ha_enabled = "true"\n  ha_table = "openbao_ha_locks"\n}\n')
            listener = (f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n'
                        f'  cluster_address = "127.0.0.1:{cport}"\n  tls_disable = true\n}}\n')
        config = self.work / f"{name}.hcl"
        config.write_text(storage + listener + f'api_addr = "http://127.0.0.1:{port}"\n'
                          f'cluster_addr = "https://127.0.0.1:{cport}"\n'
                          'disable_mlock = true\nlog_level = "warn"\n')
        node = Node(self.kind, name, port, config, cpu)
        self.nodes.append(node)
        return node

    def unseal(self, node: Node) -> None:
        for key in self.keys[:3]:
            httpx.put(f"{node.addr}/v1/sys/unseal", json={"key": key}, timeout=30).raise_for_status()

    def active(self) -> Node | None:
        return next((n for n in self.nodes if n.alive() and leader(n).get("is_self") is True), None)

    def join(self, node: Node, timeout: float = 60) -> None:
        """Start ``node``, unseal it and wait until it is a standby that knows the active."""
        node.start()
        self.unseal(node)
        wait_until(lambda: leader(node).get("is_self") is True or bool(leader(node).get("leader_address")),
                   timeout, f"{node.name} to know the active")

    def write(self, node: Node, path: str, data: dict[str, str]) -> int:
        return httpx.post(f"{node.addr}/v1/secret/data/{path}", headers={"X-Vault-Token": self.token},
                          json={"data": data}, timeout=30).status_code

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()


def start_cluster(kind: str, size: int, cpu: str, ttl: str) -> Cluster:
    cluster = Cluster(kind, create_db(kind), Path(tempfile.mkdtemp(prefix=f"habench-{kind}-")))
    try:
        first = cluster.add_node(cpu, ttl)
        first.start()
        init = httpx.put(f"{first.addr}/v1/sys/init", json={"secret_shares": 5, "secret_threshold": 3},
                         timeout=60).json()
        cluster.keys, cluster.token = init["keys_base64"], init["root_token"]
        cluster.unseal(first)
        wait_until(lambda: leader(first).get("is_self") is True, 60, f"{first.name} to become active")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the mount, then its first write (OpenBao sets kv-v2 up async)
            r = httpx.post(f"{first.addr}/v1/sys/mounts/secret", headers={"X-Vault-Token": cluster.token},
                           json={"type": "kv", "options": {"version": "2"}}, timeout=30)
            if r.status_code in (200, 204) or "path is already in use" in r.text:
                if cluster.write(first, "bench", {"password": "p" * 32}) == 200:
                    break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"{kind}: no kv-v2 write accepted")
        for _ in range(size - 1):
            cluster.join(cluster.add_node(cpu, ttl))
        return cluster
    except BaseException:
        cluster.stop()
        drop_db(cluster.db)
        shutil.rmtree(cluster.work, ignore_errors=True)
        raise


def dispose(cluster: Cluster) -> None:
    cluster.stop()
    drop_db(cluster.db)
    shutil.rmtree(cluster.work, ignore_errors=True)


# -- failover ----------------------------------------------------------------------------------------

@dataclass
class Write:
    sent: float
    acked: float
    node: str
    status: int  # 0: no HTTP answer
    error: str


def classify(status: int, body: str) -> str:
    if status == 0:
        return body
    if DEAD_LEADER in body:
        return f"{status} {DEAD_LEADER}"
    m = re.search(r'"errors":\s*\["([^"]{0,80})', body)
    return f"{status} {m.group(1) if m else body[:80]}"


async def one_write(client: httpx.AsyncClient, cluster: Cluster, node: Node, n: int, log: list[Write]) -> None:
    sent = time.monotonic()
    try:
        r = await client.post(f"{node.addr}/v1/secret/data/ha/{n % 1000}", json={"data": {"n": str(n)}},
                              headers={"X-Vault-Token": cluster.token})
        status, error = r.status_code, ("" if r.status_code == 200 else classify(r.status_code, r.text))
    except httpx.ConnectError:
        status, error = 0, "connection refused"
    except httpx.TimeoutException:
        status, error = 0, "timeout"
    except httpx.TransportError as e:
        status, error = 0, type(e).__name__
    log.append(Write(sent, time.monotonic(), node.name, status, error))


async def writer(cluster: Cluster, interval: float, stop: asyncio.Event, log: list[Write]) -> None:
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:
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


async def settled(log: list[Write], cluster: Cluster, quiet: float, timeout: float) -> bool:
    """True once every write sent in the last ``quiet`` seconds, to any node, was acknowledged."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        since = time.monotonic() - quiet - 0.5
        recent = [w for w in log if w.sent >= since and w.acked <= time.monotonic() - 0.5]
        if len({w.node for w in recent}) == len(cluster.nodes) and all(w.status == 200 for w in recent):
            return True
    return False


async def failover_rounds(cluster: Cluster, kills: int, interval: float, limit: float) -> dict[str, Any]:
    log: list[Write] = []
    stop = asyncio.Event()
    task = asyncio.create_task(writer(cluster, interval, stop, log))
    times: list[float] = []
    unsettled = 0
    try:
        if not await settled(log, cluster, 1.0, 60):
            unsettled += 1
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
            if not await settled(log, cluster, 1.0, 60):
                unsettled += 1
                print(f"  {cluster.kind}: not every node answered writes 60s after kill {k + 1}", flush=True)
        end = time.monotonic()
    finally:
        stop.set()
        await task
    errors = Counter(w.error for w in log if start <= w.sent <= end and w.status != 200)
    return {"times": times, "failed": kills - len(times), "errors": errors, "unsettled": unsettled,
            "writes": sum(1 for w in log if start <= w.sent <= end and w.status == 200)}


# -- throughput --------------------------------------------------------------------------------------

def writes_cell(cluster: Cluster, connections: int, duration: int) -> dict[str, Any]:
    """The active alone (standbys stopped): kv-v2 writes to random keys with wrk."""
    active = cluster.active()
    assert active is not None and active.proc is not None
    for n in cluster.nodes:
        if n is not active:
            n.stop()
    server = Server(cluster.kind, active.addr, active.proc, str(cluster.work), token=cluster.token)
    return run_wrk(server, "secret/data/k0", RANDOM_WRITE, connections, duration)


def wrk_parallel(cluster: Cluster, nodes: list[Node], connections: int, duration: int) -> dict[str, Any]:
    """One wrk per node (not pinned), ``connections`` split among them, GETs of secret/data/bench."""
    per = max(1, connections // len(nodes))
    procs = [subprocess.Popen(["wrk", "-t1", f"-c{per}", f"-d{duration}s", "--latency",
                               "-H", f"X-Vault-Token: {cluster.token}", f"{n.addr}/v1/secret/data/bench"],
                              stdout=subprocess.PIPE, text=True) for n in nodes]
    outs = [p.communicate()[0] for p in procs]
    rps = sum(float(re.search(r"Requests/sec:\s+([\d.]+)", o).group(1)) for o in outs)  # type: ignore[union-attr]
    bad = sum(int(m.group(1)) for o in outs for m in [re.search(r"Non-2xx or 3xx responses: (\d+)", o)] if m)
    return {"rps": rps, "non2xx": bad, "connections": per * len(nodes)}


def reads_cells(counts: list[int], ttl: str, connections: int, duration: int) -> dict[int, dict[str, Any]]:
    cluster = start_cluster("strongroom", 1, "", ttl)
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
        row = [str(sum(c for e, c in fail[n]["errors"].items() if DEAD_LEADER in e)) for n in names]
        print(f"| answers \"{DEAD_LEADER}\" during the rounds | " + " | ".join(row) + " |" + (" |" if two else ""))
        row = [str(sum(c for e, c in fail[n]["errors"].items() if e.startswith("500"))) for n in names]
        print("| 500 answers during the rounds | " + " | ".join(row) + " |" + (" |" if two else ""))
    if writes:
        cells = [writes.get(n) for n in names]
        row = [f"{c['rps']:.0f} req/s (p50 {c['p50']}, p99 {c['p99']}){' INVALID' if c['invalid'] else ''}"
               if c else "n/a" for c in cells]
        ratio = ""
        if two and cells[0] and cells[1] and cells[1]["rps"]:
            ratio = f" {cells[0]['rps'] / cells[1]['rps']:.2f}x |"
        print(f"| kv-v2 writes, postgresql storage, c={args.connections} | " + " | ".join(row) + " |"
              + (ratio or (" |" if two else "")))
    for count, r in reads.items():
        cells = [f"{r['rps']:.0f} req/s" + (f" ({r['non2xx']} non-2xx)" if r["non2xx"] else "")
                 if n == "strongroom" else "" for n in names]
        print(f"| kv-v2 reads, {count} Strongroom node(s), c={r['connections']} | " + " | ".join(cells) + " |"
              + (" |" if two else ""))
    for n in names:
        if n in fail:
            f = fail[n]
            print(f"\n{n}: {f['writes']} writes acknowledged during the rounds; other answers: "
                  + (", ".join(f"{e!r} x{c}" for e, c in f["errors"].most_common()) or "none")
                  + (f"; {f['unsettled']} time(s) not every node answered writes within 60s" if f["unsettled"] else ""))
    print(f"\nStrongroom ha_lock_ttl = {args.sr_ttl}; OpenBao's PostgreSQL lock TTL is fixed (15 s). "
          f"Write interval {args.interval * 1000:.0f} ms, round-robin over the 3 nodes; 'connection refused' is the dead node.")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--duration", type=int, default=10, help="seconds of each wrk cell")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--interval", type=float, default=0.02, help="seconds between two writes of the failover client")
    ap.add_argument("--limit", type=float, default=120, help="give up on a failover after this many seconds")
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
                fail[name] = asyncio.run(failover_rounds(cluster, args.kills, args.interval, args.limit))
            if "writes" not in skip:
                writes[name] = writes_cell(cluster, args.connections, args.duration)
                print(f"  {name}: {writes[name]['rps']:.0f} writes/s", flush=True)
        finally:
            dispose(cluster)
    if "reads" not in skip and "strongroom" in names:
        reads = reads_cells([int(c) for c in args.reads.split(",")], args.sr_ttl, args.connections, args.duration)
    report(names, fail, writes, reads, args)
    print(f"\n(run took {time.monotonic() - began:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
