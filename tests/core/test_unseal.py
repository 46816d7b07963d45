"""The unseal window (core/__init__.py, Core.sealed): the barrier opens first and post-unseal then sets
up policies, tokens, mounts, leases, rotation and, last, the audit devices. Until that has finished
the core must count as sealed to every request, or a request could be served unaudited by a
half-built core; a failure (or a seal) during post-unseal must leave the core sealed.

Each test holds one real post-unseal step on an asyncio.Event (or makes it fail) by monkeypatching
the component that owns it; the core itself runs unmodified."""

from __future__ import annotations

import asyncio
import errno
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from strongroom.core import Core, CoreConfig
from strongroom.core.audit import AuditConfig, DeclaredDevice
from strongroom.core.tokens import TokenStore
from strongroom.errors import Sealed
from strongroom.storage.inmem import InmemStorage
from strongroom.testing import asgi_client

SEALED = {"errors": ["Vault is sealed"]}


class Hold:
    """Makes one awaited method of a real component wait for ``release`` (before the real call, or
    after it with ``after=True``); ``entered`` is set once the method has been reached."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, owner: object, name: str, *, after: bool = False) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        real = getattr(owner, name)

        async def held(*args: Any, **kwargs: Any) -> Any:
            result = await real(*args, **kwargs) if after else None
            self.entered.set()
            await self.release.wait()
            return result if after else await real(*args, **kwargs)

        monkeypatch.setattr(owner, name, held)


@asynccontextmanager
async def _audited_core(tmp_path: Path) -> AsyncIterator[tuple[Core, bytes, httpx.AsyncClient, Path]]:
    """A dev core with a file audit device declared in its config (set up at every unseal, like a
    server's), a secret at secret/data/app, sealed again: ready to be unsealed by the test."""
    log = tmp_path / "audit.log"
    config = CoreConfig(audit=AuditConfig(devices=(DeclaredDevice("file", "file/", options=(("file_path", str(log)),)),)))
    core = Core(InmemStorage(), config)
    key, root = await core.dev_bootstrap("root")
    try:
        async with asgi_client(core, root) as c:
            assert (await c.post("/v1/secret/data/app", json={"data": {"v": "1"}})).status_code == 200
            await core.seal()
            yield core, key, c, log
    finally:
        await core.seal()


async def _reports_sealed(core: Core) -> bool:
    return bool((await core.seal_status())["sealed"])


def _request_ids(log: Path) -> set[str]:
    return {json.loads(line)["request"]["id"] for line in log.read_bytes().splitlines()}


async def test_a_request_during_post_unseal_is_refused_sealed_and_none_goes_unaudited(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with _audited_core(tmp_path) as (core, key, c, log):
        hold = Hold(monkeypatch, core.audit, "setup")
        unsealing = asyncio.create_task(core.unseal(key))
        await hold.entered.wait()
        assert not core.barrier.sealed  # the window: storage is open, requests must not be
        before = log.read_bytes()
        refused = [await c.get("/v1/secret/data/app"),
                   await c.post("/v1/secret/data/app", json={"data": {"v": "2"}}),
                   await c.get("/v1/auth/token/lookup-self"),
                   await c.get("/v1/sys/leader"),  # the sys endpoints outside the pipeline too
                   await c.get("/v1/sys/rekey/init")]
        for r in refused:
            assert (r.status_code, r.json()) == (503, SEALED), r.request.url
        assert core.cached_read("root", "secret/data/app", "") == (None, None)  # nothing kept, nothing given
        assert log.read_bytes() == before

        hold.release.set()
        await unsealing
        assert not await _reports_sealed(core)
        r = await c.get("/v1/secret/data/app")
        assert r.status_code == 200
        assert r.json()["data"]["data"] == {"v": "1"}  # the write sent in the window never reached kv
        again = await c.get("/v1/secret/data/app")
        assert {r.json()["request_id"], again.json()["request_id"]} <= _request_ids(log)


async def test_seal_status_and_health_say_sealed_until_post_unseal_has_finished(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with _audited_core(tmp_path) as (core, key, c, _log):
        hold = Hold(monkeypatch, core.audit, "setup")
        unsealing = asyncio.create_task(core.unseal(key))
        await hold.entered.wait()
        status = (await c.get("/v1/sys/seal-status")).json()
        assert status["sealed"] is True and "cluster_id" not in status
        health = await c.get("/v1/sys/health")
        assert health.status_code == 503
        assert (health.json()["sealed"], health.json()["standby"]) == (True, True)
        assert (await c.get("/v1/sys/health", params={"sealedcode": 299})).status_code == 299

        hold.release.set()
        await unsealing
        status = (await c.get("/v1/sys/seal-status")).json()
        assert status["sealed"] is False and status["cluster_id"]
        health = await c.get("/v1/sys/health")
        assert health.status_code == 200 and health.json()["sealed"] is False


async def test_sys_init_never_serves_while_its_core_is_briefly_unsealed(monkeypatch: pytest.MonkeyPatch) -> None:
    """sys/init unseals internally to mint the root token; no request may be served meanwhile."""
    core = Core(InmemStorage())
    hold = Hold(monkeypatch, core.audit, "setup", after=True)
    async with asgi_client(core, "root") as c:
        initializing = asyncio.create_task(c.put("/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1}))
        await hold.entered.wait()
        assert not core.barrier.sealed
        assert (await c.get("/v1/sys/health")).status_code == 503
        assert (await c.get("/v1/sys/seal-status")).json()["sealed"] is True
        r = await c.get("/v1/sys/mounts")
        assert (r.status_code, r.json()) == (503, SEALED)
        hold.release.set()
        assert (await initializing).status_code == 200
        assert core.barrier.sealed and await _reports_sealed(core)


async def _fail(*_args: Any, **_kwargs: Any) -> None:
    raise OSError(errno.EIO, "storage went away")


@pytest.mark.parametrize("step", ["policies.setup", "TokenStore.setup", "mounts.setup", "expiration.setup",
                                  "rotation.setup"])
async def test_a_failed_post_unseal_step_leaves_the_core_sealed(
        step: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every step, not only audit setup (which resealed already): no half-unsealed core."""
    async with _audited_core(tmp_path) as (core, key, c, log):
        owner_name, method = step.split(".")
        owner: object = TokenStore if owner_name == "TokenStore" else getattr(core, owner_name)
        monkeypatch.setattr(owner, method, _fail)
        with pytest.raises(OSError):
            await core.unseal(key)
        assert core.barrier.sealed and await _reports_sealed(core)
        assert not core.audit.enabled  # whatever was set up is stopped again
        status = (await c.get("/v1/sys/seal-status")).json()
        assert (status["sealed"], status["progress"]) == (True, 0)
        r = await c.get("/v1/secret/data/app")
        assert (r.status_code, r.json()) == (503, SEALED)

        monkeypatch.undo()  # the storage is back: the same key unseals, and requests are audited again
        await core.unseal(key)
        r = await c.get("/v1/secret/data/app")
        assert r.status_code == 200 and r.json()["request_id"] in _request_ids(log)


async def test_a_key_share_sent_during_post_unseal_waits_for_its_outcome(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not an answer from a core that still reports itself sealed: the share waits, then is
    ignored (the core is unsealed by then; OpenBao answers the seal status)."""
    async with _audited_core(tmp_path) as (core, key, _c, _log):
        hold = Hold(monkeypatch, core.audit, "setup")
        unsealing = asyncio.create_task(core.unseal(key))
        await hold.entered.wait()
        second = asyncio.create_task(core.unseal(key))
        for _ in range(5):
            await asyncio.sleep(0)
        assert not second.done()
        hold.release.set()
        await unsealing
        await second
        assert not await _reports_sealed(core)


async def test_a_seal_during_post_unseal_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A seal (server shutdown) while post-unseal is still running: the unseal must not then
    report success nor start serving, and what it set up is stopped."""
    async with _audited_core(tmp_path) as (core, key, c, _log):
        hold = Hold(monkeypatch, core.audit, "setup", after=True)
        unsealing = asyncio.create_task(core.unseal(key))
        await hold.entered.wait()
        await core.seal()
        hold.release.set()
        with pytest.raises(Sealed):
            await unsealing
        assert core.barrier.sealed and await _reports_sealed(core) and not core.audit.enabled
        r = await c.get("/v1/secret/data/app")
        assert (r.status_code, r.json()) == (503, SEALED)
        monkeypatch.undo()
        await core.unseal(key)
        assert (await c.get("/v1/secret/data/app")).status_code == 200
