"""sys/key-status and sys/rotate: the barrier's encryption keyring. (The sealed-safe endpoints live in http/sys.py.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.framework import FieldData, Op, Path
from strongroom.logical import Request, Response

if TYPE_CHECKING:
    from strongroom.core.system import SystemBackend


def paths() -> list[Path]:
    return [
        Path("key-status", operations={Op.READ: key_status}, synopsis="The active encryption key's term."),
        Path("rotate(?:/keyring)?", operations={Op.UPDATE: rotate}, root=True,
             synopsis="Add a new encryption key; new writes use it, old data stays readable."),
    ]


async def key_status(b: SystemBackend, req: Request, d: FieldData) -> Response:
    term, install_time, encryptions = b.core.barrier.key_status()
    return Response(data={"term": term, "install_time": install_time, "encryptions": encryptions})


async def rotate(b: SystemBackend, req: Request, d: FieldData) -> None:
    await b.core.barrier.rotate()
