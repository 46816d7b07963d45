"""HTTP request → logical.Request: method → operation, body/query → data, Vault's headers → fields.

Knows Vault's wire format and nothing about policy.
"""

from __future__ import annotations

from typing import Any, NamedTuple
from urllib.parse import parse_qsl

import orjson

from strongroom.durations import parse_duration
from strongroom.errors import InvalidRequest, UnsupportedMediaType, UnsupportedOperation
from strongroom.framework.fields import MAX_JSON_DEPTH, check_json_depth
from strongroom.logical import Connection, Operation, Request

MERGE_PATCH = "application/merge-patch+json"
# Request bodies Vault hands to the backend unparsed (Request.raw_body), by Content-Type.
RAW_BODY_TYPES = frozenset({"application/ocsp-request"})

# HEAD reaches a backend as HEADER; paths that declare no handler for it (all but ACME's) answer
# 405, as in Vault. OPTIONS, a CORS preflight Vault refuses without CORS set up, is 400.
_METHODS = {
    "GET": Operation.READ,
    "HEAD": Operation.HEADER,
    "POST": Operation.UPDATE,
    "PUT": Operation.UPDATE,
    "DELETE": Operation.DELETE,
    "LIST": Operation.LIST,
    "PATCH": Operation.PATCH,
}


class Peer(NamedTuple):
    """Who is on the other end of a connection, as the HTTP edge saw it."""

    addr: str = ""
    port: int = 0
    # DER of the TLS client certificate, when one was presented (for cert auth); None otherwise.
    cert: bytes | None = None
    # The whole chain the client presented, DER, leaf first, unverified; () without a certificate.
    chain: tuple[bytes, ...] = ()


def query_of(query_string: str) -> dict[str, str]:
    """The query string as a dict (last value wins, blanks kept), as Vault reads its parameters."""
    return dict(parse_qsl(query_string, keep_blank_values=True)) if query_string else {}


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
    # Refused here, before anything is stored: nesting orjson could read but not write again
    # would fail later, as a 500, maybe after a change was made. Counting brackets first keeps the
    # walk off the common case (strings may hold brackets; that only makes the walk run).
    if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH:
        check_json_depth(data)
    return data


def to_request(method: str, path: str, query_string: str, body: bytes, headers: dict[str, str],
               request_id: str, peer: Peer) -> Request:
    """``path`` is relative to /v1/ and already percent-decoded; ``headers`` have lower-case names."""
    op = _METHODS.get(method)
    if op is None:
        if method == "OPTIONS":
            raise InvalidRequest("OPTIONS requests are not supported here (no CORS configuration)")
        raise UnsupportedOperation(f"unsupported method {method}")
    query = query_of(query_string)
    if op is Operation.READ and _truthy(query.pop("list", "")):
        op = Operation.LIST
    if _truthy(query.pop("help", "")):
        op = Operation.HELP
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    raw_body = None
    if op in (Operation.READ, Operation.LIST, Operation.DELETE, Operation.HELP, Operation.HEADER):
        data: dict[str, Any] = dict(query)
        if op is Operation.DELETE and body.strip():
            data.update(parse_body(body))
    elif content_type in RAW_BODY_TYPES:
        data, raw_body = dict(query), body
    else:
        data = parse_body(body)
    if op is Operation.PATCH and content_type != MERGE_PATCH:
        raise UnsupportedMediaType(f'PATCH requires Content-Type "{MERGE_PATCH}", got "{content_type}"')
    if op is Operation.LIST and not path.endswith("/") and path:
        path += "/"
    wrap_ttl = 0
    if headers.get("x-vault-wrap-ttl"):
        try:
            wrap_ttl = parse_duration(headers["x-vault-wrap-ttl"], name="wrap TTL")
        except InvalidRequest as e:
            raise InvalidRequest(f"error parsing X-Vault-Wrap-TTL header: {e.message}") from None
    return Request(
        operation=op, path=path, data=data, id=request_id, client_token=token_of(headers),
        connection=Connection(remote_addr=peer.addr, remote_port=peer.port, peer_certificate=peer.cert,
                              peer_certificate_chain=peer.chain),
        headers=headers, wrap_ttl=wrap_ttl, wrap_format=headers.get("x-vault-wrap-format", ""),
        content_type=content_type, full_path=path, raw_body=raw_body,
    )


def _truthy(v: str) -> bool:
    return v.lower() in ("1", "true", "t", "yes", "y")
