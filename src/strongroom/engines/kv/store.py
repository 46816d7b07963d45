"""Reading and writing KV v2 records, and the rules that combine key and mount settings.

Every function takes the mount's :class:`~strongroom.logical.Storage`; the layout it writes is
documented in :mod:`strongroom.engines.kv.models`.
"""

from __future__ import annotations

from typing import Any

from strongroom.engines.kv.models import (
    CONFIG_KEY,
    DEFAULT_MAX_VERSIONS,
    NANOS,
    KeyMetadata,
    KVConfig,
    VersionInfo,
    VersionRecord,
    metadata_key,
    version_key,
    versions_prefix,
)
from strongroom.errors import CheckAndSetMismatch, InvalidRequest
from strongroom.logical import Storage, WriteOp, apply_writes

CAS_REQUIRED = "check-and-set parameter required for this call"
CAS_MISMATCH = "check-and-set parameter did not match the current version"


# -- mount config ---------------------------------------------------------------------------------
async def load_config(storage: Storage) -> KVConfig:
    raw = await storage.get(CONFIG_KEY)
    return KVConfig() if raw is None else KVConfig.from_json(raw)


async def save_config(storage: Storage, config: KVConfig) -> None:
    await storage.put(CONFIG_KEY, config.to_json())


# -- effective settings: how a key's own setting and the mount's combine (as OpenBao does) ----------
def max_versions(config: KVConfig, meta: KeyMetadata) -> int:
    """The larger of the key's and the mount's limits; 10 when neither is set."""
    return max(meta.max_versions, config.max_versions) or DEFAULT_MAX_VERSIONS


def delete_version_after(config: KVConfig, meta: KeyMetadata) -> int:
    """The shorter of the key's and the mount's delays, ignoring unset (0) ones; 0 = never."""
    set_values = [v for v in (meta.delete_version_after, config.delete_version_after) if v > 0]
    return min(set_values) if set_values else 0


def deletion_time_for(config: KVConfig, meta: KeyMetadata, now: int) -> int:
    after = delete_version_after(config, meta)
    return now + after * NANOS if after else 0


def check_cas(config: KVConfig, meta: KeyMetadata, cas: int | None) -> None:
    """Check-and-set for data writes: ``cas`` must equal the current version (0 for a new key)."""
    if cas is None:
        if config.cas_required or meta.cas_required:
            raise InvalidRequest(CAS_REQUIRED)
        return
    if cas != meta.current_version:
        raise CheckAndSetMismatch(CAS_MISMATCH)


def parse_cas(options: dict[str, Any]) -> int | None:
    """``options.cas`` as an int, None when absent. Lenient like Vault: "3" is 3, null is 0."""
    if "cas" not in options:
        return None
    value = options["cas"]
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise InvalidRequest("error parsing check-and-set parameter")


# -- key metadata and versions -------------------------------------------------------------------
async def load_metadata(storage: Storage, path: str) -> KeyMetadata | None:
    raw = await storage.get(metadata_key(path))
    return None if raw is None else KeyMetadata.from_json(raw)


async def save_metadata(storage: Storage, meta: KeyMetadata) -> None:
    await storage.put(metadata_key(meta.key), meta.to_json())


async def load_version(storage: Storage, path: str, version: int) -> dict[str, Any] | None:
    raw = await storage.get(version_key(path, version))
    return None if raw is None else VersionRecord.from_json(raw).data


def prune(meta: KeyMetadata, keep: int) -> list[int]:
    """Drop bookkeeping of versions older than the newest ``keep``; the version numbers dropped.

    Like Vault, ``oldest_version`` moves up as soon as the current version reaches the limit,
    even when nothing older exists any more.
    """
    cutoff = meta.current_version - keep + 1
    if cutoff <= meta.oldest_version:
        return []
    dropped = sorted(v for v in meta.versions if v < cutoff)
    for v in dropped:
        del meta.versions[v]
    meta.oldest_version = cutoff
    return dropped


async def write_version(
    storage: Storage, config: KVConfig, meta: KeyMetadata, data: dict[str, Any], now: int
) -> int:
    """Store ``data`` as the next version of ``meta``'s key and prune; the new version number.

    One batch, so one durable commit (atomic on sqlite): the version record, then the metadata
    that makes it current, then the deletes of pruned versions. Where storage applies the batch
    write by write, that order means a crash leaves at worst an unreferenced record, never
    metadata pointing at nothing.
    """
    version = meta.current_version + 1
    meta.versions[version] = VersionInfo(created_time=now, deletion_time=deletion_time_for(config, meta, now))
    meta.current_version = version
    meta.updated_time = now
    if not meta.created_time:
        meta.created_time = now
    dropped = prune(meta, max_versions(config, meta))
    ops: list[WriteOp] = [
        (version_key(meta.key, version), VersionRecord(data=data, created_time=now).to_json()),
        (metadata_key(meta.key), meta.to_json()),
    ]
    ops += [(version_key(meta.key, v), None) for v in dropped]
    await apply_writes(storage, ops)
    return version


async def destroy_versions(storage: Storage, meta: KeyMetadata, versions: list[int]) -> bool:
    """Permanently remove the data of ``versions``; whether any bookkeeping changed.

    One batch: the records go first, then the metadata marks them destroyed.
    """
    ops: list[WriteOp] = []
    for v in versions:
        info = meta.versions.get(v)
        if info is None or info.destroyed:
            continue
        info.destroyed = True
        ops.append((version_key(meta.key, v), None))
    if ops:
        ops.append((metadata_key(meta.key), meta.to_json()))
        await apply_writes(storage, ops)
    return bool(ops)


async def delete_key(storage: Storage, path: str) -> None:
    """Remove a key's metadata and every version record (listed, so strays go too)."""
    prefix = versions_prefix(path)
    for name in await storage.list(prefix):
        if not name.endswith("/"):
            await storage.delete(prefix + name)
    await storage.delete(metadata_key(path))
