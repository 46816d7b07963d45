"""sys/audit, sys/audit-hash (Vault's) and sys/audit-chain (Strongroom's): managing audit devices."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.errors import InvalidRequest
from strongroom.framework import Field, FieldData, FieldType, Op, Path, match_all
from strongroom.logical import Request, Response

if TYPE_CHECKING:
    from strongroom.core.system import SystemBackend

_PATH = {"path": Field(FieldType.STRING, "The path of the audit device.")}


def paths() -> list[Path[SystemBackend]]:
    return [
        Path("audit/?", operations={Op.READ: list_devices}, root=True,
             synopsis="List the enabled audit devices."),
        Path(f"audit/{match_all('path')}", root=True,
             fields={**_PATH,
                     "type": Field(FieldType.STRING, "The type of the audit device: file, socket or syslog."),
                     "description": Field(FieldType.STRING, "User-friendly description of the audit device."),
                     "options": Field(FieldType.KV_PAIRS, "Options of the audit device (file_path, ...)."),
                     "local": Field(FieldType.BOOL, "Mark the device as local (not replicated).")},
             operations={Op.UPDATE: enable, Op.DELETE: disable},
             synopsis="Enable or disable an audit device.",
             description="Enabling through the API is refused unless the server config sets "
                         "unsafe_allow_api_audit_creation; devices declared in the config cannot be disabled."),
        Path(f"audit-hash/{match_all('path')}",
             fields={**_PATH, "input": Field(FieldType.STRING, "The value to hash.")},
             operations={Op.UPDATE: audit_hash},
             synopsis="The HMAC of a value with an audit device's salt, as its log shows it."),
        Path(f"audit-chain/{match_all('path')}", fields=_PATH, operations={Op.READ: audit_chain}, root=True,
             synopsis="The chain key and head of a file audit device, for `strongroom audit verify`.",
             description="Strongroom's own. The key lets its holder check, and forge, the device's line "
                         "chain, so it needs sudo."),
    ]


async def list_devices(b: SystemBackend, req: Request, d: FieldData) -> Response:
    return Response(data=b.parts.audit.list())


async def enable(b: SystemBackend, req: Request, d: FieldData) -> None:
    kind: str = d.get("type")
    if not kind:
        raise InvalidRequest("type must be specified")
    await b.parts.audit.enable(d.get("path"), kind, d.get("description"), dict(d.get("options")), d.get("local"))


async def disable(b: SystemBackend, req: Request, d: FieldData) -> None:
    await b.parts.audit.disable(d.get("path"))


async def audit_hash(b: SystemBackend, req: Request, d: FieldData) -> Response:
    value: str = d.get("input")
    if value == "":
        raise InvalidRequest('the "input" parameter is empty')
    return Response(data={"hash": b.parts.audit.hash(d.get("path"), value)})


async def audit_chain(b: SystemBackend, req: Request, d: FieldData) -> Response:
    return Response(data=b.parts.audit.chain(d.get("path")))
