"""KV version 2 metadata, config, listing and invalid paths (bodies checked against OpenBao 2.7)."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.engines.kv.models import V2_PREFIX, rfc3339, version_key
from strongroom.errors import CheckAndSetMismatch, InvalidRequest, NotFound, UnsupportedOperation
from strongroom.framework import Op

START = 1_700_000_000_123_456_789
START_TEXT = rfc3339(START)


async def put(kv: Any, path: str, data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = await kv.ok(Op.UPDATE, f"data/{path}", {"data": data})
    return out


# -- metadata read / write -------------------------------------------------------------------------
async def test_metadata_read_shape(kv: Any, clock: Any) -> None:
    await put(kv, "foo", {"a": 1})
    clock.advance(1)
    await put(kv, "foo", {"a": 2})
    assert await kv.ok(Op.READ, "metadata/foo") == {
        "cas_required": False,
        "created_time": START_TEXT,
        "current_metadata_version": 0,
        "current_version": 2,
        "custom_metadata": None,
        "delete_version_after": "0s",
        "max_versions": 0,
        "metadata_cas_required": False,
        "oldest_version": 0,
        "updated_time": rfc3339(clock.now),
        "versions": {
            "1": {"created_time": START_TEXT, "deletion_time": "", "destroyed": False},
            "2": {"created_time": rfc3339(clock.now), "deletion_time": "", "destroyed": False},
        },
    }
    with pytest.raises(NotFound):
        await kv.call(Op.READ, "metadata/missing")


async def test_metadata_write_sets_only_given_fields(kv: Any, clock: Any) -> None:
    await put(kv, "foo", {"a": 1})
    clock.advance(2)
    body = {"max_versions": 2, "cas_required": True, "delete_version_after": "1h",
            "custom_metadata": {"k": "v", "n": 1, "b": True}}
    assert await kv.call(Op.UPDATE, "metadata/foo", body) is None
    meta = await kv.ok(Op.READ, "metadata/foo")
    assert meta["max_versions"] == 2 and meta["cas_required"] is True
    assert meta["delete_version_after"] == "1h0m0s"
    assert meta["custom_metadata"] == {"k": "v", "n": "1", "b": "1"}
    assert meta["current_metadata_version"] == 1 and meta["updated_time"] == rfc3339(clock.now)
    await kv.call(Op.UPDATE, "metadata/foo", {"max_versions": 4})
    meta = await kv.ok(Op.READ, "metadata/foo")
    assert meta["max_versions"] == 4 and meta["cas_required"] is True and meta["custom_metadata"]["k"] == "v"
    assert meta["current_metadata_version"] == 2
    # Custom metadata shows up on data reads and writes too.
    assert (await kv.ok(Op.READ, "data/foo"))["metadata"]["custom_metadata"] == {"k": "v", "n": "1", "b": "1"}


async def test_metadata_write_without_settings_is_a_noop(kv: Any) -> None:
    assert await kv.call(Op.UPDATE, "metadata/new", {}) is None
    assert await kv.call(Op.UPDATE, "metadata/new", {"bogus": 1, "metadata_cas": 5}) is None
    with pytest.raises(NotFound):
        await kv.call(Op.READ, "metadata/new")


async def test_metadata_only_key(kv: Any) -> None:
    await kv.call(Op.UPDATE, "metadata/only", {"max_versions": 1, "custom_metadata": {}})
    meta = await kv.ok(Op.READ, "metadata/only")
    assert meta["current_version"] == 0 and meta["versions"] == {} and meta["custom_metadata"] is None
    assert await kv.exists("data/only") is True
    with pytest.raises(NotFound):
        await kv.call(Op.READ, "data/only")
    assert (await put(kv, "only", {"a": 1}))["version"] == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"max_versions": "x"}, 'field "max_versions"'),
        ({"max_versions": -1}, "max_versions must not be negative"),
        ({"cas_required": "maybe"}, 'field "cas_required"'),
        ({"delete_version_after": "bad"}, 'field "delete_version_after"'),
        ({"delete_version_after": "-1h"}, 'field "delete_version_after"'),
        ({"custom_metadata": "k=v"}, 'field "custom_metadata"'),
        ({"custom_metadata": {"a": {"b": "c"}}}, 'value for key "a" must be a string'),
        ({"custom_metadata": {"a": ""}},
         ('^1 error occurred:\n\t\\* custom_metadata validation failed: length of value for key "a" is 0 '
          "but must be 0 < len\\(value\\) <= 512\n\n$")),
        ({"custom_metadata": {"k" * 129: "x"}}, "is 129 but must be 0 < len\\(key\\) <= 128"),
        ({"custom_metadata": {"a": "v" * 513}}, "is 513 but must be 0 < len\\(value\\) <= 512"),
        ({"custom_metadata": {f"k{i}": "v" for i in range(65)}}, "at most 64 keys, provided 65"),
        ({"custom_metadata": {"": "x", "a": None}}, "^2 errors occurred:\n"),
    ],
)
async def test_metadata_write_validation(kv: Any, body: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        await kv.call(Op.UPDATE, "metadata/foo", body)


@pytest.mark.parametrize("path", ["metadata/", "metadata/dir/"])
async def test_metadata_write_to_folder_is_rejected(kv: Any, path: str) -> None:
    with pytest.raises(InvalidRequest, match="cannot write to a path ending in '/'"):
        await kv.call(Op.UPDATE, path, {"max_versions": 1})


async def test_metadata_patch(kv: Any) -> None:
    await kv.call(Op.UPDATE, "metadata/p", {"max_versions": 3, "cas_required": True,
                                            "custom_metadata": {"a": "b", "c": "d"}})
    await kv.call(Op.PATCH, "metadata/p", {"max_versions": None, "custom_metadata": {"a": None, "e": "f"}})
    meta = await kv.ok(Op.READ, "metadata/p")
    assert meta["max_versions"] == 0 and meta["cas_required"] is True
    assert meta["custom_metadata"] == {"c": "d", "e": "f"}
    await kv.call(Op.PATCH, "metadata/p", {"custom_metadata": None, "delete_version_after": "30m"})
    meta = await kv.ok(Op.READ, "metadata/p")
    assert meta["custom_metadata"] is None and meta["delete_version_after"] == "30m0s"
    assert meta["current_metadata_version"] == 3
    assert await kv.call(Op.PATCH, "metadata/p", {"bogus": 1}) is None
    assert (await kv.ok(Op.READ, "metadata/p"))["current_metadata_version"] == 3
    with pytest.raises(InvalidRequest, match='field "max_versions"'):
        await kv.call(Op.PATCH, "metadata/p", {"max_versions": "x"})
    with pytest.raises(InvalidRequest, match="custom_metadata validation failed"):
        await kv.call(Op.PATCH, "metadata/p", {"custom_metadata": {"a": ""}})
    with pytest.raises(NotFound):
        await kv.call(Op.PATCH, "metadata/missing", {"max_versions": 2})


async def test_metadata_check_and_set(kv: Any) -> None:
    with pytest.raises(InvalidRequest, match="metadata_cas must be 0 when creating new metadata"):
        await kv.call(Op.UPDATE, "metadata/m", {"max_versions": 4, "metadata_cas": 3})
    await kv.call(Op.UPDATE, "metadata/m", {"max_versions": 4, "metadata_cas": 0})
    with pytest.raises(CheckAndSetMismatch, match="metadata check-and-set parameter does not match"):
        await kv.call(Op.UPDATE, "metadata/m", {"max_versions": 4, "metadata_cas": 0})
    await kv.call(Op.UPDATE, "metadata/m", {"metadata_cas_required": True, "metadata_cas": 1})
    with pytest.raises(InvalidRequest, match="metadata check-and-set parameter required for this call"):
        await kv.call(Op.UPDATE, "metadata/m", {"max_versions": 5})
    with pytest.raises(InvalidRequest, match="required for this call"):
        await kv.call(Op.PATCH, "metadata/m", {"max_versions": 5})
    await kv.call(Op.PATCH, "metadata/m", {"max_versions": 5, "metadata_cas": 2})
    meta = await kv.ok(Op.READ, "metadata/m")
    assert meta["max_versions"] == 5 and meta["current_metadata_version"] == 3
    # Data writes do not bump the metadata version.
    await put(kv, "m", {"a": 1})
    assert (await kv.ok(Op.READ, "metadata/m"))["current_metadata_version"] == 3


async def test_metadata_cas_required_on_mount(kv: Any) -> None:
    await kv.call(Op.UPDATE, "config", {"metadata_cas_required": True})
    with pytest.raises(InvalidRequest, match="metadata check-and-set parameter required"):
        await kv.call(Op.UPDATE, "metadata/m", {"max_versions": 4})
    await kv.call(Op.UPDATE, "metadata/m", {"max_versions": 4, "metadata_cas": 0})


async def test_metadata_delete_removes_everything(kv: Any) -> None:
    for i in range(3):
        await put(kv, "gone", {"i": i})
    await put(kv, "kept", {"i": 0})
    assert await kv.call(Op.DELETE, "metadata/gone") is None
    with pytest.raises(NotFound):
        await kv.call(Op.READ, "metadata/gone")
    with pytest.raises(NotFound):
        await kv.call(Op.READ, "data/gone")
    assert [await kv.storage.get(version_key("gone", v)) for v in (1, 2, 3)] == [None, None, None]
    assert await kv.ok(Op.LIST, "metadata/") == {"keys": ["kept"]}
    assert await kv.call(Op.DELETE, "metadata/gone") is None
    assert (await put(kv, "gone", {"i": 9}))["version"] == 1  # a fresh history


async def test_existence_checks(kv: Any) -> None:
    assert await kv.exists("data/e") is False
    assert await kv.exists("metadata/e") is False
    await put(kv, "e", {"a": 1})
    assert await kv.exists("data/e") is True
    assert await kv.exists("metadata/e") is True


# -- list ----------------------------------------------------------------------------------------
async def test_list_metadata(kv: Any) -> None:
    for path in ("dir/a", "dir/b", "dir/sub/c", "top"):
        await put(kv, path, {"a": 1})
    assert await kv.ok(Op.LIST, "metadata/") == {"keys": ["dir/", "top"]}
    assert await kv.ok(Op.LIST, "metadata/dir/") == {"keys": ["a", "b", "sub/"]}
    assert await kv.ok(Op.LIST, "metadata/dir") == {"keys": ["a", "b", "sub/"]}
    assert await kv.ok(Op.LIST, "metadata/dir/", {"limit": 2}) == {"keys": ["a", "b"]}
    assert await kv.ok(Op.LIST, "metadata/dir/", {"after": "a"}) == {"keys": ["b", "sub/"]}
    assert await kv.ok(Op.LIST, "metadata/dir/", {"after": "a", "limit": "1"}) == {"keys": ["b"]}
    assert await kv.ok(Op.LIST, "metadata/dir/", {"limit": -1}) == {"keys": ["a", "b", "sub/"]}
    with pytest.raises(NotFound):
        await kv.call(Op.LIST, "metadata/nothing/")
    with pytest.raises(UnsupportedOperation):
        await kv.call(Op.LIST, "data/dir/")
    # The v2 records never leak into listings.
    assert V2_PREFIX.rstrip("/") not in str(await kv.ok(Op.LIST, "metadata/"))


async def test_list_detailed_metadata(kv: Any) -> None:
    await put(kv, "dir/a", {"a": 1})
    await put(kv, "dir/sub/c", {"a": 1})
    out = await kv.ok(Op.LIST, "detailed-metadata/dir/")
    assert out["keys"] == ["a", "sub/"]
    assert out["key_info"]["sub/"] == {}
    assert out["key_info"]["a"] == await kv.ok(Op.READ, "metadata/dir/a")


# -- config --------------------------------------------------------------------------------------
async def test_config(kv: Any) -> None:
    defaults = {"cas_required": False, "delete_version_after": "0s", "max_versions": 0,
                "metadata_cas_required": False}
    assert await kv.ok(Op.READ, "config") == defaults
    assert await kv.call(Op.UPDATE, "config", {"max_versions": 3, "delete_version_after": "90m"}) is None
    expected = {**defaults, "max_versions": 3, "delete_version_after": "1h30m0s"}
    assert await kv.ok(Op.READ, "config") == expected
    await kv.call(Op.UPDATE, "config", {})  # nothing given: nothing changes
    assert (await kv.ok(Op.READ, "config"))["max_versions"] == 3
    with pytest.raises(InvalidRequest, match="max_versions must not be negative"):
        await kv.call(Op.UPDATE, "config", {"max_versions": -1})
    with pytest.raises(InvalidRequest, match='field "cas_required"'):
        await kv.call(Op.UPDATE, "config", {"cas_required": "maybe"})
    with pytest.raises(UnsupportedOperation):
        await kv.call(Op.DELETE, "config")
    resp = await kv.call(Op.READ, "config", {"zzz": 1})
    assert resp.warnings == ["Endpoint ignored these unrecognized parameters: [zzz]"]


async def test_config_survives_a_new_backend(kv: Any, make_mount: Any) -> None:
    await kv.call(Op.UPDATE, "config", {"cas_required": True})
    again = await make_mount("kv", {"version": "2"}, storage=kv.storage)
    assert (await again.ok(Op.READ, "config"))["cas_required"] is True


# -- paths that are not v2 endpoints ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("op", "path", "verb"),
    [(Op.READ, "foo", "get"), (Op.UPDATE, "foo", "put"), (Op.CREATE, "foo", "put"),
     (Op.DELETE, "foo", "delete"), (Op.LIST, "", "list"), (Op.LIST, "foo/", "list"),
     (Op.PATCH, "foo", "patch"), (Op.READ, "", "get")],
)
async def test_invalid_path_hints_at_the_cli(kv: Any, op: Op, path: str, verb: str) -> None:
    resp = await kv.call(op, path, {"a": 1})
    assert resp.status == 404 and resp.data is None
    assert resp.warnings == [
        ("Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API "
         f"endpoints to use. If using the OpenBao CLI, use 'bao kv {verb}' for this operation.")
    ]
