"""framework/locks.py and framework/salt.py: the one striped-lock and salt helper every store uses."""

from __future__ import annotations

import asyncio
import hashlib
import hmac

import pytest

from strongroom.errors import Internal
from strongroom.framework import Salt, StripedLocks
from strongroom.framework.salt import load_or_create_secret
from strongroom.storage.inmem import InmemStorage


def test_same_key_same_lock_and_bounded_stripes() -> None:
    locks = StripedLocks(8)
    assert len(locks) == 8
    assert locks.lock_for("a") is locks.lock_for("a")
    assert len({id(locks.lock_for(f"k{i}")) for i in range(1000)}) == 8


def test_stripes_must_be_positive() -> None:
    with pytest.raises(ValueError):
        StripedLocks(0)


async def test_lock_serialises_read_modify_write_of_one_key() -> None:
    locks, counter = StripedLocks(), {"n": 0}

    async def bump() -> None:
        async with locks.lock_for("key"):
            n = counter["n"]
            await asyncio.sleep(0)  # another bump would interleave here without the lock
            counter["n"] = n + 1

    await asyncio.gather(*(bump() for _ in range(50)))
    assert counter["n"] == 50


async def test_salt_is_made_once_then_read_back() -> None:
    storage = InmemStorage()
    first = Salt("salt")
    value = await first.load(storage)
    assert len(value) == 32 and await storage.get("salt") == value
    again = Salt("salt")
    assert await again.load(storage) == value  # a new process finds the same salt
    assert again.hmac("x") == hmac.new(value, b"x", hashlib.sha256).hexdigest()


async def test_concurrent_loads_make_one_salt() -> None:
    storage, salt = InmemStorage(), Salt("s")
    values = await asyncio.gather(*(salt.load(storage) for _ in range(10)))
    assert len(set(values)) == 1 and await storage.get("s") == values[0]


async def test_hex_encoding_keeps_approles_layout() -> None:
    storage = InmemStorage()
    await storage.put("salt", b"ab" * 32)  # an AppRole mount made before the helper existed
    salt = Salt("salt", encoding="hex")
    assert await salt.load(storage) == bytes.fromhex("ab" * 32)
    fresh = InmemStorage()
    made = await Salt("salt", encoding="hex").load(fresh)
    assert await fresh.get("salt") == made.hex().encode()


async def test_forgotten_salt_cannot_be_used() -> None:
    salt = Salt()
    await salt.load(InmemStorage())
    salt.forget()
    with pytest.raises(Internal):
        salt.hmac("x")


async def test_bad_hex_salt_is_an_internal_error() -> None:
    storage = InmemStorage()
    await storage.put("salt", b"not hex")
    with pytest.raises(Internal):
        await load_or_create_secret(storage, "salt", encoding="hex")
