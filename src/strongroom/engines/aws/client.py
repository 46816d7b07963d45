"""A small async client for the IAM and STS query APIs: form-encoded POSTs signed with SigV4
(sigv4.py) over one pooled ``httpx.AsyncClient`` per mount, XML answers read with ElementTree.

Errors: an answer of AWS's ``<ErrorResponse>`` becomes :class:`AWSError` (its code, message and
HTTP status, as the AWS SDK prints them); a request that cannot be sent or answered becomes
:class:`AWSUnreachable`. Throttling, 5xx answers and transport failures are retried
``max_retries`` times (-1: the SDK's default of 3) with capped exponential backoff; every attempt
has a deadline (``TIMEOUT``), so a silent endpoint never hangs a request.

XML: answers come from the configured endpoint (an operator's choice), parsed by the standard
library's expat, which neither fetches external entities nor expands entities exponentially
(expat >= 2.4.1, Python 3.11+).
"""

from __future__ import annotations

import asyncio
import random
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode, urlsplit

import httpx

from strongroom.engines.aws.sigv4 import Credentials, sign

IAM_VERSION = "2010-05-08"
STS_VERSION = "2011-06-15"
#: Seconds allowed for one attempt (connect, send, answer).
TIMEOUT = 10.0
DEFAULT_RETRIES = 3
_RETRY_CODES = frozenset({"Throttling", "ThrottlingException", "RequestLimitExceeded", "ServiceUnavailable",
                          "RequestThrottled", "InternalFailure", "InternalError"})
_THROTTLED = frozenset({"Throttling", "ThrottlingException", "RequestLimitExceeded", "RequestThrottled"})
_FORM = "application/x-www-form-urlencoded; charset=utf-8"


class AWSError(Exception):
    """An error answer from IAM or STS."""

    def __init__(self, status: int, code: str, message: str, request_id: str = "") -> None:
        super().__init__(code, message)
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id

    def __str__(self) -> str:
        text = f"{self.code}: {self.message}\n\tstatus code: {self.status}"
        return text + (f", request id: {self.request_id}" if self.request_id else "")


class AWSUnreachable(Exception):
    """The endpoint could not be reached or gave no usable answer."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    url: str
    region: str  # the region requests are signed for
    service: str  # "iam" or "sts"
    version: str


def iam_endpoint(region: str, custom: str = "") -> Endpoint:
    """IAM is global: signed for the partition's home region whatever region is configured."""
    if region.startswith("cn-"):
        url, signing = "https://iam.cn-north-1.amazonaws.com.cn", "cn-north-1"
    elif region.startswith("us-gov-"):
        url, signing = "https://iam.us-gov.amazonaws.com", "us-gov-west-1"
    else:
        url, signing = "https://iam.amazonaws.com", "us-east-1"
    return Endpoint(custom or url, region if custom and region else signing, "iam", IAM_VERSION)


def sts_endpoint(region: str, custom: str = "") -> Endpoint:
    suffix = ".amazonaws.com.cn" if region.startswith("cn-") else ".amazonaws.com"
    return Endpoint(custom or f"https://sts.{region}{suffix}", region, "sts", STS_VERSION)


def _strip_namespaces(root: ET.Element) -> ET.Element:
    for el in root.iter():
        if isinstance(el.tag, str) and "}" in el.tag:
            el.tag = el.tag.rsplit("}", 1)[1]
    return root


def text(el: ET.Element | None, path: str, default: str = "") -> str:
    """The text at ``path`` (ElementTree path of local names) under ``el``."""
    if el is None:
        return default
    found = el.find(path)
    return (found.text or "") if found is not None else default


class AWSClient:
    """Signed calls to one IAM and one STS endpoint with one set of credentials."""

    def __init__(self, http: httpx.AsyncClient, creds: Credentials, iam: Endpoint, sts: Endpoint, *,
                 max_retries: int = -1, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.http = http
        self.creds = creds
        self.iam = iam
        self.sts = sts
        self.retries = DEFAULT_RETRIES if max_retries < 0 else max_retries
        self.clock = clock

    async def call(self, endpoint: Endpoint, action: str, params: Mapping[str, str], *,
                   idempotent: bool = True) -> ET.Element:
        """Call ``action``; returns its ``<ActionResult>`` element (namespaces removed).

        A call that is not ``idempotent`` (CreateUser) is retried only when AWS says it was
        throttled, i.e. did nothing: after a timeout or a 5xx it may have been done, and a retry
        would then fail with EntityAlreadyExists, telling apart nothing the caller can act on."""
        body = urlencode({"Action": action, "Version": endpoint.version, **params}).encode()
        attempt = 0
        while True:
            try:
                return await self._once(endpoint, action, body)
            except AWSError as e:
                retry = e.code in _THROTTLED or (idempotent and (e.status >= 500 or e.code in _RETRY_CODES))
                if attempt >= self.retries or not retry:
                    raise
            except AWSUnreachable:
                if attempt >= self.retries or not idempotent:
                    raise
            await asyncio.sleep(min(0.05 * 2 ** attempt, 1.0) * (0.5 + random.random() / 2))  # noqa: S311
            attempt += 1

    async def _once(self, endpoint: Endpoint, action: str, body: bytes) -> ET.Element:
        url = urlsplit(endpoint.url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise AWSUnreachable(f"invalid {endpoint.service} endpoint {endpoint.url!r}")
        host = url.netloc.rsplit("@", 1)[-1]
        path = url.path or "/"
        headers = sign(method="POST", host=host, path=path, query=url.query, body=body, content_type=_FORM,
                       creds=self.creds, region=endpoint.region, service=endpoint.service, now=self.clock())
        try:
            resp = await self.http.post(endpoint.url, content=body, headers=headers, timeout=TIMEOUT)
        except httpx.HTTPError as e:
            raise AWSUnreachable(f"{endpoint.service} {action}: cannot reach {endpoint.url}: "
                                 f"{type(e).__name__} {e}".rstrip()) from None
        try:
            root = _strip_namespaces(ET.fromstring(resp.content))  # noqa: S314 - see the module docstring
        except ET.ParseError:
            if resp.status_code >= 400:
                raise AWSError(resp.status_code, f"HTTP{resp.status_code}",
                               resp.text[:200] or resp.reason_phrase) from None
            raise AWSUnreachable(f"{endpoint.service} {action}: unreadable answer from {endpoint.url}") from None
        if resp.status_code >= 400 or root.tag == "ErrorResponse":
            err = root.find("Error")
            raise AWSError(resp.status_code, text(err, "Code", "Unknown"), text(err, "Message"),
                           text(root, "RequestId") or text(root, "RequestID"))
        result = root.find(f"{action}Result")
        return result if result is not None else root

    async def iam_call(self, action: str, params: Mapping[str, str] | None = None, *,
                       idempotent: bool = True) -> ET.Element:
        return await self.call(self.iam, action, params or {}, idempotent=idempotent)

    async def sts_call(self, action: str, params: Mapping[str, str] | None = None) -> ET.Element:
        return await self.call(self.sts, action, params or {})

    async def iam_list(self, action: str, params: Mapping[str, str], item_path: str) -> list[ET.Element]:
        """Every item of a paginated IAM list call (``Marker``/``IsTruncated``)."""
        items: list[ET.Element] = []
        marker = ""
        while True:
            page = {**params, "MaxItems": "1000", **({"Marker": marker} if marker else {})}
            result = await self.iam_call(action, page)
            items.extend(result.findall(item_path))
            marker = text(result, "Marker")
            if text(result, "IsTruncated").lower() != "true" or not marker:
                return items


__all__ = ["AWSClient", "AWSError", "AWSUnreachable", "Endpoint", "iam_endpoint", "sts_endpoint", "text"]
