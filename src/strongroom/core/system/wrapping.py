"""sys/wrapping/*: wrap a value, look up, unwrap and rewrap wrapping tokens.

lookup, unwrap and rewrap are reachable without a valid token, as in Vault: possession of the
wrapping token is the credential, whether it comes in the body or as X-Vault-Token. That is also
what lets a spent wrapping token presented as X-Vault-Token reach the tamper alarm instead of
bouncing off authentication with a bare 403.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.errors import InvalidRequest
from strongroom.framework import Field, FieldData, FieldType, Op, Path
from strongroom.logical import Request, Response

if TYPE_CHECKING:
    from strongroom.core.system import SystemBackend

_TOKEN = {"token": Field(FieldType.STRING, "The wrapping token; defaults to the request's token.")}


def paths() -> list[Path[SystemBackend]]:
    return [
        Path("wrapping/wrap", operations={Op.UPDATE: wrap},
             synopsis="Wrap the request body into a single-use token (X-Vault-Wrap-TTL required)."),
        Path("wrapping/lookup", fields=_TOKEN, operations={Op.UPDATE: lookup, Op.READ: lookup},
             unauthenticated=True, synopsis="Creation facts of a wrapping token, without using it."),
        Path("wrapping/unwrap", fields=_TOKEN, operations={Op.UPDATE: unwrap}, unauthenticated=True,
             synopsis="Return the wrapped response and spend the wrapping token."),
        Path("wrapping/rewrap", fields=_TOKEN, operations={Op.UPDATE: rewrap}, unauthenticated=True,
             synopsis="Move a wrapped response into a new wrapping token with the same TTL."),
    ]


def _token(req: Request, d: FieldData) -> str:
    token: str = d.get("token") or req.client_token
    if not token:
        raise InvalidRequest("wrapping token is not valid or does not exist")
    return token


async def wrap(b: SystemBackend, req: Request, d: FieldData) -> Response:
    """The body, whatever it is ({} too), as the wrapped response. As OpenBao, the caller must ask
    for wrapping (X-Vault-Wrap-TTL): nothing here would answer the body back in the clear."""
    if not req.wrap_ttl:
        raise InvalidRequest("endpoint requires response wrapping to be used")
    return Response(data=dict(req.data))


async def lookup(b: SystemBackend, req: Request, d: FieldData) -> Response:
    return Response(data=await b.parts.wrapping.lookup(_token(req, d), req))


async def unwrap(b: SystemBackend, req: Request, d: FieldData) -> Response:
    return await b.parts.wrapping.unwrap(_token(req, d), req)


async def rewrap(b: SystemBackend, req: Request, d: FieldData) -> Response:
    return await b.parts.wrapping.rewrap(_token(req, d), req)
