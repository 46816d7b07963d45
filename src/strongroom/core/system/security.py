"""sys/security/* (beyond Vault): security events and quarantine. Both need sudo."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from strongroom.core.security import QUARANTINE
from strongroom.errors import InvalidRequest
from strongroom.framework import Field, FieldData, FieldType, Op, Path
from strongroom.logical import Request, Response

if TYPE_CHECKING:
    from strongroom.core.system import SystemBackend


def paths() -> list[Path[SystemBackend]]:
    return [
        Path("security/events", operations={Op.READ: read_events}, root=True,
             synopsis="Security events (tampered wrapping tokens, quarantines) and their counts."),
        Path("security/quarantine", operations={Op.UPDATE: quarantine}, root=True,
             fields={
                 "accessor": Field(FieldType.STRING, "Revoke this token, its children, and every token "
                                                     "it (or they) created, with all their leases."),
                 "entity_id": Field(FieldType.STRING, "Revoke every token of this entity."),
                 "cidr": Field(FieldType.STRING, "Revoke every token created from an address in this block."),
             },
             synopsis="Revoke everything issued to a client: tokens and the leases they hold.",
             description="One call cuts off a compromised client. At least one selector is required; "
                         "tokens matching any selector are revoked, and so is every token they created."),
    ]


async def read_events(b: SystemBackend, req: Request, d: FieldData) -> Response:
    events = b.parts.security
    return Response(data={"events": await events.list(), "counts": await events.counts()})


async def quarantine(b: SystemBackend, req: Request, d: FieldData) -> Response:
    accessor: str = d.get("accessor")
    entity: str = d.get("entity_id")
    cidr: str = d.get("cidr")
    if not (accessor or entity or cidr):
        raise InvalidRequest("one of accessor, entity_id or cidr is required")
    network = None
    if cidr:
        try:
            network = ipaddress.ip_network(cidr.strip(), strict=False)
        except ValueError:
            raise InvalidRequest(f'invalid CIDR block "{cidr}"') from None
    store = b.parts.tokens
    if accessor and await store.lookup_accessor(accessor) is None:
        raise InvalidRequest("invalid accessor")
    revoked = await store.quarantine(accessor=accessor, entity_id=entity, network=network,
                                     spare=req.client_token_accessor)
    details = {"selector": {k: v for k, v in (("accessor", accessor), ("entity_id", entity), ("cidr", cidr)) if v},
               "revoked_accessors": revoked, "requested_by": req.client_token_accessor,
               "requested_from": req.connection.remote_addr}
    await b.parts.security.record(QUARANTINE, details)
    return Response(data={"revoked": len(revoked), "revoked_accessors": revoked})
