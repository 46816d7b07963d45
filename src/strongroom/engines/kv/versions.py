"""KV v2 version lifecycle: ``delete/<path>`` (soft delete), ``undelete/<path>`` and
``destroy/<path>`` (permanent). Unknown keys and versions are ignored, as in Vault."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.engines._request import storage_of
from strongroom.engines.kv import store
from strongroom.engines.kv.models import KeyMetadata
from strongroom.errors import InvalidRequest
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response, match_all

if TYPE_CHECKING:
    from strongroom.engines.kv.v2 import KVv2Backend


def _fields(verb: str) -> dict[str, Field]:
    return {
        "path": Field(FieldType.STRING, "Location of the secret."),
        "versions": Field(FieldType.COMMA_INT_SLICE, f"The versions to {verb}."),
    }


def paths() -> list[Path[KVv2Backend]]:
    return [
        Path(
            f"delete/{match_all('path')}",
            fields=_fields("soft-delete"),
            operations={Op.UPDATE: delete_versions},
            synopsis="Soft-delete versions of a secret; their data is kept and can be undeleted.",
        ),
        Path(
            f"undelete/{match_all('path')}",
            fields=_fields("restore"),
            operations={Op.UPDATE: undelete_versions},
            synopsis="Restore soft-deleted versions of a secret.",
        ),
        Path(
            f"destroy/{match_all('path')}",
            fields=_fields("destroy"),
            operations={Op.UPDATE: destroy_versions},
            synopsis="Permanently remove the data of versions of a secret.",
        ),
    ]


async def _target(req: Request, d: FieldData, missing: str) -> tuple[list[int], KeyMetadata | None]:
    versions: list[int] = d.get("versions")
    if not versions:
        raise InvalidRequest(missing)
    path: str = d.get("path")
    if path == "" or path.endswith("/"):
        raise InvalidRequest("cannot write to a path ending in '/'")
    return versions, await store.load_metadata(storage_of(req), path)


async def delete_versions(b: KVv2Backend, req: Request, d: FieldData) -> Response | None:
    versions, meta = await _target(req, d, "No version number provided")
    if meta is None:
        return None
    now = b.now()
    changed = False
    for v in versions:
        info = meta.versions.get(v)
        if info is not None and info.readable(now):
            info.deletion_time = now
            changed = True
    if changed:
        await store.save_metadata(storage_of(req), meta)
    return None


async def undelete_versions(b: KVv2Backend, req: Request, d: FieldData) -> Response | None:
    versions, meta = await _target(req, d, "No version number provided")
    if meta is None:
        return None
    now = b.now()
    storage = storage_of(req)
    # An undeleted version gets a fresh deletion_time when delete_version_after applies.
    deletion_time = store.deletion_time_for(await b.config_of(storage), meta, now)
    changed = False
    for v in versions:
        info = meta.versions.get(v)
        if info is not None and not info.destroyed:
            info.deletion_time = deletion_time
            changed = True
    if changed:
        await store.save_metadata(storage, meta)
    return None


async def destroy_versions(b: KVv2Backend, req: Request, d: FieldData) -> Response | None:
    versions, meta = await _target(req, d, "no version number provided")
    if meta is not None:
        await store.destroy_versions(storage_of(req), meta, versions)
    return None
