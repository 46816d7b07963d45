"""sys/mfa/validate: complete a login held for its second factor (core/identity/mfa).

Reachable without a token, as in Vault: the held login's request id and a valid passcode are the
credentials. It runs through the normal pipeline, so both audit entries are written (the
passcodes are HMAC'd as any request data is).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.core.identity.mfa.config import parse_payload
from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import Field, FieldData, FieldType, Op, Path
from strongroom.logical import Request, Response

if TYPE_CHECKING:
    from strongroom.core.system import SystemBackend

_FIELDS = {
    "mfa_request_id": Field(FieldType.STRING, "ID for this MFA request."),
    "mfa_payload": Field(FieldType.MAP, "A map from MFA method ID (or name) to a list of passcodes.",
                         sensitive=True),
}


def paths() -> list[Path[SystemBackend]]:
    return [
        Path("mfa/validate", fields=_FIELDS, operations={Op.UPDATE: validate}, unauthenticated=True,
             synopsis="Validate a login held for MFA; answers the login's token."),
    ]


async def validate(b: SystemBackend, req: Request, d: FieldData) -> Response | None:
    mfa = b.parts.mfa
    if mfa is None:
        raise NotFound()
    request_id = d.get("mfa_request_id") or ""
    if not request_id:
        raise InvalidRequest("missing request ID")
    creds = parse_payload(d.get("mfa_payload"))
    return await mfa.validate(req, request_id, creds)
