"""Barrier: lifecycle, encryption of every value, AAD binding, rotation, and no plaintext on disk."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from strongroom.barrier import (
    KEYRING_PATH,
    ROOT_KEY_PATH,
    SEAL_CONFIG_PATH,
    Barrier,
)
from strongroom.barrier.aes_gcm import term_of
from strongroom.barrier.seal import SealConfig, UnsealProgress, split_unseal_key
from strongroom.errors import Internal, InvalidRequest, Sealed
from strongroom.storage import PhysicalStorage, open_storage
from strongroom.storage.inmem import InmemStorage

SECRET = b"correct-horse-battery-staple-4c7f9e2a"


async def _unsealed(physical: PhysicalStorage | None = None) -> tuple[Barrier, bytes, PhysicalStorage]:
    physical = InmemStorage() if physical is None else physical
    barrier = Barrier(physical)
    key = await barrier.initialize(SealConfig(1, 1))
    await barrier.unseal(key)
    return barrier, key, physical


async def test_initialize_stays_sealed_and_persists_layout() -> None:
    physical = InmemStorage()
    barrier = Barrier(physical)
    assert not await barrier.initialized()
    assert await barrier.seal_config() is None
    key = await barrier.initialize(SealConfig(5, 3))
    assert len(key) == 32
    assert barrier.sealed
    assert await barrier.initialized()
    assert await barrier.seal_config() == SealConfig(5, 3)
    assert sorted(await physical.list("core/")) == ["keyring", "root-key", "seal-config"]
    # Only the seal config is plaintext; the key hierarchy is ciphertext in term-0 envelopes.
    assert orjson.loads(await physical.get(SEAL_CONFIG_PATH) or b"")["secret_shares"] == 5
    for path in (KEYRING_PATH, ROOT_KEY_PATH):
        blob = await physical.get(path) or b""
        assert term_of(blob) == 0
        assert b"root_key" not in blob and key not in blob
    with pytest.raises(InvalidRequest, match="already initialized"):
        await barrier.initialize(SealConfig(1, 1))


async def test_roundtrip_and_values_are_encrypted() -> None:
    barrier, _, physical = await _unsealed()
    await barrier.put("logical/abc/secret", SECRET)
    assert await barrier.get("logical/abc/secret") == SECRET
    raw = await physical.get("logical/abc/secret") or b""
    assert SECRET not in raw
    assert term_of(raw) == 1
    assert await barrier.list("logical/") == ["abc/"]
    await barrier.delete("logical/abc/secret")
    assert await barrier.get("logical/abc/secret") is None
    assert await physical.get("logical/abc/secret") is None


async def test_unseal_with_shares() -> None:
    physical = InmemStorage()
    barrier = Barrier(physical)
    config = SealConfig(5, 3)
    shares = split_unseal_key(await barrier.initialize(config), 5, 3)
    progress = UnsealProgress()
    combined = None
    for share in shares[2:5]:
        combined = progress.submit(share, config.secret_threshold)
    assert combined is not None
    await barrier.unseal(combined)
    assert not barrier.sealed


async def test_wrong_unseal_key_is_refused_and_stays_sealed() -> None:
    barrier = Barrier(InmemStorage())
    key = await barrier.initialize(SealConfig(5, 3))
    shares = split_unseal_key(key, 5, 3)
    too_few = UnsealProgress()
    too_few.submit(shares[0], 2)
    wrong_from_two_shares = too_few.submit(shares[1], 2)
    assert wrong_from_two_shares is not None
    for wrong in (b"\x00" * 32, bytes(reversed(key)), wrong_from_two_shares, key[:16], b""):
        with pytest.raises(InvalidRequest, match="the unseal key is wrong"):
            await barrier.unseal(wrong)
        assert barrier.sealed
    await barrier.unseal(key)
    assert not barrier.sealed


async def test_unseal_before_initialize() -> None:
    with pytest.raises(InvalidRequest, match="not initialized"):
        await Barrier(InmemStorage()).unseal(b"k" * 32)


async def test_sealed_barrier_refuses_storage_calls() -> None:
    barrier, _, _ = await _unsealed()
    await barrier.put("x", b"v")
    barrier.seal()
    assert barrier.sealed
    for call in (barrier.get("x"), barrier.put("x", b"v"), barrier.delete("x"), barrier.list("")):
        with pytest.raises(Sealed):
            await call
    with pytest.raises(Sealed):
        barrier.key_status()
    with pytest.raises(Sealed):
        await barrier.rotate()
    # Still readable while sealed: initialization state and seal config.
    assert await barrier.initialized()
    assert await barrier.seal_config() == SealConfig(1, 1)
    assert Sealed().status_code == 503


async def test_ciphertext_copied_to_another_key_fails_to_decrypt() -> None:
    barrier, _, physical = await _unsealed()
    await barrier.put("logical/mount-a/db-password", SECRET)
    await barrier.put("logical/mount-b/harmless", b"nothing to see")
    # An attacker with storage access swaps mount A's ciphertext into mount B's path.
    stolen = await physical.get("logical/mount-a/db-password") or b""
    await physical.put("logical/mount-b/harmless", stolen)
    await physical.put("logical/mount-b/brand-new", stolen)
    for path in ("logical/mount-b/harmless", "logical/mount-b/brand-new"):
        with pytest.raises(Internal, match="moved from another storage path"):
            await barrier.get(path)
    assert await barrier.get("logical/mount-a/db-password") == SECRET


async def test_tampered_value_and_forged_term_fail() -> None:
    barrier, _, physical = await _unsealed()
    await barrier.rotate()
    await barrier.put("k", SECRET)
    blob = bytearray(await physical.get("k") or b"")
    flipped = bytearray(blob)
    flipped[-1] ^= 0x80
    await physical.put("k", bytes(flipped))
    with pytest.raises(Internal, match="failed to decrypt"):
        await barrier.get("k")
    blob[3] = 1  # claim term 1: the wrong key
    await physical.put("k", bytes(blob))
    with pytest.raises(Internal, match="failed to decrypt"):
        await barrier.get("k")
    blob[3] = 9  # a term the keyring never had
    await physical.put("k", bytes(blob))
    with pytest.raises(Internal, match="no encryption key for term 9"):
        await barrier.get("k")


async def test_rotate_keeps_old_values_readable() -> None:
    barrier, key, physical = await _unsealed()
    await barrier.put("old", b"written under term 1")
    assert barrier.key_status().term == 1
    new_key = await barrier.rotate()
    assert new_key.term == 2
    status = barrier.key_status()
    assert (status.term, status.install_time, status.encryptions) == (2, new_key.install_time, 0)
    await barrier.put("new", b"written under term 2")
    assert term_of(await physical.get("old") or b"") == 1
    assert term_of(await physical.get("new") or b"") == 2
    assert await barrier.get("old") == b"written under term 1"
    assert await barrier.get("new") == b"written under term 2"
    # The rotation was persisted: a fresh unseal sees term 2 and both values.
    barrier.seal()
    await barrier.unseal(key)
    assert barrier.key_status().term == 2
    assert await barrier.get("old") == b"written under term 1"


async def test_key_status_counts_encryptions() -> None:
    barrier, _, _ = await _unsealed()
    term, install_time, encryptions = barrier.key_status()
    assert (term, encryptions) == (1, 0)
    assert install_time.endswith("Z")
    await asyncio.gather(*(barrier.put(f"k{i}", b"v") for i in range(7)))
    assert barrier.key_status().encryptions == 7
    await barrier.rotate()
    assert barrier.key_status().encryptions == 0


class GatedStorage(InmemStorage):
    """Inmem storage whose reads/writes wait for a gate, to hold an operation mid-flight."""

    __slots__ = ("get_gate", "put_gate")

    def __init__(self) -> None:
        super().__init__()
        self.get_gate: asyncio.Event | None = None
        self.put_gate: asyncio.Event | None = None

    async def get(self, key: str) -> bytes | None:
        if self.get_gate is not None:
            await self.get_gate.wait()
        return await super().get(key)

    async def put(self, key: str, value: bytes) -> None:
        if self.put_gate is not None:
            await self.put_gate.wait()
        await super().put(key, value)


async def test_seal_during_unseal_wins() -> None:
    physical = GatedStorage()
    barrier = Barrier(physical)
    key = await barrier.initialize(SealConfig(1, 1))
    physical.get_gate = asyncio.Event()
    unsealing = asyncio.ensure_future(barrier.unseal(key))
    await asyncio.sleep(0)  # unseal is parked on a storage read
    assert not unsealing.done()
    barrier.seal()
    physical.get_gate.set()
    await unsealing
    assert barrier.sealed
    await barrier.unseal(key)  # a later unseal works normally
    assert not barrier.sealed


async def test_seal_during_rotate_wins() -> None:
    physical = GatedStorage()
    barrier, key, _ = await _unsealed(physical)
    physical.put_gate = asyncio.Event()
    rotating = asyncio.ensure_future(barrier.rotate())
    await asyncio.sleep(0)  # rotate is parked writing the new keyring
    assert not rotating.done()
    barrier.seal()
    physical.put_gate.set()
    assert (await rotating).term == 2
    assert barrier.sealed  # the rotation persisted, but it did not unseal the barrier again
    await barrier.unseal(key)
    assert barrier.key_status().term == 2


async def test_rekey_unseal_key() -> None:
    barrier, old_key, _ = await _unsealed()
    await barrier.put("k", SECRET)
    new_key = b"N" * 32
    await barrier.rekey_unseal_key(new_key, SealConfig(3, 2))
    barrier.seal()
    with pytest.raises(InvalidRequest, match="wrong"):
        await barrier.unseal(old_key)
    await barrier.unseal(new_key)
    assert await barrier.get("k") == SECRET
    assert await barrier.seal_config() == SealConfig(3, 2)
    with pytest.raises(InvalidRequest):
        await barrier.rekey_unseal_key(b"short")


async def test_write_batch_encrypts_each_value_bound_to_its_key() -> None:
    barrier, _, physical = await _unsealed()
    await barrier.put("gone", b"x")
    await barrier.write_batch([("a/rec", SECRET), ("a/idx", SECRET + b"!"), ("gone", None)])
    assert await barrier.get("a/rec") == SECRET
    assert await barrier.get("a/idx") == SECRET + b"!"
    assert await barrier.get("gone") is None and await physical.get("gone") is None
    raw_rec, raw_idx = await physical.get("a/rec") or b"", await physical.get("a/idx") or b""
    assert SECRET not in raw_rec and SECRET not in raw_idx
    # AAD = storage path, per value: swapping two values of one batch breaks both.
    await physical.put("a/rec", raw_idx)
    with pytest.raises(Internal, match="failed to decrypt"):
        await barrier.get("a/rec")
    assert barrier.key_status().encryptions >= 2


async def test_write_batch_gives_every_value_its_own_nonce() -> None:
    barrier, _, physical = await _unsealed()
    await barrier.write_batch([(f"n/{i}", b"same") for i in range(50)] + [("n/gone", None)])
    nonces = {(await physical.get(f"n/{i}") or b"")[5:17] for i in range(50)}
    assert len(nonces) == 50


async def test_write_batch_refuses_reserved_paths_before_writing_anything() -> None:
    barrier, _, physical = await _unsealed()
    with pytest.raises(InvalidRequest, match="reserved"):
        await barrier.write_batch([("fine", b"x"), (KEYRING_PATH, None)])
    assert await physical.get("fine") is None
    barrier.seal()
    with pytest.raises(Sealed):
        await barrier.write_batch([("fine", b"x")])


async def test_reserved_paths_cannot_be_written_through_the_barrier() -> None:
    barrier, key, physical = await _unsealed()
    keyring_blob = await physical.get(KEYRING_PATH)
    for path in (KEYRING_PATH, ROOT_KEY_PATH, SEAL_CONFIG_PATH):
        with pytest.raises(InvalidRequest, match="reserved"):
            await barrier.put(path, b"x")
        with pytest.raises(InvalidRequest, match="reserved"):
            await barrier.delete(path)
    assert await physical.get(KEYRING_PATH) == keyring_blob
    barrier.seal()
    await barrier.unseal(key)


async def test_swapped_keyring_blob_is_refused() -> None:
    """core/keyring and core/root-key are bound to their paths as well."""
    barrier, key, physical = await _unsealed()
    barrier.seal()
    await physical.put(KEYRING_PATH, await physical.get(ROOT_KEY_PATH) or b"")
    with pytest.raises(Internal, match="failed to decrypt"):
        await barrier.unseal(key)
    assert barrier.sealed


@pytest.mark.parametrize("kind", ["sqlite", "file"])
async def test_no_plaintext_reaches_the_disk(kind: str, tmp_path: Path) -> None:
    target = tmp_path / ("vault.db" if kind == "sqlite" else "data")
    physical = await open_storage(kind, {"path": str(target)})
    barrier, key, _ = await _unsealed(physical)
    await barrier.put("logical/0d1c/creds/db", SECRET)
    await barrier.put("logical/0d1c/creds/many", SECRET * 50)
    await barrier.rotate()
    await barrier.put("logical/0d1c/creds/rotated", SECRET)
    await barrier.write_batch([("logical/0d1c/creds/batched", SECRET), ("logical/0d1c/idx", SECRET * 2)])

    def everything_on_disk() -> bytes:
        files = [p for p in tmp_path.rglob("*") if p.is_file()]
        assert files
        return b"".join(p.read_bytes() for p in files)

    # While open (sqlite: the values sit in the -wal file) and after close (checkpointed).
    while_open = everything_on_disk()
    await physical.close()
    for blobs in (while_open, everything_on_disk()):
        assert SECRET not in blobs
        assert SECRET[:12] not in blobs
        assert key not in blobs
    if kind == "file":
        assert (target / "logical" / "0d1c" / "creds" / "_db").is_file()  # keys are visible metadata
    else:
        assert b"logical/0d1c/creds/db" in everything_on_disk()

    # And the data is all there after a restart.
    reopened = await open_storage(kind, {"path": str(target)})
    try:
        barrier = Barrier(reopened)
        assert await barrier.initialized()
        await barrier.unseal(key)
        assert await barrier.get("logical/0d1c/creds/db") == SECRET
        assert await barrier.get("logical/0d1c/creds/rotated") == SECRET
        assert await barrier.list("logical/0d1c/creds/") == ["batched", "db", "many", "rotated"]
        assert await barrier.get("logical/0d1c/creds/batched") == SECRET
        assert barrier.key_status().term == 2
    finally:
        await reopened.close()
