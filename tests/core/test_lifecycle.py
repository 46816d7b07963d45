"""The platform seams: one Lifecycle that Core drives over every part and mount, the SystemView each
backend gets, invalidation through one path, one periodic scheduler, lazy mount-type registries."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator

import orjson
import pytest

from strongroom.core import Core, CoreConfig
from strongroom.core.policy import POLICY_PREFIX
from strongroom.engines import SECRETS_ENGINES
from strongroom.framework import Backend, BackendConfig, FieldData, Op, Path, Request, Response
from strongroom.storage.cache import CachedStorage
from strongroom.storage.inmem import InmemStorage
from strongroom.testing import app_client, unsealed_core

CALLS: list[str] = []


class Recording(Backend):
    """Records its lifecycle calls and answers ``info`` from its SystemView."""

    def __init__(self, config: BackendConfig) -> None:
        super().__init__(config, [Path("info", operations={Op.READ: info})])

    async def setup(self) -> None:
        CALLS.append("setup")

    async def activate(self) -> None:
        CALLS.append("activate")

    async def deactivate(self) -> None:
        CALLS.append("deactivate")

    async def invalidate(self, key: str) -> None:
        CALLS.append(f"invalidate {key}")

    async def periodic(self, now: float) -> None:
        CALLS.append("periodic")


async def info(b: Recording, req: Request, d: FieldData) -> Response:
    await b.system.storage.put("probe", b"x")
    default, mx = b.system.lease_ttls()
    return Response(data={"default": default, "max": mx, "active": b.system.active(), "now": b.system.now(),
                          "entity": await b.system.entity("e1"), "logger": b.system.logger.name,
                          "probe": req.storage is not None and await req.storage.get("probe") == b"x"})


@pytest.fixture(autouse=True)
def recording(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(SECRETS_ENGINES, "recording", Recording)
    CALLS.clear()
    yield
    CALLS.clear()


async def test_core_drives_a_mounts_lifecycle_through_mount_seal_unseal_and_unmount() -> None:
    core = Core(InmemStorage())
    key, root = await core.dev_bootstrap("root")
    async with app_client(core, root) as c:
        assert (await c.post("/v1/sys/mounts/rec", json={"type": "recording"})).status_code == 204
        assert CALLS == ["setup", "activate"]  # mounted on an active node: both
        await core.seal()
        assert CALLS[2:] == ["deactivate"]
        await core.unseal(key)
        assert CALLS[3:] == ["setup", "activate"]
        assert (await c.post("/v1/sys/mounts/rec/tune", json={"default_lease_ttl": "1h"})).status_code == 204
        assert CALLS[5:] == ["deactivate", "setup", "activate"]  # a tune rebuilds the backend
        assert (await c.delete("/v1/sys/mounts/rec")).status_code == 204
        assert CALLS[8:] == ["deactivate"]
    await core.seal()


async def test_a_standby_sets_parts_up_without_activating_them() -> None:
    core = Core(InmemStorage())
    key, root = await core.dev_bootstrap("root")
    async with app_client(core, root) as c:
        assert (await c.post("/v1/sys/mounts/rec", json={"type": "recording"})).status_code == 204
    await core.seal()
    CALLS.clear()
    core.standby = True
    await core.unseal(key)
    assert CALLS == ["setup"]
    assert core.periodic._task is None  # the scheduler is active-only too
    await core.seal()
    assert CALLS == ["setup", "deactivate"]


async def test_system_view_answers_from_the_mount() -> None:
    async with unsealed_core() as (core, root), app_client(core, root) as c:
        body = {"type": "recording", "config": {"default_lease_ttl": "1h", "max_lease_ttl": "2h"}}
        assert (await c.post("/v1/sys/mounts/rec", json=body)).status_code == 204
        data = (await c.get("/v1/rec/info")).json()["data"]
        assert (data["default"], data["max"], data["active"], data["entity"]) == (3600, 7200, True, None)
        assert data["probe"] is True  # the view's storage is the mount's own
        assert data["logger"] == "strongroom.mount.recording" and data["now"] > 0
        # The mount's TTLs are read live from its tune.
        assert (await c.post("/v1/sys/mounts/rec/tune", json={"default_lease_ttl": "30m"})).status_code == 204
        assert (await c.get("/v1/rec/info")).json()["data"]["default"] == 1800


async def test_no_backend_holds_core() -> None:
    async with unsealed_core() as (core, root), app_client(core, root) as c:
        assert (await c.post("/v1/sys/auth/approle", json={"type": "approle"})).status_code == 204
        for entry in core.mounts.entries():
            assert entry.backend is not None
            held = _attributes(entry.backend)
            held += [v for h in list(held) for v in _attributes(h)]  # and what those hold: views, parts
            assert held and not any(isinstance(v, Core) for v in held), entry.full_path


def _attributes(obj: object) -> list[object]:
    names = list(getattr(obj, "__dict__", {}))
    for cls in type(obj).__mro__:
        names += [n for n in getattr(cls, "__slots__", ()) if isinstance(n, str)]
    return [getattr(obj, n) for n in names if hasattr(obj, n)]


async def test_invalidate_reaches_backends_with_the_key_relative_to_the_mount() -> None:
    async with unsealed_core() as (core, root), app_client(core, root) as c:
        assert (await c.post("/v1/sys/mounts/rec", json={"type": "recording"})).status_code == 204
        entry = core.mounts.find("mounts", "rec/")
        assert entry is not None
        await core.invalidate(f"logical/{entry.uuid}/some/key")
        await core.invalidate("logical/another-uuid/x")  # another mount's key: not this backend's
        assert [c for c in CALLS if c.startswith("invalidate")] == ["invalidate some/key"]


async def test_invalidate_drops_the_token_policy_storage_and_read_caches() -> None:
    """A write made behind this node's back (as another node's would be) is seen only after
    Core.invalidate(key): that one path reaches every cache."""
    physical = CachedStorage(InmemStorage())
    core = Core(physical)
    _, root = await core.dev_bootstrap("root")
    try:
        async with app_client(core, root) as c:
            # Storage cache: the ciphertext under the barrier is cached; replace it in the store below.
            assert (await c.put("/v1/secret/data/a", json={"data": {"v": 1}})).status_code == 200
            assert (await c.get("/v1/secret/data/a")).json()["data"]["data"] == {"v": 1}
            entry = core.mounts.find("mounts", "secret/")
            assert entry is not None
            # The secret's records (its metadata and version) deleted below the cache, as by another node.
            keys = [k for k in await _all_keys(physical.inner, f"logical/{entry.uuid}/") if "versions" not in k]
            assert keys
            for k in keys:
                await physical.inner.delete(k)
            assert (await c.get("/v1/secret/data/a")).status_code == 200  # cached: still served
            for k in keys:
                await core.invalidate(k)
            assert (await c.get("/v1/secret/data/a")).status_code == 404  # storage and read cache dropped

            # Policy cache: a policy rewritten under the barrier (not through the store).
            assert (await c.put("/v1/sys/policies/acl/p", json={"policy": 'path "a" { capabilities = ["read"] }'})).status_code == 204
            assert await core.policies.get("p") is not None
            text = 'path "b" { capabilities = ["list"] }'
            await core.barrier.put("sys/" + POLICY_PREFIX + "p", orjson.dumps({"name": "p", "policy": text}))
            cached = await core.policies.get("p")
            assert cached is not None and "a" in cached.text
            await core.invalidate("sys/" + POLICY_PREFIX + "p")
            fresh = await core.policies.get("p")
            assert fresh is not None and fresh.text == text

            # Token cache: a token revoked elsewhere (its record gone) stops working once invalidated.
            made = (await c.post("/v1/auth/token/create", json={"policies": ["default"]})).json()["auth"]
            tok = made["client_token"]
            assert (await c.get("/v1/auth/token/lookup-self", headers={"X-Vault-Token": tok})).status_code == 200
            token_id = core.tokens.hash(tok)
            await core.barrier.delete("sys/token/id/" + token_id)
            assert (await c.get("/v1/auth/token/lookup-self", headers={"X-Vault-Token": tok})).status_code == 200
            await core.invalidate("sys/token/id/" + token_id)
            assert (await c.get("/v1/auth/token/lookup-self", headers={"X-Vault-Token": tok})).status_code == 403
    finally:
        await core.seal()


async def _all_keys(storage: InmemStorage, prefix: str) -> list[str]:
    out: list[str] = []
    for k in await storage.list(prefix):
        if k.endswith("/"):
            out += await _all_keys(storage, prefix + k)
        else:
            out.append(prefix + k)
    return out


async def test_one_scheduler_runs_every_mounts_periodic_function() -> None:
    async with unsealed_core(config=CoreConfig(periodic_interval=0.02)) as (core, root), app_client(core, root) as c:
        assert (await c.post("/v1/sys/mounts/rec", json={"type": "recording"})).status_code == 204
        assert (await c.post("/v1/sys/mounts/rec2", json={"type": "recording"})).status_code == 204
        tasks = {t.get_name() for t in asyncio.all_tasks()}
        for _ in range(200):
            if CALLS.count("periodic") >= 4:
                break
            await asyncio.sleep(0.01)
        assert CALLS.count("periodic") >= 4  # both mounts, at least twice
        assert "strongroom-periodic" in tasks
        assert sum(1 for t in asyncio.all_tasks() if t.get_name() == "strongroom-periodic") == 1
    # Sealed: the scheduler has stopped.
    assert all(t.get_name() != "strongroom-periodic" or t.done() for t in asyncio.all_tasks())


async def test_a_failing_periodic_function_does_not_stop_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    async def boom(self: Recording, now: float) -> None:
        raise RuntimeError("boom")

    async with unsealed_core() as (core, root), app_client(core, root) as c:
        assert (await c.post("/v1/sys/mounts/rec", json={"type": "recording"})).status_code == 204
        ran: list[float] = []

        async def other(now: float) -> None:
            ran.append(now)

        monkeypatch.setattr(Recording, "periodic", boom)
        monkeypatch.setattr(core.cluster, "periodic", other)
        await core.periodic.tick()
        assert len(ran) == 1


def test_backends_are_imported_only_when_a_mount_of_their_type_exists() -> None:
    code = """
import asyncio, sys
from strongroom.testing import unsealed_core, app_client
async def main():
    async with unsealed_core() as (core, root):
        print("approle" if "strongroom.auth.approle" in sys.modules else "-", end=" ")
        print("userpass" if "strongroom.auth.userpass" in sys.modules else "-", end=" ")
        async with app_client(core, root) as c:
            assert (await c.post("/v1/sys/auth/approle", json={"type": "approle"})).status_code == 204
        print("approle" if "strongroom.auth.approle" in sys.modules else "-", end=" ")
        print("userpass" if "strongroom.auth.userpass" in sys.modules else "-")
asyncio.run(main())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "- - approle -"
