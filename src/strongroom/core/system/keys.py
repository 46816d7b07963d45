"""sys/key-status, sys/rotate and sys/rotate/config: the barrier's encryption keyring.

(The sealed-safe endpoints live in http/sys.py; the key ceremonies, sys/rekey/* and
sys/generate-root/*, in http/ceremonies.py.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.core.rotation import RotationConfig
from strongroom.errors import InvalidRequest
from strongroom.framework import Field, FieldData, FieldType, Op, Path
from strongroom.logical import Request, Response

if TYPE_CHECKING:
    from strongroom.core.system import SystemBackend


def paths() -> list[Path[SystemBackend]]:
    return [
        Path("key-status", operations={Op.READ: key_status}, synopsis="The active encryption key's term."),
        Path("rotate(?:/keyring)?", operations={Op.UPDATE: rotate}, root=True,
             synopsis="Add a new encryption key; new writes use it, old data stays readable."),
        Path("rotate/(?:keyring/)?config",
             fields={
                 "max_operations": Field(FieldType.INT, "Encryptions after which the key is rotated."),
                 "interval": Field(FieldType.DURATION, "Key age after which it is rotated (at least 24h)."),
                 "enabled": Field(FieldType.BOOL, "Whether automatic rotation happens at all."),
             },
             operations={Op.READ: read_rotate_config, Op.UPDATE: write_rotate_config},
             synopsis="Automatic rotation of the encryption key by encryption count or age."),
        Path("rekey/backup", operations={Op.READ: read_rekey_backup, Op.DELETE: delete_rekey_backup}, root=True,
             synopsis="PGP-encrypted key shares backed up by a rekey (never any: PGP is not supported yet)."),
    ]


def ha_paths() -> list[Path[SystemBackend]]:
    return [Path("ha-status", operations={Op.READ: ha_status}, synopsis="The nodes of this HA cluster.")]


async def ha_status(b: SystemBackend, req: Request, d: FieldData) -> Response:
    """sys/ha-status: every node heard from lately, the active first (core/ha.py)."""
    nodes = await b.parts.ha_nodes() if b.parts.ha_nodes is not None else []
    return Response(data={"nodes": nodes})


async def key_status(b: SystemBackend, req: Request, d: FieldData) -> Response:
    term, install_time, encryptions = b.parts.keys.key_status()
    return Response(data={"term": term, "install_time": install_time, "encryptions": encryptions})


async def rotate(b: SystemBackend, req: Request, d: FieldData) -> None:
    await b.parts.keys.rotate()


async def read_rotate_config(b: SystemBackend, req: Request, d: FieldData) -> Response:
    return Response(data=b.parts.rotation.config.wire())


async def write_rotate_config(b: SystemBackend, req: Request, d: FieldData) -> None:
    current = b.parts.rotation.config
    config = RotationConfig(
        max_operations=d.get("max_operations") if d.has("max_operations") else current.max_operations,
        interval=d.get("interval") if d.has("interval") else current.interval,
        enabled=d.get("enabled") if d.has("enabled") else current.enabled,
    ).validate()
    await b.parts.rotation.set_config(config)


async def read_rekey_backup(b: SystemBackend, req: Request, d: FieldData) -> Response:
    # Backups exist only for PGP-encrypted shares, which rekey refuses: there is never one to return.
    raise InvalidRequest("no backed-up keys found")


async def delete_rekey_backup(b: SystemBackend, req: Request, d: FieldData) -> None:
    return None
