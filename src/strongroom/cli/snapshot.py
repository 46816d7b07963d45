"""``operator snapshot save|restore|inspect FILE``: the whole store, as stored (encrypted), over
sys/storage/raft/snapshot on any storage backend; inspect reads a file locally (strongroom/snapshot.py)."""

from __future__ import annotations

import os
from pathlib import Path

from strongroom.api import Client
from strongroom.cli.context import CLIError, Context, api_errors
from strongroom.cli.output import kv_table
from strongroom.snapshot import SnapshotError, decode

SAVE_HELP = """\
Usage: strongroom operator snapshot save [options] FILE

  Saves a snapshot of every stored entry, encrypted as stored, with a SHA-256
  checksum, to FILE. Requires sudo on sys/storage/raft/snapshot.

      $ strongroom operator snapshot save backup.snap"""

RESTORE_HELP = """\
Usage: strongroom operator snapshot restore [options] FILE

  Replaces every stored entry with the snapshot's. A corrupted file is
  refused; so is a snapshot of another barrier (other unseal keys) unless
  -force is given. The server seals when done: unseal it with the shares of
  the snapshot's barrier. Requires sudo on sys/storage/raft/snapshot.

      $ strongroom operator snapshot restore backup.snap"""

INSPECT_HELP = """\
Usage: strongroom operator snapshot inspect [options] FILE

  Checks a snapshot file's checksum and shows its header, without a server.

      $ strongroom operator snapshot inspect backup.snap"""


def save(argv: list[str]) -> int:
    ctx = Context("operator snapshot save", SAVE_HELP)
    (path,) = ctx.parse(argv, 1)

    async def go(c: Client) -> int:
        with api_errors("Error taking the snapshot"):
            data = await c.raw("GET", "sys/storage/raft/snapshot")
        tmp = Path(path + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # as private as the store
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        return 0

    return ctx.run(go)


def restore(argv: list[str]) -> int:
    ctx = Context("operator snapshot restore", RESTORE_HELP)
    force = ctx.fs.boolean("force", False, "Restore a snapshot of another barrier (other unseal keys).")
    (path,) = ctx.parse(argv, 1)
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise CLIError(f"Error opening snapshot file: {e.strerror or e}") from None

    async def go(c: Client) -> int:
        with api_errors("Error installing the snapshot"):
            path = "sys/storage/raft/snapshot-force" if force.value else "sys/storage/raft/snapshot"
            await c.raw("POST", path, data)
        return 0

    return ctx.run(go)


def inspect(argv: list[str]) -> int:
    ctx = Context("operator snapshot inspect", INSPECT_HELP, http=False)
    (path,) = ctx.parse(argv, 1)
    try:
        snap = decode(Path(path).read_bytes())
    except OSError as e:
        raise CLIError(f"Error opening snapshot file: {e.strerror or e}") from None
    except SnapshotError as e:
        raise CLIError(f"Error reading snapshot: {e}") from None
    info = {**snap.header, "sha256": snap.checksum, "size": sum(len(v) for _, v in snap.entries)}
    ctx.print_data(info, lambda: kv_table((k, str(v)) for k, v in info.items()))
    return 0
