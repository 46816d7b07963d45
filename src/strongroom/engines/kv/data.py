"""KV v2 ``data/<path>`` (read, write, merge-patch, soft-delete latest) and ``subkeys/<path>``."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from strongroom.engines._request import storage_of
from strongroom.engines.kv import store
from strongroom.engines.kv.models import KeyMetadata
from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response, match_all

if TYPE_CHECKING:
    from strongroom.engines.kv.v2 import KVv2Backend

PATH = Field(FieldType.STRING, "Location of the secret.")
VERSION = Field(FieldType.INT, "The version to return; the latest when unset or 0.", query=True)


def paths() -> list[Path[KVv2Backend]]:
    return [
        Path(
            f"data/{match_all('path')}",
            fields={
                "path": PATH,
                "version": VERSION,
                "options": Field(FieldType.MAP, 'Write options; "cas" (int) is the check-and-set version.'),
                "data": Field(FieldType.MAP, "The secret's key/value pairs."),
            },
            operations={
                Op.READ: read_data,
                Op.CREATE: write_data,
                Op.UPDATE: write_data,
                Op.PATCH: patch_data,
                Op.DELETE: delete_latest,
            },
            exists=key_exists,
            synopsis="Write, patch, read and delete versions of a secret.",
            description=(
                "A write stores a new version. With options.cas set, the write succeeds only if cas "
                "equals the current version (0: the key must not exist). DELETE soft-deletes the "
                "latest version; see delete/, undelete/ and destroy/ for the others."
            ),
        ),
        Path(
            f"subkeys/{match_all('path')}",
            fields={
                "path": PATH,
                "version": VERSION,
                "depth": Field(FieldType.INT, "Deepest nesting level to show; 0 for no limit.", query=True),
            },
            operations={Op.READ: read_subkeys},
            synopsis="Read a secret's structure with every leaf value replaced by null.",
        ),
    ]


def writable_key(path: str) -> str:
    if path == "" or path.endswith("/"):
        raise InvalidRequest("cannot write to a path ending in '/'")
    return path


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge recursively, null removes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def subkeys(data: dict[str, Any], depth: int, level: int = 1) -> dict[str, Any]:
    """Keys of ``data`` with leaves as None; non-empty maps below ``depth`` (0 = all) are kept."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        leaf = not isinstance(v, dict) or not v or (depth != 0 and level >= depth)
        out[k] = None if leaf else subkeys(v, depth, level + 1)
    return out


def _input(d: FieldData) -> tuple[dict[str, Any], int | None]:
    data, ok = d.get_ok("data")
    if not ok:
        raise InvalidRequest("no data provided")
    return data, store.parse_cas(d.get("options"))


async def _readable_version(
    b: KVv2Backend, req: Request, d: FieldData
) -> tuple[KeyMetadata, int, dict[str, Any] | None]:
    """(metadata, version, data); data is None when the version is soft-deleted or destroyed."""
    storage = storage_of(req)
    path = d.get("path")
    meta = await store.load_metadata(storage, path) if path else None
    if meta is None:
        raise NotFound()
    version = d.get("version")
    if version <= 0:
        version = meta.current_version
    info = meta.versions.get(version)
    if info is None:
        raise NotFound()
    if not info.readable(b.now()):
        return meta, version, None
    data = await store.load_version(storage, path, version)
    if data is None:
        raise NotFound()
    return meta, version, data


async def key_exists(b: KVv2Backend, req: Request, d: FieldData) -> bool:
    path = d.get("path")
    return bool(path) and await store.load_metadata(storage_of(req), path) is not None


async def read_data(b: KVv2Backend, req: Request, d: FieldData) -> Response | None:
    meta, version, data = await _readable_version(b, req, d)
    body = {"data": data, "metadata": meta.version_view(version)}
    if data is None:  # a deleted or destroyed version: Vault answers 404 but still shows its metadata
        return Response(data=body, status=404)
    # The same answer until the key changes (core/readcache.py watches storage), unless the version
    # is due to be deleted at a set time (not worth tracking: such a read is not kept).
    return Response(data=body, cache_until=0.0 if meta.versions[version].deletion_time else math.inf)


async def read_subkeys(b: KVv2Backend, req: Request, d: FieldData) -> Response | None:
    meta, version, data = await _readable_version(b, req, d)
    body = {
        "metadata": meta.version_view(version),
        "subkeys": None if data is None else subkeys(data, d.get("depth")),
    }
    return Response(data=body, status=404 if data is None else 0)


async def write_data(b: KVv2Backend, req: Request, d: FieldData) -> Response | None:
    path = writable_key(d.get("path"))
    data, cas = _input(d)
    storage = storage_of(req)
    config = await b.config_of(storage)
    meta = await store.load_metadata(storage, path) or KeyMetadata(key=path)
    store.check_cas(config, meta, cas)
    version = await store.write_version(storage, config, meta, data, b.now())
    _event(b, "data-write", path, meta, data_path=True)
    return Response(data=meta.version_view(version))


async def patch_data(b: KVv2Backend, req: Request, d: FieldData) -> Response | None:
    path = writable_key(d.get("path"))
    patch, cas = _input(d)
    storage = storage_of(req)
    meta = await store.load_metadata(storage, path)
    if meta is None or meta.current_version not in meta.versions:
        raise NotFound()
    config = await b.config_of(storage)
    store.check_cas(config, meta, cas)
    current = meta.current_version
    if not meta.versions[current].readable(b.now()):
        return Response(data=meta.version_view(current), status=404)
    data = await store.load_version(storage, path, current)
    if data is None:
        raise NotFound()
    version = await store.write_version(storage, config, meta, merge_patch(data, patch), b.now())
    _event(b, "data-patch", path, meta, data_path=True)
    return Response(data=meta.version_view(version))


async def delete_latest(b: KVv2Backend, req: Request, d: FieldData) -> Response | None:
    path = d.get("path")
    storage = storage_of(req)
    meta = await store.load_metadata(storage, path) if path else None
    if meta is None:
        return None
    info = meta.versions.get(meta.current_version)
    now = b.now()
    if info is None or not info.readable(now):
        return None
    info.deletion_time = now
    await store.save_metadata(storage, meta)
    _event(b, "data-delete", path, meta, data_path=False)
    return None


def _event(b: KVv2Backend, operation: str, key: str, meta: KeyMetadata, *, data_path: bool) -> None:
    """Vault's kv-v2 event (``kv-v2/<operation>``) with its metadata; a delete names no data_path."""
    metadata = {"modified": "true", "operation": operation, "path": f"data/{key}",
                "current_version": str(meta.current_version), "oldest_version": str(meta.oldest_version)}
    if data_path:
        metadata["data_path"] = f"data/{key}"
    if b.config.system is not None:  # a backend built outside a core has nowhere to publish
        b.config.system.emit_event(f"kv-v2/{operation}", metadata)
