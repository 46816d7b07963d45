"""Response | StrongroomError → Vault's JSON envelope and status. Pure functions.

Vault's rules: an error is ``{"errors": [...]}`` with the error's status; a response with nothing
in it is 204; otherwise 200 with request_id, lease_id, renewable, lease_duration, data, wrap_info,
warnings, auth. Responses under sys/ also repeat their data at the top level (older clients read it there).
"""

from __future__ import annotations

import orjson

from strongroom.errors import StrongroomError
from strongroom.logical import Response, response_body

JSON_HEADERS = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]


def render_error(err: StrongroomError) -> tuple[int, bytes]:
    return err.status_code, orjson.dumps({"errors": err.messages})


def render(resp: Response | None, request_id: str, *, inline_data: bool = False) -> tuple[int, bytes]:
    """(status, body) for a successful request."""
    if resp is None or resp.is_empty():
        return 204, b""
    body = response_body(resp, request_id)
    if inline_data and resp.data:
        body = {**resp.data, **body}
    return resp.status or 200, orjson.dumps(body)
