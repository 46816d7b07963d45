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
