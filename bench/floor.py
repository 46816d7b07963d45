"""The CPython floor: the least work a Vault-compatible answer needs, measured beside OpenBao.

Not a test, and not Strongroom. A bare server on the same stack as Strongroom's edge (uvloop,
httptools, orjson, cryptography, and the keyed HMAC of strongroom.audit.mac) that does only what no
design can skip for these requests, with none of Strongroom's routing, policies, framework or leases:

- parse the HTTP/1.1 request (keep-alive) and its JSON body;
- find the token: HMAC of the presented token (tokens are stored hashed), one dict lookup;
- one audit line before the work and one after, each with the token and accessor HMAC'd, every
  data string HMAC'd, a chain HMAC over the line (as Strongroom's file device) and one ``write``;
- the work itself: transit encrypt (AES-256-GCM, random nonce), transit sign (Ed25519), or a kv-v2
  read that misses every cache (two sqlite point reads, two AES-GCM decrypts, JSON);
- Vault's JSON envelope with a fresh request id.

If this floor is not N times OpenBao's req/s on one core, no Python server of this shape is:
the rest of a real server (ACL, routing, field checks, metrics) only adds to it.

    python bench/floor.py --openbao --duration 8           # floor, Strongroom and OpenBao, same run
    python bench/floor.py serve --port 18999 --db /tmp/f.db  # the floor server alone (CPU 0)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

from strongroom.audit.mac import KeyedSha256  # HMAC-SHA256 with the key schedule done once

TOKEN = "hvs.floorfloorfloorfloorfloor"
KEYS = 100_000  # kv-v2 secrets in the floor's database (the miss bench's 100k)


class Floor:
    def __init__(self, db: str, audit_path: str) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self.salt = KeyedSha256(os.urandom(32))
        self.chain = KeyedSha256(os.urandom(32))
        self.store_salt = KeyedSha256(os.urandom(32))
        self.tokens = {self.store_salt.hexdigest(TOKEN.encode()): {
            "accessor": "floor-accessor", "policies": ["root"], "display_name": "root"}}
        self.transit = AESGCM(os.urandom(32))
        self.signer = Ed25519PrivateKey.generate()
        self.barrier = AESGCM(hashlib.sha256(b"floor barrier, bench data only").digest())  # the db outlives a run
        self.fd = os.open(audit_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.seq, self.prev = 0, ""
        self.db = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID")
        if not self.db.execute("SELECT 1 FROM kv LIMIT 1").fetchall():
            self._fill()

    def _seal(self, key: str, value: Any) -> bytes:
        nonce = os.urandom(12)
        return nonce + self.barrier.encrypt(nonce, orjson.dumps(value), key.encode())

    def _open(self, key: str, blob: bytes) -> Any:
        return orjson.loads(self.barrier.decrypt(blob[:12], blob[12:], key.encode()))

    def _fill(self) -> None:
        rows = []
        for i in range(KEYS):
            meta, data = f"kv/metadata/k{i}", f"kv/versions/k{i}/1"
            rows.append((meta, self._seal(meta, {"current_version": 1, "versions": {"1": {
                "created_time": "2026-12-07T00:00:00Z", "deletion_time": "", "destroyed": False}}})))
            rows.append((data, self._seal(data, {"data": {"password": f"{i:032d}"}, "created_time": 0})))
        self.db.execute("BEGIN")
        self.db.executemany("INSERT INTO kv VALUES (?, ?)", rows)
        self.db.execute("COMMIT")

    def _get(self, key: str) -> Any:
        row = self.db.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        return None if row is None else self._open(key, row[0])

    def _hashed(self, value: Any) -> Any:
        if isinstance(value, str):
            return "hmac-sha256:" + self.salt.hexdigest(value.encode())
        if isinstance(value, dict):
            return {k: self._hashed(v) for k, v in value.items()}
        return value

    def _audit(self, entry: dict[str, Any]) -> None:
        body = orjson.dumps(entry)
        self.seq += 1
        head = b"%s\n%d\n" % (self.prev.encode(), self.seq)
        self.prev = self.chain.hexdigest(head, body)
        os.write(self.fd, body[:-1] + b',"chain":{"seq":%d,"hmac":"%s"}}\n' % (self.seq, self.prev.encode()))

    def handle(self, method: bytes, path: str, token: str, body: bytes, peer: tuple[str, int]) -> tuple[int, bytes]:
        entry = self.tokens.get(self.store_salt.hexdigest(token.encode())) if token else None
        if entry is None:
            return 403, b'{"errors":["permission denied"]}'
        rel = path[4:]  # "/v1/"
        data = orjson.loads(body) if body else None
        request_id = str(uuid.uuid4())
        auth = {"client_token": self._hashed(token), "accessor": self._hashed(entry["accessor"]),
                "display_name": entry["display_name"], "policies": entry["policies"],
                "token_policies": entry["policies"], "token_type": "service"}
        request = {"id": request_id, "operation": "update" if method == b"POST" else "read",
                   "client_token": auth["client_token"], "client_token_accessor": auth["accessor"],
                   "namespace": {"id": "root"}, "path": rel, "remote_address": peer[0], "remote_port": peer[1]}
        if data:
            request["data"] = self._hashed(data)
        now = time.time_ns()
        self._audit({"time": now, "type": "request", "auth": auth, "request": request})
        if rel.startswith("transit/encrypt/"):
            nonce = os.urandom(12)
            sealed = self.transit.encrypt(nonce, base64.b64decode(data["plaintext"]), None)
            out = {"ciphertext": "vault:v1:" + base64.b64encode(nonce + sealed).decode(), "key_version": 1}
        elif rel.startswith("transit/sign/"):
            sig = self.signer.sign(base64.b64decode(data["input"]))
            out = {"signature": "vault:v1:" + base64.b64encode(sig).decode(), "key_version": 1}
        elif rel.startswith("secret/data/"):
            name = rel[len("secret/data/"):]
            meta = self._get(f"kv/metadata/{name}")
            version = str(meta["current_version"])
            stored = self._get(f"kv/versions/{name}/{version}")
            out = {"data": stored["data"], "metadata": {**meta["versions"][version], "version": int(version),
                                                         "custom_metadata": None}}
        else:
            return 404, b'{"errors":[]}'
        self._audit({"time": time.time_ns(), "type": "response", "auth": auth, "request": request,
                     "response": {"data": self._hashed(out)}})
        return 200, orjson.dumps({"request_id": request_id, "lease_id": "", "renewable": False,
                                  "lease_duration": 0, "data": out, "wrap_info": None, "warnings": None,
                                  "auth": None})


class Connection(asyncio.Protocol):
    def __init__(self, floor: Floor) -> None:
        import httptools

        self.floor = floor
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.token = ""
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.peer = transport.get_extra_info("peername")

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"x-vault-token":
            self.token = value.decode()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        status, out = self.floor.handle(self.parser.get_method(), self.url.decode(), self.token,
                                        b"".join(self.body), self.peer)
        self.body, self.token = [], ""
        self.transport.write(b"HTTP/1.1 %d OK\r\nCache-Control: no-store\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (status, len(out), out))


def serve(port: int, db: str, audit: str) -> None:
    import uvloop

    floor = Floor(db, audit)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: Connection(floor), "127.0.0.1", port, backlog=1024)
        print("ready", flush=True)
        await server.serve_forever()

    uvloop.run(main())


def compare(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench

    names = ["transit encrypt aes256-gcm96 (1 KiB)", "transit sign ed25519"]
    kv_name = "kv-v2 read, random (floor: of 100k, every read to sqlite; OpenBao: of bench.py's 10k)"
    work = tempfile.mkdtemp(prefix="floor-")
    port = bench.free_port()
    proc = subprocess.Popen(["taskset", "-c", "0", sys.executable, __file__, "serve", "--port", str(port),
                             "--db", f"{work}/floor.db", "--audit", f"{work}/audit.log"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    floor = bench.Server("floor", f"http://127.0.0.1:{port}", proc, work, token=TOKEN)
    servers = [floor, bench.start_strongroom(bench.free_port())]
    if args.openbao:
        servers.append(bench.start_openbao(bench.free_port()))
    results: dict[tuple[str, str], dict[str, Any]] = {}
    try:
        for s in servers[1:]:
            bench.prepare(s)
        for s in servers:
            for name in names:
                path, script, _ = bench.SCENARIOS[name]
                results[(s.name, name)] = bench.run_wrk(s, path, script, args.connections, args.duration)
            if s.name == "strongroom":
                continue  # its read cache holds much of 10k keys: bench/miss_bench.py measures its misses
            keys = KEYS if s is floor else bench.RANDOM_KEYS
            script = 'request = function()\n  return wrk.format("GET", "/v1/secret/data/k" .. math.random(0, %d))\nend\n'
            results[(s.name, kv_name)] = bench.run_wrk(s, "secret/data/k0", script % (keys - 1), args.connections,
                                                       args.duration)
    finally:
        for s in servers:
            s.stop()
    print("\n| scenario | floor req/s | p99 | strongroom req/s | p99 | openbao req/s | p99 | floor / openbao |"
          " strongroom / openbao |\n|---|---|---|---|---|---|---|---|---|")

    def cells(r: dict[str, Any] | None) -> str:
        return f"{r['rps']:.0f}{' INVALID' if r['invalid'] else ''} | {r['p99']} |" if r else " | |"

    for name in [*names, kv_name]:
        f, sr, o = (results.get((server, name)) for server in ("floor", "strongroom", "openbao"))
        ratios = " | ".join(f"{r['rps'] / o['rps']:.2f}x" if r and o else "" for r in (f, sr))
        print(f"| {name} | {cells(f)} {cells(sr)} {cells(o)} {ratios} |")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", nargs="?", default="compare", choices=["compare", "serve"])
    ap.add_argument("--port", type=int, default=18999)
    ap.add_argument("--db", default="")
    ap.add_argument("--audit", default="")
    ap.add_argument("--openbao", action="store_true")
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--connections", type=int, default=16)
    args = ap.parse_args()
    if args.mode == "serve":
        serve(args.port, args.db, args.audit)
        return 0
    return compare(args)


if __name__ == "__main__":
    raise SystemExit(main())
