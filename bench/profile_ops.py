"""Per-request cost of the write-shaped paths (transit encrypt, transit sign, pki issue), in-process.

Not a test. Like bench/profile_miss.py: a core on sqlite with a file audit device, requests through
``App.handle`` with the headers a real client sends; prints microseconds per request, and with
``--profile NAME`` the cProfile of that scenario.

    python bench/profile_ops.py --requests 5000
    python bench/profile_ops.py --profile encrypt
    valgrind --tool=callgrind python bench/profile_ops.py --inline-audit --rounds 1 --requests N
        (instructions per request: the difference of two runs with different N, divided)
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from inprocess import per_request

from strongroom.core import Core, CoreConfig
from strongroom.core.audit.table import AuditConfig, DeclaredDevice
from strongroom.http.app import App
from strongroom.http.logical import Peer
from strongroom.storage.sqlite import open_sqlite

HEADERS = {"content-type": "application/json", "user-agent": "hvac", "accept": "*/*",
           "accept-encoding": "gzip, deflate", "connection": "keep-alive", "host": "127.0.0.1:8200"}
PLAINTEXT_1K = "QUJD" * 341 + "QQ=="

SCENARIOS = {
    "encrypt": ("/v1/transit/encrypt/bench", b'{"plaintext":"%s"}' % PLAINTEXT_1K.encode()),
    "sign": ("/v1/transit/sign/bench-ed", b'{"input":"%s"}' % PLAINTEXT_1K.encode()),
    "kv-write": ("/v1/secret/data/w", b'{"data":{"password":"p","user":"u"}}'),
    "pki-issue": ("/v1/pki/issue/bench", b'{"common_name":"a.example.com"}'),
}


async def main(args: argparse.Namespace) -> None:
    if args.inline_audit:
        # Under valgrind every write looks slow and the file device would move its writes to a
        # thread (another code path): keep them inline so runs count the same instructions.
        from strongroom.audit.file import FileDevice
        FileDevice._too_slow = lambda self, took, *, blocked: None  # type: ignore[method-assign]
    work = Path(tempfile.mkdtemp(prefix="sr-profile-"))
    storage = await open_sqlite({"path": str(work / "db.sqlite")})
    devices = () if args.no_audit else (
        DeclaredDevice("file", "file/", options=(("file_path", str(work / "audit.log")),)),)
    config = CoreConfig(storage_type="sqlite", audit=AuditConfig(devices=devices))
    core = Core(storage, config)
    _, root = await core.dev_bootstrap("root")
    app = App(core)
    peer = Peer("127.0.0.1", 40000)

    async def call(method: str, path: str, body: bytes = b"") -> bytes:
        status, out = await app.handle(method, path, "", {**HEADERS, "x-vault-token": root}, body, peer)
        assert status in (200, 204), (status, out[:200])
        return out

    await call("POST", "/v1/sys/mounts/transit", b'{"type":"transit"}')
    await call("POST", "/v1/transit/keys/bench", b'{"type":"aes256-gcm96"}')
    await call("POST", "/v1/transit/keys/bench-ed", b'{"type":"ed25519"}')
    # bench/bench.py's pki cell: an EC P-256 root, a role issuing EC P-256 leaves.
    await call("POST", "/v1/sys/mounts/pki", b'{"type":"pki","config":{"max_lease_ttl":"87600h"}}')
    await call("POST", "/v1/pki/root/generate/internal", b'{"common_name":"Bench Root","key_type":"ec","ttl":"8760h"}')
    await call("POST", "/v1/pki/roles/bench", b'{"allow_any_name":true,"key_type":"ec","key_bits":256,"ttl":"1h"}')
    chosen = [s for s in SCENARIOS if not args.only or s in args.only.split(",")]
    for name in chosen:
        path, body = SCENARIOS[name]
        await call("POST", path, body)

        async def batch(path: str = path, body: bytes = body) -> None:
            for _ in range(args.requests):
                await call("POST", path, body)

        await per_request(name, batch, args.requests, args.rounds, profile=args.profile == name, top=(50, 35))
    await core.seal()
    await storage.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default="", help="comma-separated scenarios")
    ap.add_argument("--profile", default="", help="cProfile this scenario")
    ap.add_argument("--no-audit", action="store_true")
    ap.add_argument("--inline-audit", action="store_true", help="never move audit writes to a thread (valgrind)")
    asyncio.run(main(ap.parse_args()))
