"""Barrier rekey: the unseal key switch is atomic, survives crashes at every step, and leaves no old envelope."""

from __future__ import annotations

import pytest

from strongroom.barrier import ROOT_KEY_PATH, SEAL_CONFIG_PATH, Barrier
from strongroom.barrier.seal import SealConfig
from strongroom.errors import InvalidRequest
from strongroom.storage.inmem import InmemStorage

SECRET = b"rekey-secret-value"
NEW_KEY = b"N" * 32


class CrashingStorage(InmemStorage):
    """In-memory storage that fails one chosen operation on one key, as a crash there would."""

    def __init__(self) -> None:
        super().__init__()
        self.fail: tuple[str, str] | None = None

    async def put(self, key: str, value: bytes) -> None:
        if self.fail == ("put", key):
            raise OSError("simulated crash")
        await super().put(key, value)

    async def delete(self, key: str) -> None:
        if self.fail == ("delete", key):
            raise OSError("simulated crash")
        await super().delete(key)


async def _setup() -> tuple[Barrier, bytes, CrashingStorage]:
    physical = CrashingStorage()
    barrier = Barrier(physical)
    key = await barrier.initialize(SealConfig(1, 1))
    await barrier.unseal(key)
    await barrier.put("data", SECRET)
    return barrier, key, physical


async def _restart_and_unseal(physical: CrashingStorage, key: bytes) -> Barrier:
    physical.fail = None
    barrier = Barrier(physical)  # a fresh process over the same storage
    await barrier.unseal(key)
    assert await barrier.get("data") == SECRET
    return barrier


async def test_crash_before_the_commit_keeps_the_old_key() -> None:
    barrier, old, physical = await _setup()
    physical.fail = ("put", SEAL_CONFIG_PATH)
    with pytest.raises(OSError):
        await barrier.rekey_unseal_key(NEW_KEY, SealConfig(3, 2))
    restarted = await _restart_and_unseal(physical, old)
    assert await restarted.seal_config() == SealConfig(1, 1)
    restarted.seal()
    with pytest.raises(InvalidRequest, match="wrong"):
        await restarted.unseal(NEW_KEY)


async def test_crash_after_the_commit_uses_the_new_key_and_unseal_removes_the_stale_envelope() -> None:
    barrier, old, physical = await _setup()
    physical.fail = ("delete", ROOT_KEY_PATH)
    with pytest.raises(OSError):
        await barrier.rekey_unseal_key(NEW_KEY, SealConfig(3, 2))
    assert await physical.get(ROOT_KEY_PATH) is not None  # the old envelope survived the crash
    physical.fail = None
    fresh = Barrier(physical)
    with pytest.raises(InvalidRequest, match="wrong"):
        await fresh.unseal(old)
    restarted = await _restart_and_unseal(physical, NEW_KEY)
    assert await restarted.seal_config() == SealConfig(3, 2)
    # SECURITY: the envelope under the replaced key is gone after the unseal.
    assert await physical.get(ROOT_KEY_PATH) is None


async def test_repeated_rekeys_keep_one_envelope() -> None:
    barrier, _, physical = await _setup()
    keys = [bytes([i]) * 32 for i in range(1, 4)]
    for key in keys:
        await barrier.rekey_unseal_key(key)
        assert await barrier.verify_unseal_key(key)
    assert sorted(await physical.list("core/")) == ["keyring", "root-key.3", "seal-config"]
    assert await barrier.seal_config() == SealConfig(1, 1)  # no config given: the current one is kept
    barrier.seal()
    await barrier.unseal(keys[-1])
    for stale in keys[:-1]:
        assert not await barrier.verify_unseal_key(stale)


async def test_root_key_envelopes_are_reserved() -> None:
    barrier, _, _ = await _setup()
    await barrier.rekey_unseal_key(NEW_KEY)
    for path in (f"{ROOT_KEY_PATH}.1", f"{ROOT_KEY_PATH}.2"):
        with pytest.raises(InvalidRequest, match="reserved"):
            await barrier.put(path, b"x")
        with pytest.raises(InvalidRequest, match="reserved"):
            await barrier.delete(path)
