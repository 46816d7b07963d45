"""Upgrade of a KV mount from version 1 to version 2, run eagerly when a v2 backend initializes.

Version 1 stores each secret at its own path (see :mod:`strongroom.engines.kv.v1`); version 2
keeps everything under ``_kv2/`` (see :mod:`strongroom.engines.kv.models`). So any storage key
outside ``_kv2/`` in a v2 mount is v1 data still to convert, and the check costs one list of the
mount's top level.

Each v1 secret becomes version 1 of the same path (``oldest_version`` 1, as Vault reports after
its upgrade): the version record and metadata are written, then the v1 key is deleted. A crash
midway is safe: the next initialize converts what is left, and re-converting a key whose v1
entry survived just rewrites the same version 1.

Caveat: a v1 secret whose path starts with ``_kv2/`` is indistinguishable from v2 records and is
left alone (hidden from the v2 API).
"""

from __future__ import annotations

import orjson

from strongroom.engines.kv import store
from strongroom.engines.kv.models import V2_PREFIX, KeyMetadata, VersionInfo, VersionRecord, version_key
from strongroom.logical import Storage


async def legacy_keys(storage: Storage, prefix: str = "") -> list[str]:
    """Every v1 secret path below ``prefix``, depth first, skipping the v2 area."""
    out: list[str] = []
    pending = [prefix]
    while pending:
        folder = pending.pop()
        for name in await storage.list(folder):
            full = folder + name
            if full == V2_PREFIX:
                continue
            if name.endswith("/"):
                pending.append(full)
            else:
                out.append(full)
    return sorted(out)


async def upgrade_v1_to_v2(storage: Storage, now: int) -> int:
    """Convert all v1 secrets in ``storage`` to the v2 layout; how many were converted."""
    converted = 0
    for path in await legacy_keys(storage):
        raw = await storage.get(path)
        if raw is None:
            continue
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            # Not something kv v1 wrote; leave it rather than guess.
            continue
        meta = KeyMetadata(
            key=path,
            versions={1: VersionInfo(created_time=now)},
            current_version=1,
            oldest_version=1,
            created_time=now,
            updated_time=now,
        )
        await storage.put(version_key(path, 1), VersionRecord(data=data, created_time=now).to_json())
        await store.save_metadata(storage, meta)
        await storage.delete(path)
        converted += 1
    return converted
