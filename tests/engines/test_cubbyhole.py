"""Cubbyhole: per-token private storage under <token_id>/ (the layout core's revocation relies on)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from strongroom.errors import InvalidRequest, NotFound, PermissionDenied, UnsupportedOperation
from strongroom.framework import Op

ALICE = "a1" * 16
BOB = "b2" * 16


@pytest.fixture
async def cubby(make_mount: Any) -> Any:
    m = await make_mount("cubbyhole")
    m.token_id = ALICE
    return m


async def test_write_read_delete(cubby: Any) -> None:
    secret = {"a": "b", "ttl": "1h", "path": "a body key"}
    assert await cubby.call(Op.UPDATE, "foo", secret) is None
    resp = await cubby.call(Op.READ, "foo")
    assert resp.data == secret
    assert resp.secret is None  # no advisory TTL in a cubbyhole (lease_duration 0)
    assert orjson.loads(await cubby.storage.get(f"{ALICE}/foo")) == secret
    assert await cubby.call(Op.DELETE, "foo") is None
    with pytest.raises(NotFound):
        await cubby.call(Op.READ, "foo")
    assert await cubby.call(Op.DELETE, "foo") is None


async def test_list(cubby: Any) -> None:
    await cubby.call(Op.UPDATE, "foo", {"a": 1})
    await cubby.call(Op.UPDATE, "dir/x", {"a": 1})
    assert await cubby.ok(Op.LIST, "") == {"keys": ["dir/", "foo"]}
    assert await cubby.ok(Op.LIST, "dir/") == {"keys": ["x"]}
    assert await cubby.ok(Op.LIST, "dir") == {"keys": ["x"]}
    with pytest.raises(NotFound):
        await cubby.call(Op.LIST, "none/")
    resp = await cubby.call(Op.LIST, "", {"limit": 1})
    assert resp.warnings == ["Endpoint ignored these unrecognized parameters: [limit]"]


async def test_tokens_are_isolated(cubby: Any) -> None:
    await cubby.call(Op.UPDATE, "shared-name", {"owner": "alice"})
    await cubby.call(Op.UPDATE, "only-alice", {"owner": "alice"})
    await cubby.call(Op.UPDATE, "shared-name", {"owner": "bob"}, token_id=BOB)
    assert (await cubby.ok(Op.READ, "shared-name"))["owner"] == "alice"
    assert (await cubby.ok(Op.READ, "shared-name", token_id=BOB))["owner"] == "bob"
    with pytest.raises(NotFound):
        await cubby.call(Op.READ, "only-alice", token_id=BOB)
    assert await cubby.ok(Op.LIST, "", token_id=BOB) == {"keys": ["shared-name"]}
    await cubby.call(Op.DELETE, "only-alice", token_id=BOB)  # cannot delete alice's secret
    assert (await cubby.ok(Op.READ, "only-alice"))["owner"] == "alice"
    assert await cubby.exists("only-alice") is True
    cubby.token_id = BOB
    assert await cubby.exists("only-alice") is False


async def test_revocation_contract_clears_one_prefix(cubby: Any) -> None:
    await cubby.call(Op.UPDATE, "a", {"v": 1})
    await cubby.call(Op.UPDATE, "dir/b", {"v": 1})
    await cubby.call(Op.UPDATE, "a", {"v": 2}, token_id=BOB)
    # What core does on revoke: delete everything under "<token_id>/".
    assert sorted(await cubby.storage.list("")) == sorted([f"{ALICE}/", f"{BOB}/"])
    pending = [f"{ALICE}/"]
    while pending:
        prefix = pending.pop()
        for name in await cubby.storage.list(prefix):
            if name.endswith("/"):
                pending.append(prefix + name)
            else:
                await cubby.storage.delete(prefix + name)
    with pytest.raises(NotFound):
        await cubby.call(Op.LIST, "")
    assert (await cubby.ok(Op.READ, "a", token_id=BOB))["v"] == 2


@pytest.mark.parametrize("op", [Op.READ, Op.UPDATE, Op.DELETE, Op.LIST])
@pytest.mark.parametrize("token_id", ["", "x/y"])
async def test_requests_without_a_token_are_denied(cubby: Any, op: Op, token_id: str) -> None:
    with pytest.raises(PermissionDenied):
        await cubby.call(op, "foo/" if op is Op.LIST else "foo", {"a": 1}, token_id=token_id)


async def test_bad_input(cubby: Any) -> None:
    with pytest.raises(InvalidRequest, match="missing data fields"):
        await cubby.call(Op.UPDATE, "foo", {})
    with pytest.raises(InvalidRequest, match="cannot write to a path ending in '/'"):
        await cubby.call(Op.UPDATE, "dir/", {"a": 1})
    with pytest.raises(InvalidRequest, match="missing path"):
        await cubby.call(Op.READ, "")
    with pytest.raises(InvalidRequest, match="missing path"):
        await cubby.call(Op.UPDATE, "", {"a": 1})
    with pytest.raises(UnsupportedOperation):
        await cubby.call(Op.PATCH, "foo", {"a": 1})
