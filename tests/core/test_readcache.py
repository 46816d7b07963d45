"""The read cache (core/readcache.py) end to end, through the in-process HTTP edge: a repeated GET by
the same token is answered from memory with its audit entries replayed, and never once anything it
was computed from has changed; what must never be kept; fail closed on audit; the race between a
read and a write; and the audit member surgery it relies on (audit/entry.py strip/splice)."""

from __future__ import annotations

import asyncio
import errno
import json
import math
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from tests.core.tokens.conftest import T0, Clock  # the fake token-store clock (seconds)

from strongroom.audit.chain import verify
from strongroom.audit.entry import Hasher, request_member, splice_request, strip_request
from strongroom.audit.file import FileDevice
from strongroom.core import Core, CoreConfig
from strongroom.core import acl as acl_module
from strongroom.core.audit import AuditConfig, DeclaredDevice
from strongroom.core.mounts import MountEntry
from strongroom.core.pipeline import reusable_until
from strongroom.core.readcache import DEFAULT_SIZE, ENTRY_OVERHEAD, SEEN_MAX, Cacheable, ReadCache
from strongroom.core.tokens.entry import TokenEntry
from strongroom.engines.kv.v2 import KVv2Backend
from strongroom.framework import Backend
from strongroom.http.app import App
from strongroom.http.logical import Peer
from strongroom.logical import Auth, Connection, LeaseInfo, Operation, Request, Response, WrapInfo
from strongroom.storage.inmem import InmemStorage
from strongroom.testing import AppTransport, unsealed_core

ALLOW = CoreConfig(audit=AuditConfig(allow_api_creation=True))
MISS_PEER = Peer("127.0.0.1", 123)
HIT_PEER = Peer("10.9.8.7", 40000)
V1_SECRET = "kv1-s3cret-value"
V2_SECRET = "kv2-s3cret-value"
READER = """
path "kv/*" { capabilities = ["read", "list"] }
path "secret/data/*" { capabilities = ["read"] }
path "secret/metadata/*" { capabilities = ["list"] }
"""
FAILED = "audit: no enabled audit device could record the request"


@asynccontextmanager
async def _client(core: Core, token: str | None, peer: Peer = MISS_PEER) -> AsyncIterator[httpx.AsyncClient]:
    """testing.app_client, from a chosen peer."""
    headers = {"X-Vault-Token": token} if token else {}
    async with httpx.AsyncClient(transport=AppTransport(App(core), peer), base_url="http://strongroom",
                                 headers=headers) as client:
        yield client


@dataclass
class World:
    core: Core
    root: httpx.AsyncClient
    clock: Clock


@asynccontextmanager
async def _world(config: CoreConfig | None = None) -> AsyncIterator[World]:
    """A dev core with a fake token-store clock, kv-v1 at kv/ (kv/a), kv-v2 at secret/ (secret/data/x)
    and a "reader" policy for both."""
    async with unsealed_core(config=config) as (core, root), _client(core, root) as c:
        clock = Clock()
        core.tokens.clock = clock
        assert (await c.post("/v1/sys/mounts/kv", json={"type": "kv"})).status_code == 204
        assert (await c.put("/v1/kv/a", json={"v": V1_SECRET})).status_code == 204
        assert (await c.post("/v1/secret/data/x", json={"data": {"a": V2_SECRET}})).status_code == 200
        assert (await c.put("/v1/sys/policy/reader", json={"policy": READER})).status_code == 204
        yield World(core, c, clock)


async def _token(c: httpx.AsyncClient, path: str = "auth/token/create", **body: Any) -> str:
    r = await c.post(f"/v1/{path}", json=body)
    assert r.status_code == 200, r.text
    return str(r.json()["auth"]["client_token"])


async def _reader(w: World, **body: Any) -> str:
    """A reader token, created at the fake clock's now; the clock then moves half a second on, so
    that its ttl (whole seconds left) is not on a second boundary."""
    token = await _token(w.root, policies=["reader"], **body)
    w.clock.advance(0.5)
    return token


def _without_id(r: httpx.Response) -> dict[str, Any]:
    body = dict(r.json())
    body.pop("request_id")
    return body


async def _cached(core: Core, c: httpx.AsyncClient, path: str, **kw: Any) -> httpx.Response:
    """GET twice: the second answer must come from the cache, equal to the first but for its id."""
    first = await c.get(path, **kw)
    assert first.status_code == 200, first.text
    hits = core.reads.hits
    second = await c.get(path, **kw)
    assert core.reads.hits == hits + 1, f"{path} was not answered from the cache"
    assert second.status_code == 200
    assert _without_id(second) == _without_id(first)
    assert second.json()["request_id"] != first.json()["request_id"]
    return second


async def _fresh(core: Core, c: httpx.AsyncClient, path: str, **kw: Any) -> httpx.Response:
    """GET once, asserting the answer did not come from the cache."""
    hits = core.reads.hits
    r = await c.get(path, **kw)
    assert core.reads.hits == hits, f"{path} was answered from a stale cache entry: {r.text}"
    return r


async def _hit(core: Core, c: httpx.AsyncClient, path: str, **kw: Any) -> httpx.Response:
    """GET once, asserting the answer came from the cache."""
    hits = core.reads.hits
    r = await c.get(path, **kw)
    assert core.reads.hits == hits + 1, f"{path} was not answered from the cache"
    assert r.status_code == 200
    return r


async def _enable_file(c: httpx.AsyncClient, log: Path, name: str = "file") -> None:
    r = await c.put(f"/v1/sys/audit/{name}", json={"type": "file", "options": {"file_path": str(log)}})
    assert r.status_code == 204, r.text


def _lines(log: Path) -> list[bytes]:
    return log.read_bytes().splitlines(keepends=True) if log.exists() else []


def _entries(lines: list[bytes]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines]


def _backend(core: Core, path: str) -> Backend:
    mount = core.mounts.find("mounts", path)
    assert mount is not None and mount.backend is not None
    return mount.backend


def _file_device(core: Core, name: str = "file") -> FileDevice:
    device = core.audit._devices[f"{name}/"].device
    assert isinstance(device, FileDevice)
    return device


def _verify_chain(core: Core, log: Path, name: str = "file") -> None:
    device = _file_device(core, name)
    seq, head = device.head
    verdict = verify(core.audit._devices[f"{name}/"].entry.chain_key, _lines(log), head_seq=seq, head_hmac=head)
    assert verdict.ok, verdict.reason
    assert verdict.last_seq == seq == len(_lines(log))


# -- 1. a repeated read is answered from the cache ----------------------------------------------
PATHS = ["/v1/kv/a", "/v1/secret/data/x", "/v1/secret/data/x?version=1", "/v1/auth/token/lookup-self"]


@pytest.mark.parametrize("path", PATHS)
async def test_a_repeated_read_is_answered_from_the_cache(path: str) -> None:
    async with _world() as w:
        token = await _reader(w)
        async with _client(w.core, token) as c:
            first = await c.get(path)
            assert first.status_code == 200, first.text
            assert len(w.core.reads) == 1
            hits = w.core.reads.hits
            ids = {first.json()["request_id"]}
            for n in range(1, 4):
                again = await c.get(path)
                assert w.core.reads.hits == hits + n
                assert again.status_code == 200
                rid = again.json()["request_id"]
                assert rid not in ids and uuid.UUID(rid).version == 4
                ids.add(rid)
                # Byte for byte the first answer, but for its own request id.
                assert again.content == first.content.replace(first.json()["request_id"].encode(), rid.encode())
            assert len(w.core.reads) == 1
            if path == "/v1/auth/token/lookup-self":
                assert first.json()["data"]["id"] == token
            elif "kv/" in path:
                assert first.json()["data"] == {"v": V1_SECRET}
            else:
                assert first.json()["data"]["data"] == {"a": V2_SECRET}


async def test_a_hit_never_reaches_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    async with _world() as w:
        backend = _backend(w.core, "kv/")
        calls: list[Operation] = []
        original = backend.handle

        async def counting(req: Request) -> Response | None:
            calls.append(req.operation)
            return await original(req)

        monkeypatch.setattr(backend, "handle", counting)
        for _ in range(5):
            assert (await w.root.get("/v1/kv/a")).json()["data"] == {"v": V1_SECRET}
        assert calls == [Operation.READ]


async def test_the_bearer_header_names_the_same_entry() -> None:
    async with _world() as w:
        token = await _reader(w)
        async with _client(w.core, token) as c:
            await _cached(w.core, c, "/v1/kv/a")
        async with _client(w.core, None) as anon:
            hits = w.core.reads.hits
            r = await anon.get("/v1/kv/a", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200 and r.json()["data"] == {"v": V1_SECRET}
            assert w.core.reads.hits == hits + 1


# -- 2. audit on a hit ---------------------------------------------------------------------------
_PER_REQUEST = ("time", "chain")
_PER_REQUEST_MEMBERS = ("id", "remote_address", "remote_port")


def _stable(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry without what differs from one request to the next."""
    out = {k: v for k, v in entry.items() if k not in _PER_REQUEST}
    out["request"] = {k: v for k, v in entry["request"].items() if k not in _PER_REQUEST_MEMBERS}
    return out


@pytest.mark.parametrize("path", PATHS)
async def test_a_hit_is_audited_like_the_miss_it_repeats(tmp_path: Path, path: str) -> None:
    log = tmp_path / "audit.log"
    async with _world(ALLOW) as w:
        await _enable_file(w.root, log)
        token = await _reader(w)
        before = len(_lines(log))
        async with _client(w.core, token, MISS_PEER) as c, _client(w.core, token, HIT_PEER) as far:
            miss = await c.get(path)
            assert miss.status_code == 200
            hits = w.core.reads.hits
            hit = await far.get(path)
            assert w.core.reads.hits == hits + 1
            assert _without_id(hit) == _without_id(miss)
        written = _entries(_lines(log)[before:])
        assert [e["type"] for e in written] == ["request", "response", "request", "response"]
        miss_req, miss_resp, hit_req, hit_resp = written
        for e in (miss_req, miss_resp):
            assert e["request"]["id"] == miss.json()["request_id"]
            assert (e["request"]["remote_address"], e["request"]["remote_port"]) == tuple(MISS_PEER[:2])
        for e in (hit_req, hit_resp):
            assert e["request"]["id"] == hit.json()["request_id"]
            assert (e["request"]["remote_address"], e["request"]["remote_port"]) == tuple(HIT_PEER[:2])
            assert e["time"] not in (miss_req["time"], miss_resp["time"])  # its own, not the miss's
        # Field for field what the pipeline wrote, but for time, id and peer.
        assert _stable(hit_req) == _stable(miss_req)
        assert _stable(hit_resp) == _stable(miss_resp)
        assert list(hit_req["request"]) == list(miss_req["request"])  # in the same order, too
        # HMACs, never plaintext: the token, and every secret value.
        raw = log.read_bytes()
        assert token.encode() not in raw and V1_SECRET.encode() not in raw and V2_SECRET.encode() not in raw

        async def hashed(value: str) -> str:
            return str((await w.root.put("/v1/sys/audit-hash/file", json={"input": value})).json()["data"]["hash"])

        token_hash = await hashed(token)
        for e in (hit_req, hit_resp):
            assert e["auth"]["client_token"] == e["request"]["client_token"] == token_hash
        data = hit_resp["response"]["data"]
        if "kv/" in path:
            assert data == {"v": await hashed(V1_SECRET)}
        elif "secret/" in path:
            assert data["data"] == {"a": await hashed(V2_SECRET)}
        else:
            assert data["id"] == token_hash
        if "?version=1" in path:
            assert hit_req["request"]["data"] == {"version": await hashed("1")}
        _verify_chain(w.core, log)


async def test_each_hit_writes_one_pair_per_device(tmp_path: Path) -> None:
    one, two = tmp_path / "one.log", tmp_path / "two.log"
    async with _world(ALLOW) as w:
        await _enable_file(w.root, one, "one")
        await _enable_file(w.root, two, "two")
        await _cached(w.core, w.root, "/v1/kv/a")
        for _ in range(3):
            await w.root.get("/v1/kv/a")
        for log, name in ((one, "one"), (two, "two")):
            reads = [e for e in _entries(_lines(log)) if e["request"].get("path") == "kv/a"]
            assert [e["type"] for e in reads] == ["request", "response"] * 5
            assert len({e["request"]["id"] for e in reads}) == 5
            _verify_chain(w.core, log, name)


async def test_a_hit_through_a_threaded_device_with_a_prefix(tmp_path: Path) -> None:
    """A device that does not write inline takes the hit's two entries one after the other, each
    with the device's prefix, as the pipeline gives them."""
    log = tmp_path / "threaded.log"
    async with _world(ALLOW) as w:
        r = await w.root.put("/v1/sys/audit/file", json={"type": "file", "options": {
            "file_path": str(log), "inline": "false", "prefix": "SR> "}})
        assert r.status_code == 204, r.text
        assert not _file_device(w.core).inline
        before = len(_lines(log))
        async with _client(w.core, "root", HIT_PEER) as far:
            miss = await w.root.get("/v1/kv/a")
            hit = await _hit(w.core, far, "/v1/kv/a")
        lines = _lines(log)[before:]
        assert len(lines) == 4 and all(line.startswith(b"SR> {") for line in lines)
        miss_req, miss_resp, hit_req, hit_resp = _entries([line[4:] for line in lines])
        assert miss_req["request"]["id"] == miss.json()["request_id"]
        assert hit_req["request"]["id"] == hit_resp["request"]["id"] == hit.json()["request_id"]
        assert hit_req["request"]["remote_address"] == HIT_PEER.addr
        assert _stable(hit_req) == _stable(miss_req) and _stable(hit_resp) == _stable(miss_resp)
        _verify_chain(w.core, log)


# -- 3. invalidation -----------------------------------------------------------------------------
async def test_kv_v1_overwrite() -> None:
    async with _world() as w:
        await _cached(w.core, w.root, "/v1/kv/a")
        assert (await w.root.put("/v1/kv/a", json={"v": "new"})).status_code == 204
        assert (await _fresh(w.core, w.root, "/v1/kv/a")).json()["data"] == {"v": "new"}
        assert (await _cached(w.core, w.root, "/v1/kv/a")).json()["data"] == {"v": "new"}


async def test_kv_v2_new_version() -> None:
    async with _world() as w:
        await _cached(w.core, w.root, "/v1/secret/data/x")
        assert (await w.root.post("/v1/secret/data/x", json={"data": {"a": "new"}})).status_code == 200
        data = (await _fresh(w.core, w.root, "/v1/secret/data/x")).json()["data"]
        assert data["data"] == {"a": "new"} and data["metadata"]["version"] == 2


async def test_kv_v2_delete() -> None:
    async with _world() as w:
        await _cached(w.core, w.root, "/v1/secret/data/x")
        assert (await w.root.delete("/v1/secret/data/x")).status_code == 204
        for _ in range(2):  # and the 404 is not kept either
            r = await _fresh(w.core, w.root, "/v1/secret/data/x")
            assert r.status_code == 404
            assert r.json()["data"]["data"] is None and r.json()["data"]["metadata"]["deletion_time"]


async def test_kv_v2_metadata_delete() -> None:
    async with _world() as w:
        await _cached(w.core, w.root, "/v1/secret/data/x")
        assert (await w.root.delete("/v1/secret/metadata/x")).status_code == 204
        r = await _fresh(w.core, w.root, "/v1/secret/data/x")
        assert r.status_code == 404 and V2_SECRET not in r.text


async def test_policy_edited_to_remove_read() -> None:
    async with _world() as w:
        token = await _reader(w)
        async with _client(w.core, token) as c:
            await _cached(w.core, c, "/v1/kv/a")
            await _cached(w.core, c, "/v1/secret/data/x")
            r = await w.root.put("/v1/sys/policy/reader", json={"policy": 'path "kv/*" { capabilities = ["list"] }'})
            assert r.status_code == 204
            for path in ("/v1/kv/a", "/v1/secret/data/x"):
                r = await _fresh(w.core, c, path)
                assert r.status_code == 403 and r.json() == {"errors": ["permission denied"]}


async def test_policy_deleted() -> None:
    async with _world() as w:
        token = await _reader(w)
        async with _client(w.core, token) as c:
            await _cached(w.core, c, "/v1/kv/a")
            assert (await w.root.delete("/v1/sys/policy/reader")).status_code == 204
            assert (await _fresh(w.core, c, "/v1/kv/a")).status_code == 403


async def test_token_revoked() -> None:
    async with _world() as w:
        token = await _reader(w)
        async with _client(w.core, token) as c:
            await _cached(w.core, c, "/v1/kv/a")
            await _cached(w.core, c, "/v1/auth/token/lookup-self")
            assert (await w.root.post("/v1/auth/token/revoke", json={"token": token})).status_code == 204
            for path in ("/v1/kv/a", "/v1/auth/token/lookup-self"):
                assert (await _fresh(w.core, c, path)).status_code == 403


async def test_parent_revoked_takes_the_child_with_it() -> None:
    async with _world() as w:
        parent = await _token(w.root, policies=["root"])
        async with _client(w.core, parent) as p:
            child = await _token(p, policies=["reader"])
        async with _client(w.core, child) as c:
            await _cached(w.core, c, "/v1/kv/a")
            assert (await w.root.post("/v1/auth/token/revoke", json={"token": parent})).status_code == 204
            assert (await _fresh(w.core, c, "/v1/kv/a")).status_code == 403


async def test_token_renewed() -> None:
    async with _world() as w:
        token = await _reader(w, ttl="1h")
        w.clock.advance(100)
        async with _client(w.core, token) as c:
            before = (await _cached(w.core, c, "/v1/auth/token/lookup-self")).json()["data"]
            assert before["ttl"] == 3600 - 101  # 100.5 s after creation: 3499.5 left
            r = await c.post("/v1/auth/token/renew-self", json={"increment": "2h"})
            assert r.status_code == 200, r.text
            after = (await _fresh(w.core, c, "/v1/auth/token/lookup-self")).json()["data"]
            assert after["ttl"] == 7200
            assert after["expire_time"] != before["expire_time"] and after["last_renewal"]


async def test_token_expiry_on_the_token_store_clock() -> None:
    async with _world() as w:
        token = await _reader(w, ttl="10s")  # expires at T0 + 10; now T0 + 0.5
        async with _client(w.core, token) as c:
            await _cached(w.core, c, "/v1/kv/a")
            w.clock.advance(9.4)  # T0 + 9.9: still alive, still kept
            hits = w.core.reads.hits
            assert (await c.get("/v1/kv/a")).status_code == 200
            assert w.core.reads.hits == hits + 1
            w.clock.advance(0.1)  # T0 + 10: expired
            for _ in range(2):
                r = await _fresh(w.core, c, "/v1/kv/a")
                assert r.status_code == 403 and V1_SECRET not in r.text


async def test_a_lapsing_policy_stanza_bounds_the_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    async with _world() as w:
        # The ACL's clock is the wall clock; in production the token store's is too.
        monkeypatch.setattr(acl_module, "time", SimpleNamespace(time=w.clock))
        lapses = datetime.fromtimestamp(T0 + 59.75, UTC).isoformat()  # a whole second
        policy = f'path "kv/*" {{ capabilities = ["read"] expiration = "{lapses}" }}'
        assert (await w.root.put("/v1/sys/policy/brief", json={"policy": policy})).status_code == 204
        token = await _token(w.root, policies=["brief"])
        async with _client(w.core, token) as c:
            await _cached(w.core, c, "/v1/kv/a")
            w.clock.advance(59.4)  # T0 + 59.65
            hits = w.core.reads.hits
            assert (await c.get("/v1/kv/a")).status_code == 200
            assert w.core.reads.hits == hits + 1
            w.clock.advance(0.35)  # T0 + 60: the stanza has lapsed
            assert (await _fresh(w.core, c, "/v1/kv/a")).status_code == 403


async def test_mount_disabled() -> None:
    async with _world() as w:
        await _cached(w.core, w.root, "/v1/kv/a")
        assert (await w.root.delete("/v1/sys/mounts/kv")).status_code == 204
        r = await _fresh(w.core, w.root, "/v1/kv/a")
        assert r.status_code == 404 and V1_SECRET not in r.text
        # Mounted again at the same path: empty, not the old answer.
        assert (await w.root.post("/v1/sys/mounts/kv", json={"type": "kv"})).status_code == 204
        assert (await _fresh(w.core, w.root, "/v1/kv/a")).status_code == 404


async def test_mount_moved() -> None:
    async with _world() as w:
        await _cached(w.core, w.root, "/v1/kv/a")
        r = await w.root.post("/v1/sys/remount", json={"from": "kv", "to": "moved"})
        assert r.status_code in (200, 204), r.text
        assert (await _fresh(w.core, w.root, "/v1/kv/a")).status_code == 404
        assert (await _fresh(w.core, w.root, "/v1/moved/a")).json()["data"] == {"v": V1_SECRET}


async def test_mount_tune_changes_the_kv_v1_lease_duration() -> None:
    async with _world() as w:
        assert (await _cached(w.core, w.root, "/v1/kv/a")).json()["lease_duration"] == 2764800
        r = await w.root.post("/v1/sys/mounts/kv/tune", json={"default_lease_ttl": "1h"})
        assert r.status_code == 204, r.text
        assert (await _fresh(w.core, w.root, "/v1/kv/a")).json()["lease_duration"] == 3600
        assert (await _cached(w.core, w.root, "/v1/kv/a")).json()["lease_duration"] == 3600


async def test_audit_device_enabled_then_disabled(tmp_path: Path) -> None:
    one, two = tmp_path / "one.log", tmp_path / "two.log"
    async with _world(ALLOW) as w:
        await _cached(w.core, w.root, "/v1/kv/a")  # kept while no device was enabled
        await _enable_file(w.root, one, "one")
        miss = await _fresh(w.core, w.root, "/v1/kv/a")
        hit = await _hit(w.core, w.root, "/v1/kv/a")
        reads = [e for e in _entries(_lines(one)) if e["request"].get("path") == "kv/a"]
        assert [(e["type"], e["request"]["id"]) for e in reads] == [
            ("request", miss.json()["request_id"]), ("response", miss.json()["request_id"]),
            ("request", hit.json()["request_id"]), ("response", hit.json()["request_id"]),
        ]
        await _enable_file(w.root, two, "two")
        await _fresh(w.core, w.root, "/v1/kv/a")
        hit = await _hit(w.core, w.root, "/v1/kv/a")  # kept with a replay for both devices
        assert hit.json()["request_id"].encode() in two.read_bytes()
        assert (await w.root.delete("/v1/sys/audit/two")).status_code == 204
        size = len(two.read_bytes())
        r = await _fresh(w.core, w.root, "/v1/kv/a")
        assert r.status_code == 200
        assert len(two.read_bytes()) == size  # the disabled device gets nothing more
        assert r.json()["request_id"].encode() in one.read_bytes()
        hit = await _hit(w.core, w.root, "/v1/kv/a")
        assert hit.json()["request_id"].encode() in one.read_bytes()
        assert len(two.read_bytes()) == size
        _verify_chain(w.core, one, "one")


async def test_a_replay_made_for_other_devices_is_not_written(tmp_path: Path) -> None:
    one, two = tmp_path / "one.log", tmp_path / "two.log"
    async with _world(ALLOW) as w:
        await _enable_file(w.root, one, "one")
        await _cached(w.core, w.root, "/v1/kv/a")
        _, cached = w.core.cached_read("root", "kv/a", "")
        assert cached is not None
        await _enable_file(w.root, two, "two")
        sizes = len(one.read_bytes()), len(two.read_bytes())
        assert await w.core.audit.log_replay(cached.replay, "66666666-6666-4666-8666-666666666666", "10.0.0.1", 1) is False
        assert (len(one.read_bytes()), len(two.read_bytes())) == sizes


def _bump_barrier(core: Core) -> None:
    core.barrier.generation += 2


def _bump_router(core: Core) -> None:
    core.router.version += 1


def _invalidate_policies(core: Core) -> None:
    core.policies.forget()  # what a standby does on another node's write: no storage write here


def _bump_tokens(core: Core) -> None:
    core.tokens.generation += 2


def _bump_audit(core: Core) -> None:
    core.audit.version += 1


@pytest.mark.parametrize("change", [_bump_barrier, _bump_router, _invalidate_policies, _bump_tokens, _bump_audit])
async def test_every_change_counter_is_watched(change: Callable[[Core], None]) -> None:
    """Each counter the stamp is made of, moved alone (most changes also write through the barrier,
    which would hide a counter left out of the stamp)."""
    async with _world() as w:
        token = await _reader(w)
        async with _client(w.core, token) as c:
            await _cached(w.core, c, "/v1/kv/a")
            change(w.core)
            assert (await _fresh(w.core, c, "/v1/kv/a")).json()["data"] == {"v": V1_SECRET}
            await _hit(w.core, c, "/v1/kv/a")


async def test_an_answer_kept_before_audit_setup_is_not_replayed_after_it(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Unsealing sets the config's audit devices up last. A read sent in between is refused as
    sealed (core/__init__.py, Core.sealed), so nothing is kept with no device to replay to; once
    the devices are there, answers are kept and replayed with an entry in the log."""
    log = tmp_path / "declared.log"
    config = CoreConfig(audit=AuditConfig(devices=(DeclaredDevice("file", "file/", options=(("file_path", str(log)),)),)))
    core = Core(InmemStorage(), config)
    key, root = await core.dev_bootstrap("root")
    try:
        async with _client(core, root) as c:
            assert (await c.post("/v1/sys/mounts/kv", json={"type": "kv"})).status_code == 204
            assert (await c.put("/v1/kv/a", json={"v": V1_SECRET})).status_code == 204
            await core.seal()
            setup = core.audit.setup
            early: list[httpx.Response] = []

            async def late_setup() -> None:
                early.append(await c.get("/v1/kv/a"))
                await setup()

            monkeypatch.setattr(core.audit, "setup", late_setup)
            await core.unseal(key)
            assert early and early[0].status_code == 503 and early[0].json() == {"errors": ["Vault is sealed"]}
            assert len(core.reads) == 0
            r = await _fresh(core, c, "/v1/kv/a")
            assert r.json()["request_id"].encode() in log.read_bytes()
            r = await _hit(core, c, "/v1/kv/a")
            assert r.json()["request_id"].encode() in log.read_bytes()
    finally:
        await core.seal()


async def test_seal_empties_the_cache_and_reads_answer_503() -> None:
    core = Core(InmemStorage())
    key, root = await core.dev_bootstrap("root")
    try:
        async with _client(core, root) as c:
            assert (await c.post("/v1/sys/mounts/kv", json={"type": "kv"})).status_code == 204
            assert (await c.put("/v1/kv/a", json={"v": V1_SECRET})).status_code == 204
            await _cached(core, c, "/v1/kv/a")
            await _cached(core, c, "/v1/auth/token/lookup-self")
            assert len(core.reads) == 2
            await core.seal()
            assert len(core.reads) == 0
            for path in ("/v1/kv/a", "/v1/auth/token/lookup-self"):
                r = await _fresh(core, c, path)
                assert r.status_code == 503 and r.json() == {"errors": ["Vault is sealed"]}
            await core.unseal(key)
            assert (await _fresh(core, c, "/v1/kv/a")).json()["data"] == {"v": V1_SECRET}
            await _cached(core, c, "/v1/kv/a")
    finally:
        await core.seal()


# -- 4. never kept -------------------------------------------------------------------------------
async def _not_kept(core: Core, c: httpx.AsyncClient, path: str, times: int = 3, **kw: Any) -> list[httpx.Response]:
    """GET ``times`` times: none may come from the cache, and nothing may be kept."""
    kept, hits = len(core.reads), core.reads.hits
    out = [await c.get(path, **kw) for _ in range(times)]
    assert core.reads.hits == hits and len(core.reads) == kept, f"{path} was kept"
    return out


async def test_tokens_with_num_uses_are_never_kept() -> None:
    async with _world() as w:
        token = await _reader(w, num_uses=5)
        async with _client(w.core, token) as c:
            looked = await _not_kept(w.core, c, "/v1/auth/token/lookup-self", times=2)
            assert [r.json()["data"]["num_uses"] for r in looked] == [4, 3]  # each use counted down
            for r in await _not_kept(w.core, c, "/v1/kv/a", times=3):  # uses 3, 4 and the last, 5
                assert r.status_code == 200 and r.json()["data"] == {"v": V1_SECRET}
            r = await c.get("/v1/kv/a")
            assert r.status_code == 403 and V1_SECRET not in r.text  # dead after its last use
            assert (await w.root.post("/v1/auth/token/lookup", json={"token": token})).status_code == 403


async def test_tokens_bound_to_cidrs_are_never_kept() -> None:
    async with _world() as w:
        r = await w.root.post("/v1/auth/token/roles/near", json={"allowed_policies": ["reader"],
                                                                 "token_bound_cidrs": "127.0.0.0/8"})
        assert r.status_code == 204, r.text
        token = await _token(w.root, "auth/token/create/near", policies=["reader"])
        async with _client(w.core, token, MISS_PEER) as near, _client(w.core, token, HIT_PEER) as far:
            for r in await _not_kept(w.core, near, "/v1/kv/a"):
                assert r.status_code == 200
            await _not_kept(w.core, near, "/v1/auth/token/lookup-self")
            r = await far.get("/v1/kv/a")  # from outside the CIDR: never the answer kept for near
            assert r.status_code == 403 and V1_SECRET not in r.text
            assert (await far.get("/v1/auth/token/lookup-self")).status_code == 403


async def test_wrapped_reads_are_never_kept() -> None:
    async with _world() as w:
        await _cached(w.core, w.root, "/v1/kv/a")
        wrapped = await _not_kept(w.core, w.root, "/v1/kv/a", headers={"X-Vault-Wrap-TTL": "60s"})
        tokens = set()
        for r in wrapped:
            assert r.status_code == 200 and r.json()["data"] is None
            tokens.add(r.json()["wrap_info"]["token"])
        assert len(tokens) == 3  # a new wrapping token each time
        for t in tokens:
            r = await w.root.post("/v1/sys/wrapping/unwrap", json={"token": t})
            assert r.json()["data"] == {"v": V1_SECRET}


# Headers Strongroom does not act on: the request means what the plain one does.
IGNORED_HEADERS = [{"Content-Type": "application/json"}, {"Accept-Encoding": "gzip, deflate"},
                   {"X-Random": "1"}, {"X-Forwarded-For": "203.0.113.9"}, {"Traceparent": "00-ab-cd-01"},
                   {"Content-Type": "application/json", "Accept-Encoding": "gzip", "X-Random": "2",
                    "X-Vault-Request": "true"}]
# Headers that change what a GET means or how it is processed (every X-Vault-* but the token and
# X-Vault-Request, and an Authorization header that is not a bearer token).
MEANINGFUL_HEADERS = [{"X-Vault-Wrap-TTL": "60s"}, {"X-Vault-Wrap-Format": "jwt"}, {"X-Vault-Namespace": "ns1"},
                      {"X-Vault-MFA": "m:123456"}, {"X-Vault-Policy-Override": "true"}, {"X-Vault-Index": "x"},
                      {"X-Vault-Forward": "active-node"}, {"X-Vault-Inconsistent": "forward-active-node"},
                      {"X-Vault-No-Request-Forwarding": "true"}, {"X-Vault-Inline-Auth-Path": "auth/userpass/login/u"},
                      {"X-Vault-Inline-Auth-Parameter-a": "eyJrZXkiOiJwYXNzd29yZCJ9"},
                      {"X-Vault-Something-New": "1"}, {"Authorization": "Basic dTpw"},
                      {"Content-Type": "application/json", "X-Vault-Index": "x"}]


@pytest.mark.parametrize("headers", IGNORED_HEADERS, ids=lambda h: "+".join(h))
async def test_headers_strongroom_ignores_do_not_bypass_the_cache(headers: dict[str, str]) -> None:
    async with _world() as w:
        # Kept from such a request, and given to it again ...
        await _cached(w.core, w.root, "/v1/kv/a", headers=headers)
        # ... and to the plain request, which means the same.
        assert (await _hit(w.core, w.root, "/v1/kv/a")).json()["data"] == {"v": V1_SECRET}
        # Kept from a plain request, given to one with such headers.
        plain = await _cached(w.core, w.root, "/v1/secret/data/x")
        assert _without_id(await _hit(w.core, w.root, "/v1/secret/data/x", headers=headers)) == _without_id(plain)


@pytest.mark.parametrize("headers", MEANINGFUL_HEADERS, ids=lambda h: "+".join(h))
async def test_headers_with_a_meaning_bypass_the_cache(headers: dict[str, str]) -> None:
    async with _world() as w:
        await _cached(w.core, w.root, "/v1/kv/a")
        # Not given what a plain request kept ...
        for r in await _not_kept(w.core, w.root, "/v1/kv/a", headers=headers):
            assert r.status_code in (200, 400), r.text
        # ... nor is an answer to such a request kept for plain ones.
        await _not_kept(w.core, w.root, "/v1/secret/data/x", headers=headers)


async def test_a_wrap_ttl_header_gets_a_wrapped_answer_not_the_kept_one() -> None:
    async with _world() as w:
        await _cached(w.core, w.root, "/v1/kv/a")
        r = (await _not_kept(w.core, w.root, "/v1/kv/a", times=1, headers={"X-Vault-Wrap-TTL": "60s"}))[0]
        assert r.status_code == 200 and r.json()["data"] is None and r.json()["wrap_info"]["ttl"] == 60


async def test_lists_are_never_kept() -> None:
    async with _world() as w:
        for listing in ({"method": "LIST", "url": "/v1/kv/"}, {"method": "GET", "url": "/v1/kv/?list=true"}):
            kept, hits = len(w.core.reads), w.core.reads.hits
            for _ in range(2):
                r = await w.root.request(**listing)  # type: ignore[arg-type]
                assert r.status_code == 200 and "a" in r.json()["data"]["keys"]
            assert w.core.reads.hits == hits and len(w.core.reads) == kept
        assert (await w.root.put("/v1/kv/b", json={"v": "2"})).status_code == 204
        assert (await w.root.get("/v1/kv/?list=true")).json()["data"]["keys"] == ["a", "b"]
        assert len(w.core.reads) == 0


async def test_not_found_and_denied_are_never_kept() -> None:
    async with _world() as w:
        for r in await _not_kept(w.core, w.root, "/v1/kv/nope"):
            assert r.status_code == 404
        for r in await _not_kept(w.core, w.root, "/v1/secret/data/nope"):
            assert r.status_code == 404
        outsider = await _token(w.root, policies=["default"])
        async with _client(w.core, outsider) as c:
            for r in await _not_kept(w.core, c, "/v1/kv/a"):
                assert r.status_code == 403
        async with _client(w.core, "no-such-token") as c:
            for r in await _not_kept(w.core, c, "/v1/kv/a"):
                assert r.status_code == 403
        assert len(w.core.reads) == 0


async def test_kv_v2_versions_due_for_deletion_are_never_kept() -> None:
    async with _world() as w:
        backend = _backend(w.core, "secret/")
        assert isinstance(backend, KVv2Backend)
        kv_now = [int(T0) * 10**9]
        backend.clock = lambda: kv_now[0]
        r = await w.root.post("/v1/secret/metadata/t", json={"delete_version_after": "1h"})
        assert r.status_code == 204, r.text
        assert (await w.root.post("/v1/secret/data/t", json={"data": {"a": "soon gone"}})).status_code == 200
        for r in await _not_kept(w.core, w.root, "/v1/secret/data/t"):
            assert r.status_code == 200 and r.json()["data"]["metadata"]["deletion_time"]
        kv_now[0] += 3600 * 10**9  # the version's deletion_time
        r = (await _not_kept(w.core, w.root, "/v1/secret/data/t", times=1))[0]
        assert r.status_code == 404 and "soon gone" not in r.text


async def test_lookup_self_with_a_ttl_is_kept_within_its_second() -> None:
    async with _world() as w:
        token = await _reader(w, ttl="1h")  # expires at T0 + 3600; now T0 + 0.5
        async with _client(w.core, token) as c:
            first = await _cached(w.core, c, "/v1/auth/token/lookup-self")
            assert first.json()["data"]["ttl"] == 3599
            w.clock.advance(0.25)  # T0 + 0.75: 3599.25 left, the same ttl
            hits = w.core.reads.hits
            assert (await c.get("/v1/auth/token/lookup-self")).json()["data"]["ttl"] == 3599
            assert w.core.reads.hits == hits + 1
            w.clock.advance(1)  # T0 + 1.75: 3598.25 left
            r = await _fresh(w.core, c, "/v1/auth/token/lookup-self")
            assert r.json()["data"]["ttl"] == 3598
            assert (await _cached(w.core, c, "/v1/auth/token/lookup-self")).json()["data"]["ttl"] == 3598
            w.clock.advance(0.25)  # T0 + 2.0: exactly 3598 left, the last instant that ttl holds
            assert (await _fresh(w.core, c, "/v1/auth/token/lookup-self")).json()["data"]["ttl"] == 3598
            w.clock.advance(0.5)
            assert (await _fresh(w.core, c, "/v1/auth/token/lookup-self")).json()["data"]["ttl"] == 3597


async def test_query_strings_are_different_entries() -> None:
    async with _world() as w:
        assert (await w.root.post("/v1/secret/data/x", json={"data": {"a": "second"}})).status_code == 200
        latest = await _cached(w.core, w.root, "/v1/secret/data/x")
        first = await _cached(w.core, w.root, "/v1/secret/data/x?version=1")
        assert len(w.core.reads) == 2
        for _ in range(2):
            hits = w.core.reads.hits
            assert (await w.root.get("/v1/secret/data/x")).json()["data"] == latest.json()["data"]
            assert (await w.root.get("/v1/secret/data/x?version=1")).json()["data"] == first.json()["data"]
            assert w.core.reads.hits == hits + 2
        assert latest.json()["data"]["data"] == {"a": "second"} and latest.json()["data"]["metadata"]["version"] == 2
        assert first.json()["data"]["data"] == {"a": V2_SECRET} and first.json()["data"]["metadata"]["version"] == 1
        assert (await w.root.get("/v1/secret/data/x?version=2")).json()["data"] == latest.json()["data"]


async def test_different_tokens_never_share_an_entry() -> None:
    async with _world() as w:
        a, b = await _token(w.root, policies=["reader"]), await _token(w.root, policies=["reader"])
        w.clock.advance(0.5)  # off the second boundary of their ttl
        async with _client(w.core, a) as ca, _client(w.core, b) as cb:
            mine = (await _cached(w.core, ca, "/v1/auth/token/lookup-self")).json()["data"]
            r = await _fresh(w.core, cb, "/v1/auth/token/lookup-self")
            theirs = r.json()["data"]
            assert theirs["id"] == b and mine["id"] == a and theirs["accessor"] != mine["accessor"]
            assert a not in r.text
            # B's entry, once kept, is B's; A's stays A's.
            assert (await _cached(w.core, cb, "/v1/auth/token/lookup-self")).json()["data"]["id"] == b
            hits = w.core.reads.hits
            assert (await ca.get("/v1/auth/token/lookup-self")).json()["data"]["id"] == a
            assert w.core.reads.hits == hits + 1
            # The same secret read by both: two entries.
            await _cached(w.core, ca, "/v1/kv/a")
            await _fresh(w.core, cb, "/v1/kv/a")
            assert len(w.core.reads) == 4


# -- 5. fail closed ------------------------------------------------------------------------------
async def test_a_hit_that_cannot_be_audited_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "audit.log"
    async with _world(ALLOW) as w:
        await _enable_file(w.root, log)
        for path in ("/v1/kv/a", "/v1/secret/data/x", "/v1/auth/token/lookup-self"):
            await _cached(w.core, w.root, path)
        device = _file_device(w.core)

        def full(fd: int, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(device, "os_write", full)
        size, hits = len(log.read_bytes()), w.core.reads.hits
        for path in ("/v1/kv/a", "/v1/secret/data/x", "/v1/auth/token/lookup-self"):
            r = await w.root.get(path)
            assert r.status_code == 500
            assert r.json() == {"errors": [FAILED]}
            assert V1_SECRET not in r.text and V2_SECRET not in r.text and "root" not in r.text
        assert len(log.read_bytes()) == size
        assert w.core.reads.hits == hits  # refused: no answer was given from the cache
        monkeypatch.setattr(device, "os_write", __import__("os").write)
        hits = w.core.reads.hits
        assert (await w.root.get("/v1/kv/a")).json()["data"] == {"v": V1_SECRET}
        assert w.core.reads.hits == hits + 1
        _verify_chain(w.core, log)  # the refused hits left no gap


async def test_a_hit_on_an_unwritable_path_is_refused(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    async with _world(ALLOW) as w:
        await _enable_file(w.root, log)
        await _cached(w.core, w.root, "/v1/kv/a")
        log.rename(tmp_path / "audit.log.old")
        log.mkdir()  # the device reopens what the path names: a directory cannot be appended to
        await asyncio.sleep(0)  # the path is checked once per event-loop turn
        r = await w.root.get("/v1/kv/a")
        assert r.status_code == 500 and r.json() == {"errors": [FAILED]} and V1_SECRET not in r.text


async def test_one_device_recording_a_hit_is_enough(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good, bad = tmp_path / "good.log", tmp_path / "bad.log"
    async with _world(ALLOW) as w:
        await _enable_file(w.root, good, "good")
        await _enable_file(w.root, bad, "bad")
        await _cached(w.core, w.root, "/v1/kv/a")

        def broken(fd: int, data: bytes) -> int:
            raise OSError(errno.EIO, "I/O error")

        monkeypatch.setattr(_file_device(w.core, "bad"), "os_write", broken)
        hits = w.core.reads.hits
        r = await w.root.get("/v1/kv/a")
        assert r.status_code == 200 and w.core.reads.hits == hits + 1
        assert r.json()["request_id"].encode() in good.read_bytes()
        assert r.json()["request_id"].encode() not in bad.read_bytes()


# -- 6. off --------------------------------------------------------------------------------------
async def test_a_cache_of_size_zero_keeps_nothing() -> None:
    async with _world(CoreConfig(read_cache_size=0)) as w:
        for path in PATHS:
            for r in await _not_kept(w.core, w.root, path):
                assert r.status_code == 200
        assert w.core.reads.hits == 0 and len(w.core.reads) == 0
        assert w.core.cached_read("root", "kv/a", "") == (None, None)


@pytest.mark.parametrize(("disable", "size"), [(True, 0), (False, DEFAULT_SIZE)])
async def test_the_server_config_disable_cache_turns_it_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            disable: bool, size: int) -> None:
    from strongroom import server
    from strongroom.config import load_config

    assert DEFAULT_SIZE > 0
    cfg = tmp_path / "server.hcl"
    cfg.write_text('storage "inmem" {}\nlistener "tcp" {\n  address = "127.0.0.1:0"\n  tls_disable = true\n}\n'
                   f"disable_cache = {'true' if disable else 'false'}\n")
    built: list[Core] = []

    class Stop(Exception):
        pass

    def capture(physical: Any, config: CoreConfig) -> Core:
        built.append(Core(physical, config))
        raise Stop  # no listener, no signal wait: only how the core is built matters here

    monkeypatch.setattr(server, "Core", capture)
    with pytest.raises(Stop):
        await server._run(load_config([str(cfg)]), dev=False, dev_root_token_id=None)
    assert [c.config.read_cache_size for c in built] == [size]
    assert built[0].reads.size == size


# -- 7. a write racing a read -------------------------------------------------------------------
class _Gate:
    """A mount's storage view whose next ``get`` hands back what it read only when released."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.armed = False
        self.reading = asyncio.Event()
        self.release = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def get(self, key: str) -> bytes | None:
        value: bytes | None = await self.inner.get(key)
        if self.armed:
            self.armed = False
            self.reading.set()
            await self.release.wait()
        return value


async def test_a_write_during_a_read_keeps_its_stale_answer_out() -> None:
    async with _world() as w:
        mount = w.core.mounts.find("mounts", "kv/")
        assert mount is not None
        gate = _Gate(mount.view)
        mount.view = gate
        gate.armed = True
        reading = asyncio.create_task(w.root.get("/v1/kv/a"))
        await gate.reading.wait()  # the read has its stamp and the old value
        assert (await w.root.put("/v1/kv/a", json={"v": "new"})).status_code == 204
        gate.release.set()
        stale = await reading
        assert stale.json()["data"] == {"v": V1_SECRET}  # it began before the write: fine to answer
        assert len(w.core.reads) == 0  # but not to keep
        assert (await _fresh(w.core, w.root, "/v1/kv/a")).json()["data"] == {"v": "new"}
        assert (await _cached(w.core, w.root, "/v1/kv/a")).json()["data"] == {"v": "new"}


class _SlowPuts:
    """Physical storage whose next ``put`` waits to be released before it lands."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.armed = False
        self.putting = asyncio.Event()
        self.release = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def put(self, key: str, value: bytes) -> None:
        if self.armed:
            self.armed = False
            self.putting.set()
            await self.release.wait()
        await self.inner.put(key, value)


async def test_a_read_that_began_during_a_write_is_not_kept() -> None:
    """The read's stamp is taken while the write is under way (its value not yet stored), and the
    read ends after the write has: what it read is stale, and must not be kept."""
    async with _world() as w:
        mount = w.core.mounts.find("mounts", "kv/")
        assert mount is not None
        gate = _Gate(mount.view)
        mount.view = gate
        slow = _SlowPuts(w.core.barrier._physical)
        w.core.barrier._physical = slow
        slow.armed = True
        writing = asyncio.create_task(w.root.put("/v1/kv/a", json={"v": "new"}))
        await slow.putting.wait()
        gate.armed = True
        reading = asyncio.create_task(w.root.get("/v1/kv/a"))
        await gate.reading.wait()  # stamp taken, old value read
        slow.release.set()
        assert (await writing).status_code == 204
        gate.release.set()
        assert (await reading).json()["data"] == {"v": V1_SECRET}
        assert len(w.core.reads) == 0
        assert (await _fresh(w.core, w.root, "/v1/kv/a")).json()["data"] == {"v": "new"}


@pytest.mark.parametrize("change", ["write", "policy", "revoke-other", "mount", "audit"])
async def test_any_change_during_a_read_keeps_its_answer_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             change: str) -> None:
    async with _world(ALLOW) as w:
        bystander = await _token(w.root, policies=["default"])
        backend = _backend(w.core, "secret/")
        original = backend.handle
        changes: dict[str, Callable[[], Any]] = {
            "write": lambda: w.root.post("/v1/secret/data/x", json={"data": {"a": "new"}}),
            "policy": lambda: w.root.put("/v1/sys/policy/other", json={"policy": 'path "x" { capabilities = ["read"] }'}),
            "revoke-other": lambda: w.root.post("/v1/auth/token/revoke", json={"token": bystander}),
            "mount": lambda: w.root.post("/v1/sys/mounts/other", json={"type": "kv"}),
            "audit": lambda: w.root.put("/v1/sys/audit/file", json={"type": "file",
                                                                      "options": {"file_path": str(tmp_path / "a.log")}}),
        }
        done: list[int] = []

        async def racing(req: Request) -> Response | None:
            resp = await original(req)
            if req.operation is Operation.READ and not done:
                done.append((await changes[change]()).status_code)
            return resp

        monkeypatch.setattr(backend, "handle", racing)
        r = await w.root.get("/v1/secret/data/x")
        assert r.status_code == 200 and done and done[0] in (200, 204)
        assert len(w.core.reads) == 0
        r = await _fresh(w.core, w.root, "/v1/secret/data/x")
        if change == "write":
            assert r.json()["data"]["data"] == {"a": "new"}
        await _cached(w.core, w.root, "/v1/secret/data/x")


# -- 8. the audit request member without its id and peer ----------------------------------------
HASHER = Hasher(b"s" * 32)
MOUNT = ("secret/", "kv", "kv_1234")


def _request(request_id: str, addr: str, port: int, data: dict[str, Any] | None = None,
             wrap_ttl: int = 0) -> Request:
    return Request(Operation.READ, "secret/data/x", dict(data or {}), id=request_id, client_token="tok",
                   client_token_accessor="acc", connection=Connection(remote_addr=addr, remote_port=port),
                   wrap_ttl=wrap_ttl, full_path="secret/data/x")


PEERS = [("127.0.0.1", 123), ("::1", 0), ("", 8200), ("", 0)]


@pytest.mark.parametrize("data", [None, {"version": "1"}, {"version": "1", "list": "x"}])
@pytest.mark.parametrize("peer", PEERS)
@pytest.mark.parametrize("other", PEERS)
def test_strip_then_splice_rebuilds_the_member(data: dict[str, Any] | None, peer: tuple[str, int],
                                               other: tuple[str, int]) -> None:
    first = request_member(_request("11111111-1111-4111-8111-111111111111", *peer, data=data), HASHER, MOUNT)
    middle = strip_request(first, "11111111-1111-4111-8111-111111111111", *peer)
    assert middle is not None
    assert b"1111" not in middle and b"remote_" not in middle
    assert splice_request(middle, "11111111-1111-4111-8111-111111111111", *peer) == first
    # Another request with the same everything but id and peer: byte for byte what the pipeline builds.
    rid = "22222222-2222-4222-9222-222222222222"
    assert splice_request(middle, rid, *other) == request_member(_request(rid, *other, data=data), HASHER, MOUNT)


@pytest.mark.parametrize("peer", PEERS)
def test_strip_refuses_a_member_with_wrap_ttl(peer: tuple[str, int]) -> None:
    member = request_member(_request("33333333-3333-4333-8333-333333333333", *peer, wrap_ttl=60), HASHER, MOUNT)
    assert b'"wrap_ttl":60' in member
    assert strip_request(member, "33333333-3333-4333-8333-333333333333", *peer) is None


def test_strip_refuses_what_is_not_that_request() -> None:
    rid = "44444444-4444-4444-8444-444444444444"
    member = request_member(_request(rid, "127.0.0.1", 123), HASHER, MOUNT)
    assert strip_request(member, rid, "127.0.0.1", 123) is not None
    assert strip_request(member, "55555555-5555-4555-8555-555555555555", "127.0.0.1", 123) is None
    assert strip_request(member, rid, "127.0.0.2", 123) is None
    assert strip_request(member, rid, "127.0.0.1", 124) is None
    assert strip_request(member, rid, "", 0) is None
    assert strip_request(member, "", "127.0.0.1", 123) is None  # no id: nothing to replace
    no_id = request_member(_request("", "127.0.0.1", 123), HASHER, MOUNT)
    assert strip_request(no_id, "", "127.0.0.1", 123) is None


# -- the cache and core's consent, as units ------------------------------------------------------
def test_read_cache_keeps_answers_while_their_stamp_and_time_hold() -> None:
    stamp, now = [0], [0.0]
    cache = ReadCache(lambda: stamp[0], lambda: now[0], size=2)
    ok = Cacheable(10.0, "the replay")
    body = b'{"request_id":"RID","data":{"v":1}}'
    cache.put("a", 0, ok, 200, body, "RID")
    entry = cache.get("a")
    assert entry is not None and cache.hits == 0  # the edge counts an answer once it is given
    assert entry.body("NEW") == b'{"request_id":"NEW","data":{"v":1}}' and entry.replay == "the replay"
    assert entry.status == 200
    # Not kept: the stamp moved while the request ran; the id named no times, or twice.
    cache.put("b", -1, ok, 200, body, "RID")
    cache.put("c", 0, ok, 200, b'{"data":{"v":1}}', "RID")
    cache.put("d", 0, ok, 200, b'{"request_id":"RID","data":{"v":"RID"}}', "RID")
    assert len(cache) == 1 and cache.get("b") is None and cache.get("c") is None and cache.get("d") is None
    # Bounded: the oldest insertion goes first; keeping a key again drops nothing.
    cache.put("b", 0, ok, 200, body, "RID")
    cache.put("b", 0, ok, 200, body, "RID")
    assert len(cache) == 2
    cache.put("c", 0, ok, 200, body, "RID")
    assert len(cache) == 2 and cache.get("a") is None and cache.get("b") is not None
    # Time: gone at ``until`` (token-store clock).
    now[0] = 9.999
    assert cache.get("b") is not None
    now[0] = 10.0
    assert cache.get("b") is None and len(cache) == 1
    now[0] = 0.0
    # Any change: gone.
    stamp[0] = 1
    assert cache.get("c") is None and len(cache) == 0
    cache.put("c", 1, ok, 200, body, "RID")
    cache.clear()
    assert len(cache) == 0 and cache.get("c") is None
    off = ReadCache(lambda: 0, lambda: 0.0, size=0)
    off.put("a", 0, ok, 200, body, "RID")
    assert len(off) == 0 and off.get("a") is None


def test_read_cache_is_bounded_in_bytes() -> None:
    body = b'{"request_id":"RID","data":"' + b"x" * 100 + b'"}'
    ok = Cacheable(math.inf, "replay", 50)
    one = len(body) - len(b"RID") + 50 + ENTRY_OVERHEAD
    cache = ReadCache(lambda: 0, lambda: 0.0, max_bytes=8 * one)
    for i in range(10):
        cache.put(("h", f"p{i}", ""), 0, ok, 200, body, "RID")
    # The two oldest went; what is left is counted exactly.
    assert len(cache) == 8 and cache.used == 8 * one
    assert cache.get(("h", "p0", "")) is None and cache.get(("h", "p2", "")) is not None
    # Keeping a key again replaces it, counted once.
    cache.put(("h", "p9", ""), 0, ok, 200, body, "RID")
    assert len(cache) == 8 and cache.used == 8 * one
    # An answer over a quarter of the budget is not kept (it would empty the cache).
    big = b'{"request_id":"RID","data":"' + b"x" * (2 * one) + b'"}'
    cache.put(("h", "big", ""), 0, ok, 200, big, "RID")
    assert cache.get(("h", "big", "")) is None and len(cache) == 8
    # Entries dropped as stale give their bytes back, and so does clear().
    stale = ReadCache(lambda: 1, lambda: 0.0, max_bytes=8 * one)
    stale.put(("h", "p", ""), 1, ok, 200, body, "RID")
    assert stale.used == one
    stale._stamp = lambda: 2  # type: ignore[method-assign]
    assert stale.get(("h", "p", "")) is None and stale.used == 0
    cache.clear()
    assert cache.used == 0 and len(cache) == 0
    assert ReadCache(lambda: 0, lambda: 0.0, max_bytes=0).size == 0  # no budget: off


def test_a_nearly_full_cache_keeps_a_key_only_on_its_second_miss() -> None:
    body = b'{"request_id":"RID","data":{}}'
    ok = Cacheable(math.inf, "replay")
    cache = ReadCache(lambda: 0, lambda: 0.0, size=8)
    for i in range(6):  # room: every key is admitted at once
        assert cache.admit(("h", f"p{i}", ""))
        cache.put(("h", f"p{i}", ""), 0, ok, 200, body, "RID")
    assert cache.admit(("h", "p6", ""))  # 6 of 8: still room
    cache.put(("h", "p6", ""), 0, ok, 200, body, "RID")
    # Nearly full (7 of 8): a new key must be missed twice before it is kept ...
    assert not cache.admit(("h", "new", ""))
    assert cache.admit(("h", "new", ""))
    # ... and its second sight is used up by admitting it.
    assert not cache.admit(("h", "new", ""))
    # A scan over more keys than the cache remembers seeing never gets one kept.
    assert not any(cache.admit(("h", f"scan{i}", "")) for i in range(2 * SEEN_MAX + 10))
    cache.clear()
    assert cache.admit(("h", "scan0", ""))  # emptied: room again


async def test_a_full_cache_reads_a_new_key_through_twice_before_keeping_it() -> None:
    async with _world(CoreConfig(read_cache_size=2)) as w:
        assert (await w.root.put("/v1/kv/b", json={"v": "b"})).status_code == 204
        await _cached(w.core, w.root, "/v1/kv/a")  # first sight kept: there was room
        await _cached(w.core, w.root, "/v1/secret/data/x")
        assert len(w.core.reads) == 2  # full now
        await _fresh(w.core, w.root, "/v1/kv/b")  # first miss: not kept
        assert len(w.core.reads) == 2 and w.core.reads.hits == 2
        await _fresh(w.core, w.root, "/v1/kv/b")  # second miss: kept, the oldest goes
        await _hit(w.core, w.root, "/v1/kv/b")
        await _fresh(w.core, w.root, "/v1/kv/a")


def test_read_cache_entries_share_what_they_have_in_common() -> None:
    ok = Cacheable(math.inf, "replay")
    cache = ReadCache(lambda: (1, 2), lambda: 0.0)
    for i in range(2):
        # Fresh objects, as each request builds them.
        token_hash = "".join(["ab"] * 32)
        body = b'{"request_id":"RID%d","data":{}}' % i
        cache.put((token_hash, f"p{i}", ""), (1, 2), ok, 200, body, f"RID{i}")
    (k0, e0), (k1, e1) = cache._entries.items()
    assert k0[0] is k1[0] and e0.stamp is e1.stamp and e0.head is e1.head
    assert e1.body("NEW") == b'{"request_id":"NEW","data":{}}'


async def test_replays_of_one_token_share_its_audit_members(tmp_path: Path) -> None:
    async with _world(ALLOW) as w:
        await _enable_file(w.root, tmp_path / "audit.log")
        token = await _reader(w)
        async with _client(w.core, token) as c:
            assert (await c.get("/v1/kv/a")).status_code == 200
            assert (await w.root.put("/v1/kv/b", json={"v": "other"})).status_code == 204
            assert (await c.get("/v1/kv/a")).status_code == 200
            assert (await c.get("/v1/kv/b")).status_code == 200
        (_, a), (_, b) = w.core.reads._entries.items()
        (caller_a, start_a, rest_a, response_a), = a.replay.members
        (caller_b, start_b, rest_b, response_b), = b.replay.members
        assert caller_a is caller_b and start_a is start_b  # one copy for both
        assert rest_a.startswith(b',"path":"kv/a"') and rest_b.startswith(b',"path":"kv/b"')
        # Only what is its own counts against the budget.
        assert a.replay.size == len(rest_a) + len(response_a)
        assert a.cost == len(a.head) + len(a.tail) + a.replay.size + ENTRY_OVERHEAD


def _consent(*, req: dict[str, Any] | None = None, entry: dict[str, Any] | None = None,
             resp: dict[str, Any] | None = None, leases: bool = False, backend: bool = True,
             acl_until: float | None = None) -> float:
    request = Request(Operation.READ, "kv/a", cacheable=True)
    for k, v in (req or {}).items():
        setattr(request, k, v)
    token = TokenEntry(id="hashed", accessor="acc", **(entry or {}))
    mount = MountEntry(table="mounts", path="kv/", type="kv",
                       backend=SimpleNamespace(generates_leases=leases) if backend else None)  # type: ignore[arg-type]
    response = Response(**{"data": {"v": 1}, "cache_until": math.inf, **(resp or {})})
    return reusable_until(request, token, mount, response, acl_until)


def test_core_consents_to_a_plain_read_until_the_earliest_bound() -> None:
    assert _consent() == math.inf
    assert _consent(resp={"secret": LeaseInfo(ttl=60, renewable=False)}) == math.inf  # kv-v1's advisory TTL
    assert _consent(resp={"cache_until": T0 + 30}) == T0 + 30
    assert _consent(entry={"expire_time": T0 + 20}) == T0 + 20
    assert _consent(acl_until=T0 + 10) == T0 + 10
    assert _consent(resp={"cache_until": T0 + 30}, entry={"expire_time": T0 + 20}, acl_until=T0 + 25) == T0 + 20


@pytest.mark.parametrize("case", [
    {"req": {"cacheable": False}},
    {"req": {"operation": Operation.LIST}},
    {"req": {"operation": Operation.UPDATE}},
    {"req": {"wrap_ttl": 60}},
    {"resp": {"cache_until": 0.0}},
    {"resp": {"wrap_info": WrapInfo(token="w")}},
    {"resp": {"auth": Auth(client_token="t")}},
    {"resp": {"raw_body": b"{}"}},
    {"resp": {"redirect": "https://elsewhere"}},
    {"resp": {"status": 404}},
    {"resp": {"status": 204}},
    {"resp": {"data": None}},
    {"resp": {"secret": LeaseInfo(ttl=60, lease_id="kv/a/lease")}},
    {"resp": {"secret": LeaseInfo(ttl=60)}, "leases": True},
    {"resp": {"secret": LeaseInfo(ttl=60)}, "backend": False},
    {"entry": {"num_uses": 3}},
    {"entry": {"num_uses": -1}},
    {"entry": {"bound_cidrs": ["127.0.0.1"]}},
    {"entry": {"type": "batch"}},
], ids=lambda case: repr(case))
def test_core_refuses_what_may_not_be_given_again(case: dict[str, Any]) -> None:
    assert _consent(**case) == 0.0
