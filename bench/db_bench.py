"""Dynamic database credentials, side by side: Strongroom and OpenBao, same PostgreSQL, same run.

Not a test. Both servers run ``server -dev`` (in-memory storage) pinned to CPU 0; the load
generator (wrk) is pinned to CPU 1; PostgreSQL (127.0.0.1:5432, user postgres) serves both. Each
server gets a database mount, a connection and a role whose users carry a per-server name prefix.

    python bench/db_bench.py                        # creds at 1/16/64 connections, revoke-prefix of 1000
    python bench/db_bench.py --duration 5 --connections 1,16,64 --leases 1000
    python bench/db_bench.py --only strongroom
    python bench/db_bench.py --password-authentication scram-sha-256   # the servers hash, not PostgreSQL

Cells:
  creds c=N     GET database/creds/bench for --duration seconds over N connections (each answer a new
                PostgreSQL role; they are revoked after the cell, outside the measurement)
  revoke 1000   --leases credentials issued, then one PUT sys/leases/revoke-prefix/database/creds/revoke
                (sync): the seconds until it returns, checked against pg_roles (every user gone)
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import Server, free_port, settle, wait_ready  # noqa: E402

PG_URL = "postgresql://{{username}}:{{password}}@127.0.0.1:5432/postgres"
#: The role's creation statements, in Vault's template syntax; bench/db_ceiling.py runs the same two
#: statements directly against PostgreSQL (each alone and together) to measure PostgreSQL's own ceiling.
CREATE_ROLE = "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"
GRANT_CONNECT = "GRANT CONNECT ON DATABASE postgres TO \"{{name}}\";"
CREATE = CREATE_ROLE + " " + GRANT_CONNECT


def call(addr: str, method: str, path: str, token: str = "", body: Any = None) -> tuple[int, Any]:
    """One request, waiting as long as a revocation of thousands of users takes."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{addr}/v1/{path}", data=data, method=method)
    if token:
        req.add_header("X-Vault-Token", token)
    try:
        with urllib.request.urlopen(req, timeout=900) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw) if raw else None


@dataclass
class Target:
    server: Server
    prefix: str  # every user this server makes starts with it


def start(name: str) -> Server:
    port = free_port()
    if name == "strongroom":
        cmd = [sys.executable, "-m", "strongroom", "server", "-dev"]
    else:
        cmd = [shutil.which("bao") or str(Path(sys.executable).with_name("bao")), "server", "-dev"]
    work = tempfile.mkdtemp(prefix=f"{name}-dbbench-")
    proc = subprocess.Popen(["taskset", "-c", "0", *cmd, f"-dev-listen-address=127.0.0.1:{port}",
                             "-dev-root-token-id=bench"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = Server(name, f"http://127.0.0.1:{port}", proc, work, token="bench")
    wait_ready(server.addr, path="sys/health")
    return server


def prepare(t: Target, password_authentication: str = "password") -> None:
    s = t.server
    status, body = call(s.addr, "POST", "sys/mounts/database", s.token, {"type": "database"})
    assert status in (200, 204), body
    status, body = call(s.addr, "POST", "database/config/pg", s.token, {
        "plugin_name": "postgresql-database-plugin", "connection_url": PG_URL, "username": "postgres",
        "password": "unused", "allowed_roles": "*", "max_open_connections": 4,
        "password_authentication": password_authentication,
        "username_template": '{{ printf "' + t.prefix + '%s-%s" (random 16) (unix_time) }}'})
    assert status in (200, 204), body
    for role in ("bench", "revoke"):
        status, body = call(s.addr, "POST", f"database/roles/{role}", s.token,
                            {"db_name": "pg", "creation_statements": [CREATE], "default_ttl": "30m"})
        assert status in (200, 204), body


def pg_users(prefix: str) -> int:
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_roles WHERE rolname LIKE %s", (prefix + "%",)).fetchone()
        return int(row[0]) if row else 0


def drop_leftovers(prefix: str) -> None:
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
        names = [r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE %s", (prefix + "%",))]
        for name in names:
            conn.execute(f'DROP OWNED BY "{name}"; DROP ROLE IF EXISTS "{name}"')


def revoke_all(t: Target, role: str) -> float:
    start = time.monotonic()
    status, body = call(t.server.addr, "PUT", f"sys/leases/revoke-prefix/database/creds/{role}", t.server.token,
                        {"sync": True})
    took = time.monotonic() - start
    assert status in (200, 204), body
    return took


def creds_cell(t: Target, connections: int, duration: int) -> dict[str, Any]:
    s = t.server
    settle(s)
    cmd = ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
           "--timeout", "30s", "-H", f"X-Vault-Token: {s.token}", f"{s.addr}/v1/database/creds/bench"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    settle(s)  # requests wrk left in flight finish (and get leases) before the cleanup
    made = pg_users(t.prefix)
    cleanup = revoke_all(t, "bench")
    left = pg_users(t.prefix)
    return {"rps": rps, "p50": lat.get("50", "?"), "p99": lat.get("99", "?"), "non2xx": int(bad.group(1)) if bad else 0,
            "users": made, "cleanup_s": cleanup, "left": left}


def revoke_cell(t: Target, leases: int) -> dict[str, Any]:
    s = t.server
    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(lambda _: call(s.addr, "GET", "database/creds/revoke", s.token)[0], range(leases)))
    assert codes.count(200) == leases, {c: codes.count(c) for c in set(codes)}
    before = pg_users(t.prefix)
    settle(s)
    took = revoke_all(t, "revoke")
    return {"leases": leases, "users_before": before, "seconds": took, "left": pg_users(t.prefix)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", default="1,16,64")
    ap.add_argument("--leases", type=int, default=1000)
    ap.add_argument("--only", choices=["strongroom", "openbao"])
    ap.add_argument("--password-authentication", default="password", choices=["password", "scram-sha-256"],
                    help="the connection's password_authentication on both servers (scram-sha-256: each "
                         "server hashes the SCRAM verifier itself instead of PostgreSQL)")
    args = ap.parse_args()
    names = [args.only] if args.only else ["strongroom", "openbao"]
    conns = [int(c) for c in args.connections.split(",")]
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        t = Target(start(name), "srb-" if name == "strongroom" else "obb-")
        drop_leftovers(t.prefix)
        try:
            prepare(t, args.password_authentication)
            results[name] = {f"c={c}": creds_cell(t, c, args.duration) for c in conns}
            results[name]["revoke"] = revoke_cell(t, args.leases)
        finally:
            t.server.stop()
            drop_leftovers(t.prefix)
    print("\n| cell | " + " | ".join(names) + (" | ratio |" if len(names) == 2 else " |"))
    print("|---|" + "---|" * (len(names) + (1 if len(names) == 2 else 0)))
    for c in conns:
        cells = [results[n][f"c={c}"] for n in names]
        row = [f"{r['rps']:.0f} req/s (p50 {r['p50']}, p99 {r['p99']}, non-2xx {r['non2xx']})" for r in cells]
        ratio = f" {cells[0]['rps'] / cells[1]['rps']:.2f}x |" if len(cells) == 2 and cells[1]["rps"] else ""
        print(f"| creds c={c} | " + " | ".join(row) + " |" + ratio)
    cells = [results[n]["revoke"] for n in names]
    row = [f"{r['seconds']:.2f} s ({r['leases'] / r['seconds']:.0f}/s, left {r['left']})" for r in cells]
    ratio = f" {cells[1]['seconds'] / cells[0]['seconds']:.2f}x faster |" if len(cells) == 2 else ""
    print(f"| revoke-prefix {args.leases} | " + " | ".join(row) + " |" + ratio)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
