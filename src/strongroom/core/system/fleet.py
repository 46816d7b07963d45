"""sys/drill and sys/drills (beyond Vault): seal drills on an HA cluster (core/drills.py) and their
history; the fleet's unsealed count (core/fleet.py). Starting or abandoning a drill needs sudo."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.core.fleet import FleetMonitor
from strongroom.errors import InvalidRequest
from strongroom.framework import Field, FieldData, FieldType, Op, Path
from strongroom.logical import Request, Response

if TYPE_CHECKING:
    from strongroom.core.system import SystemBackend


def paths() -> list[Path[SystemBackend]]:
    return [
        Path("drill", operations={Op.UPDATE: start_drill}, root=True,
             fields={
                 "node": Field(FieldType.STRING, "The api_address of the standby to seal, as sys/ha-status "
                                                 "lists it."),
                 "force": Field(FieldType.BOOL, "Drill even if fewer than min_unsealed_nodes nodes would "
                                                "stay unsealed."),
             },
             synopsis="Start a seal drill: seal a standby and time how long until it is unsealed again.",
             description="The standby is sealed through its own sys/seal with the caller's token (which "
                         "needs sudo there too); key holders are notified through the security webhooks."),
        Path("drills/?", operations={Op.READ: list_drills, Op.LIST: list_drill_ids},
             synopsis="Seal drills, oldest first, and the fleet's unsealed count."),
        Path("drills/(?P<id>[^/]+)", operations={Op.READ: read_drill},
             fields={"id": Field(FieldType.STRING, "The drill's id.")}, synopsis="One seal drill."),
        Path("drill/(?P<id>[^/]+)", operations={Op.DELETE: abandon_drill}, root=True,
             fields={"id": Field(FieldType.STRING, "The drill's id.")},
             synopsis="Abandon a running drill: stop waiting for its node to be unsealed."),
    ]


def _fleet(b: SystemBackend) -> FleetMonitor:
    if b.parts.fleet is None:
        raise InvalidRequest("seal drills are not available on this server")
    return b.parts.fleet


async def start_drill(b: SystemBackend, req: Request, d: FieldData) -> Response:
    drill = await _fleet(b).drills.start(str(d.get("node")), req.client_token, req.client_token_accessor,
                                         bool(d.get("force")))
    return Response(data=drill)


async def list_drills(b: SystemBackend, req: Request, d: FieldData) -> Response:
    fleet = _fleet(b)
    return Response(data={"drills": await fleet.drills.list(), **fleet.status()})


async def list_drill_ids(b: SystemBackend, req: Request, d: FieldData) -> Response:
    return Response(data={"keys": [drill["id"] for drill in await _fleet(b).drills.list()]})


async def read_drill(b: SystemBackend, req: Request, d: FieldData) -> Response:
    return Response(data=await _fleet(b).drills.get(str(d.get("id"))))


async def abandon_drill(b: SystemBackend, req: Request, d: FieldData) -> None:
    await _fleet(b).drills.abandon(str(d.get("id")))
