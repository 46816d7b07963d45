"""A kv mount switched from version 1 to 2: the v1 secrets become version 1 of each key."""

from __future__ import annotations

from typing import Any

from strongroom.engines.kv.models import V2_PREFIX, rfc3339
from strongroom.engines.kv.upgrade import upgrade_v1_to_v2
from strongroom.framework import Op

START = 1_700_000_000_123_456_789


async def test_v1_data_is_readable_as_version_1(make_mount: Any, clock: Any) -> None:
    v1 = await make_mount("kv", {"version": "1"})
    await v1.call(Op.UPDATE, "a", {"x": "1", "ttl": "1h"})
    await v1.call(Op.UPDATE, "dir/b", {"y": {"z": 2}})
    await v1.call(Op.UPDATE, "dir/deep/c", {"w": True})

    # Core re-creates the backend with the new options and initializes it on the same storage.
    v2 = await make_mount("kv", {"version": "2"}, storage=v1.storage, clock=clock)
    read = await v2.ok(Op.READ, "data/a")
    assert read == {"data": {"x": "1", "ttl": "1h"}, "metadata": {
        "created_time": rfc3339(START), "custom_metadata": None, "deletion_time": "", "destroyed": False,
        "version": 1}}
    meta = await v2.ok(Op.READ, "metadata/dir/b")
    assert meta["current_version"] == 1 and meta["oldest_version"] == 1
    assert (await v2.ok(Op.READ, "data/dir/deep/c"))["data"] == {"w": True}
    assert await v2.ok(Op.LIST, "metadata/") == {"keys": ["a", "dir/"]}
    # The v1 entries are gone: only the v2 area is left at the top of the mount.
    assert await v2.storage.list("") == [V2_PREFIX]
    # Writing continues the history.
    assert (await v2.ok(Op.UPDATE, "data/a", {"data": {"x": "2"}, "options": {"cas": 1}}))["version"] == 2


async def test_upgrade_is_idempotent_and_skips_foreign_values(make_mount: Any) -> None:
    v1 = await make_mount("kv")
    await v1.call(Op.UPDATE, "a", {"x": 1})
    await v1.storage.put("not-json", b"\x00garbage")
    v2 = await make_mount("kv", {"version": "2"}, storage=v1.storage)
    await v2.ok(Op.UPDATE, "data/a", {"data": {"x": 2}})
    # A second initialize (unseal) finds nothing more to convert and keeps the history intact.
    assert await upgrade_v1_to_v2(v2.storage, 0) == 0
    assert (await v2.ok(Op.READ, "data/a"))["data"] == {"x": 2}
    assert await v2.storage.get("not-json") == b"\x00garbage"


async def test_crash_after_conversion_before_delete_is_repaired(make_mount: Any) -> None:
    v1 = await make_mount("kv")
    await v1.call(Op.UPDATE, "a", {"x": 1})
    raw = await v1.storage.get("a")
    v2 = await make_mount("kv", {"version": "2"}, storage=v1.storage)
    # Simulate a crash that left the v1 entry behind after its v2 records were written.
    await v2.storage.put("a", raw or b"")
    assert await upgrade_v1_to_v2(v2.storage, 1) == 1
    assert await v2.storage.list("") == [V2_PREFIX]
    assert (await v2.ok(Op.READ, "data/a"))["data"] == {"x": 1}


async def test_fresh_v2_mount_has_nothing_to_upgrade(kv: Any) -> None:
    assert await upgrade_v1_to_v2(kv.storage, 0) == 0
    assert await kv.storage.list("") == []
