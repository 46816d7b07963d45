"""The ``iam`` login: the client signs an ``sts:GetCallerIdentity`` request with its own AWS
credentials and hands it over (method, URL, body and headers, base64 as the Vault CLI and hvac send
them); Strongroom replays it to the configured STS endpoint and trusts the identity STS answers.

SECURITY: the request only ever goes to the configured ``sts_endpoint`` (default
https://sts.amazonaws.com): the client's URL supplies nothing but its (checked) path, and a URL
naming any other host than that endpoint or an AWS STS host is refused, so the method can never be
used as a proxy. Only ``POST`` ``Action=GetCallerIdentity`` is forwarded. When
``iam_server_id_header_value`` is configured the request must carry ``X-Vault-AWS-IAM-Server-ID``
with that value *and* sign it, so a request signed for another server cannot be replayed here.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson

from strongroom.auth.aws.store import ClientConfig
from strongroom.errors import InvalidRequest

if TYPE_CHECKING:
    from strongroom.auth.aws import AwsBackend

SERVER_ID_HEADER = "X-Vault-AWS-IAM-Server-ID"
_STS_HOST = re.compile(r"sts(?:[.-][a-z0-9-]+)?\.amazonaws\.com(?:\.cn)?")
_MAX_ANSWER = 64 * 1024


@dataclass(slots=True)
class CallerIdentity:
    arn: str
    user_id: str
    account: str


@dataclass(slots=True)
class Principal:
    """An IAM ARN taken apart as Vault's parseIamArn does."""

    partition: str
    account: str
    type: str  # user, role (assumed-role is mapped to role), federated-user, ...
    path: str
    friendly_name: str
    session_info: str

    def canonical_arn(self) -> str:
        entity = "role" if self.type == "assumed-role" else self.type
        return f"arn:{self.partition}:iam::{self.account}:{entity}/{self.friendly_name}"


def parse_arn(arn: str) -> Principal:
    parts = arn.split(":")
    if len(parts) < 6 or parts[0] != "arn":
        raise InvalidRequest(f"unrecognized arn: contains {len(parts)} colon-separated parts, expected 6")
    partition, service, account, resource = parts[1], parts[2], parts[4], ":".join(parts[5:])
    if service not in ("iam", "sts"):
        raise InvalidRequest(f"unrecognized service: {service}, not one of iam or sts")
    pieces = resource.split("/")
    kind = pieces[0]
    if len(pieces) < 2:
        raise InvalidRequest(f"unrecognized arn: {arn!r} contains no entity name")
    if kind == "assumed-role":
        if service != "sts" or len(pieces) < 3:
            raise InvalidRequest(f"unrecognized arn: {arn!r} has an invalid assumed-role entity")
        return Principal(partition, account, kind, "", pieces[1], pieces[2])
    if kind in ("user", "role", "instance-profile"):
        return Principal(partition, account, kind, "/".join(pieces[1:-1]), pieces[-1], "")
    if kind == "federated-user":
        return Principal(partition, account, kind, "", pieces[-1], "")
    raise InvalidRequest(f"unrecognized principal type: {kind!r}")


def _b64(name: str, value: str) -> str:
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"failed to base64 decode {name}") from None


def parse_headers(raw: Any) -> dict[str, list[str]]:
    """``iam_request_headers``: a JSON object (or base64 of one) of header -> value or [values]."""
    if isinstance(raw, str):
        text = raw.strip()
        if not text.startswith("{"):
            try:
                text = base64.b64decode(text, validate=True).decode("utf-8")
            except (binascii.Error, ValueError):
                raise InvalidRequest("failed to parse iam_request_headers") from None
        try:
            raw = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise InvalidRequest("failed to parse iam_request_headers") from None
    if not isinstance(raw, dict):
        raise InvalidRequest("failed to parse iam_request_headers")
    out: dict[str, list[str]] = {}
    for k, v in raw.items():
        values = [v] if isinstance(v, str) else v if isinstance(v, list) else None
        if values is None or not all(isinstance(x, str) for x in values):
            raise InvalidRequest("failed to parse iam_request_headers")
        if any("\r" in x or "\n" in x for x in [k, *values]):
            raise InvalidRequest("failed to parse iam_request_headers")
        out[str(k)] = list(values)
    return out


def _header(headers: dict[str, list[str]], name: str) -> list[str]:
    want = name.lower()
    return [v for k, vs in headers.items() if k.lower() == want for v in vs]


def check_server_id(headers: dict[str, list[str]], expected: str) -> None:
    """The configured server id header is present, equal to ``expected`` and signed."""
    values = _header(headers, SERVER_ID_HEADER)
    prefix = f"error validating {SERVER_ID_HEADER} header: "
    if not values:
        raise InvalidRequest(prefix + f"missing header {SERVER_ID_HEADER!r}")
    if len(values) != 1 or not hmac.compare_digest(values[0].encode(), expected.encode()):
        raise InvalidRequest(prefix + f"expected {expected!r} but got {values[0]!r}")
    authz = " ".join(_header(headers, "Authorization"))
    m = re.search(r"SignedHeaders=([^,\s]+)", authz)
    if not m or SERVER_ID_HEADER.lower() not in m.group(1).lower().split(";"):
        raise InvalidRequest(prefix + "vault header wasn't signed")


def check_request(config: ClientConfig, method: str, url: str, body: str) -> str:
    """Refuse anything but a POST of Action=GetCallerIdentity to STS; the path to forward."""
    if method != "POST":
        raise InvalidRequest("invalid iam_http_request_method; currently only 'POST' is supported")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidRequest("error parsing iam_request_url") from None
    endpoint = urlsplit(config.sts_url())
    host = (parts.hostname or "").lower()
    same_endpoint = host == (endpoint.hostname or "").lower() and (port or None) == (endpoint.port or None)
    if parts.scheme not in ("https", "http") or not (same_endpoint or _STS_HOST.fullmatch(host)):
        raise InvalidRequest("iam_request_url must name the STS endpoint")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise InvalidRequest("iam_request_url must name the STS endpoint")
    try:
        form = parse_qs(body, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise InvalidRequest("error parsing iam_request_body") from None
    if form.get("Action") != ["GetCallerIdentity"]:
        raise InvalidRequest("iam_request_body must have 'Action=GetCallerIdentity'")
    if set(form) - {"Action", "Version"}:
        raise InvalidRequest("iam_request_body must have only Action and Version parameters")
    return "/"


def parse_answer(status: int, text: str) -> CallerIdentity:
    if status != 200:
        raise InvalidRequest(f"error making upstream request: received error code {status} from STS: "
                             f"{text[:512]}")
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        raise InvalidRequest("error making upstream request: error parsing STS response") from None

    def find(tag: str) -> str:
        for el in root.iter():
            if el.tag == tag or el.tag.endswith("}" + tag):
                return (el.text or "").strip()
        return ""
    ident = CallerIdentity(arn=find("Arn"), user_id=find("UserId"), account=find("Account"))
    if not ident.arn:
        raise InvalidRequest("error making upstream request: STS response has no Arn")
    return ident


async def get_caller_identity(b: AwsBackend, config: ClientConfig, url: str, headers: dict[str, list[str]],
                              body: str, path: str) -> CallerIdentity:
    """Replays the signed request to the configured endpoint. The Host the client signed is kept:
    its explicit Host header, else (as SDKs sign without sending one) the host of its URL."""
    send: list[tuple[str, str]] = []
    for k, vs in headers.items():
        if k.lower() in ("content-length", "connection", "transfer-encoding"):
            continue
        send.extend((k, v) for v in vs)
    if not _header(headers, "Host"):
        send.append(("Host", urlsplit(url).netloc))
    client = b.http_client()
    try:
        async with client.stream("POST", config.sts_url() + path, content=body.encode(), headers=send,
                                  timeout=b.sts_timeout) as r:
            chunks: list[bytes] = []
            size = 0
            async for chunk in r.aiter_bytes():
                size += len(chunk)
                if size > _MAX_ANSWER:
                    raise InvalidRequest("error making upstream request: STS response too large")
                chunks.append(chunk)
            return parse_answer(r.status_code, b"".join(chunks).decode("utf-8", "replace"))
    except httpx.HTTPError as e:
        b.system.logger.warning("aws iam login: STS request failed: %s", e)
        raise InvalidRequest(f"error making upstream request: {type(e).__name__}") from None


def decode_login(d_method: str, d_url: str, d_body: str, d_headers: Any) -> tuple[str, str, str, dict[str, list[str]]]:
    if not d_method:
        raise InvalidRequest("missing iam_http_request_method")
    if not d_url:
        raise InvalidRequest("missing iam_request_url")
    if not d_body:
        raise InvalidRequest("missing iam_request_body")
    if not d_headers:
        raise InvalidRequest("missing iam_request_headers")
    return (d_method, _b64("iam_request_url", d_url), _b64("iam_request_body", d_body), parse_headers(d_headers))
