"""sys/capabilities*: what a token may do at a path."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from strongroom.errors import InvalidRequest
from strongroom.framework import Field, FieldData, FieldType, Op, Path
from strongroom.logical import Request, Response

if TYPE_CHECKING:
    from strongroom.core.system import SystemBackend
    from strongroom.core.tokens import TokenEntry

_PATHS = Field(FieldType.COMMA_STRING_SLICE, "Paths to report capabilities for.")


def paths() -> list[Path[SystemBackend]]:
    return [
        Path("capabilities", fields={"token": Field(FieldType.STRING, "The token."), "path": _PATHS,
                                     "paths": _PATHS},
             operations={Op.UPDATE: capabilities}, synopsis="Capabilities of a token on paths."),
        Path("capabilities-self", fields={"token": Field(FieldType.STRING, "Ignored."), "path": _PATHS,
                                          "paths": _PATHS},
             operations={Op.UPDATE: capabilities_self}, synopsis="Capabilities of the caller's token."),
        Path("capabilities-accessor", fields={"accessor": Field(FieldType.STRING, "Token accessor."),
                                              "path": _PATHS, "paths": _PATHS},
             operations={Op.UPDATE: capabilities_accessor}, synopsis="Capabilities of a token by accessor."),
    ]


async def _answer(b: SystemBackend, policies: list[str], d: FieldData) -> Response:
    targets = d.get("paths") or d.get("path")
    if not targets:
        raise InvalidRequest("missing paths")
    acl = await b.parts.policies.acl(policies)
    data: dict[str, Any] = {}
    for p in targets:
        data[p] = acl.capabilities(p.lstrip("/"))
    if len(targets) == 1:
        data["capabilities"] = data[targets[0]]
    return Response(data=data)


async def capabilities(b: SystemBackend, req: Request, d: FieldData) -> Response:
    token = d.get("token")
    if not token:
        raise InvalidRequest("missing token")
    entry = await b.parts.tokens.lookup(token)
    return await _answer(b, _policies(b, entry), d)


async def capabilities_self(b: SystemBackend, req: Request, d: FieldData) -> Response:
    return await _answer(b, req.policies, d)


async def capabilities_accessor(b: SystemBackend, req: Request, d: FieldData) -> Response:
    entry = await b.parts.tokens.lookup_accessor(d.get("accessor"))
    if entry is None:
        raise InvalidRequest("invalid accessor")
    return await _answer(b, _policies(b, entry), d)


def _policies(b: SystemBackend, entry: TokenEntry | None) -> list[str]:
    """A token's policies with its entity's and groups' (as a request by it would have)."""
    if entry is None:
        return []
    extra = b.parts.identity_policies(entry.entity_id) if entry.entity_id else ()
    return list(dict.fromkeys([*entry.policies, *extra]))
