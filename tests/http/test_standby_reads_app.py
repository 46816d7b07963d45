"""standby_reads in the HTTP edge (http/app.py): what a standby answers itself, and that an answer
made while its parts were being set up again (an HA switch, a follower's reload) is not given out."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from strongroom.core import Core
from strongroom.core.write_index import WriteIndex
from strongroom.http.app import App
from strongroom.http.logical import Peer
from strongroom.storage.inmem import InmemStorage

PEER = Peer("127.0.0.1", 40000)


async def _standby() -> tuple[Core, App, str]:
    """A core that answers as an HA standby would (serving_active False, no leader known), with a
    kv-v2 secret, and an app whose follower's feed is live."""
    core = Core(InmemStorage())
    _, root = await core.dev_bootstrap("root")
    app = App(core)
    status, _ = await app.handle("POST", "/v1/secret/data/app", "", {"x-vault-token": root},
                                 b'{"data":{"v":"1"}}', PEER)
    assert status == 200
    follower = SimpleNamespace(subscribed=asyncio.Event(), index=WriteIndex(None))
    follower.subscribed.set()
    standby = App(core, standby_reads=follower)  # type: ignore[arg-type]
    core.ha = SimpleNamespace(fenced_active=False, leader=lambda: (False, ""))  # type: ignore[assignment]
    return core, standby, root


async def test_a_standby_answers_a_kv_read_itself_and_forwards_the_rest() -> None:
    core, app, root = await _standby()
    try:
        status, body = await app.handle("GET", "/v1/secret/data/app", "", {"x-vault-token": root}, b"", PEER)
        assert status == 200 and orjson.loads(body)["data"]["data"] == {"v": "1"}
        for method, path, headers in (("POST", "/v1/secret/data/app", {}),  # a write
                                      ("GET", "/v1/secret/data/app", {"x-vault-index": "strongroom-1"}),
                                      ("GET", "/v1/secret/data/app", {"x-vault-index": "sr1.e0.1"}),  # not followed
                                      ("GET", "/v1/secret/data/nope", {}),  # a miss: the active's to confirm
                                      ("GET", "/v1/sys/policies/acl/default", {})):  # not a KV mount
            status, _ = await app.handle(method, path, "", {"x-vault-token": root, **headers}, b"", PEER)
            assert status == 503, (method, path, headers)  # no active known: the standby's own answer
    finally:
        core.ha = None
        await core.seal()


@pytest.mark.parametrize("when", ["during", "started"])
async def test_an_answer_made_during_an_ha_switch_is_not_given_out(when: str, monkeypatch: pytest.MonkeyPatch) -> None:
    core, app, root = await _standby()
    real = App._serve

    async def serve(self: App, *args: Any) -> tuple[int, bytes]:
        out = await real(self, *args)
        core.switches += 1 if when == "started" else 2  # a switch began, or came and went, meanwhile
        return out

    try:
        monkeypatch.setattr(App, "_serve", serve)
        status, _ = await app.handle("GET", "/v1/secret/data/app", "", {"x-vault-token": root}, b"", PEER)
        assert status == 503
        monkeypatch.setattr(App, "_serve", real)
        status, _ = await app.handle("GET", "/v1/secret/data/app", "", {"x-vault-token": root}, b"", PEER)
        assert status == (503 if when == "started" else 200)  # a switch still under way: nothing local
    finally:
        core.ha = None
        await core.seal()


async def test_a_standby_keeps_its_reads_in_its_read_cache_while_it_follows() -> None:
    core, app, root = await _standby()
    headers = {"x-vault-token": root}
    try:
        for _ in range(2):
            status, body = await app.handle("GET", "/v1/secret/data/app", "", headers, b"", PEER)
            assert status == 200 and orjson.loads(body)["data"]["data"] == {"v": "1"}
        assert core.reads.hits == 1  # the second from the standby's own read cache
        sent: list[tuple[int, bytes]] = []
        assert app.answer_cached("GET", "/v1/secret/data/app", "", headers, b"", PEER, lambda *a: sent.append(a))
        await asyncio.sleep(0)  # the audit write of this turn
        assert sent and sent[0][0] == 200 and core.reads.hits == 2

        # A change the follower applies (Core.invalidate) moves the stamp, before and after: what
        # was kept is not given again, and a read that overlapped the change is not kept.
        stamp = core.reads.stamp()
        await core.invalidate("logical/anything")
        assert core.reads.stamp() != stamp
        status, _ = await app.handle("GET", "/v1/secret/data/app", "", headers, b"", PEER)
        assert status == 200 and core.reads.hits == 2

        # The feed broken (or a switch under way): nothing kept is given, the active answers.
        status, _ = await app.handle("GET", "/v1/secret/data/app", "", headers, b"", PEER)
        assert status == 200 and core.reads.hits == 3
        app.standby_reads.subscribed.clear()  # type: ignore[union-attr]
        assert core.cached_read(root, "secret/data/app", "") == (None, None)
        assert not app.answer_cached("GET", "/v1/secret/data/app", "", headers, b"", PEER, lambda *a: None)
        status, _ = await app.handle("GET", "/v1/secret/data/app", "", headers, b"", PEER)
        assert status == 503 and core.reads.hits == 3
        app.standby_reads.subscribed.set()  # type: ignore[union-attr]
        core.switches += 1
        assert core.cached_read(root, "secret/data/app", "") == (None, None)
        core.switches += 1
    finally:
        core.ha = None
        await core.seal()
