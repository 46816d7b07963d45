"""HA clusters for bench/ha_bench.py: Strongroom or OpenBao nodes on their own database of the local
PostgreSQL (created for the run, dropped afterwards), initialised with 5 shares / threshold 3."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import psycopg

from bench import free_port

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


# -- CPU budgets -------------------------------------------------------------------------------------

CGROUP_CPU = Path("/sys/fs/cgroup/cpu")  # the cgroup v1 cpu controller
CFS_PERIOD_US = 100_000


class CgroupError(RuntimeError):
    pass


@dataclass
class CpuBudget:
    """At most ``cores`` of CPU time per node: each node's server process, with all its threads
    (cgroup.procs), in its own cgroup CGROUP_CPU/strongroom-bench-<our pid>-<node>, with a CFS quota
    of ``cores`` x the period. :meth:`remove` deletes the groups (their processes stopped first)."""
    cores: float
    root: Path = CGROUP_CPU
    groups: dict[str, Path] = field(default_factory=dict)

    def group(self, name: str) -> Path:
        path = self.groups.get(name)
        if path is None:
            path = self.root / f"strongroom-bench-{os.getpid()}-{name}"
            try:
                path.mkdir()
                self.groups[name] = path  # before the writes: remove() also cleans a half-made group
                (path / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
                (path / "cpu.cfs_quota_us").write_text(str(max(1000, round(self.cores * CFS_PERIOD_US))))
            except OSError as e:
                raise CgroupError(f"--node-cpu needs a writable cgroup v1 cpu controller at {self.root} "
                                  f"(run as root; a cgroup-v2-only host is not supported): {e}") from e
        return path

    def check(self) -> None:
        """Raises CgroupError unless a group can be made here (made and removed again)."""
        try:
            self.group("check")
        finally:
            self.remove()

    def place(self, name: str, pid: int) -> None:
        try:
            (self.group(name) / "cgroup.procs").write_text(str(pid))
        except OSError as e:
            raise CgroupError(f"cannot move {name} (pid {pid}) into {self.group(name)}: {e}") from e

    def throttling(self, name: str) -> tuple[int, int]:
        """(periods, periods throttled) of the node's group so far, from its cpu.stat."""
        path = self.groups.get(name)
        if path is None:
            return 0, 0
        stat = dict(line.split() for line in (path / "cpu.stat").read_text().splitlines() if line.strip())
        return int(stat.get("nr_periods", 0)), int(stat.get("nr_throttled", 0))

    def remove(self) -> None:
        """Removes every group; a process still in one is moved back to the root group first."""
        for name, path in list(self.groups.items()):
            try:
                for pid in (path / "cgroup.procs").read_text().split():
                    (self.root / "cgroup.procs").write_text(pid)
                path.rmdir()
                del self.groups[name]
            except FileNotFoundError:
                del self.groups[name]
            except OSError as e:
                print(f"  could not remove cgroup {path} ({e}): rmdir it by hand", file=sys.stderr,
                      flush=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and all its threads so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14, 15


# -- nodes and clusters ------------------------------------------------------------------------------

@dataclass
class Node:
    kind: str
    name: str
    port: int
    config: Path
    cpu: str  # taskset's CPU list, "" for none
    budget: CpuBudget | None = None  # a CPU budget of its own (cgroup), or none
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
        if self.budget is not None:
            try:
                self.budget.place(self.name, self.proc.pid)
            except CgroupError:
                self.kill()
                raise
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
    extra: str = ""  # more top-level HCL for every node (Strongroom: standby_reads = true)
    budget: CpuBudget | None = None  # every node's CPU budget (each in its own cgroup), or none
    node_metrics: bool = False  # Strongroom: each node answers sys/metrics itself (no token, not forwarded)

    def add_node(self, cpu: str, ttl: str) -> Node:
        name = f"{self.kind}-{len(self.nodes)}"
        port, cport = free_port(), free_port()
        url = f"postgresql://postgres@127.0.0.1:5432/{self.db}?sslmode=disable"
        if self.kind == "strongroom":
            storage = (f'storage "postgresql" {{\n  connection_url = "{url}"\n  table = "strongroom_kv"\n'
                       f'  ha_enabled = "true"\n  ha_table = "strongroom_ha_locks"\n  ha_lock_ttl = "{ttl}"\n}}\n')
            metrics = "  telemetry {\n    unauthenticated_metrics_access = true\n  }\n" if self.node_metrics else ""
            listener = f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n{metrics}}}\n'
        else:
            storage = (f'storage "postgresql" {{\n  connection_url = "{url}"\n  table = "openbao_kv_store"\n'
                       '  ha_enabled = "true"\n  ha_table = "openbao_ha_locks"\n}\n')
            listener = (f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n'
                        f'  cluster_address = "127.0.0.1:{cport}"\n  tls_disable = true\n}}\n')
        config = self.work / f"{name}.hcl"
        config.write_text(storage + listener + f'api_addr = "http://127.0.0.1:{port}"\n'
                          f'cluster_addr = "https://127.0.0.1:{cport}"\n'
                          'disable_mlock = true\nlog_level = "warn"\n' + self.extra)
        node = Node(self.kind, name, port, config, cpu, self.budget)
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


def start_cluster(kind: str, size: int, cpu: str, ttl: str, extra: str = "", budget: CpuBudget | None = None,
                  node_metrics: bool = False) -> Cluster:
    cluster = Cluster(kind, create_db(kind), Path(tempfile.mkdtemp(prefix=f"habench-{kind}-")), extra=extra,
                      budget=budget, node_metrics=node_metrics)
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
        dispose(cluster)
        raise


def dispose(cluster: Cluster) -> None:
    """Stops the nodes, drops the database, removes the work directory and the nodes' cgroups."""
    try:
        cluster.stop()
        drop_db(cluster.db)
        shutil.rmtree(cluster.work, ignore_errors=True)
    finally:
        if cluster.budget is not None:
            cluster.budget.remove()
