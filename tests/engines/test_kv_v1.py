"""KV version 1 (passthrough) at the framework level: no HTTP, in-memory storage."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from strongroom.engines.kv import KVv1Backend, KVv2Backend, kv_version
from strongroom.errors import InvalidRequest, NotFound, UnsupportedOperation
from strongroom.framework import BackendConfig, Op

MakeMount = Any

DEFAULT_TTL = 768 * 3600


@pytest.mark.parametrize(
    ("mount_type", "options", "cls"),
    [
        ("kv", {}, KVv1Backend),
        ("kv", {"version": ""}, KVv1Backend),
        ("kv", {"version": "1"}, KVv1Backend),
        ("kv", {"version": "2"}, KVv2Backend),
        ("generic", {}, KVv1Backend),
        ("kv-v2", {}, KVv2Backend),
        ("kv-v2", {"version": "1"}, KVv2Backend),
    ],
)
async def test_registry_picks_version(
    make_mount: MakeMount, mount_type: str, options: dict[str, str], cls: type
) -> None:
    m = await make_mount(mount_type, options)
    assert type(m.backend) is cls
    assert m.backend.version == (2 if cls is KVv2Backend else 1)  # type: ignore[attr-defined]
    assert m.backend.generates_leases is False  # type: ignore[attr-defined]


def test_unsupported_version_is_rejected() -> None:
    with pytest.raises(InvalidRequest, match='unsupported kv version "3"'):
        kv_version(BackendConfig(options={"version": "3"}))


async def test_write_read_delete_roundtrip(make_mount: MakeMount) -> None:
    m = await make_mount("kv")
    secret = {"a": "b", "n": 1, "nested": {"x": [1, 2]}, "path": "body field named path"}
    assert await m.call(Op.UPDATE, "foo", secret) is None
    resp = await m.call(Op.READ, "foo")
    assert resp is not None and resp.data == secret
    # Stored under its own path, as plain JSON: the layout the v2 upgrade reads.
    assert orjson.loads(await m.storage.get("foo") or b"") == secret
    assert resp.secret is not None and resp.secret.renewable is False and resp.secret.lease_id == ""
    assert resp.secret.ttl == DEFAULT_TTL
    assert await m.call(Op.DELETE, "foo") is None
    with pytest.raises(NotFound):
        await m.call(Op.READ, "foo")
    assert await m.call(Op.DELETE, "foo") is None  # deleting a missing key is fine


async def test_write_replaces_whole_value(make_mount: MakeMount) -> None:
    m = await make_mount("kv")
    await m.call(Op.CREATE, "k", {"a": 1, "b": 2})
    await m.call(Op.UPDATE, "k", {"c": 3})
    assert await m.ok(Op.READ, "k") == {"c": 3}


@pytest.mark.parametrize(
    ("data", "ttl"),
    [
        ({"ttl": "1h"}, 3600),
        ({"ttl": 90}, 90),
        ({"ttl": "1.5h"}, 5400),
        ({"ttl": "1d"}, 86400),
        ({"ttl": "0"}, 0),
        ({"lease": "2h"}, 7200),
        ({"ttl": "bogus"}, DEFAULT_TTL),
        ({"ttl": True}, DEFAULT_TTL),
        ({"ttl": "bogus", "lease": "2h"}, DEFAULT_TTL),  # ttl wins even when unparsable
    ],
)
async def test_ttl_is_advisory_lease_duration(
    make_mount: MakeMount, data: dict[str, object], ttl: int
) -> None:
    m = await make_mount("kv")
    await m.call(Op.UPDATE, "t", {"a": "b", **data})
    resp = await m.call(Op.READ, "t")
    assert resp is not None and resp.secret is not None
    assert resp.secret.ttl == ttl
    assert resp.data == {"a": "b", **data}  # the ttl key is stored like any other


async def test_default_ttl_comes_from_mount_config(make_mount: MakeMount) -> None:
    m = await make_mount("kv", default_lease_ttl=3600)
    await m.call(Op.UPDATE, "k", {"a": 1})
    resp = await m.call(Op.READ, "k")
    assert resp is not None and resp.secret is not None and resp.secret.ttl == 3600


async def test_list_root_and_folders(make_mount: MakeMount) -> None:
    m = await make_mount("kv")
    for path in ("foo", "dir/sub", "dir/deeper/x", "zed"):
        await m.call(Op.UPDATE, path, {"v": path})
    assert await m.ok(Op.LIST, "") == {"keys": ["dir/", "foo", "zed"]}
    assert await m.ok(Op.LIST, "dir/") == {"keys": ["deeper/", "sub"]}
    assert await m.ok(Op.LIST, "dir") == {"keys": ["deeper/", "sub"]}  # slash added if missing
    resp = await m.call(Op.LIST, "")
    assert resp is not None and resp.secret is None  # lists carry no lease_duration
    with pytest.raises(NotFound):
        await m.call(Op.LIST, "nothing/")
    with pytest.raises(NotFound):
        await m.call(Op.LIST, "foo/")


async def test_list_of_empty_mount_is_not_found(make_mount: MakeMount) -> None:
    m = await make_mount("kv")
    with pytest.raises(NotFound):
        await m.call(Op.LIST, "")


@pytest.mark.parametrize("path", ["", "dir/"])
async def test_write_to_folder_path_is_rejected(make_mount: MakeMount, path: str) -> None:
    m = await make_mount("kv")
    with pytest.raises(InvalidRequest, match="cannot write to a path ending in '/'"):
        await m.call(Op.UPDATE, path, {"a": 1})


async def test_write_without_data_is_rejected(make_mount: MakeMount) -> None:
    m = await make_mount("kv")
    with pytest.raises(InvalidRequest, match="missing data fields"):
        await m.call(Op.UPDATE, "k", {})


async def test_read_of_root_is_not_found(make_mount: MakeMount) -> None:
    m = await make_mount("kv")
    with pytest.raises(NotFound):
        await m.call(Op.READ, "")


async def test_patch_is_unsupported(make_mount: MakeMount) -> None:
    m = await make_mount("kv")
    await m.call(Op.UPDATE, "k", {"a": 1})
    with pytest.raises(UnsupportedOperation):
        await m.call(Op.PATCH, "k", {"a": 2})


async def test_existence_check(make_mount: MakeMount) -> None:
    m = await make_mount("kv")
    assert await m.exists("k") is False
    await m.call(Op.UPDATE, "k", {"a": 1})
    assert await m.exists("k") is True
    assert await m.exists("") is False


async def test_unknown_query_params_warn_on_read(make_mount: MakeMount) -> None:
    m = await make_mount("kv")
    await m.call(Op.UPDATE, "k", {"a": 1})
    resp = await m.call(Op.READ, "k", {"zzz": "1", "aaa": "2"})
    assert resp is not None
    assert resp.warnings == ["Endpoint ignored these unrecognized parameters: [aaa zzz]"]
    resp = await m.call(Op.READ, "k")
    assert resp is not None and resp.warnings == []
