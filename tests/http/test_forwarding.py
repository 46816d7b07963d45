"""The forwarded hop's authentication (http/forwarding.py), without servers: what a standby signs,
the active accepts unchanged, and refuses once anything it acts on differs, the MAC key is another
cluster's, the time is stale or the request is replayed. Multi-node behaviour: tests/ha/test_forwarding.py."""

from __future__ import annotations

import asyncio
import os
import time
from types import SimpleNamespace
from typing import Any

import httpx
import orjson
import pytest

from strongroom.barrier import Barrier
from strongroom.barrier.seal import SealConfig
from strongroom.errors import PermissionDenied, Standby
from strongroom.http import forwarding, wire
from strongroom.http.forwarding import FORWARDED, FORWARDED_CERT, SIGNATURE, Forwarder
from strongroom.http.logical import Peer
from strongroom.storage.inmem import InmemStorage

CLIENT = Peer("10.1.2.3", 40000, b"leaf-der", (b"leaf-der", b"ca-der"))
HEADERS = {"x-vault-token": "s.token", "content-type": "application/json", "user-agent": "hvac"}
BODY = b'{"data": {"k": "v"}}'


def _core(key: bytes) -> Any:
    return SimpleNamespace(barrier=SimpleNamespace(derive_key=lambda purpose: key), sealed=False, ha=None)


def _signed(fwd: Forwarder, method: str = "POST", path: str = "/v1/secret/data/x", query: str = "",
            headers: dict[str, str] | None = None, body: bytes = BODY, peer: Peer = CLIENT) -> dict[str, str]:
    return fwd.outgoing(method, path, query, dict(HEADERS if headers is None else headers), body, peer)


def test_accepts_what_a_peer_signed_and_conveys_the_client() -> None:
    key = os.urandom(32)
    standby, active = Forwarder(_core(key)), Forwarder(_core(key))
    sent = _signed(standby, query="list=true&a=b%20c")
    assert active.claims(sent) and not active.claims(HEADERS)
    peer, headers = active.accept("POST", "/v1/secret/data/x", "list=true&a=b c", sent, BODY)
    assert peer == CLIENT
    assert headers == HEADERS  # ours removed, the client's kept


@pytest.mark.parametrize("change", ["method", "path", "query", "body", "token", "address", "cert", "no-signature",
                                    "no-forwarded", "bad-signature"])
def test_refuses_anything_changed(change: str) -> None:
    key = os.urandom(32)
    sent = _signed(Forwarder(_core(key)))
    active = Forwarder(_core(key))
    method, path, query, body = "POST", "/v1/secret/data/x", "", BODY
    if change == "method":
        method = "PUT"
    elif change == "path":
        path = "/v1/secret/data/y"
    elif change == "query":
        query = "version=2"
    elif change == "body":
        body = b'{"data": {"k": "w"}}'
    elif change == "token":
        sent["x-vault-token"] = "s.other"
    elif change == "address":
        parts = sent[FORWARDED].split(" ")
        sent[FORWARDED] = " ".join([*parts[:3], "192.0.2.1", parts[4]])
    elif change == "cert":
        sent[FORWARDED_CERT] = "Zm9yZ2Vk"
    elif change == "no-signature":
        del sent[SIGNATURE]
    elif change == "no-forwarded":
        del sent[FORWARDED]
    else:
        sent[SIGNATURE] = "0" * 64
    with pytest.raises(PermissionDenied):
        active.accept(method, path, query, sent, body)


def test_another_clusters_key_is_refused() -> None:
    sent = _signed(Forwarder(_core(os.urandom(32))))
    with pytest.raises(PermissionDenied, match="peer authentication failed"):
        Forwarder(_core(os.urandom(32))).accept("POST", "/v1/secret/data/x", "", sent, BODY)


def test_replay_and_stale_time_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    key = os.urandom(32)
    standby, active = Forwarder(_core(key)), Forwarder(_core(key))
    sent = _signed(standby)
    active.accept("POST", "/v1/secret/data/x", "", sent, BODY)
    with pytest.raises(PermissionDenied, match="replayed"):
        active.accept("POST", "/v1/secret/data/x", "", sent, BODY)
    now = time.time()
    monkeypatch.setattr(forwarding.time, "time", lambda: now - forwarding.MAX_SKEW - 5)
    old = _signed(standby)
    monkeypatch.setattr(forwarding.time, "time", lambda: now)
    with pytest.raises(PermissionDenied, match="expired"):
        active.accept("POST", "/v1/secret/data/x", "", old, BODY)


async def test_the_key_comes_from_the_root_key_and_survives_rotation() -> None:
    """Every node unsealed with the same keys derives the same key; a rotation does not change it;
    a sealed barrier has none."""
    storage = InmemStorage()
    first = Barrier(storage)
    unseal_key = await first.initialize(SealConfig(secret_shares=1, secret_threshold=1))
    await first.unseal(unseal_key)
    second = Barrier(storage)
    await second.unseal(unseal_key)
    key = first.derive_key(forwarding.KEY_PURPOSE)
    assert len(key) == 32 and key == second.derive_key(forwarding.KEY_PURPOSE)
    assert key != first.derive_key(b"another purpose")
    await first.rotate()
    assert first.derive_key(forwarding.KEY_PURPOSE) == key
    first.seal()
    with pytest.raises(Exception, match="sealed"):
        first.derive_key(forwarding.KEY_PURPOSE)


class _FakeHA:
    """Who the standby thinks is active, and who holds the lock when it reads again."""

    def __init__(self, known: str, holder: str) -> None:
        self.known, self.holder, self.reads = known, holder, 0

    def leader(self) -> tuple[bool, str]:
        return False, self.known

    async def refresh_leader(self) -> tuple[bool, str]:
        self.reads += 1
        self.known = self.holder
        return False, self.holder


def _standby(ha: _FakeHA, answer: Any) -> tuple[Forwarder, list[str]]:
    """A standby's Forwarder whose hop is ``answer(request)`` (an httpx.Response, or raises)."""
    core = _core(os.urandom(32))
    core.ha = ha
    fwd = Forwarder(core)
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url}")
        result: httpx.Response = answer(request)
        return result

    fwd._client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return fwd, calls


def _dead(request: httpx.Request) -> httpx.Response:
    if request.url.host == "dead":
        raise httpx.ConnectError("connection refused", request=request)
    return httpx.Response(201, content=b"-----BEGIN-----", headers={"Content-Type": "application/x-pem-file",
                                                                  "X-Vault-Thing": "1", "Server": "x"})


async def test_a_dead_active_is_retried_once_at_the_new_holder() -> None:
    ha = _FakeHA("http://dead:8200", "http://new:8200")
    fwd, calls = _standby(ha, _dead)
    status, body = await fwd.forward("POST", "/v1/pki/x y", "a=1", dict(HEADERS), BODY, CLIENT)
    assert calls == ["POST http://dead:8200/v1/pki/x%20y?a=1", "POST http://new:8200/v1/pki/x%20y?a=1"]
    assert ha.reads == 1 and status == 201 and bytes(body) == b"-----BEGIN-----"
    assert isinstance(body, wire.Body) and body.content_type == "application/x-pem-file"
    assert dict(body.headers) == {"x-vault-thing": "1"}  # hop-by-hop and server headers not relayed
    await fwd.close()


async def test_a_dead_active_still_holding_the_lock_is_503() -> None:
    ha = _FakeHA("http://dead:8200", "http://dead:8200")
    fwd, calls = _standby(ha, _dead)
    with pytest.raises(Standby, match="active cluster node not found"):
        await fwd.forward("GET", "/v1/secret/data/x", "", dict(HEADERS), b"", CLIENT)
    assert len(calls) == 1 and ha.reads == 1


async def test_no_known_active_is_503_without_sending() -> None:
    fwd, calls = _standby(_FakeHA("", "http://new:8200"), _dead)
    with pytest.raises(Standby, match="active cluster node not found"):
        await fwd.forward("GET", "/v1/secret/data/x", "", dict(HEADERS), b"", CLIENT)
    assert calls == []


async def test_a_failure_after_sending_is_not_retried() -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("connection reset", request=request)

    ha = _FakeHA("http://old:8200", "http://new:8200")
    fwd, calls = _standby(ha, broken)
    with pytest.raises(Standby, match="error forwarding"):
        await fwd.forward("POST", "/v1/secret/data/x", "", dict(HEADERS), BODY, CLIENT)
    assert len(calls) == 1 and ha.reads == 0  # the active may have written: never sent twice


async def test_an_active_that_stepped_down_is_retried_at_the_new_one() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "old":
            return httpx.Response(503, json={"errors": ["local node is not active but active cluster node not found"]})
        return httpx.Response(200, json={"data": {"ok": True}}, headers={"Cache-Control": "no-store"})

    fwd, calls = _standby(_FakeHA("http://old:8200", "http://new:8200"), answer)
    status, body = await fwd.forward("PUT", "/v1/sys/step-down", "", dict(HEADERS), b"", CLIENT)
    assert status == 200 and type(body) is bytes and orjson.loads(body) == {"data": {"ok": True}}
    assert [c.split("/")[2] for c in calls] == ["old:8200", "new:8200"]


async def test_the_client_cannot_smuggle_its_own_claim_through_a_standby() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    fwd, _ = _standby(_FakeHA("http://new:8200", "http://new:8200"), answer)
    headers = {**HEADERS, FORWARDED: "v1 0 00 10.9.9.9 1", "connection": "close", "host": "standby"}
    assert (await fwd.forward("DELETE", "/v1/secret/data/x", "", headers, b"", CLIENT))[0] == 204
    sent = seen[0].headers
    assert sent[FORWARDED].split(" ")[3:] == ["10.1.2.3", "40000"] and sent["host"] == "new:8200"
    assert sent["x-vault-token"] == "s.token" and SIGNATURE in sent


async def test_the_deadline_bounds_the_whole_exchange() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200)

    core = _core(os.urandom(32))
    core.ha = _FakeHA("http://slow:8200", "http://slow:8200")
    fwd = Forwarder(core, deadline=0.2)
    fwd._client = httpx.AsyncClient(transport=httpx.MockTransport(slow))
    started = time.monotonic()
    with pytest.raises(Standby, match="error forwarding"):
        await fwd.forward("GET", "/v1/secret/data/x", "", dict(HEADERS), b"", CLIENT)
    assert time.monotonic() - started < 2


async def test_in_the_app_a_claim_is_checked_with_ha_and_ignored_without() -> None:
    """App._dispatch: with a Forwarder (an HA server) a request claiming to be forwarded runs only
    with a valid MAC, as the client it names; without one (no HA) the header means nothing."""
    from strongroom.http.app import App
    from strongroom.testing import AppTransport, unsealed_core

    async with unsealed_core() as (core, token):
        fwd = Forwarder(core)
        seen: list[Peer] = []
        original = core.handle_request

        async def spy(req: Any) -> Any:
            seen.append(Peer(req.connection.remote_addr, req.connection.remote_port))
            return await original(req)

        core.handle_request = spy  # type: ignore[method-assign]
        body = orjson.dumps({"data": {"k": "v"}})
        base = {"x-vault-token": token, "content-type": "application/json"}
        signed = fwd.outgoing("POST", "/v1/secret/data/f", "", base, body, CLIENT)
        forged = {**signed, FORWARDED: signed[FORWARDED].replace("10.1.2.3", "10.6.6.6")}
        for forwarder, headers, expected in ((fwd, signed, 200), (fwd, forged, 403), (None, forged, 200)):
            async with httpx.AsyncClient(transport=AppTransport(App(core, forwarder=forwarder)),
                                         base_url="http://strongroom") as client:
                r = await client.post("/v1/secret/data/f", headers=headers, content=body)
                assert r.status_code == expected, (forwarder, r.text)
        assert seen == [Peer("10.1.2.3", 40000), Peer("127.0.0.1", 123)]  # the forged one never ran
