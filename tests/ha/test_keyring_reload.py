"""A standby's barrier re-reads the keyring the active rotated (Barrier.reload_keyring, used when a
standby becomes active)."""

from __future__ import annotations

import pytest

from strongroom.barrier import Barrier
from strongroom.barrier.seal import SealConfig
from strongroom.errors import Sealed, StrongroomError
from strongroom.storage.inmem import InmemStorage


async def test_reload_sees_a_rotation_made_by_another_node() -> None:
    store = InmemStorage()
    active, standby = Barrier(store), Barrier(store)
    key = await active.initialize(SealConfig(secret_shares=1, secret_threshold=1))
    await active.unseal(key)
    await standby.unseal(key)
    await active.rotate()
    await active.put("secret/after-rotation", b"v")
    with pytest.raises(StrongroomError):  # a term it does not know
        await standby.get("secret/after-rotation")
    await standby.reload_keyring()
    assert await standby.get("secret/after-rotation") == b"v"
    assert standby.key_status()[0] == active.key_status()[0] == 2
    standby.seal()
    with pytest.raises(Sealed):
        await standby.reload_keyring()
