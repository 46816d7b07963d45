"""Durable commits per operation: each hot write path reaches physical storage as ONE write (one
batch, so one transaction and one fsync on sqlite), atomic with everything it stores. Speed itself
is measured by bench/, not here; this guards the write count that speed depends on."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from tests.core.leasing_backend import Ledger

from strongroom.core import Core
from strongroom.engines import SECRETS_ENGINES
from strongroom.logical import Operation, Request
from strongroom.storage.cache import CachedStorage
from strongroom.storage.inmem import InmemStorage
from strongroom.storage.sqlite import SqliteStorage, open_sqlite


class CountingStorage(InmemStorage):
    """Counts the writes that reach physical storage: single puts/deletes and whole batches."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[list[str]] = []
        self._in_batch = False

    async def put(self, key: str, value: bytes) -> None:
        if not self._in_batch:
            self.writes.append([key])
        await super().put(key, value)

    async def delete(self, key: str) -> None:
        if not self._in_batch:
            self.writes.append([key])
        await super().delete(key)

    async def write_batch(self, ops: Sequence[tuple[str, bytes | None]]) -> None:
        self.writes.append([key for key, _ in ops])
        self._in_batch = True
        try:
            await super().write_batch(ops)
        finally:
            self._in_batch = False


@pytest.fixture
def ledger(monkeypatch: pytest.MonkeyPatch) -> Ledger:
    led = Ledger()
    monkeypatch.setitem(SECRETS_ENGINES, "leasing", led.factory)
    return led


async def _core(physical: Any) -> tuple[Core, str, dict[str, str]]:
    core = Core(physical)
    _, root = await core.dev_bootstrap("root")

    async def call(op: Operation, path: str, data: dict[str, Any]) -> dict[str, Any]:
        resp = await core.handle_request(Request(op, path, data, client_token=root))
        return resp.data or {} if resp is not None else {}

    await call(Operation.UPDATE, "sys/auth/approle", {"type": "approle"})
    await call(Operation.UPDATE, "auth/approle/role/r", {"token_ttl": "1h", "secret_id_num_uses": 0})
    creds = {"role_id": (await call(Operation.READ, "auth/approle/role/r/role-id", {}))["role_id"],
             "secret_id": (await call(Operation.UPDATE, "auth/approle/role/r/secret-id", {}))["secret_id"]}
    # The first login of an identity also creates its entity and alias (core/identity/), once;
    # every later login of it is the one write measured below.
    await core.handle_request(Request(Operation.UPDATE, "auth/approle/login", dict(creds)))
    await call(Operation.UPDATE, "sys/mounts/db", {"type": "leasing"})
    await call(Operation.UPDATE, "secret/data/k", {"data": {"v": 0}})
    return core, root, creds


def _operations(root: str, creds: dict[str, str]) -> dict[str, Request]:
    return {
        "token create": Request(Operation.UPDATE, "auth/token/create", {"ttl": "1h"}, client_token=root),
        "kv-v2 write": Request(Operation.UPDATE, "secret/data/k", {"data": {"v": 1}}, client_token=root),
        "approle login": Request(Operation.UPDATE, "auth/approle/login", dict(creds)),
        "secret lease": Request(Operation.READ, "db/creds/ro", {"ttl": "1h"}, client_token=root),
    }


async def test_each_hot_write_is_one_physical_write(ledger: Ledger) -> None:
    physical = CountingStorage()
    core, root, creds = await _core(physical)
    try:
        for name, req in _operations(root, creds).items():
            physical.writes.clear()
            resp = await core.handle_request(req)
            assert resp is not None, name
            assert len(physical.writes) == 1, (name, physical.writes)
        token_batch_prefixes = {"accessor", "parent", "id", "due"}
        physical.writes.clear()
        await core.handle_request(_operations(root, creds)["token create"])
        seen = {key.split("/")[2] for key in physical.writes[0]}
        assert token_batch_prefixes <= seen  # token records and its lease, together
    finally:
        await core.seal()


async def test_each_hot_write_is_one_sqlite_commit(ledger: Ledger, tmp_path: Path) -> None:
    physical = await open_sqlite({"path": str(tmp_path / "db")})
    assert isinstance(physical, SqliteStorage)
    core, root, creds = await _core(CachedStorage(physical))
    try:
        for name, req in _operations(root, creds).items():
            before = physical.commits
            assert await core.handle_request(req) is not None
            assert physical.commits - before == 1, name
    finally:
        await core.seal()
        await physical.close()
