"""``strongroom operator migrate``: copy every entry, as stored (encrypted by the barrier, never
decrypted), from one physical storage to another, as Vault's ``operator migrate`` does.

Offline, as in Vault: while it runs, the source holds a migration lock entry (``core/migration``,
the time it started) and ``strongroom server`` refuses to start on a store that has one; the entry
goes when the migration ends, failed or not (``-reset`` removes one a killed migration left
behind). A source whose HA lock an active server holds is refused outright (its stanza must say
``ha_enabled``, as the servers' does); a server on sqlite or file is not detected, as in Vault.

Keys are copied in sorted order, so an interrupted migration resumes with ``-start=KEY`` (every key
at or after it). Unlike Vault, which overwrites whatever the destination holds, a destination that
is not empty is refused unless ``-start`` is given (resuming into the partial copy): a
mistyped destination must not have another cluster's keyring overwritten.

Process entry point like server.py: it alone (with server.py) opens storage for the CLI.
"""

from __future__ import annotations

import asyncio
import datetime
import sys
from collections.abc import Callable
from typing import Any

import orjson

from strongroom.config import ConfigError
from strongroom.config.migrate import load_migration_config
from strongroom.errors import InvalidRequest, StrongroomError
from strongroom.logical import Storage, WriteOp, apply_writes
from strongroom.snapshot import all_keys
from strongroom.storage import PhysicalStorage, open_storage

MIGRATION_LOCK_KEY = "core/migration"  # Vault's key: {"start_time": RFC 3339}
_CHUNK = 100  # entries read concurrently, then written in one batch (etcd: at most 128 ops a txn)


async def migration_in_progress(storage: Storage) -> str | None:
    """When the migration whose lock ``storage`` holds started; None when there is none."""
    raw = await storage.get(MIGRATION_LOCK_KEY)
    if raw is None:
        return None
    try:
        return str(orjson.loads(raw).get("start_time", "?"))
    except (orjson.JSONDecodeError, AttributeError):
        return "?"


async def refuse_if_active(storage: Any) -> None:
    """A source an active server is using (its HA lock held) is refused: the copy would miss its writes."""
    lock = getattr(storage, "ha", None)
    holder = await lock.holder() if lock is not None else None
    if holder is not None:
        who = holder[1] or holder[0]
        raise InvalidRequest(f"the source storage is in use: an active server holds its HA lock ({who}); "
                             "stop every server on it before migrating")


async def migrate(source: Storage, destination: Storage, *, start: str = "",
                  log: Callable[[str], None] = lambda _line: None) -> int:
    """Copy every entry of ``source`` (at or after ``start``) to ``destination``; the number copied."""
    await refuse_if_active(source)
    started = await migration_in_progress(source)
    if started is not None:
        raise InvalidRequest(f"Storage migration in progress (started: {started}).")
    if not start and await destination.list(""):
        raise InvalidRequest("the destination storage is not empty: migrate into an empty store "
                             "(or resume an interrupted migration with -start)")
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    await source.put(MIGRATION_LOCK_KEY, orjson.dumps({"start_time": now}))
    copied = 0
    try:
        keys = [k for k in await all_keys(source) if k >= start and k != MIGRATION_LOCK_KEY]
        for i in range(0, len(keys), _CHUNK):
            chunk = keys[i:i + _CHUNK]
            values = await asyncio.gather(*(source.get(k) for k in chunk))
            ops: list[WriteOp] = [(k, v) for k, v in zip(chunk, values, strict=True) if v is not None]
            await apply_writes(destination, ops)
            for k, _ in ops:
                log(f"copied key: {k}")
            copied += len(ops)
    finally:
        await source.delete(MIGRATION_LOCK_KEY)
    return copied


async def _run(config_path: str, start: str, reset: bool) -> int:
    src_cfg, dst_cfg = load_migration_config(config_path)
    source: PhysicalStorage = await open_storage(src_cfg.type, dict(src_cfg.options))
    try:
        if reset:
            await source.delete(MIGRATION_LOCK_KEY)
            print("Success! Migration lock reset (if it existed).")
            return 0
        destination: PhysicalStorage = await open_storage(dst_cfg.type, dict(dst_cfg.options))
        try:
            n = await migrate(source, destination, start=start, log=lambda line: print(line, flush=False))
        finally:
            await destination.close()
    finally:
        await source.close()
    print(f"Success! All of the keys have been migrated ({n} copied).", flush=True)
    return 0


def run(config_path: str, *, start: str = "", reset: bool = False) -> int:
    """The command: 0 on success, 2 (with the reason on stderr) otherwise."""
    try:
        return asyncio.run(_run(config_path, start, reset))
    except ConfigError as e:
        print(f"Error loading configuration: {e}", file=sys.stderr)
    except (StrongroomError, OSError) as e:
        print(f"Error migrating: {e}", file=sys.stderr)
    return 2
