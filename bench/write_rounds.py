"""In-process probe of the write path: commit rounds and CPU per operation. Not a test.

Builds the server's storage stack (sqlite behind the ciphertext cache) in a directory of your
choice, bootstraps a core, and drives token create, kv-v2 write and approle login through
``Core.handle_request`` (no HTTP, no audit device):

  - rounds/op: sqlite commits per operation, one operation at a time (each commit is one fsync);
  - ops/s and CPU ms/op with ``--concurrency`` operations in flight (CPU counts every thread,
    so the sqlite writer's work is included).

Put the database on tmpfs to see the CPU cost without fsync latency, on disk for the real thing:

    python bench/write_rounds.py --dir /dev/shm/wr      # CPU-bound
    python bench/write_rounds.py --dir /tmp/wr           # with fsync
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from strongroom.core import Core
from strongroom.logical import Operation, Request
from strongroom.storage.cache import CachedStorage
from strongroom.storage.sqlite import SqliteStorage, open_sqlite

Op = Callable[[int], Awaitable[object]]


async def _setup(directory: Path) -> tuple[Core, SqliteStorage, dict[str, str]]:
    shutil.rmtree(directory, ignore_errors=True)
    physical = await open_sqlite({"path": str(directory / "sr.db")})
    assert isinstance(physical, SqliteStorage)
    core = Core(CachedStorage(physical))
    _, root = await core.dev_bootstrap("root")

    async def call(op: Operation, path: str, data: dict[str, object]) -> dict[str, object]:
        resp = await core.handle_request(Request(op, path, dict(data), client_token=root))
        return resp.data or {} if resp is not None else {}

    await call(Operation.UPDATE, "sys/auth/approle", {"type": "approle"})
    await call(Operation.UPDATE, "auth/approle/role/bench",
               {"token_policies": ["default"], "token_ttl": "1h", "secret_id_num_uses": 0})
    role_id = (await call(Operation.READ, "auth/approle/role/bench/role-id", {}))["role_id"]
    secret_id = (await call(Operation.UPDATE, "auth/approle/role/bench/secret-id", {}))["secret_id"]
    for i in range(200):
        await call(Operation.UPDATE, f"secret/data/k{i}", {"data": {"password": f"{i:032d}"}})
    return core, physical, {"root": root, "role_id": str(role_id), "secret_id": str(secret_id)}


def _ops(core: Core, creds: dict[str, str]) -> dict[str, Op]:
    root = creds["root"]

    async def token_create(i: int) -> object:
        return await core.handle_request(Request(Operation.UPDATE, "auth/token/create",
                                                 {"policies": ["default"], "ttl": "1h"}, client_token=root))

    async def kv_write(i: int) -> object:
        return await core.handle_request(Request(Operation.UPDATE, f"secret/data/k{random.randrange(200)}",
                                                 {"data": {"password": "w" * 32}}, client_token=root))

    async def approle_login(i: int) -> object:
        return await core.handle_request(Request(Operation.UPDATE, "auth/approle/login",
                                                 {"role_id": creds["role_id"], "secret_id": creds["secret_id"]}))

    return {"token create": token_create, "kv-v2 write": kv_write, "approle login": approle_login}


async def _rounds(op: Op, physical: SqliteStorage, n: int) -> float:
    before = physical.commits
    for i in range(n):
        await op(i)
    return (physical.commits - before) / n


async def _throughput(op: Op, physical: SqliteStorage, n: int, concurrency: int) -> tuple[float, float, float]:
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            await op(i)

    before = physical.commits
    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return n / wall, cpu / n * 1000, (physical.commits - before) / n


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default="/dev/shm/strongroom-write-rounds")
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args()
    directory = Path(args.dir)
    core, physical, creds = await _setup(directory)
    try:
        print(f"| op | rounds/op (1 in flight) | ops/s ({args.concurrency} in flight) | CPU ms/op | commits/op |")
        print("|---|---|---|---|---|")
        for name, op in _ops(core, creds).items():
            rounds = await _rounds(op, physical, 50)
            rate, cpu_ms, commits = await _throughput(op, physical, args.n, args.concurrency)
            print(f"| {name} | {rounds:.2f} | {rate:.0f} | {cpu_ms:.2f} | {commits:.3f} |", flush=True)
    finally:
        await core.seal()
        await physical.close()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
