"""The ASGI application: no web framework, one dispatch.

Sealed-safe sys endpoints (http/sys.py) are answered directly; every other /v1/ path becomes a
logical.Request for core's pipeline. Errors become Vault's {"errors": [...]} envelope; an
unexpected exception is logged and answered 500 without details, never a traceback.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson

from strongroom.errors import (
    Internal,
    RequestTooLarge,
    StrongroomError,
    UnsupportedOperation,
    UnsupportedPath,
)
from strongroom.http import envelope
from strongroom.http.ceremonies import GENERATE_ROOT_ROUTES, REKEY_ROUTES
from strongroom.http.ceremonies import ROUTES as CEREMONY_ROUTES
from strongroom.http.logical import headers_of, to_request
from strongroom.http.sys import ROUTES as SYS_ROUTES

if TYPE_CHECKING:
    from strongroom.core import Core

log = logging.getLogger("strongroom.http")

ROUTES = {**SYS_ROUTES, **CEREMONY_ROUTES}

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

DEFAULT_MAX_REQUEST_SIZE = 32 * 1024 * 1024


class App:
    def __init__(self, core: Core, *, max_request_size: int = DEFAULT_MAX_REQUEST_SIZE,
                 disable_unauthed_rekey: bool = False, disable_unauthed_generate_root: bool = False) -> None:
        self.core = core
        self.max_request_size = max_request_size
        # Token-less ceremony endpoints this listener refuses (OpenBao's listener switches).
        self.refused: frozenset[str] = frozenset(
            (REKEY_ROUTES if disable_unauthed_rekey else frozenset())
            | (GENERATE_ROOT_ROUTES if disable_unauthed_generate_root else frozenset()))
        self.on_shutdown: list[Callable[[], Awaitable[None]]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            status, body = await self._handle(scope, receive)
            await _respond(send, status, b"" if scope["method"] == "HEAD" else body)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _handle(self, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        try:
            return await self._dispatch(scope, receive)
        except StrongroomError as err:
            return envelope.render_error(err)
        except Exception:  # the edge must never leak a traceback to the client
            log.exception("unexpected error handling %s %s", scope.get("method"), scope.get("path"))
            return envelope.render_error(Internal("internal error"))

    async def _dispatch(self, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        raw_path: str = scope["path"]
        if not raw_path.startswith("/v1/"):
            raise UnsupportedPath()
        path = raw_path[4:]
        body = await self._read_body(scope, receive)
        headers = headers_of(scope)
        sys_handler = ROUTES.get(path.rstrip("/"))
        if sys_handler is not None:
            if path.rstrip("/") in self.refused:
                raise UnsupportedOperation()
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
            status, data = await sys_handler(self.core, scope["method"], query, headers, body)
            return status, b"" if data is None else orjson.dumps(data)
        request_id = str(uuid.uuid4())
        req = to_request(scope, path, body, headers, request_id)
        resp = await self.core.handle_request(req)
        if resp is not None and resp.raw_body is not None:
            return resp.raw_status or 200, resp.raw_body
        return envelope.render(resp, request_id, inline_data=_legacy_sys(path))

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        limit = self.max_request_size
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                raise RequestTooLarge("http: request body too large")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise RequestTooLarge("http: request body too large")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for hook in self.on_shutdown:
                    await hook()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _legacy_sys(path: str) -> bool:
    """Vault repeats data at the top level for its older sys/ endpoints (not the newer policies/ or internal/)."""
    return path.startswith("sys/") and not path.startswith(_NOT_LEGACY)


# Newer sys/ endpoints whose data Vault/OpenBao does not repeat at the top level.
_NOT_LEGACY = ("sys/internal/", "sys/policies/", "sys/rotate/config", "sys/rotate/keyring/config",
               "sys/generate-root-token/", "sys/decode-token")


async def _respond(send: Send, status: int, body: bytes) -> None:
    headers = list(envelope.JSON_HEADERS)
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
