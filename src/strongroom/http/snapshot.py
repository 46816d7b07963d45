"""sys/storage/raft/snapshot (GET: save; POST/PUT: restore) and sys/storage/raft/snapshot-force
(restore another barrier's snapshot), the paths the bao CLI's ``operator raft snapshot`` calls,
served for every storage backend (core/snapshots.py). Each takes the pipeline's steps with sudo
required (core/pipeline.py handle_action: token, CIDRs, uses, sudo, fail-closed audit); the
snapshot bytes are neither parsed as JSON nor written to the audit log."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.core.pipeline import handle_action
from strongroom.core.snapshots import restore, save
from strongroom.errors import UnsupportedOperation
from strongroom.http import wire
from strongroom.http.logical import Peer, to_request

if TYPE_CHECKING:
    from strongroom.core import Core

SAVE = "sys/storage/raft/snapshot"
FORCE = "sys/storage/raft/snapshot-force"
PATHS = frozenset({SAVE, FORCE})


async def snapshot(core: Core, path: str, method: str, query_string: str, headers: dict[str, str], body: bytes,
                   request_id: str, peer: Peer) -> tuple[int, bytes]:
    if method == "GET" and path == SAVE:
        req = to_request("GET", path, query_string, b"", headers, request_id, peer)
        taken: list[bytes] = []

        async def take() -> None:
            taken.append(await save(core))

        await handle_action(core, req, take)
        return 200, wire.Body(taken[0], "application/octet-stream")
    if method not in ("PUT", "POST"):
        raise UnsupportedOperation()
    req = to_request("POST", path, query_string, b"", headers, request_id, peer)

    async def put_back() -> None:
        await restore(core, body, force=path == FORCE)

    await handle_action(core, req, put_back)
    return 204, b""
