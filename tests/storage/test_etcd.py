"""etcd storage beyond the shared contract: Vault's key layout, atomic batches, auth, faults.

Each test uses the session's etcd (started on free ports by conftest) under its own path; the auth
test starts one more etcd, as enabling auth is server-wide.
"""

from __future__ import annotations

import base64
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from strongroom.errors import Internal, InvalidRequest
from strongroom.storage import PhysicalStorage, open_storage
from strongroom.storage.etcd import EtcdStorage, upper_bound
from tests.storage.services import EtcdServer, start_etcd_or_skip


def _path() -> str:
    return f"/sr-etcd-{uuid.uuid4().hex[:10]}/"


@pytest.fixture
async def store(etcd_server: EtcdServer) -> AsyncIterator[PhysicalStorage]:
    s = await open_storage("etcd", {"address": etcd_server.address, "path": _path()})
    yield s
    await s.close()


def _raw_keys(etcd: EtcdServer, prefix: str) -> list[str]:
    key = prefix.encode()
    body = {"key": base64.b64encode(key).decode(), "range_end": base64.b64encode(upper_bound(key)).decode()}
    kvs = httpx.post(f"{etcd.address}/v3/kv/range", json=body).json().get("kvs", [])
    return [base64.b64decode(kv["key"]).decode() for kv in kvs]


def test_upper_bound() -> None:
    assert upper_bound(b"a/") == b"a0"
    assert upper_bound(b"a\xff") == b"b"
    assert upper_bound(b"\xff\xff") == b"\0"


async def test_keys_live_under_the_path_as_in_vault(etcd_server: EtcdServer) -> None:
    path = _path()
    s = await open_storage("etcd", {"address": etcd_server.address, "path": path.rstrip("/"), "etcd_api": "v3"})
    try:
        await s.put("core/keyring", b"k")
        await s.put("top", b"t")
        assert _raw_keys(etcd_server, path) == [f"{path}core/keyring", f"{path}top"]
        assert await s.list("") == ["core/", "top"]
    finally:
        await s.close()


async def test_batch_over_etcds_txn_limit_writes_nothing(store: PhysicalStorage) -> None:
    batch = getattr(store, "write_batch")  # noqa: B009
    await store.put("keep", b"old")
    ops: list[tuple[str, bytes | None]] = [("keep", b"new")] + [(f"many/{i:03}", b"x") for i in range(200)]
    with pytest.raises(Internal, match="etcd storage: kv/txn failed: .*too many operations"):
        await batch(ops)  # etcd's default --max-txn-ops is 128
    assert await store.get("keep") == b"old"
    assert await store.list("many/") == []


async def test_batch_is_one_revision(store: PhysicalStorage, etcd_server: EtcdServer) -> None:
    batch = getattr(store, "write_batch")  # noqa: B009
    await batch([("r/a", b"1"), ("r/b", b"2"), ("r/a", b"3")])
    assert isinstance(store, EtcdStorage)
    kvs = httpx.post(f"{etcd_server.address}/v3/kv/range", json={
        "key": base64.b64encode(f"{store.path}r/".encode()).decode(),
        "range_end": base64.b64encode(upper_bound(f"{store.path}r/".encode())).decode()}).json()["kvs"]
    assert {kv["mod_revision"] for kv in kvs} == {kvs[0]["mod_revision"]}  # one transaction
    assert await store.get("r/a") == b"3"


async def test_list_pages_through_many_leaves(store: PhysicalStorage) -> None:
    batch = getattr(store, "write_batch")  # noqa: B009
    for start in range(0, 1100, 100):
        await batch([(f"big/{i:04}", b"v") for i in range(start, start + 100)] + [(f"big/d{start}/x", b"v")])
    listed = await store.list("big/")
    assert len(listed) == 1100 + 11
    assert listed[:2] == ["0000", "0001"] and "d500/" in listed


async def test_second_address_is_used_when_the_first_is_down(etcd_server: EtcdServer) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    s = await open_storage("etcd", {"address": f"http://127.0.0.1:{dead},{etcd_server.address}", "path": _path()})
    try:
        await s.put("a", b"1")
        assert await s.get("a") == b"1"
    finally:
        await s.close()


async def test_etcd_that_does_not_answer_fails_within_the_deadline() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        start = time.monotonic()
        with pytest.raises(Internal, match=rf"etcd storage: kv/range: http://127.0.0.1:{port} did not answer"):
            await open_storage("etcd", {"address": f"http://127.0.0.1:{port}", "request_timeout": "1s"})
        assert time.monotonic() - start < 4


@pytest.fixture
def auth_etcd(tmp_path: Path) -> Iterator[EtcdServer]:
    server = start_etcd_or_skip(tmp_path)
    try:
        for method, body in [("auth/role/add", {"name": "root"}),
                             ("auth/user/add", {"name": "root", "password": "s3cret"}),
                             ("auth/user/grant", {"user": "root", "role": "root"}),
                             ("auth/enable", {})]:
            r = httpx.post(f"{server.address}/v3/{method}", json=body)
            assert r.status_code == 200, (method, r.text)
        yield server
    finally:
        server.stop()


async def test_username_and_password(auth_etcd: EtcdServer) -> None:
    with pytest.raises(Internal, match="etcd storage: kv/range failed: etcdserver: user name is empty"):
        await open_storage("etcd", {"address": auth_etcd.address})  # no credentials
    with pytest.raises(Internal, match="etcd storage: auth/authenticate failed: etcdserver: authentication failed") as info:
        await open_storage("etcd", {"address": auth_etcd.address, "username": "root", "password": "wrong"})
    assert "wrong" not in str(info.value)
    s = await open_storage("etcd", {"address": auth_etcd.address, "username": "root", "password": "s3cret"})
    try:
        await s.put("a/b", b"1")
        assert isinstance(s, EtcdStorage)
        s._token = "expired.token"  # noqa: SLF001 - as after the token's TTL: renewed once, transparently
        assert await s.get("a/b") == b"1"
        assert await s.list("a/") == ["b"]
    finally:
        await s.close()


@pytest.mark.parametrize(("options", "message"), [
    ({"etcd_api": "v2"}, 'etcd_api "v2" is not supported'),
    ({"ha_enabled": "yes"}, '"ha_enabled" must be true or false'),
    ({"address": "127.0.0.1:2379"}, 'invalid "address"'),
    ({"username": "u"}, '"username" and "password" go together'),
    ({"tls_ca_file": "/x"}, "tls_ca_file not supported"),
    ({"max_parallel": "lots"}, '"max_parallel" must be an integer'),
])
async def test_bad_options_are_rejected(options: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        await open_storage("etcd", options)
