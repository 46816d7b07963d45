"""Where a read that misses the read cache spends its time, in-process (no sockets).

Not a test. A core on sqlite with a file audit device and the read cache off; N kv-v2 secrets and
N tokens; then random kv-v2 reads and token lookup-selfs through ``App.handle``, as the HTTP server
calls it (headers a real client sends, Content-Type included). Prints microseconds per request and
the functions that take the most of it (cProfile, own time and cumulative), so the phases of
issue #12 can be read off: token lookup, ACL, audit request entry, routing, storage read, decrypt,
backend, audit response entry, envelope.

    python bench/profile_miss.py --keys 20000 --reads 20000
    python bench/profile_miss.py --profile kv    # cProfile the kv reads only
"""

from __future__ import annotations

import argparse
import asyncio
import random
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


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="sr-profile-"))
    storage = await open_sqlite({"path": str(work / "db.sqlite")})
    config = CoreConfig(storage_type="sqlite", read_cache_size=0, audit=AuditConfig(devices=(
        DeclaredDevice("file", "file/", options=(("file_path", str(work / "audit.log")),)),)))
    core = Core(storage, config)
    _, root = await core.dev_bootstrap("root")
    app = App(core)
    peer = Peer("127.0.0.1", 40000)

    async def call(method: str, path: str, token: str, body: bytes = b"") -> bytes:
        status, out = await app.handle(method, path, "", {**HEADERS, "x-vault-token": token}, body, peer)
        assert status == 200, (status, out[:200])
        return out

    sem = asyncio.Semaphore(64)

    async def put(i: int) -> None:
        async with sem:
            await call("POST", f"/v1/secret/data/k{i}", root, b'{"data":{"password":"p%d","user":"u"}}' % i)

    async def make_token(i: int) -> str:
        async with sem:
            out = await call("POST", "/v1/auth/token/create", root, b'{"policies":["default"],"ttl":"2h"}')
            import orjson
            return str(orjson.loads(out)["auth"]["client_token"])

    await asyncio.gather(*(put(i) for i in range(args.keys)))
    tokens = await asyncio.gather(*(make_token(i) for i in range(args.tokens)))
    rng = random.Random(1)
    kv = [(f"/v1/secret/data/k{rng.randrange(args.keys)}", root) for _ in range(args.reads)]
    lookups = [("/v1/auth/token/lookup-self", rng.choice(tokens)) for _ in range(args.reads)]
    # Each pass starts with the token cache empty (what population left in it too), so lookups
    # miss it; the read cache is off. SQLite's page cache stays warm, as on a busy server.

    for name, reqs in (("kv-v2 read", kv), ("token lookup-self", lookups)):
        await call("GET", reqs[0][0], reqs[0][1])  # imports, first-use work

        async def batch(reqs: list[tuple[str, str]] = reqs) -> None:
            for path, token in reqs:
                await call("GET", path, token)

        await per_request(name, batch, len(reqs), args.rounds, profile=bool(args.profile) and args.profile in name,
                          before_round=core.tokens._cache.clear)
    await core.seal()
    await storage.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=20000)
    ap.add_argument("--tokens", type=int, default=5000)
    ap.add_argument("--reads", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5, help="passes over the same requests; the best is shown")
    ap.add_argument("--profile", default="", help="kv or lookup: cProfile that scenario")
    asyncio.run(main(ap.parse_args()))
