"""Automatic barrier key rotation (core/rotation.py) and sys/rotate/config."""

from __future__ import annotations

import asyncio
import time

import pytest

from strongroom.core import Core
from strongroom.core.rotation import AutoRotation, RotationConfig
from strongroom.durations import go_duration
from strongroom.errors import InvalidRequest
from strongroom.storage.inmem import InmemStorage
from strongroom.testing import asgi_client, unsealed_core


async def _settle() -> None:
    # Let the rotation task scheduled by a write run (it awaits the barrier lock and one storage put).
    for _ in range(20):
        await asyncio.sleep(0)


async def test_rotates_when_the_encryption_count_is_reached() -> None:
    async with unsealed_core() as (core, _):
        await core.rotation.set_config(RotationConfig(max_operations=5))  # core accepts small values
        term = (await core.barrier.rotate()).term  # a fresh key: its count starts at 0
        for i in range(4):
            await core.barrier.put(f"x/{i}", b"v")
        await _settle()
        assert core.barrier.key_status()[::2] == (term, 4)
        await core.barrier.put("x/5", b"v")
        await _settle()
        assert core.barrier.key_status().term == term + 1
        assert core.barrier.key_status().encryptions < 5
        assert core.rotation.rotations == 1
        assert await core.barrier.get("x/0") == b"v"  # older terms still decrypt


async def test_disabled_rotation_only_counts() -> None:
    async with unsealed_core() as (core, _):
        await core.rotation.set_config(RotationConfig(max_operations=3, enabled=False))
        term = core.barrier.key_status().term
        for i in range(10):
            await core.barrier.put(f"x/{i}", b"v")
        await _settle()
        assert core.barrier.key_status().term == term
        assert core.barrier.key_status().encryptions >= 10


async def test_rotates_when_the_key_is_older_than_the_interval() -> None:
    async with unsealed_core() as (core, _):
        ahead = [3600.0]  # how far the injected clock runs ahead of the real one
        rotation = AutoRotation(core.barrier, clock=lambda: time.time() + ahead[0])
        rotation.config = RotationConfig(interval=86400)
        assert await rotation.check() is False
        term = core.barrier.key_status().term
        ahead[0] = 86400 + 60
        assert await rotation.check() is True
        assert core.barrier.key_status().term == term + 1
        ahead[0] = 60  # the new key is young
        assert await rotation.check() is False
        rotation.config = RotationConfig(interval=86400, enabled=False)
        ahead[0] = 10 * 86400
        assert await rotation.check() is False


async def test_background_check_runs_only_while_unsealed() -> None:
    async with unsealed_core() as (core, _):
        task = core.rotation._task
        assert task is not None and not task.done()
        await core.seal()
        assert task.done() and core.rotation._task is None


async def test_config_bounds() -> None:
    with pytest.raises(InvalidRequest, match=r"max_operations must be in the range \[1000000,3865470566\]"):
        RotationConfig(max_operations=10).validate()
    with pytest.raises(InvalidRequest, match="interval must be greater or equal to 24h0m0s"):
        RotationConfig(interval=3600).validate()
    assert go_duration(25 * 3600) == "25h0m0s" and go_duration(90) == "1m30s" and go_duration(5) == "5s"


async def test_rotate_config_endpoint() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        default = {"enabled": True, "interval": 0, "max_operations": 3865470566}
        r = await c.get("/v1/sys/rotate/config")
        assert r.status_code == 200 and r.json()["data"] == default
        assert "max_operations" not in r.json()  # not repeated at the top level
        assert (await c.put("/v1/sys/rotate/config", json={"max_operations": 10})).status_code == 400
        assert (await c.put("/v1/sys/rotate/config", json={"interval": "1h"})).status_code == 400
        r = await c.put("/v1/sys/rotate/keyring/config", json={"max_operations": 1000000, "interval": "25h"})
        assert r.status_code == 204
        want = {"enabled": True, "interval": "25h0m0s", "max_operations": 1000000}
        assert (await c.get("/v1/sys/rotate/keyring/config")).json()["data"] == want
        assert (await c.put("/v1/sys/rotate/config", json={"enabled": False})).status_code == 204
        assert (await c.get("/v1/sys/rotate/config")).json()["data"] == {**want, "enabled": False}
        assert (await c.get("/v1/sys/rotate/config", headers={"X-Vault-Token": "nope"})).status_code == 403


async def test_rotate_config_survives_seal_and_unseal() -> None:
    core = Core(InmemStorage())
    key, _ = await core.dev_bootstrap("root")
    config = RotationConfig(max_operations=2_000_000, interval=90000, enabled=False)
    await core.rotation.set_config(config)
    await core.seal()
    core.rotation.config = RotationConfig()
    await core.unseal(key)
    assert core.rotation.config == config
    await core.seal()


async def test_encryption_count_survives_seal_and_unseal() -> None:
    core = Core(InmemStorage())
    key, _ = await core.dev_bootstrap("root")
    term = (await core.barrier.rotate()).term
    for i in range(7):
        await core.barrier.put(f"x/{i}", b"v")
    before = core.barrier.key_status().encryptions
    await core.seal()
    await core.unseal(key)
    status = core.barrier.key_status()
    assert status.term == term and status.encryptions >= before
    await core.seal()


async def test_count_trigger_holds_across_a_restart() -> None:
    storage = InmemStorage()
    core = Core(storage)
    key, _ = await core.dev_bootstrap("root")
    term = (await core.barrier.rotate()).term
    await core.rotation.set_config(RotationConfig(max_operations=40))
    for i in range(30):
        await core.barrier.put(f"x/{i}", b"v")
    await core.seal()
    restarted = Core(storage)  # a new process over the same storage
    await restarted.unseal(key)
    for i in range(15):
        await restarted.barrier.put(f"y/{i}", b"v")
    await _settle()
    # Without the persisted count, 15 writes after the restart stay far below the limit of 40.
    assert restarted.barrier.key_status().term == term + 1
    await restarted.seal()


async def test_idle_background_check_does_not_keep_writing() -> None:
    async with unsealed_core() as (core, _):
        await core.rotation.persist_count()
        count = core.barrier.key_status().encryptions
        await core.rotation.persist_count()
        await core.rotation.persist_count()
        assert core.barrier.key_status().encryptions == count


class _FailingKeyring(InmemStorage):
    def __init__(self) -> None:
        super().__init__()
        self.fail = False

    async def put(self, key: str, value: bytes) -> None:
        if self.fail and key == "core/keyring":
            raise OSError("disk full")
        await super().put(key, value)


async def test_failed_automatic_rotation_is_retried_by_the_next_write() -> None:
    storage = _FailingKeyring()
    core = Core(storage)
    await core.dev_bootstrap("root")
    term = (await core.barrier.rotate()).term
    await core.rotation.set_config(RotationConfig(max_operations=3))
    storage.fail = True
    for i in range(4):
        await core.barrier.put(f"x/{i}", b"v")  # writes keep working while rotation fails
    await _settle()
    assert core.barrier.key_status().term == term and core.rotation.rotations == 0
    storage.fail = False
    await core.barrier.put("x/again", b"v")
    await _settle()
    assert core.barrier.key_status().term == term + 1
    await core.seal()


async def test_background_check_survives_storage_errors() -> None:
    storage = _FailingKeyring()
    core = Core(storage)
    await core.dev_bootstrap("root")
    await core.rotation.stop()
    rotation = AutoRotation(core.barrier, clock=lambda: time.time() + 10 * 86400, check_every=0)
    await rotation.set_config(RotationConfig(interval=86400))
    term = core.barrier.key_status().term
    storage.fail = True
    await rotation.setup()
    for _ in range(50):
        await asyncio.sleep(0)
    assert rotation._task is not None and not rotation._task.done()  # the loop is still alive
    assert core.barrier.key_status().term == term
    storage.fail = False
    while rotation.rotations == 0:
        await asyncio.sleep(0)
    assert core.barrier.key_status().term > term
    await rotation.stop()
    await core.seal()
