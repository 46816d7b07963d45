"""File backend specifics: on-disk layout, atomic writes, pruning, key validation."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from strongroom.errors import InvalidRequest
from strongroom.storage.file import FileStorage, open_file


async def _open(root: Path) -> FileStorage:
    storage = await open_file({"path": str(root)})
    assert isinstance(storage, FileStorage)
    return storage


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


async def test_requires_path() -> None:
    with pytest.raises(InvalidRequest, match="path"):
        await open_file({})


async def test_layout_matches_vault(tmp_path: Path) -> None:
    storage = await _open(tmp_path / "data")
    await storage.put("a/b/c", b"leaf")
    await storage.put("a/b", b"sibling leaf named like the folder")
    await storage.put("top", b"t")
    root = tmp_path / "data"
    assert (root / "a" / "b" / "_c").read_bytes() == b"leaf"
    assert (root / "a" / "_b").read_bytes() == b"sibling leaf named like the folder"
    assert (root / "_top").read_bytes() == b"t"
    assert _tree(root) == {"a", "a/b", "a/b/_c", "a/_b", "_top"}
    assert await storage.list("a/") == ["b", "b/"]


async def test_underscore_folder_does_not_collide_with_leaf(tmp_path: Path) -> None:
    storage = await _open(tmp_path)
    await storage.put("x", b"leaf x")
    await storage.put("_x/y", b"under folder _x")
    await storage.put("%p/q", b"under folder %p")
    assert await storage.get("x") == b"leaf x"
    assert await storage.get("_x/y") == b"under folder _x"
    assert (tmp_path / "_x").read_bytes() == b"leaf x"
    assert (tmp_path / "%_x" / "_y").read_bytes() == b"under folder _x"
    assert (tmp_path / "%%p" / "_q").is_file()
    assert await storage.list("") == ["%p/", "_x/", "x"]


async def test_files_are_0600_and_no_temp_files_remain(tmp_path: Path) -> None:
    storage = await _open(tmp_path / "d")
    await asyncio.gather(*(storage.put("s/k", str(i).encode()) for i in range(20)))
    target = tmp_path / "d" / "s" / "_k"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "d" / "s").st_mode) == 0o700
    assert os.listdir(tmp_path / "d" / "s") == ["_k"]  # every temp file was renamed or removed
    assert (await storage.get("s/k") or b"").isdigit()


async def test_delete_prunes_empty_folders_only(tmp_path: Path) -> None:
    storage = await _open(tmp_path)
    await storage.put("a/b/c/d", b"1")
    await storage.put("a/keep", b"2")
    await storage.delete("a/b/c/d")
    assert _tree(tmp_path) == {"a", "a/_keep"}
    await storage.delete("a/keep")
    assert _tree(tmp_path) == set()
    assert tmp_path.is_dir()  # the storage root itself stays


async def test_list_partial_prefix(tmp_path: Path) -> None:
    storage = await _open(tmp_path)
    await storage.put("dir/foo", b"1")
    await storage.put("dir/food/x", b"2")
    await storage.put("dir/bar", b"3")
    assert await storage.list("dir/fo") == ["o", "od/"]
    assert await storage.list("dir/foo") == ["d/"]
    assert await storage.list("missing/") == []
    assert await storage.list("dir/foo/") == []  # a leaf, not a folder


async def test_temp_files_are_not_listed(tmp_path: Path) -> None:
    storage = await _open(tmp_path)
    await storage.put("f/k", b"v")
    (tmp_path / "f" / "%.tmp-deadbeef").write_bytes(b"crash leftover")
    assert await storage.list("f/") == ["k"]


@pytest.mark.parametrize(
    "key", ["../escape", "a/../../etc/passwd", "a/..", "./a", "a/./b", "a//b", "/abs", "trailing/", ""]
)
async def test_rejects_unsafe_keys(tmp_path: Path, key: str) -> None:
    storage = await _open(tmp_path / "root")
    with pytest.raises(InvalidRequest):
        await storage.put(key, b"x")
    with pytest.raises(InvalidRequest):
        await storage.get(key)
    with pytest.raises(InvalidRequest):
        await storage.delete(key)
    assert not (tmp_path / "escape").exists()
    assert _tree(tmp_path / "root") == set()


async def test_rejects_dotdot_in_list_prefix(tmp_path: Path) -> None:
    storage = await _open(tmp_path)
    with pytest.raises(InvalidRequest):
        await storage.list("../")
    with pytest.raises(InvalidRequest):
        await storage.list("a/../")
    with pytest.raises(InvalidRequest):
        await storage.list("/etc")


async def test_rejects_overlong_segment_and_nul(tmp_path: Path) -> None:
    storage = await _open(tmp_path)
    with pytest.raises(InvalidRequest, match="longer"):
        await storage.put("a/" + "x" * 300, b"v")
    with pytest.raises(InvalidRequest, match="NUL"):
        await storage.put("a\0b", b"v")
    await storage.put("a/" + "x" * 254, b"fits")
    assert await storage.get("a/" + "x" * 254) == b"fits"


async def test_concurrent_put_and_delete_in_same_folder(tmp_path: Path) -> None:
    """Deletes prune folders while puts create files in them; every put must still land."""
    storage = await _open(tmp_path)
    for _ in range(10):
        await asyncio.gather(
            storage.delete("race/a"), storage.put("race/b", b"b"), storage.put("race/a", b"a")
        )
        await asyncio.gather(storage.delete("race/a"), storage.delete("race/b"))
    await asyncio.gather(storage.put("race/b", b"b"), storage.delete("race/a"))
    assert await storage.get("race/b") == b"b"
    assert await storage.list("race/") == ["b"]
