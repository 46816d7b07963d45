"""KV v2 ``metadata/<path>`` (read, write, merge-patch, delete everything, list) and
``detailed-metadata/<path>`` (list with every key's metadata)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from strongroom.engines._request import storage_of
from strongroom.engines.kv import store
from strongroom.engines.kv.data import merge_patch
from strongroom.engines.kv.models import METADATA_PREFIX, KeyMetadata, KVConfig
from strongroom.errors import CheckAndSetMismatch, InvalidRequest, NotFound
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response, match_all

if TYPE_CHECKING:
    from strongroom.engines.kv.v2 import KVv2Backend

CUSTOM_METADATA_MAX_KEYS = 64
CUSTOM_METADATA_MAX_KEY_LENGTH = 128
CUSTOM_METADATA_MAX_VALUE_LENGTH = 512

# The settings a metadata write may change; a write naming none of them is a no-op, as in OpenBao.
SETTINGS = (
    "max_versions", "cas_required", "delete_version_after", "custom_metadata", "metadata_cas_required",
)

PATH = Field(FieldType.STRING, "Location of the secret.")
PAGINATION = {
    "after": Field(FieldType.STRING, "List only entries sorting after this one.", query=True),
    "limit": Field(FieldType.INT, "Return at most this many entries; 0 for all.", query=True),
}


def paths() -> list[Path[KVv2Backend]]:
    return [
        Path(
            f"metadata/{match_all('path')}",
            fields={
                "path": PATH,
                "max_versions": Field(FieldType.INT, "Versions to keep; the mount's setting when 0."),
                "cas_required": Field(FieldType.BOOL, "Require options.cas on every data write."),
                "delete_version_after": Field(
                    FieldType.DURATION, "Soft-delete each new version after this long; 0 for never."
                ),
                "custom_metadata": Field(FieldType.MAP, "User-provided string-to-string metadata."),
                "metadata_cas_required": Field(FieldType.BOOL, "Require metadata_cas on metadata writes."),
                "metadata_cas": Field(FieldType.INT, "Expected current_metadata_version (check-and-set)."),
                **PAGINATION,
            },
            operations={
                Op.READ: read_metadata,
                Op.CREATE: write_metadata,
                Op.UPDATE: write_metadata,
                Op.PATCH: patch_metadata,
                Op.DELETE: delete_metadata,
                Op.LIST: list_keys,
            },
            exists=metadata_exists,
            synopsis="Configure a secret's versioning, read its version history, or delete it entirely.",
            description="DELETE removes the metadata and every version of the secret permanently.",
        ),
        Path(
            f"detailed-metadata/{match_all('path')}",
            fields={"path": PATH, **PAGINATION},
            operations={Op.LIST: list_detailed},
            synopsis="List keys with each key's full metadata.",
        ),
    ]


def multierror(errors: list[str]) -> str:
    """Vault's wording for several validation errors reported at once."""
    head = "1 error occurred:" if len(errors) == 1 else f"{len(errors)} errors occurred:"
    return head + "\n" + "".join(f"\t* {e}\n" for e in errors) + "\n"


def _metadata_string(key: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"  # Go's weak decoding of bools into strings
    if isinstance(value, (str, int, float)):
        return str(value)
    raise InvalidRequest(f'custom_metadata validation failed: value for key "{key}" must be a string')


def validate_custom_metadata(raw: dict[str, Any]) -> dict[str, str] | None:
    """String-valued custom metadata within Vault's limits; None for an empty map."""
    errors = []
    if len(raw) > CUSTOM_METADATA_MAX_KEYS:
        errors.append(f"payload must contain at most {CUSTOM_METADATA_MAX_KEYS} keys, provided {len(raw)}")
    out: dict[str, str] = {}
    for key, value in raw.items():
        key = str(key)
        if not 0 < len(key) <= CUSTOM_METADATA_MAX_KEY_LENGTH:
            errors.append(f'length of key "{key}" is {len(key)} but must be 0 < len(key) <= 128')
        text = _metadata_string(key, value)
        if not 0 < len(text) <= CUSTOM_METADATA_MAX_VALUE_LENGTH:
            errors.append(f'length of value for key "{key}" is {len(text)} but must be 0 < len(value) <= 512')
        out[key] = text
    if errors:
        raise InvalidRequest(multierror([f"custom_metadata validation failed: {e}" for e in errors]))
    return out or None


def check_metadata_cas(config: KVConfig, meta: KeyMetadata | None, d: FieldData) -> None:
    """OpenBao's metadata check-and-set: metadata_cas, when sent, must equal current_metadata_version."""
    cas, given = d.get_ok("metadata_cas")
    if not given:
        if config.metadata_cas_required or (meta is not None and meta.metadata_cas_required):
            raise InvalidRequest("metadata check-and-set parameter required for this call")
        return
    if meta is None:
        if cas != 0:
            raise InvalidRequest("metadata_cas must be 0 when creating new metadata")
    elif cas != meta.metadata_version:
        raise CheckAndSetMismatch("metadata check-and-set parameter does not match the current version")


def _apply(meta: KeyMetadata, name: str, value: Any) -> None:
    """Set one setting; None resets it to its zero value (a merge-patch null)."""
    if name == "custom_metadata":
        meta.custom_metadata = None if value is None else validate_custom_metadata(value)
    elif name == "max_versions":
        if value is not None and value < 0:
            raise InvalidRequest("max_versions must not be negative")
        meta.max_versions = value or 0
    elif name == "delete_version_after":
        meta.delete_version_after = value or 0
    elif name == "cas_required":
        meta.cas_required = bool(value)
    else:
        meta.metadata_cas_required = bool(value)


async def _commit(b: KVv2Backend, req: Request, meta: KeyMetadata) -> None:
    now = b.now()
    meta.metadata_version += 1
    meta.updated_time = now
    if not meta.created_time:
        meta.created_time = now
    await store.save_metadata(storage_of(req), meta)


def _key(d: FieldData) -> str:
    path: str = d.get("path")
    if path == "" or path.endswith("/"):
        raise InvalidRequest("cannot write to a path ending in '/'")
    return path


async def metadata_exists(b: KVv2Backend, req: Request, d: FieldData) -> bool:
    path = d.get("path")
    return bool(path) and await store.load_metadata(storage_of(req), path) is not None


async def read_metadata(b: KVv2Backend, req: Request, d: FieldData) -> Response | None:
    path = d.get("path")
    meta = await store.load_metadata(storage_of(req), path) if path else None
    if meta is None:
        raise NotFound()
    return Response(data=meta.to_api())


async def write_metadata(b: KVv2Backend, req: Request, d: FieldData) -> Response | None:
    path = _key(d)
    given = [name for name in SETTINGS if d.has(name)]
    if not given:
        return None
    storage = storage_of(req)
    existing = await store.load_metadata(storage, path)
    check_metadata_cas(await b.config_of(storage), existing, d)
    meta = existing or KeyMetadata(key=path)
    for name in given:
        _apply(meta, name, d.get(name))
    await _commit(b, req, meta)
    _event(b, "metadata-write", path, data_path=True)
    return None


async def patch_metadata(b: KVv2Backend, req: Request, d: FieldData) -> Response | None:
    path = _key(d)
    storage = storage_of(req)
    meta = await store.load_metadata(storage, path)
    if meta is None:
        raise NotFound()
    # d.raw keeps explicit nulls, which a merge patch uses to reset a setting.
    given = [name for name in SETTINGS if name in d.raw]
    if not given:
        return None
    check_metadata_cas(await b.config_of(storage), meta, d)
    for name in given:
        if name == "custom_metadata" and d.raw[name] is not None:
            _apply(meta, name, merge_patch(meta.custom_metadata or {}, d.get(name)))
        else:
            _apply(meta, name, d.get(name) if d.raw[name] is not None else None)
    await _commit(b, req, meta)
    _event(b, "metadata-patch", path, data_path=True)
    return None


async def delete_metadata(b: KVv2Backend, req: Request, d: FieldData) -> Response | None:
    path = d.get("path")
    if path:
        await store.delete_key(storage_of(req), path)
        _event(b, "metadata-delete", path, data_path=False)
    return None


def _event(b: KVv2Backend, operation: str, key: str, *, data_path: bool) -> None:
    """Vault's kv-v2 metadata event (``kv-v2/metadata-<verb>``); a delete names no data_path."""
    metadata = {"modified": "true", "operation": operation, "path": f"metadata/{key}"}
    if data_path:
        metadata["data_path"] = f"metadata/{key}"
    if b.config.system is not None:  # a backend built outside a core has nowhere to publish
        b.config.system.emit_event(f"kv-v2/{operation}", metadata)


async def _list(req: Request, d: FieldData) -> list[str]:
    prefix: str = d.get("path")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    keys = await storage_of(req).list(METADATA_PREFIX + prefix)
    after: str = d.get("after")
    if after:
        keys = [k for k in keys if k > after]
    limit: int = d.get("limit")
    if limit > 0:
        keys = keys[:limit]
    if not keys:
        raise NotFound()
    return keys


async def list_keys(b: KVv2Backend, req: Request, d: FieldData) -> Response | None:
    return Response(data={"keys": await _list(req, d)})


async def list_detailed(b: KVv2Backend, req: Request, d: FieldData) -> Response | None:
    keys = await _list(req, d)
    prefix: str = d.get("path")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    info: dict[str, Any] = {}
    for k in keys:
        meta = None if k.endswith("/") else await store.load_metadata(storage_of(req), prefix + k)
        info[k] = meta.to_api() if meta is not None else {}
    return Response(data={"key_info": info, "keys": keys})
