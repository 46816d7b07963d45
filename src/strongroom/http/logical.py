"""HTTP request → logical.Request: method → operation, body/query → data, Vault's headers → fields.

Knows Vault's wire format and nothing about policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import orjson

from strongroom.durations import parse_duration
from strongroom.errors import InvalidRequest, UnsupportedMediaType, UnsupportedOperation
from strongroom.logical import Connection, Operation, Request

MERGE_PATCH = "application/merge-patch+json"

_METHODS = {
    "GET": Operation.READ,
    "HEAD": Operation.READ,
    "POST": Operation.UPDATE,
    "PUT": Operation.UPDATE,
    "DELETE": Operation.DELETE,
    "LIST": Operation.LIST,
    "PATCH": Operation.PATCH,
}


def headers_of(scope: Mapping[str, Any]) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def token_of(headers: dict[str, str]) -> str:
    token = headers.get("x-vault-token", "")
    if not token:
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            token = auth[7:].strip()
    return token


def parse_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise InvalidRequest(f"failed to parse JSON input: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidRequest("failed to parse JSON input: the body must be a JSON object")
    return data


def to_request(scope: Mapping[str, Any], path: str, body: bytes, headers: dict[str, str], request_id: str) -> Request:
    method = scope["method"]
    op = _METHODS.get(method)
    if op is None:
        raise UnsupportedOperation(f"unsupported method {method}")
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
    if op is Operation.READ and _truthy(query.pop("list", "")):
        op = Operation.LIST
    if _truthy(query.pop("help", "")):
        op = Operation.HELP
    if op in (Operation.READ, Operation.LIST, Operation.DELETE, Operation.HELP):
        data: dict[str, Any] = dict(query)
        if op is Operation.DELETE and body.strip():
            data.update(parse_body(body))
    else:
        data = parse_body(body)
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if op is Operation.PATCH and content_type != MERGE_PATCH:
        raise UnsupportedMediaType(f'PATCH requires Content-Type "{MERGE_PATCH}", got "{content_type}"')
    if op is Operation.LIST and not path.endswith("/") and path:
        path += "/"
    wrap_ttl = 0
    if headers.get("x-vault-wrap-ttl"):
        wrap_ttl = parse_duration(headers["x-vault-wrap-ttl"], name="wrap TTL")
    client = scope.get("client") or ("", 0)
    return Request(
        operation=op, path=path, data=data, id=request_id, client_token=token_of(headers),
        connection=Connection(remote_addr=client[0] or "", remote_port=client[1] or 0),
        headers=headers, wrap_ttl=wrap_ttl, wrap_format=headers.get("x-vault-wrap-format", ""),
        content_type=content_type, full_path=path,
    )


def _truthy(v: str) -> bool:
    return v.lower() in ("1", "true", "t", "yes", "y")
