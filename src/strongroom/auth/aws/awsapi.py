"""One signed AWS query-API call (form-encoded POST to ``/``, XML answer) with the method's
configured credentials (config/client, else the standard AWS_* environment variables)."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

import httpx

from strongroom.auth.aws.sigv4 import sign_post
from strongroom.auth.aws.store import ClientConfig

if TYPE_CHECKING:
    from strongroom.auth.aws import AwsBackend

MAX_ANSWER = 256 * 1024


class AwsCallError(Exception):
    """The call failed (unreachable, an AWS error code, an unreadable answer); the message is safe to show."""


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def find_text(root: ET.Element, name: str) -> str:
    for el in root.iter():
        if local(el.tag) == name:
            return (el.text or "").strip()
    return ""


async def call(b: AwsBackend, config: ClientConfig, endpoint: str, region: str, service: str,
               params: dict[str, str]) -> ET.Element:
    access_key = config.access_key or os.environ.get("AWS_ACCESS_KEY_ID", "")
    secret_key = config.secret_key or os.environ.get("AWS_SECRET_ACCESS_KEY", "")
    token = "" if config.access_key else os.environ.get("AWS_SESSION_TOKEN", "")
    body = urlencode(params).encode()
    headers = sign_post(host=urlsplit(endpoint).netloc, body=body, access_key=access_key, secret_key=secret_key,
                        session_token=token, region=region, service=service, now=datetime.now(UTC))
    try:
        async with b.http_client().stream("POST", endpoint.rstrip("/") + "/", content=body, headers=headers,
                                          timeout=b.sts_timeout) as r:
            chunks: list[bytes] = []
            size = 0
            async for chunk in r.aiter_bytes():
                size += len(chunk)
                if size > MAX_ANSWER:
                    raise AwsCallError("response too large")
                chunks.append(chunk)
            status, text = r.status_code, b"".join(chunks).decode("utf-8", "replace")
    except httpx.HTTPError as e:
        b.system.logger.warning("aws auth: %s %s failed: %s", service, params.get("Action"), e)
        raise AwsCallError(type(e).__name__) from None
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        raise AwsCallError(f"unreadable response (status {status})") from None
    if status != 200:
        raise AwsCallError(find_text(root, "Code") or f"status {status}")
    return root
