"""kv-v2 change events through the SystemView (Vault's kv-v2/* event types and metadata): one per
change that happened, none for a refused or no-op request."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.errors import CheckAndSetMismatch
from strongroom.framework import Op
from strongroom.framework.system import StaticSystemView


def events(kv: Any) -> list[tuple[str, dict[str, str]]]:
    system = kv.backend.config.system
    assert isinstance(system, StaticSystemView)
    return system.events


async def test_data_write_patch_delete(kv: Any) -> None:
    await kv.ok(Op.UPDATE, "data/a/b", {"data": {"k": "1"}})
    await kv.ok(Op.UPDATE, "data/a/b", {"data": {"k": "2"}})
    await kv.ok(Op.PATCH, "data/a/b", {"data": {"j": "3"}})
    await kv.call(Op.DELETE, "data/a/b")
    assert events(kv) == [
        ("kv-v2/data-write", {"modified": "true", "operation": "data-write", "path": "data/a/b",
                              "data_path": "data/a/b", "current_version": "1", "oldest_version": "0"}),
        ("kv-v2/data-write", {"modified": "true", "operation": "data-write", "path": "data/a/b",
                              "data_path": "data/a/b", "current_version": "2", "oldest_version": "0"}),
        ("kv-v2/data-patch", {"modified": "true", "operation": "data-patch", "path": "data/a/b",
                              "data_path": "data/a/b", "current_version": "3", "oldest_version": "0"}),
        ("kv-v2/data-delete", {"modified": "true", "operation": "data-delete", "path": "data/a/b",
                               "current_version": "3", "oldest_version": "0"}),
    ]


async def test_no_event_without_a_change(kv: Any) -> None:
    await kv.ok(Op.UPDATE, "data/x", {"data": {"k": "1"}})
    del events(kv)[:]
    with pytest.raises(CheckAndSetMismatch):
        await kv.call(Op.UPDATE, "data/x", {"data": {"k": "2"}, "options": {"cas": 5}})
    await kv.call(Op.DELETE, "data/x")
    await kv.call(Op.DELETE, "data/x")  # already deleted: nothing happens, nothing is said
    await kv.call(Op.DELETE, "data/never")
    assert [t for t, _ in events(kv)] == ["kv-v2/data-delete"]


async def test_metadata_events(kv: Any) -> None:
    await kv.call(Op.UPDATE, "metadata/m", {"max_versions": 3})
    await kv.call(Op.PATCH, "metadata/m", {"max_versions": 4})
    await kv.call(Op.DELETE, "metadata/m")
    assert events(kv) == [
        ("kv-v2/metadata-write", {"modified": "true", "operation": "metadata-write", "path": "metadata/m",
                                  "data_path": "metadata/m"}),
        ("kv-v2/metadata-patch", {"modified": "true", "operation": "metadata-patch", "path": "metadata/m",
                                  "data_path": "metadata/m"}),
        ("kv-v2/metadata-delete", {"modified": "true", "operation": "metadata-delete", "path": "metadata/m"}),
    ]
