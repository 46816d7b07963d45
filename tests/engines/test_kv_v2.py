"""KV version 2 at the framework level: versions, check-and-set, soft delete, metadata, upgrade.

Expected bodies and messages were checked against OpenBao 2.7 (``bao server -dev``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import orjson
import pytest

from strongroom.durations import go_duration
from strongroom.engines.kv.models import METADATA_PREFIX, rfc3339, version_key
from strongroom.errors import CheckAndSetMismatch, InvalidRequest, NotFound
from strongroom.framework import Op
from strongroom.storage.inmem import InmemStorage

MakeMount = Any
START = 1_700_000_000_123_456_789
START_TEXT = "2023-11-14T22:13:20.123456789Z"
CAS_MISMATCH = "check-and-set parameter did not match the current version"
CAS_REQUIRED = "check-and-set parameter required for this call"


class CountingStorage(InmemStorage):
    def __init__(self) -> None:
        super().__init__()
        self.puts: list[str] = []
        self.batches: list[list[tuple[str, bool]]] = []  # (key, is a put) per write_batch

    async def put(self, key: str, value: bytes) -> None:
        self.puts.append(key)
        await super().put(key, value)

    async def write_batch(self, ops: Sequence[tuple[str, bytes | None]]) -> None:
        self.batches.append([(key, value is not None) for key, value in ops])
        await super().write_batch(ops)


async def put(kv: Any, path: str, data: dict[str, Any], **options: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"data": data}
    if options:
        body["options"] = options
    out: dict[str, Any] = await kv.ok(Op.UPDATE, f"data/{path}", body)
    return out


# -- formats -------------------------------------------------------------------------------------
def test_time_and_duration_formats_match_go() -> None:
    assert rfc3339(START) == START_TEXT
    assert rfc3339(1_700_000_000_000_000_000) == "2023-11-14T22:13:20Z"
    assert rfc3339(1_700_000_000_516_220_140) == "2023-11-14T22:13:20.51622014Z"
    assert rfc3339(0) == ""
    assert [go_duration(s) for s in (0, 1, 90, 3600, 5400, 12319)] == [
        "0s", "1s", "1m30s", "1h0m0s", "1h30m0s", "3h25m19s"]


# -- data ----------------------------------------------------------------------------------------
async def test_write_then_read_versions(kv: Any, clock: Any) -> None:
    first = await put(kv, "foo", {"a": "b"})
    assert first == {"created_time": START_TEXT, "custom_metadata": None, "deletion_time": "",
                     "destroyed": False, "version": 1}
    clock.advance(1)
    second = await put(kv, "foo", {"a": "c"})
    assert second["version"] == 2
    latest = await kv.ok(Op.READ, "data/foo")
    assert latest == {"data": {"a": "c"}, "metadata": second}
    assert (await kv.ok(Op.READ, "data/foo", {"version": "1"}))["data"] == {"a": "b"}
    assert (await kv.ok(Op.READ, "data/foo", {"version": 0}))["data"] == {"a": "c"}
    with pytest.raises(NotFound):
        await kv.call(Op.READ, "data/foo", {"version": 9})
    with pytest.raises(NotFound):
        await kv.call(Op.READ, "data/missing")
    with pytest.raises(InvalidRequest, match='field "version"'):
        await kv.call(Op.READ, "data/foo", {"version": "x"})


async def test_write_costs_two_puts_in_one_batch(make_mount: MakeMount) -> None:
    storage = CountingStorage()
    kv = await make_mount("kv", {"version": "2"}, storage=storage)
    await put(kv, "foo", {"a": 1})
    await put(kv, "foo", {"a": 2})
    assert storage.puts == [version_key("foo", 1), METADATA_PREFIX + "foo",
                            version_key("foo", 2), METADATA_PREFIX + "foo"]
    # One durable commit per write; record before metadata, for stores that apply it in order.
    assert storage.batches == [[(version_key("foo", 1), True), (METADATA_PREFIX + "foo", True)],
                               [(version_key("foo", 2), True), (METADATA_PREFIX + "foo", True)]]
    assert orjson.loads(await storage.get(version_key("foo", 2)) or b"")["data"] == {"a": 2}


async def test_write_prunes_and_destroy_in_the_same_batch(make_mount: MakeMount) -> None:
    storage = CountingStorage()
    kv = await make_mount("kv", {"version": "2"}, storage=storage)
    await kv.call(Op.UPDATE, "metadata/foo", {"max_versions": 1})
    await put(kv, "foo", {"a": 1})
    await put(kv, "foo", {"a": 2})
    assert storage.batches[-1] == [(version_key("foo", 2), True), (METADATA_PREFIX + "foo", True),
                                   (version_key("foo", 1), False)]
    await kv.call(Op.UPDATE, "destroy/foo", {"versions": [2]})
    assert storage.batches[-1] == [(version_key("foo", 2), False), (METADATA_PREFIX + "foo", True)]
    assert await storage.get(version_key("foo", 2)) is None


async def test_empty_data_is_a_version(kv: Any) -> None:
    assert (await put(kv, "e", {}))["version"] == 1
    assert (await kv.ok(Op.READ, "data/e"))["data"] == {}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"a": "b"}, "no data provided"),
        ({"data": "str"}, 'error converting input for field "data"'),
        ({"data": {"a": 1}, "options": "x"}, 'error converting input for field "options"'),
        ({"data": {"a": 1}, "options": {"cas": "x"}}, "error parsing check-and-set parameter"),
        ({"data": {"a": 1}, "options": {"cas": 2.5}}, "error parsing check-and-set parameter"),
    ],
)
async def test_bad_write_input(kv: Any, body: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        await kv.call(Op.UPDATE, "data/foo", body)


@pytest.mark.parametrize("path", ["data/", "data/dir/"])
async def test_write_to_folder_is_rejected(kv: Any, path: str) -> None:
    with pytest.raises(InvalidRequest, match="cannot write to a path ending in '/'"):
        await kv.call(Op.UPDATE, path, {"data": {"a": 1}})


async def test_unknown_write_params_warn(kv: Any) -> None:
    resp = await kv.call(Op.UPDATE, "data/foo", {"data": {"a": 1}, "extra": 1})
    assert resp.warnings == ["Endpoint ignored these unrecognized parameters: [extra]"]


# -- check-and-set -------------------------------------------------------------------------------
async def test_cas(kv: Any) -> None:
    assert (await put(kv, "c", {"v": 1}, cas=0))["version"] == 1
    with pytest.raises(CheckAndSetMismatch, match=CAS_MISMATCH):
        await put(kv, "c", {"v": 2}, cas=0)
    with pytest.raises(CheckAndSetMismatch, match=CAS_MISMATCH):
        await put(kv, "c", {"v": 2}, cas=5)
    assert (await put(kv, "c", {"v": 2}, cas="1"))["version"] == 2  # lenient like Vault
    with pytest.raises(CheckAndSetMismatch):
        await put(kv, "c", {"v": 3}, cas=None)  # null counts as 0
    with pytest.raises(CheckAndSetMismatch):
        await put(kv, "new", {"v": 1}, cas=1)


async def test_cas_required_on_key(kv: Any) -> None:
    await put(kv, "c", {"v": 1})
    assert await kv.call(Op.UPDATE, "metadata/c", {"cas_required": True}) is None
    with pytest.raises(InvalidRequest, match=CAS_REQUIRED):
        await put(kv, "c", {"v": 2})
    assert (await put(kv, "c", {"v": 2}, cas=1))["version"] == 2
    await put(kv, "other", {"v": 1})  # other keys are unaffected


async def test_cas_required_on_mount(kv: Any) -> None:
    await kv.call(Op.UPDATE, "config", {"cas_required": True})
    with pytest.raises(InvalidRequest, match=CAS_REQUIRED):
        await put(kv, "c", {"v": 1})
    assert (await put(kv, "c", {"v": 1}, cas=0))["version"] == 1


# -- patch ---------------------------------------------------------------------------------------
async def test_patch_merges(kv: Any) -> None:
    await put(kv, "p", {"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2], "g": {"h": 1}})
    patch = {"a": None, "b": {"c": None, "x": 9}, "e": [3], "f": "new", "g": "flat"}
    out = await kv.ok(Op.PATCH, "data/p", {"data": patch})
    assert out["version"] == 2
    expected = {"b": {"d": 3, "x": 9}, "e": [3], "f": "new", "g": "flat"}
    assert (await kv.ok(Op.READ, "data/p"))["data"] == expected
    assert (await kv.ok(Op.PATCH, "data/p", {"data": {}}))["version"] == 3  # an empty patch is a version
    with pytest.raises(InvalidRequest, match="no data provided"):
        await kv.call(Op.PATCH, "data/p", {})


async def test_patch_cas(kv: Any) -> None:
    await put(kv, "p", {"a": 1})
    with pytest.raises(CheckAndSetMismatch, match=CAS_MISMATCH):
        await kv.call(Op.PATCH, "data/p", {"data": {"a": 2}, "options": {"cas": 2}})
    out = await kv.ok(Op.PATCH, "data/p", {"data": {"a": 2}, "options": {"cas": 1}})
    assert out["version"] == 2


async def test_patch_missing_is_not_found(kv: Any) -> None:
    with pytest.raises(NotFound):
        await kv.call(Op.PATCH, "data/nope", {"data": {"a": 1}})
    await kv.call(Op.UPDATE, "metadata/only", {"max_versions": 2})
    with pytest.raises(NotFound):
        await kv.call(Op.PATCH, "data/only", {"data": {"a": 1}})


async def test_patch_deleted_or_destroyed_answers_404_with_metadata(kv: Any, clock: Any) -> None:
    await put(kv, "p", {"a": 1})
    clock.advance(1)
    await kv.call(Op.DELETE, "data/p")
    resp = await kv.call(Op.PATCH, "data/p", {"data": {"a": 2}})
    assert resp.status == 404
    assert resp.data == {"created_time": START_TEXT, "custom_metadata": None,
                         "deletion_time": rfc3339(clock.now), "destroyed": False, "version": 1}
    await kv.call(Op.UPDATE, "destroy/p", {"versions": [1]})
    resp = await kv.call(Op.PATCH, "data/p", {"data": {"a": 2}})
    assert resp.status == 404 and resp.data["destroyed"] is True


# -- soft delete, undelete, destroy ----------------------------------------------------------------
async def test_soft_delete_latest_then_undelete(kv: Any, clock: Any) -> None:
    await put(kv, "d", {"a": 1})
    await put(kv, "d", {"a": 2})
    clock.advance(5)
    assert await kv.call(Op.DELETE, "data/d") is None
    resp = await kv.call(Op.READ, "data/d")
    assert resp.status == 404
    assert resp.data["data"] is None
    assert resp.data["metadata"]["deletion_time"] == rfc3339(clock.now)
    assert resp.data["metadata"]["version"] == 2
    assert (await kv.ok(Op.READ, "data/d", {"version": 1}))["data"] == {"a": 1}
    clock.advance(5)
    await kv.call(Op.DELETE, "data/d")  # already deleted: deletion_time is kept
    deleted_at = (await kv.call(Op.READ, "data/d")).data["metadata"]["deletion_time"]
    assert deleted_at == rfc3339(clock.now - 5 * 10**9)
    assert await kv.call(Op.UPDATE, "undelete/d", {"versions": [2]}) is None
    assert await kv.ok(Op.READ, "data/d") == {"data": {"a": 2}, "metadata": {
        "created_time": START_TEXT, "custom_metadata": None, "deletion_time": "", "destroyed": False,
        "version": 2}}


async def test_delete_and_destroy_versions(kv: Any) -> None:
    for i in range(1, 5):
        await put(kv, "v", {"i": i})
    assert await kv.call(Op.UPDATE, "delete/v", {"versions": "2,3"}) is None  # comma list works
    assert (await kv.call(Op.READ, "data/v", {"version": 2})).status == 404
    assert (await kv.call(Op.READ, "data/v", {"version": 3})).status == 404
    await kv.call(Op.UPDATE, "destroy/v", {"versions": [2, 4, 99]})
    assert await kv.storage.get(version_key("v", 2)) is None
    assert await kv.storage.get(version_key("v", 4)) is None
    assert await kv.storage.get(version_key("v", 3)) is not None
    meta = await kv.ok(Op.READ, "metadata/v")
    assert meta["versions"]["2"]["destroyed"] is True and meta["versions"]["2"]["deletion_time"] != ""
    assert meta["versions"]["4"] == {"created_time": START_TEXT, "deletion_time": "", "destroyed": True}
    resp = await kv.call(Op.READ, "data/v")
    assert resp.status == 404 and resp.data["metadata"]["destroyed"] is True
    await kv.call(Op.UPDATE, "undelete/v", {"versions": [2, 3]})
    assert (await kv.call(Op.READ, "data/v", {"version": 2})).status == 404  # destroyed stays destroyed
    assert (await kv.ok(Op.READ, "data/v", {"version": 3}))["data"] == {"i": 3}
    await kv.call(Op.DELETE, "data/v")  # latest is destroyed: nothing to do
    assert (await kv.ok(Op.READ, "metadata/v"))["versions"]["4"]["deletion_time"] == ""


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [("delete", "No version number provided"), ("undelete", "No version number provided"),
     ("destroy", "no version number provided")],
)
async def test_version_endpoints_need_versions(kv: Any, endpoint: str, message: str) -> None:
    await put(kv, "v", {"a": 1})
    with pytest.raises(InvalidRequest, match=message):
        await kv.call(Op.UPDATE, f"{endpoint}/v", {})
    with pytest.raises(InvalidRequest, match='field "versions"'):
        await kv.call(Op.UPDATE, f"{endpoint}/v", {"versions": ["a"]})
    assert await kv.call(Op.UPDATE, f"{endpoint}/missing", {"versions": [1]}) is None


# -- delete_version_after ------------------------------------------------------------------------
async def test_delete_version_after_expires_versions(kv: Any, clock: Any) -> None:
    await kv.call(Op.UPDATE, "metadata/t", {"delete_version_after": "1s"})
    out = await put(kv, "t", {"a": 1})
    assert out["deletion_time"] == rfc3339(START + 10**9)
    assert (await kv.ok(Op.READ, "data/t"))["data"] == {"a": 1}  # not yet
    clock.advance(1.5)
    resp = await kv.call(Op.READ, "data/t")
    assert resp.status == 404 and resp.data["data"] is None
    await kv.call(Op.UPDATE, "undelete/t", {"versions": [1]})
    assert (await kv.ok(Op.READ, "data/t"))["metadata"]["deletion_time"] == rfc3339(clock.now + 10**9)
    await kv.call(Op.UPDATE, "metadata/t", {"delete_version_after": "0s"})
    await kv.call(Op.UPDATE, "undelete/t", {"versions": [1]})
    assert (await kv.ok(Op.READ, "data/t"))["metadata"]["deletion_time"] == ""


@pytest.mark.parametrize(("key", "mount", "expected"), [("2h", "1h", 3600), ("30m", "1h", 1800),
                                                       ("0s", "1h", 3600), ("30m", "0s", 1800)])
async def test_delete_version_after_takes_the_shorter(kv: Any, key: str, mount: str, expected: int) -> None:
    await kv.call(Op.UPDATE, "config", {"delete_version_after": mount})
    await kv.call(Op.UPDATE, "metadata/t", {"delete_version_after": key})
    assert (await put(kv, "t", {"a": 1}))["deletion_time"] == rfc3339(START + expected * 10**9)


# -- max_versions --------------------------------------------------------------------------------
async def test_max_versions_prunes_oldest(kv: Any) -> None:
    await kv.call(Op.UPDATE, "metadata/m", {"max_versions": 3})
    for i in range(1, 4):
        await put(kv, "m", {"i": i})
    assert (await kv.ok(Op.READ, "metadata/m"))["oldest_version"] == 1  # Vault moves it at the limit
    for i in range(4, 6):
        await put(kv, "m", {"i": i})
    meta = await kv.ok(Op.READ, "metadata/m")
    assert meta["current_version"] == 5 and meta["oldest_version"] == 3
    assert sorted(meta["versions"]) == ["3", "4", "5"]
    assert await kv.storage.get(version_key("m", 2)) is None
    with pytest.raises(NotFound):
        await kv.call(Op.READ, "data/m", {"version": 2})
    # Lowering the limit does not prune until the next write.
    await kv.call(Op.UPDATE, "metadata/m", {"max_versions": 1})
    assert sorted((await kv.ok(Op.READ, "metadata/m"))["versions"]) == ["3", "4", "5"]
    await put(kv, "m", {"i": 6})
    assert sorted((await kv.ok(Op.READ, "metadata/m"))["versions"]) == ["6"]


@pytest.mark.parametrize(("key", "mount", "kept"), [(5, 3, 5), (2, 3, 3), (2, 0, 2), (0, 0, 10)])
async def test_max_versions_takes_the_larger(kv: Any, key: int, mount: int, kept: int) -> None:
    await kv.call(Op.UPDATE, "config", {"max_versions": mount})
    await put(kv, "m", {"i": 0})
    await kv.call(Op.UPDATE, "metadata/m", {"max_versions": key})
    for i in range(12):
        await put(kv, "m", {"i": i})
    assert len((await kv.ok(Op.READ, "metadata/m"))["versions"]) == kept


# -- subkeys -------------------------------------------------------------------------------------
SUBKEY_DATA = {"foo": "abc", "bar": {"baz": "def", "q": {"r": 1}}, "quux": {}, "arr": [{"a": 1}], "n": None}


@pytest.mark.parametrize(
    ("depth", "expected"),
    [
        (0, {"foo": None, "bar": {"baz": None, "q": {"r": None}}, "quux": None, "arr": None, "n": None}),
        (1, {"foo": None, "bar": None, "quux": None, "arr": None, "n": None}),
        (2, {"foo": None, "bar": {"baz": None, "q": None}, "quux": None, "arr": None, "n": None}),
        (-1, {"foo": None, "bar": None, "quux": None, "arr": None, "n": None}),  # as OpenBao does
    ],
)
async def test_subkeys_depth(kv: Any, depth: int, expected: dict[str, Any]) -> None:
    meta = await put(kv, "s", SUBKEY_DATA)
    assert await kv.ok(Op.READ, "subkeys/s", {"depth": depth}) == {"metadata": meta, "subkeys": expected}


async def test_subkeys_versions_and_deleted(kv: Any) -> None:
    await put(kv, "s", {"a": {"b": 1}})
    await put(kv, "s", {"c": 1})
    assert (await kv.ok(Op.READ, "subkeys/s", {"version": 1}))["subkeys"] == {"a": {"b": None}}
    with pytest.raises(NotFound):
        await kv.call(Op.READ, "subkeys/s", {"version": 3})
    with pytest.raises(NotFound):
        await kv.call(Op.READ, "subkeys/missing")
    with pytest.raises(InvalidRequest, match='field "depth"'):
        await kv.call(Op.READ, "subkeys/s", {"depth": "x"})
    await kv.call(Op.DELETE, "data/s")
    resp = await kv.call(Op.READ, "subkeys/s")
    assert resp.status == 404 and resp.data["subkeys"] is None and resp.data["metadata"]["version"] == 2


# -- concurrency ---------------------------------------------------------------------------------
class SlowStorage(InmemStorage):
    """Yields to the event loop inside every call, so concurrent requests interleave."""

    async def get(self, key: str) -> bytes | None:
        value = await super().get(key)
        await asyncio.sleep(0)  # after reading, so another request can read the same state
        return value

    async def put(self, key: str, value: bytes) -> None:
        await asyncio.sleep(0)
        await super().put(key, value)


async def test_concurrent_writes_get_distinct_versions(make_mount: MakeMount) -> None:
    kv = await make_mount("kv", {"version": "2"}, storage=SlowStorage())
    outs = await asyncio.gather(*(put(kv, "race", {"i": i}) for i in range(8)))
    assert sorted(o["version"] for o in outs) == list(range(1, 9))


async def test_concurrent_cas_writes_let_exactly_one_win(make_mount: MakeMount) -> None:
    kv = await make_mount("kv", {"version": "2"}, storage=SlowStorage())
    results = await asyncio.gather(*(put(kv, "race", {"i": i}, cas=0) for i in range(5)),
                                   return_exceptions=True)
    assert sum(isinstance(r, dict) for r in results) == 1
    assert sum(isinstance(r, CheckAndSetMismatch) for r in results) == 4
