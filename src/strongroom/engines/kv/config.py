"""KV v2 ``config``: mount-wide defaults for every key (max_versions, cas_required, ...)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from strongroom.engines._request import storage_of
from strongroom.engines.kv import store
from strongroom.errors import InvalidRequest
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response

if TYPE_CHECKING:
    from strongroom.engines.kv.v2 import KVv2Backend


def paths() -> list[Path[KVv2Backend]]:
    return [
        Path(
            "config",
            fields={
                "max_versions": Field(FieldType.INT, "Versions to keep per key; 10 when 0."),
                "cas_required": Field(FieldType.BOOL, "Require options.cas on every data write."),
                "delete_version_after": Field(
                    FieldType.DURATION, "Soft-delete each new version after this long; 0 for never."
                ),
                "metadata_cas_required": Field(FieldType.BOOL, "Require metadata_cas on metadata writes."),
            },
            operations={Op.READ: read_config, Op.UPDATE: write_config},
            synopsis="Configure the defaults of every key in this mount.",
            description=(
                "A key's own max_versions wins when larger; its delete_version_after when shorter; "
                "cas_required applies if set on either."
            ),
        ),
    ]


async def read_config(b: KVv2Backend, req: Request, d: FieldData) -> Response | None:
    config = await b.config_of(storage_of(req))
    return Response(data=config.to_api())


async def write_config(b: KVv2Backend, req: Request, d: FieldData) -> Response | None:
    storage = storage_of(req)
    # A copy: the cached config must not change unless the write succeeds.
    config = replace(await b.config_of(storage))
    max_versions, ok = d.get_ok("max_versions")
    if ok:
        if max_versions < 0:
            raise InvalidRequest("max_versions must not be negative")
        config.max_versions = max_versions
    if d.has("cas_required"):
        config.cas_required = d.get("cas_required")
    if d.has("delete_version_after"):
        config.delete_version_after = d.get("delete_version_after")
    if d.has("metadata_cas_required"):
        config.metadata_cas_required = d.get("metadata_cas_required")
    await store.save_config(storage, config)
    b.set_config(config)
    return None
