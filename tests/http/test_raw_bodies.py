"""The raw-body seam: a backend's own Content-Type and headers reach the wire, request bodies Vault
passes unparsed (OCSP) reach the backend as bytes, HEAD reaches a backend that declares it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from strongroom.engines import SECRETS_ENGINES
from strongroom.http import wire
from strongroom.logical import Operation, Request
from strongroom.testing import app_client, unsealed_core
from tests.http import raw_backend


@pytest.fixture
async def client(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setitem(SECRETS_ENGINES, raw_backend.TYPE, "tests.http.raw_backend:RawBackend")
    async with unsealed_core() as (core, token), app_client(core, token) as c:
        assert (await c.post("/v1/sys/mounts/raw", json={"type": raw_backend.TYPE})).status_code == 204
        yield c


async def test_raw_answer_keeps_its_content_type_and_headers(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/raw/cert", headers={"X-Vault-Token": ""})
    assert r.status_code == 200 and r.content == b"\x30\x03\x02\x01\x01"
    assert r.headers["content-type"] == "application/pkix-cert" and r.headers["link"] == '<https://x/ca>;rel="up"'


async def test_ocsp_request_body_reaches_the_backend_unparsed(client: httpx.AsyncClient) -> None:
    der = b"\x30\x80\xff{not json"
    r = await client.post("/v1/raw/echo", content=der, headers={"Content-Type": "application/ocsp-request"})
    assert r.status_code == 200 and r.content == der
    r = await client.post("/v1/raw/echo", json={"x": 1})  # any other type is parsed as JSON, as before
    assert r.content == b"parsed:['x']"
    assert (await client.post("/v1/raw/echo", content=der)).status_code == 400


async def test_head_reaches_a_backend_that_declares_it(client: httpx.AsyncClient) -> None:
    r = await client.head("/v1/raw/nonce")
    assert r.status_code == 200 and r.headers["replay-nonce"] == "n1" and r.content == b""
    r = await client.get("/v1/raw/nonce")  # nothing in it: 204, the header still sent
    assert r.status_code == 204 and r.headers["replay-nonce"] == "n2"
    assert (await client.head("/v1/raw/cert")).status_code == 405  # declares no HEAD


async def test_envelope_answers_carry_headers_and_injection_is_refused(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/raw/enveloped")
    assert r.status_code == 200 and r.json()["data"] == {"a": 1} and r.headers["location"] == "https://x/order/1"
    r = await client.get("/v1/raw/injected")
    assert r.status_code == 500 and "set-cookie" not in r.headers


def test_wire_writes_a_body_with_its_own_headers() -> None:
    out = wire.response(200, wire.Body(b"abc", "text/plain", {"Replay-Nonce": "x"}), keep_alive=True)
    assert out == (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nCache-Control: no-store\r\n"
                   b"Replay-Nonce: x\r\nContent-Length: 3\r\n\r\nabc")
    out = wire.response(200, wire.Body(b"", headers={"Cache-Control": "max-age=60"}), keep_alive=True, head=True)
    assert b"no-store" not in out and b"Cache-Control: max-age=60\r\n" in out
    for bad in ({"X": "a\nb"}, {"X: y": "z"}):
        with pytest.raises(ValueError):
            wire.Body(b"", headers=bad)


async def test_over_the_socket_head_and_raw_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.http.test_http_server import read_response, serving

    monkeypatch.setitem(SECRETS_ENGINES, raw_backend.TYPE, "tests.http.raw_backend:RawBackend")
    async with serving() as running:
        await running.core.handle_request(_mount_request())
        reader, writer = await running.connect()
        writer.write(b"HEAD /v1/raw/nonce HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/raw/cert HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = await read_response(reader, head=True)
        assert (status, headers["replay-nonce"], body) == (200, "n1", b"")
        status, headers, body = await read_response(reader)
        assert (status, headers["content-type"], body) == (200, "application/pkix-cert", b"\x30\x03\x02\x01\x01")
        writer.close()


def _mount_request() -> Request:
    return Request(Operation.UPDATE, "sys/mounts/raw", {"type": raw_backend.TYPE}, client_token="root")
