"""Snapshots of the whole store, on any storage backend (Vault serves them for raft only):
sys/storage/raft/snapshot (GET saves; POST restores) and sys/storage/raft/snapshot-force, which the
bao CLI's ``operator raft snapshot save|restore`` call. The file format is strongroom/snapshot.py.

Nothing is decrypted: a snapshot holds the entries as stored, so it is exactly as safe at rest as
the store, and restoring one brings back its barrier (keyring, root key, seal configuration).

Save reads every entry while the server serves; the keyring is read last, so every term an entry
read before it was written with is in it (the keyring only gains terms). Restore checks the
checksums (a corrupted file is refused before anything is written), then that the snapshot's
sealed checksums open under this barrier's keyring and match (as Vault's), unless forced
(snapshot-force, as Vault: a snapshot of another cluster); then seals this node and replaces
every entry; the node unseals again with the shares of the snapshot's barrier (the original ones,
for another cluster's snapshot). A failure while writing leaves the node sealed on a partly
restored store: restore again.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import TYPE_CHECKING

from strongroom.errors import InvalidRequest
from strongroom.logical import Storage, WriteOp, apply_writes
from strongroom.snapshot import KEYRING_KEY, SEALED_NAME, SnapshotError, all_keys, decode, encode

if TYPE_CHECKING:
    from strongroom.core import Core

log = logging.getLogger(__name__)

_CHUNK = 100  # entries read concurrently / written in one batch (etcd: at most 128 ops a txn)
# Never in a snapshot, never overwritten by one: an offline migration's lock (strongroom/migrate.py).
_SKIP = frozenset({"core/migration"})


def _store(core: Core) -> Storage:
    """Where to read from: under the storage cache (a full read must not evict the hot entries)."""
    inner = getattr(core.physical, "inner", None)
    return inner if inner is not None else core.physical


async def save(core: Core) -> bytes:
    core.require_unsealed()
    storage = _store(core)
    keys = [k for k in await all_keys(storage) if k not in _SKIP and k != KEYRING_KEY]
    entries: list[tuple[str, bytes]] = []
    for i in range(0, len(keys), _CHUNK):
        chunk = keys[i:i + _CHUNK]
        values = await asyncio.gather(*(storage.get(k) for k in chunk))
        entries += [(k, v) for k, v in zip(chunk, values, strict=True) if v is not None]
    keyring = await storage.get(KEYRING_KEY)  # last: see the module docstring
    if keyring is not None:
        entries.append((KEYRING_KEY, keyring))
    return encode(entries, lambda sums: core.barrier.seal_detached(SEALED_NAME, sums), storage_type=core.storage_type)


async def restore(core: Core, data: bytes, *, force: bool) -> None:
    """Replace every stored entry by the snapshot's, then seal. Nothing is written unless the file
    is whole (checksum) and, without ``force``, of this barrier."""
    core.require_unsealed()
    try:
        snap = decode(data)
    except SnapshotError as e:
        raise InvalidRequest(f"failed to restore snapshot: {e}") from None
    entries = dict(snap.entries)
    keyring = entries.get(KEYRING_KEY)
    if keyring is None or "core/seal-config" not in entries:
        raise InvalidRequest("failed to restore snapshot: it holds no initialized barrier")
    opened = core.barrier.open_detached(SEALED_NAME, snap.sealed)
    if not force and (opened is None or not hmac.compare_digest(opened, snap.sums)):
        raise InvalidRequest("failed to restore snapshot: it was taken with a different set of unseal keys "
                             "(another barrier); use sys/storage/raft/snapshot-force to restore it anyway")
    log.warning("restoring a snapshot of %d entries (checksum %s); this node seals first",
                len(snap.entries), snap.checksum[:16])
    # Sealed before anything is written: sealing stops every part (some persist their state as they
    # stop, under the old keyring) and no request or background task writes during the restore.
    await core.seal()
    storage = core.physical  # through the cache, so it never answers with a replaced entry
    current = [k for k in await all_keys(storage) if k not in _SKIP]
    ops: list[WriteOp] = [(k, None) for k in current if k not in entries]
    ops += [(k, v) for k, v in snap.entries if k not in _SKIP]
    for i in range(0, len(ops), _CHUNK):
        await apply_writes(storage, ops[i:i + _CHUNK])
