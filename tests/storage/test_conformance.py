"""The Storage contract, checked identically against every backend (inmem, sqlite, file, cache)."""

from __future__ import annotations

import asyncio
import random

from strongroom.storage import PhysicalStorage, children


async def test_get_missing_is_none(storage: PhysicalStorage) -> None:
    assert await storage.get("nope") is None
    assert await storage.get("a/b/c") is None


async def test_put_get_roundtrip(storage: PhysicalStorage) -> None:
    await storage.put("foo", b"bar")
    assert await storage.get("foo") == b"bar"


async def test_binary_and_empty_values(storage: PhysicalStorage) -> None:
    blob = bytes(range(256)) * 40
    await storage.put("bin", blob)
    await storage.put("empty", b"")
    assert await storage.get("bin") == blob
    assert await storage.get("empty") == b""


async def test_overwrite(storage: PhysicalStorage) -> None:
    await storage.put("k", b"one")
    await storage.put("k", b"two")
    assert await storage.get("k") == b"two"
    assert await storage.list("") == ["k"]


async def test_delete(storage: PhysicalStorage) -> None:
    await storage.put("a/b", b"1")
    await storage.put("a/c", b"2")
    await storage.delete("a/b")
    assert await storage.get("a/b") is None
    assert await storage.get("a/c") == b"2"
    assert await storage.list("a/") == ["c"]


async def test_delete_missing_is_not_an_error(storage: PhysicalStorage) -> None:
    await storage.delete("never/written")
    assert await storage.get("never/written") is None


async def test_list_empty(storage: PhysicalStorage) -> None:
    assert await storage.list("") == []
    assert await storage.list("nothing/here/") == []


async def test_list_nested(storage: PhysicalStorage) -> None:
    for key in ["a", "a/b", "a/c/d", "a/c/e", "a/f/g/h", "b/x", "z"]:
        await storage.put(key, key.encode())
    assert await storage.list("") == ["a", "a/", "b/", "z"]
    assert await storage.list("a/") == ["b", "c/", "f/"]
    assert await storage.list("a/c/") == ["d", "e"]
    assert await storage.list("a/f/") == ["g/"]
    assert await storage.list("a/f/g/") == ["h"]
    assert await storage.list("b/") == ["x"]
    assert await storage.list("a/b/") == []  # a leaf is not a folder


async def test_list_after_deleting_last_child(storage: PhysicalStorage) -> None:
    await storage.put("p/q/r", b"x")
    await storage.put("p/s", b"y")
    await storage.delete("p/q/r")
    assert await storage.list("p/") == ["s"]
    await storage.delete("p/s")
    assert await storage.list("") == []


async def test_list_does_not_leak_siblings_with_common_prefix(storage: PhysicalStorage) -> None:
    await storage.put("app/one", b"1")
    await storage.put("apple/two", b"2")
    await storage.put("app-x", b"3")
    assert await storage.list("app/") == ["one"]
    assert await storage.list("apple/") == ["two"]


async def test_unicode_keys(storage: PhysicalStorage) -> None:
    keys = ["ünïcødé/ключ", "ünïcødé/鍵", "emoji/🔑", "emoji/🔑🔑/x", "mixed/ñ-ß"]
    for key in keys:
        await storage.put(key, key.encode())
    for key in keys:
        assert await storage.get(key) == key.encode()
    assert await storage.list("") == ["emoji/", "mixed/", "ünïcødé/"]
    assert await storage.list("ünïcødé/") == ["ключ", "鍵"]
    assert await storage.list("emoji/") == ["🔑", "🔑🔑/"]


async def test_keys_with_special_characters(storage: PhysicalStorage) -> None:
    keys = ["sp ace/k", "dots/a.b", "under/_lead", "_folder/x", "x", "%pct/y", "pct/%z"]
    for key in keys:
        await storage.put(key, b"v:" + key.encode())
    for key in keys:
        assert await storage.get(key) == b"v:" + key.encode()
    assert await storage.list("") == sorted(["%pct/", "_folder/", "dots/", "sp ace/", "under/", "x", "pct/"])
    assert await storage.list("_folder/") == ["x"]
    assert await storage.list("under/") == ["_lead"]


async def test_concurrent_writes_all_land(storage: PhysicalStorage) -> None:
    await asyncio.gather(*(storage.put(f"c/{i:03}", str(i).encode()) for i in range(50)))
    listed = await storage.list("c/")
    assert listed == [f"{i:03}" for i in range(50)]
    assert await storage.get("c/049") == b"49"


async def test_random_operations_match_a_dict_model(storage: PhysicalStorage) -> None:
    """A few hundred random puts/deletes, then every key and every folder listing compared to a model."""
    rng = random.Random(1234)
    segments = ["a", "b", "ab", "a-b", "é", "z9"]
    model: dict[str, bytes] = {}
    for step in range(300):
        key = "/".join(rng.choice(segments) for _ in range(rng.randint(1, 3)))
        if rng.random() < 0.7:
            value = f"{step}".encode()
            await storage.put(key, value)
            model[key] = value
        else:
            await storage.delete(key)
            model.pop(key, None)
    keys = sorted(model)
    folders = {""} | {k[: i + 1] for k in keys for i, ch in enumerate(k) if ch == "/"}
    for folder in sorted(folders):
        assert await storage.list(folder) == children(keys, folder), folder
    for key, value in model.items():
        assert await storage.get(key) == value


# -- write_batch: every backend has one, with the same effects as the writes one by one ------------
async def test_write_batch_applies_puts_and_deletes_in_order(storage: PhysicalStorage) -> None:
    await storage.put("old", b"o")
    await storage.put("gone", b"g")
    batch = getattr(storage, "write_batch")  # noqa: B009 - not part of the minimal Storage protocol
    await batch([("a/x", b"1"), ("gone", None), ("b", b"2"), ("b", b"3"), ("c", b"4"), ("c", None),
                 ("old", None), ("old", b"new")])
    assert await storage.get("a/x") == b"1"
    assert await storage.get("b") == b"3"  # the later write of a key wins
    assert await storage.get("c") is None
    assert await storage.get("gone") is None
    assert await storage.get("old") == b"new"
    assert await storage.list("") == ["a/", "b", "old"]


async def test_write_batch_empty_and_concurrent(storage: PhysicalStorage) -> None:
    batch = getattr(storage, "write_batch")  # noqa: B009
    await batch([])
    await asyncio.gather(*(batch([(f"n/{i:02}/rec", b"r"), (f"n/{i:02}/idx", b"i")]) for i in range(20)))
    assert len(await storage.list("n/")) == 20
    assert await storage.get("n/07/idx") == b"i"
