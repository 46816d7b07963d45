"""StorageView: prefixing, nesting, isolation between views, recursive clear."""

from __future__ import annotations

import pytest

from strongroom.barrier.view import StorageView
from strongroom.errors import InvalidRequest
from strongroom.storage.inmem import InmemStorage


async def test_keys_are_prefixed() -> None:
    inner = InmemStorage()
    view = StorageView(inner, "logical/1234/")
    await view.put("foo/bar", b"v")
    assert await inner.get("logical/1234/foo/bar") == b"v"
    assert await view.get("foo/bar") == b"v"
    assert await view.list("") == ["foo/"]
    assert await view.list("foo/") == ["bar"]
    await view.delete("foo/bar")
    assert await inner.list("") == []


async def test_views_are_isolated() -> None:
    inner = InmemStorage()
    a, b = StorageView(inner, "logical/a/"), StorageView(inner, "logical/b/")
    await a.put("secret", b"A")
    await b.put("secret", b"B")
    assert await a.get("secret") == b"A"
    assert await b.get("secret") == b"B"
    assert await a.list("") == ["secret"]
    assert await inner.list("logical/") == ["a/", "b/"]


async def test_sub_view_nests() -> None:
    inner = InmemStorage()
    view = StorageView(inner, "sys/").sub("token/").sub("id/")
    assert view.prefix == "sys/token/id/"
    await view.put("h1", b"t")
    assert await inner.get("sys/token/id/h1") == b"t"
    assert view.storage is inner


async def test_clear_deletes_everything_below_only() -> None:
    inner = InmemStorage()
    await inner.put("logical/other/keep", b"k")
    await inner.put("logical/mine", b"leaf next to the folder")
    view = StorageView(inner, "logical/mine/")
    for i in range(150):
        await view.put(f"deep/{i % 7}/k{i}", b"v")
    await view.put("top", b"v")
    await view.put("deep", b"leaf and folder with one name")
    await view.clear()
    assert await view.list("") == []
    assert await inner.list("logical/") == ["mine", "other/"]
    assert await inner.get("logical/other/keep") == b"k"


@pytest.mark.parametrize("key", ["../escape", "a/../../b", "..", "/abs"])
async def test_rejects_escaping_keys(key: str) -> None:
    view = StorageView(InmemStorage(), "logical/x/")
    with pytest.raises(InvalidRequest):
        await view.put(key, b"v")
    with pytest.raises(InvalidRequest):
        await view.get(key)
    with pytest.raises(InvalidRequest):
        view.sub(key)


async def test_double_dots_inside_a_name_are_fine() -> None:
    view = StorageView(InmemStorage(), "p/")
    await view.put("a..b/c...d", b"v")
    assert await view.get("a..b/c...d") == b"v"


async def test_write_batch_prefixes_every_key() -> None:
    inner = InmemStorage()
    view = StorageView(inner, "logical/1234/").sub("sub/")
    await view.put("old", b"o")
    await view.write_batch([("a", b"1"), ("b/c", b"2"), ("old", None)])
    assert await inner.get("logical/1234/sub/a") == b"1"
    assert await inner.get("logical/1234/sub/b/c") == b"2"
    assert await inner.get("logical/1234/sub/old") is None
    with pytest.raises(InvalidRequest):
        await view.write_batch([("ok", b"1"), ("../escape", b"2")])
    assert await view.get("ok") is None  # keys are all checked before the batch goes down
    assert view.chroot_target("x") == (inner, "logical/1234/sub/x")
