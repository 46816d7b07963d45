"""Response | StrongroomError → Vault's JSON envelope and status. Pure functions.

Vault's rules: an error is ``{"errors": [...]}`` with the error's status; a response with nothing
in it is 204; otherwise 200 with request_id, lease_id, renewable, lease_duration, data, wrap_info,
warnings, auth. Responses under sys/ also repeat their data at the top level (older clients read it there).
"""

from __future__ import annotations

from typing import Any

import orjson

from strongroom.errors import StrongroomError
from strongroom.logical import Auth, Response

JSON_HEADERS = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]


def render_error(err: StrongroomError) -> tuple[int, bytes]:
    return err.status_code, orjson.dumps({"errors": err.messages})


def _auth(a: Auth) -> dict[str, Any]:
    return {
        "client_token": a.client_token,
        "accessor": a.accessor,
        "policies": a.policies,
        "token_policies": a.token_policies,
        "identity_policies": a.identity_policies or None,
        "metadata": a.metadata or None,
        "lease_duration": a.lease_duration,
        "renewable": a.renewable,
        "entity_id": a.entity_id,
        "token_type": a.token_type,
        "orphan": a.orphan,
        "mfa_requirement": None,
        "num_uses": a.num_uses,
    }


def render(resp: Response | None, request_id: str, *, inline_data: bool = False) -> tuple[int, bytes]:
    """(status, body) for a successful request."""
    if resp is None or (resp.data is None and resp.auth is None and resp.secret is None
                        and resp.wrap_info is None and not resp.warnings and not resp.status):
        return 204, b""
    body: dict[str, Any] = {}
    if inline_data and resp.data:
        body.update(resp.data)
    secret = resp.secret
    wrap = resp.wrap_info
    body.update({
        "request_id": request_id,
        "lease_id": secret.lease_id if secret else "",
        "renewable": secret.renewable if secret else False,
        "lease_duration": secret.ttl if secret else 0,
        "data": resp.data,
        "wrap_info": None if wrap is None else {
            "token": wrap.token, "accessor": wrap.accessor, "ttl": wrap.ttl,
            "creation_time": wrap.creation_time, "creation_path": wrap.creation_path,
            "wrapped_accessor": wrap.wrapped_accessor,
        },
        "warnings": resp.warnings or None,
        "auth": _auth(resp.auth) if resp.auth else None,
    })
    if wrap is not None:
        body["data"] = None
    return resp.status or 200, orjson.dumps(body)
