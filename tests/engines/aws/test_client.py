"""The IAM/STS client's retry policy, error parsing and pagination. The failures moto cannot be made
to produce (throttling, 5xx, a dropped connection) come from an httpx transport function."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs

import httpx
import pytest

from strongroom.engines.aws import client as client_mod
from strongroom.engines.aws.client import AWSClient, AWSError, AWSUnreachable, iam_endpoint, sts_endpoint
from strongroom.engines.aws.sigv4 import Credentials

NS = "https://iam.amazonaws.com/doc/2010-05-08/"


def _error(code: str, status: int) -> httpx.Response:
    return httpx.Response(status, content=(f'<ErrorResponse xmlns="{NS}"><Error><Type>Sender</Type><Code>{code}'
                                           f"</Code><Message>it went wrong</Message></Error>"
                                           "<RequestId>req-1</RequestId></ErrorResponse>").encode())


def _ok(action: str, inner: str = "") -> httpx.Response:
    return httpx.Response(200, content=f'<{action}Response xmlns="{NS}"><{action}Result>{inner}'
                                       f"</{action}Result></{action}Response>".encode())


def _client(handler: Callable[[httpx.Request], httpx.Response], retries: int = 3) -> tuple[AWSClient, list[str]]:
    calls: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        calls.append(parse_qs(request.content.decode())["Action"][0])
        assert request.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKID/")
        return handler(request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(record))
    return AWSClient(http, Credentials("AKID", "secret"), iam_endpoint("us-east-1", "http://iam.test"),
                     sts_endpoint("us-east-1", "http://sts.test"), max_retries=retries), calls


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_sleep(_: float) -> None:
        return None
    monkeypatch.setattr(client_mod.asyncio, "sleep", no_sleep)


async def test_error_answer_parsed_and_not_retried() -> None:
    c, calls = _client(lambda r: _error("NoSuchEntity", 404))
    with pytest.raises(AWSError) as e:
        await c.iam_call("GetUser", {"UserName": "x"})
    assert (e.value.code, e.value.status, e.value.message) == ("NoSuchEntity", 404, "it went wrong")
    assert str(e.value) == "NoSuchEntity: it went wrong\n\tstatus code: 404, request id: req-1"
    assert calls == ["GetUser"]


async def test_5xx_and_transport_errors_retried_for_idempotent_calls_only() -> None:
    answers = iter([_error("ServiceUnavailable", 503), None, _ok("ListUsers")])

    def handler(request: httpx.Request) -> httpx.Response:
        a = next(answers)
        if a is None:
            raise httpx.ConnectError("refused")
        return a

    c, calls = _client(handler)
    assert (await c.iam_call("ListUsers")).tag == "ListUsersResult"
    assert calls == ["ListUsers"] * 3

    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer")

    c, calls = _client(drop)
    with pytest.raises(AWSUnreachable, match="cannot reach http://iam.test"):
        await c.iam_call("CreateUser", {"UserName": "u"}, idempotent=False)
    assert calls == ["CreateUser"]  # it may have been done: never retried
    c, calls = _client(lambda r: _error("InternalFailure", 500))
    with pytest.raises(AWSError):
        await c.iam_call("CreateUser", {"UserName": "u"}, idempotent=False)
    assert calls == ["CreateUser"]


async def test_throttling_retried_even_when_not_idempotent_and_max_retries() -> None:
    answers = iter([_error("Throttling", 400), _ok("CreateUser")])
    c, calls = _client(lambda r: next(answers))
    await c.iam_call("CreateUser", {"UserName": "u"}, idempotent=False)
    assert calls == ["CreateUser", "CreateUser"]
    c, calls = _client(lambda r: _error("Throttling", 400), retries=0)
    with pytest.raises(AWSError, match="Throttling"):
        await c.iam_call("ListUsers")
    assert calls == ["ListUsers"]
    c, calls = _client(lambda r: _error("Throttling", 400), retries=-1)  # the SDK's default: 3
    with pytest.raises(AWSError):
        await c.iam_call("ListUsers")
    assert len(calls) == 4


async def test_pagination_and_unreadable_answers() -> None:
    pages = iter([_ok("ListAccessKeys", "<AccessKeyMetadata><member><AccessKeyId>A</AccessKeyId></member>"
                                        "</AccessKeyMetadata><IsTruncated>true</IsTruncated><Marker>m1</Marker>"),
                  _ok("ListAccessKeys", "<AccessKeyMetadata><member><AccessKeyId>B</AccessKeyId></member>"
                                        "</AccessKeyMetadata><IsTruncated>false</IsTruncated>")])
    markers: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        markers.append(parse_qs(request.content.decode()).get("Marker", [""])[0])
        return next(pages)

    c, _ = _client(handler)
    items = await c.iam_list("ListAccessKeys", {"UserName": "u"}, "AccessKeyMetadata/member")
    assert [i.findtext("AccessKeyId") for i in items] == ["A", "B"] and markers == ["", "m1"]
    c, _ = _client(lambda r: httpx.Response(200, content=b"not xml"), retries=0)
    with pytest.raises(AWSUnreachable, match="unreadable answer"):
        await c.iam_call("ListUsers")
    c, _ = _client(lambda r: httpx.Response(502, content=b"<html>bad gateway"), retries=0)
    with pytest.raises(AWSError, match="HTTP502"):
        await c.iam_call("ListUsers")


def test_endpoints_and_signing_regions() -> None:
    assert iam_endpoint("eu-west-1") == client_mod.Endpoint("https://iam.amazonaws.com", "us-east-1", "iam",
                                                             "2010-05-08")
    assert iam_endpoint("cn-north-1").url == "https://iam.cn-north-1.amazonaws.com.cn"
    assert iam_endpoint("us-gov-east-1").region == "us-gov-west-1"
    assert sts_endpoint("eu-west-1").url == "https://sts.eu-west-1.amazonaws.com"
    assert sts_endpoint("eu-west-1", "http://x").region == "eu-west-1"
