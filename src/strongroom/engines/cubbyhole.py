"""Cubbyhole: private key/value storage per token. Nobody, root included, sees another token's cubbyhole.

Storage layout (the contract core relies on)::

    <token_id>/<path>      the secret <path> of the token whose salted id is <token_id>,
                           its value the JSON object the client wrote

``token_id`` is :attr:`strongroom.logical.Request.token_id`, the salted hash of the caller's token
(never the token itself). Core destroys a token's cubbyhole on revocation by deleting every key
under the prefix ``<token_id>/`` in this mount's storage view; response wrapping writes the
wrapped response into the wrapping token's cubbyhole through the same layout.

Reads, writes, deletes and lists behave like KV version 1, without the advisory TTL.
"""

from __future__ import annotations

import orjson

from strongroom.engines._request import storage_of, warn_ignored_params
from strongroom.errors import InvalidRequest, NotFound, PermissionDenied
from strongroom.framework import (
    Backend,
    BackendConfig,
    Field,
    FieldData,
    FieldType,
    Op,
    Path,
    Request,
    Response,
)


def paths() -> list[Path[CubbyholeBackend]]:
    return [
        Path(
            r"(?P<path>.*)",
            fields={"path": Field(FieldType.STRING, "Location of the secret in the caller's cubbyhole.")},
            operations={
                Op.READ: read_secret,
                Op.CREATE: write_secret,
                Op.UPDATE: write_secret,
                Op.DELETE: delete_secret,
                Op.LIST: list_secrets,
            },
            exists=secret_exists,
            synopsis="Pass-through secret storage to a token-specific cubbyhole in the storage backend.",
            description="Only the token that wrote a secret can read, list or delete it.",
        ),
    ]


class CubbyholeBackend(Backend):
    help = (
        "The cubbyhole secrets engine gives every token a private key/value store.\n"
        "It is destroyed when the token is revoked or expires."
    )

    def __init__(self, config: BackendConfig) -> None:
        super().__init__(config, paths())

    async def handle(self, req: Request) -> Response | None:
        return warn_ignored_params(self, req, await super().handle(req))


def cubbyhole_prefix(token_id: str) -> str:
    """The storage prefix holding everything of the token with salted id ``token_id``."""
    return token_id + "/"


def _prefix(req: Request) -> str:
    # Fail closed: without an identified token there is no cubbyhole to look into. A "/" in the
    # id would let one token address another's prefix, so refuse that too.
    if not req.token_id or "/" in req.token_id:
        raise PermissionDenied()
    return cubbyhole_prefix(req.token_id)


def _key(req: Request, d: FieldData) -> str:
    path: str = d.get("path")
    if path == "":
        raise InvalidRequest("missing path")
    return _prefix(req) + path


async def secret_exists(b: CubbyholeBackend, req: Request, d: FieldData) -> bool:
    if not req.token_id or not d.get("path"):
        return False
    return await storage_of(req).get(_key(req, d)) is not None


async def read_secret(b: CubbyholeBackend, req: Request, d: FieldData) -> Response | None:
    raw = await storage_of(req).get(_key(req, d))
    if raw is None:
        raise NotFound()
    return Response(data=orjson.loads(raw))


async def write_secret(b: CubbyholeBackend, req: Request, d: FieldData) -> Response | None:
    key = _key(req, d)
    if key.endswith("/"):
        raise InvalidRequest("cannot write to a path ending in '/'")
    # The body is the secret: req.data, not d.raw, which also holds the path captured from the URL.
    if not req.data:
        raise InvalidRequest("missing data fields")
    await storage_of(req).put(key, orjson.dumps(req.data))
    return None


async def delete_secret(b: CubbyholeBackend, req: Request, d: FieldData) -> Response | None:
    prefix = _prefix(req)
    path: str = d.get("path")
    if path:
        await storage_of(req).delete(prefix + path)
    return None


async def list_secrets(b: CubbyholeBackend, req: Request, d: FieldData) -> Response | None:
    path: str = d.get("path")
    if path and not path.endswith("/"):
        path += "/"
    keys = await storage_of(req).list(_prefix(req) + path)
    if not keys:
        raise NotFound()
    return Response(data={"keys": keys})
