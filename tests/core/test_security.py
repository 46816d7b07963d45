"""Security events (webhooks with retries, audit, persistence) and quarantine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson

from strongroom.core import Core, CoreConfig
from strongroom.core.security import SecurityConfig
from strongroom.storage.inmem import InmemStorage
from strongroom.testing import asgi_client, unsealed_core

WRAP = {"X-Vault-Wrap-TTL": "60s"}


@asynccontextmanager
async def webhook_receiver(fail_first: int = 0) -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A real HTTP server on a local port that records JSON bodies POSTed to it; the first
    ``fail_first`` requests are answered 500."""
    received: list[dict[str, Any]] = []
    calls = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal calls
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        body = await reader.readexactly(length)
        calls += 1
        status = b"500 Internal Server Error" if calls <= fail_first else b"200 OK"
        if calls > fail_first:
            received.append(orjson.loads(body))
        writer.write(b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/hook", received
    finally:
        server.close()


async def _reuse(c: httpx.AsyncClient) -> str:
    info = (await c.post("/v1/sys/wrapping/wrap", json={"a": "b"}, headers=WRAP)).json()["wrap_info"]
    await c.post("/v1/sys/wrapping/unwrap", json={"token": info["token"]})
    assert (await c.post("/v1/sys/wrapping/unwrap", json={"token": info["token"]})).status_code == 400
    return str(info["accessor"])


async def test_events_are_posted_to_webhooks() -> None:
    async with webhook_receiver() as (url, received):
        config = CoreConfig(security=SecurityConfig(webhook_urls=(url,)))
        async with unsealed_core(config=config) as (core, root), asgi_client(core, root) as c:
            accessor = await _reuse(c)
            await core.security.drain()
    assert len(received) == 1
    assert received[0]["type"] == "wrapping-token-reuse" and received[0]["accessor"] == accessor


async def test_webhook_delivery_is_retried() -> None:
    async with webhook_receiver(fail_first=2) as (url, received):
        config = CoreConfig(security=SecurityConfig(webhook_urls=(url,), webhook_backoff=0.01))
        async with unsealed_core(config=config) as (core, root), asgi_client(core, root) as c:
            await _reuse(c)
            await core.security.drain()
    assert [e["type"] for e in received] == ["wrapping-token-reuse"]


async def test_a_dead_webhook_never_fails_the_request() -> None:
    config = CoreConfig(security=SecurityConfig(webhook_urls=("http://127.0.0.1:9/hook",), webhook_backoff=0.01))
    async with unsealed_core(config=config) as (core, root), asgi_client(core, root) as c:
        await _reuse(c)  # the 400 comes back at once; delivery goes on in the background
        await core.security.drain()
        assert (await c.get("/v1/sys/security/events")).json()["data"]["counts"] == {"wrapping-token-reuse": 1}


async def test_events_need_sudo_and_survive_reseal() -> None:
    core = Core(InmemStorage())
    key, root = await core.dev_bootstrap("root")
    async with asgi_client(core, root) as c:
        await _reuse(c)
        plain = (await c.post("/v1/auth/token/create", json={"policies": ["default"]})).json()["auth"]["client_token"]
        assert (await c.get("/v1/sys/security/events", headers={"X-Vault-Token": plain})).status_code == 403
        await core.seal()
        assert (await c.get("/v1/sys/security/events")).status_code == 503
        await core.unseal(key)
        data = (await c.get("/v1/sys/security/events")).json()["data"]
        assert data["counts"] == {"wrapping-token-reuse": 1} and len(data["events"]) == 1
    await core.seal()


async def _create(c: httpx.AsyncClient, token: str, path: str = "create", **body: Any) -> dict[str, Any]:
    r = await c.post(f"/v1/auth/token/{path}", json=body, headers={"X-Vault-Token": token})
    assert r.status_code == 200, r.text
    return dict(r.json()["auth"])


async def test_quarantine_by_accessor_revokes_the_client_and_all_it_issued() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        await c.put("/v1/sys/policy/issuer", json={"policy": 'path "auth/token/create*" { capabilities = ["update"] }'})
        suspect = await _create(c, root, policies=["issuer"])
        child = await _create(c, suspect["client_token"], policies=["issuer"])
        grandchild = await _create(c, child["client_token"], policies=["issuer"])
        orphan = await _create(c, suspect["client_token"], "create-orphan", policies=["issuer"])
        made_by_orphan = await _create(c, orphan["client_token"], "create-orphan", policies=["issuer"])
        bystander = await _create(c, root, policies=["default"])
        r = await c.post("/v1/sys/security/quarantine", json={"accessor": suspect["accessor"]})
        assert r.status_code == 200, r.text
        revoked = set(r.json()["data"]["revoked_accessors"])
        assert revoked == {a["accessor"] for a in (suspect, child, grandchild, orphan, made_by_orphan)}
        for a in (suspect, child, grandchild, orphan, made_by_orphan):
            assert await core.tokens.lookup(a["client_token"]) is None
        assert await core.tokens.lookup(bystander["client_token"]) is not None
        events = (await c.get("/v1/sys/security/events")).json()["data"]
        assert events["counts"] == {"quarantine": 1}
        assert events["events"][0]["selector"] == {"accessor": suspect["accessor"]}


async def test_quarantine_by_cidr_spares_the_operator() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        t = await _create(c, root, policies=["default"])
        r = await c.post("/v1/sys/security/quarantine", json={"cidr": "127.0.0.0/8"})
        assert r.status_code == 200, r.text
        assert t["accessor"] in r.json()["data"]["revoked_accessors"]
        assert await core.tokens.lookup(t["client_token"]) is None
        assert await core.tokens.lookup(root) is not None
        other = await c.post("/v1/sys/security/quarantine", json={"cidr": "10.0.0.0/8"})
        assert other.json()["data"]["revoked"] == 0


async def test_quarantine_input_errors_and_sudo() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        assert (await c.post("/v1/sys/security/quarantine", json={})).status_code == 400
        assert (await c.post("/v1/sys/security/quarantine", json={"cidr": "nonsense"})).status_code == 400
        assert (await c.post("/v1/sys/security/quarantine", json={"accessor": "nope"})).status_code == 400
        plain = await _create(c, root, policies=["default"])
        r = await c.post("/v1/sys/security/quarantine", json={"cidr": "0.0.0.0/0"},
                         headers={"X-Vault-Token": plain["client_token"]})
        assert r.status_code == 403
        assert await core.tokens.lookup(plain["client_token"]) is not None
