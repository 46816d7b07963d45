"""Audit end to end (in-process HTTP): sys/audit, sys/audit-hash, config-declared devices, fail closed,
deadlines, and security events in the log."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from strongroom.audit.chain import verify
from strongroom.audit.entry import Hasher
from strongroom.audit.file import FileDevice
from strongroom.core import Core, CoreConfig
from strongroom.core.audit import AuditBroker, AuditConfig, DeclaredDevice
from strongroom.core.audit import broker as broker_module
from strongroom.core.audit import members as audit_module  # where the members are built
from strongroom.core.tokens.entry import TokenEntry
from strongroom.framework import Op
from strongroom.logical import Operation, Request, Response
from strongroom.storage.inmem import InmemStorage
from strongroom.testing import asgi_client, unsealed_core

ALLOW = CoreConfig(audit=AuditConfig(allow_api_creation=True))
WRAP = {"X-Vault-Wrap-TTL": "60s"}


def _entries(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


@asynccontextmanager
async def _audited(tmp_path: Path, **options: str) -> AsyncIterator[tuple[Core, httpx.AsyncClient, Path]]:
    log = tmp_path / "audit.log"
    async with unsealed_core(config=ALLOW) as (core, root), asgi_client(core, root) as c:
        r = await c.put("/v1/sys/audit/file", json={"type": "file", "options": {"file_path": str(log), **options}})
        assert r.status_code == 204, r.text
        yield core, c, log


async def test_enabling_through_the_api_is_refused_unless_the_config_allows_it(tmp_path: Path) -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        r = await c.put("/v1/sys/audit/file", json={"type": "file", "options": {"file_path": str(tmp_path / "x")}})
        assert r.status_code == 400
        assert r.json()["errors"] == [("cannot enable audit device via API; use declarative, config-based "
                                       "audit device management instead")]
        assert (await c.get("/v1/sys/audit")).json()["data"] == {}
        assert not (tmp_path / "x").exists()


async def test_enable_list_hash_disable(tmp_path: Path) -> None:
    async with _audited(tmp_path) as (_core, c, log):
        listed = (await c.get("/v1/sys/audit")).json()["data"]
        assert listed == {"file/": {"type": "file", "description": "", "options": {"file_path": str(log)},
                                    "local": False, "path": "file/"}}
        r = await c.put("/v1/sys/audit/file", json={"type": "file", "options": {"file_path": str(log)}})
        assert r.status_code == 400 and r.json()["errors"] == ["path already in use"]
        assert (await c.put("/v1/sys/audit/x", json={"type": "bogus"})).json()["errors"] == ['unknown backend type: "bogus"']
        await c.post("/v1/secret/data/app", json={"data": {"password": "hunter2"}})
        hashed = (await c.put("/v1/sys/audit-hash/file", json={"input": "hunter2"})).json()["data"]["hash"]
        assert hashed.startswith("hmac-sha256:")
        writes = [e for e in _entries(log) if e["request"].get("path") == "secret/data/app"]
        assert [e["type"] for e in writes] == ["request", "response"]
        assert writes[0]["request"]["data"] == {"data": {"password": hashed}}
        assert b"hunter2" not in log.read_bytes()
        bad = await c.put("/v1/sys/audit-hash/nope", json={"input": "x"})
        assert bad.status_code == 400 and bad.json()["errors"] == ['unknown audit backend "nope/"']
        assert (await c.put("/v1/sys/audit-hash/file", json={"input": ""})).status_code == 400
        assert (await c.delete("/v1/sys/audit/file")).status_code == 204
        assert (await c.get("/v1/sys/audit")).json()["data"] == {}
        assert (await c.delete("/v1/sys/audit/file")).status_code == 204  # idempotent
        before = log.read_bytes()
        await c.get("/v1/secret/data/app")
        assert log.read_bytes() == before


async def test_a_request_refused_before_auditing_is_still_logged_with_its_error(tmp_path: Path) -> None:
    async with _audited(tmp_path) as (core, _c, log):
        async with asgi_client(core, "bogus-token") as anon:
            assert (await anon.get("/v1/secret/data/app")).status_code == 403
        refused = [e for e in _entries(log) if e["request"].get("path") == "secret/data/app"]
        assert [(e["type"], e["error"]) for e in refused] == [("request", "permission denied"),
                                                              ("response", "permission denied")]
        assert refused[0]["request"]["client_token"].startswith("hmac-sha256:")


async def test_an_unwritable_device_refuses_the_request_with_no_side_effect(tmp_path: Path) -> None:
    async with _audited(tmp_path) as (_core, c, log):
        assert (await c.post("/v1/secret/data/a", json={"data": {"v": "1"}})).status_code == 200
        # Root ignores file modes, so make the path unusable instead: the device reopens what the
        # path names (checked once per event-loop turn), and a directory cannot be opened for appending.
        log.rename(tmp_path / "audit.log.old")
        log.mkdir()
        await asyncio.sleep(0)  # the in-process client never yields; a real rename comes in a later turn
        r = await c.post("/v1/secret/data/b", json={"data": {"v": "2"}})
        assert r.status_code == 500 and r.json()["errors"] == ["audit: no enabled audit device could record the request"]
        assert (await c.get("/v1/secret/data/a")).status_code == 500  # reads are refused too
        log.rmdir()
        assert (await c.get("/v1/secret/data/b")).status_code == 404  # the refused write never happened
        assert (await c.get("/v1/secret/data/a")).json()["data"]["data"] == {"v": "1"}


async def test_one_failed_device_is_enough_when_another_records(tmp_path: Path) -> None:
    async with _audited(tmp_path) as (_core, c, log):
        second = tmp_path / "second.log"
        r = await c.put("/v1/sys/audit/second", json={"type": "file", "options": {"file_path": str(second)}})
        assert r.status_code == 204
        log.rename(tmp_path / "moved")
        log.mkdir()
        assert (await c.post("/v1/secret/data/x", json={"data": {"v": "1"}})).status_code == 200
        assert any(e["request"].get("path") == "secret/data/x" for e in _entries(second))


async def test_a_stalled_device_costs_at_most_its_deadline(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opening a FIFO for writing blocks until a reader comes: a device that hangs
    async with _audited(tmp_path) as (_core, c, log):
        r = await c.put("/v1/sys/audit/stuck", json={"type": "file", "options": {
            "file_path": str(fifo), "timeout": "200ms", "skip_test": "true"}})
        assert r.status_code == 204
        try:
            # The good device records, the stuck one times out: the request goes through.
            assert (await c.post("/v1/secret/data/x", json={"data": {"v": "1"}})).status_code == 200
            log.rename(tmp_path / "moved")
            log.mkdir()
            # Now nothing can record: refused after the deadline, not hung.
            assert (await c.post("/v1/secret/data/y", json={"data": {"v": "2"}})).status_code == 500
        finally:
            reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # release the stuck writer thread
            try:
                log.rmdir()
                assert (await c.delete("/v1/sys/audit/stuck")).status_code == 204
            finally:
                os.close(reader)
        assert (await c.get("/v1/secret/data/y")).status_code == 404


async def test_a_spent_wrapping_token_presented_again_is_a_security_entry(tmp_path: Path) -> None:
    async with _audited(tmp_path) as (_core, c, log):
        info = (await c.post("/v1/sys/wrapping/wrap", json={"a": "b"}, headers=WRAP)).json()["wrap_info"]
        assert (await c.post("/v1/sys/wrapping/unwrap", json={"token": info["token"]})).status_code == 200
        assert not [e for e in _entries(log) if e["type"] == "security"]
        assert (await c.post("/v1/sys/wrapping/unwrap", json={"token": info["token"]})).status_code == 400
        events = [e for e in _entries(log) if e["type"] == "security"]
        assert len(events) == 1 and events[0]["event"] == "wrapping-token-reuse"
        hashed = (await c.put("/v1/sys/audit-hash/file", json={"input": info["accessor"]})).json()["data"]["hash"]
        assert events[0]["accessor"] == hashed
        assert info["token"].encode() not in log.read_bytes()
        # The unwrap response (a raw body) is logged with its data HMAC'd.
        unwraps = [e for e in _entries(log) if e["type"] == "response"
                   and e["request"].get("path") == "sys/wrapping/unwrap" and "error" not in e]
        assert unwraps[0]["response"]["data"]["data"]["a"].startswith("hmac-sha256:")


async def test_config_devices_survive_seal_and_keep_their_salt_and_chain(tmp_path: Path) -> None:
    log = tmp_path / "cfg.log"
    config = CoreConfig(audit=AuditConfig(devices=(
        DeclaredDevice("file", "cfg/", "from config", (("file_path", str(log)),)),)))
    core = Core(InmemStorage(), config)
    key, root = await core.dev_bootstrap("root")
    async with asgi_client(core, root) as c:
        first = (await c.put("/v1/sys/audit-hash/cfg", json={"input": "x"})).json()["data"]["hash"]
        r = await c.delete("/v1/sys/audit/cfg")
        assert r.status_code == 400 and r.json()["errors"] == ["cannot disable configuration-managed audit device"]
        await core.seal()
        await core.unseal(key)
        assert (await c.put("/v1/sys/audit-hash/cfg", json={"input": "x"})).json()["data"]["hash"] == first
        listed = (await c.get("/v1/sys/audit")).json()["data"]
        assert listed["cfg/"]["description"] == "from config"
        chain = (await c.get("/v1/sys/audit-chain/cfg")).json()["data"]
    await core.seal()
    lines = log.read_bytes().splitlines(keepends=True)
    v = verify(bytes.fromhex(chain["key"]), lines, head_seq=chain["sequence"], head_hmac=chain["hmac"])
    assert v.ok and v.last_seq == len(lines) >= chain["sequence"]
    # An edited line is caught, with the server's key.
    lines[1] = lines[1].replace(b'"update"', b'"delete"', 1)
    assert verify(bytes.fromhex(chain["key"]), lines).bad_line == 2


async def test_audit_chain_needs_sudo_and_a_file_device(tmp_path: Path) -> None:
    async with _audited(tmp_path) as (core, c, _log):
        await c.put("/v1/sys/policies/acl/reader", json={"policy": 'path "sys/*" { capabilities = ["read", "update"] }'})
        token = (await c.post("/v1/auth/token/create", json={"policies": ["reader"]})).json()["auth"]["client_token"]
        async with asgi_client(core, token) as user:
            assert (await user.get("/v1/sys/audit-chain/file")).status_code == 403
            assert (await user.get("/v1/sys/audit")).status_code == 403
            assert (await user.put("/v1/sys/audit-hash/file", json={"input": "x"})).status_code == 200
        await c.put("/v1/sys/audit/net", json={"type": "socket", "options": {"address": "127.0.0.1:9",
                                                                              "skip_test": "true"}})
        r = await c.get("/v1/sys/audit-chain/net")
        assert r.status_code == 400 and "not a file device" in r.json()["errors"][0]


# -- the cheap path: inline writes, members built once per request -------------------------------
def _file_device(core: Core, path: str = "file/") -> FileDevice:
    device = core.audit._devices[path].device
    assert isinstance(device, FileDevice)
    return device


async def test_a_regular_file_is_written_inline_never_through_the_thread(tmp_path: Path) -> None:
    async with _audited(tmp_path) as (core, c, log):
        device = _file_device(core)

        async def no_thread(entry: bytes) -> None:
            raise AssertionError("the threaded path was used for a regular file")

        device.write = no_thread  # type: ignore[method-assign]
        assert (await c.get("/v1/secret/data/nothing")).status_code == 404
        assert device.inline
        assert [e["type"] for e in _entries(log)][-2:] == ["request", "response"]


async def test_after_a_blocking_write_the_broker_goes_through_the_thread(tmp_path: Path) -> None:
    async with _audited(tmp_path) as (core, c, log):
        device = _file_device(core)
        device.slow_write = 0.001

        def stalling_write(fd: int, data: bytes) -> int:
            time.sleep(0.005)
            return os.write(fd, data)

        device.os_write = stalling_write
        assert (await c.post("/v1/secret/data/a", json={"data": {"v": "1"}})).status_code == 200
        assert not device.inline
        threaded: list[bytes] = []
        write = device.write

        async def counted(entry: bytes) -> None:
            threaded.append(entry)
            await write(entry)

        device.write = counted  # type: ignore[method-assign]
        assert (await c.get("/v1/secret/data/a")).status_code == 200
        assert len(threaded) == 2
        assert verify(core.audit._devices["file/"].entry.chain_key, log.read_bytes().splitlines(keepends=True)).ok


async def test_an_inline_write_error_refuses_the_request(tmp_path: Path) -> None:
    async with _audited(tmp_path) as (core, c, _log):
        device = _file_device(core)

        def full(fd: int, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        device.os_write = full
        r = await c.post("/v1/secret/data/b", json={"data": {"v": "2"}})
        assert r.status_code == 500 and r.json()["errors"] == ["audit: no enabled audit device could record the request"]
        device.os_write = os.write
        assert (await c.get("/v1/secret/data/b")).status_code == 404  # the refused write never happened


async def test_the_response_entry_repeats_the_request_entry_members(tmp_path: Path) -> None:
    async with _audited(tmp_path) as (_core, c, log):
        await c.post("/v1/secret/data/app", json={"data": {"password": "hunter2"}})
        await c.get("/v1/secret/data/app")
        pairs = [e for e in _entries(log) if e["request"].get("path") == "secret/data/app"]
        assert [e["type"] for e in pairs] == ["request", "response"] * 2
        for request, response in (pairs[0:2], pairs[2:4]):
            assert request["auth"] == response["auth"] and request["request"] == response["request"]
            assert request["auth"]["client_token"].startswith("hmac-sha256:")


async def test_what_the_backend_changes_shows_in_the_response_entry(tmp_path: Path) -> None:
    async with _audited(tmp_path) as (core, c, log):
        # A handler that asks for wrapping while it runs (none ships: sys/wrapping/wrap once did).
        sys_mount = core.mounts.find("mounts", "sys/")
        assert sys_mount is not None and sys_mount.backend is not None
        path = next(p for p in sys_mount.backend.paths if p.pattern.startswith("wrapping/wrap"))

        async def wrap_by_default(_b: Any, req: Request, _d: Any) -> Response:
            req.wrap_ttl = 300
            return Response(data=dict(req.data))

        path.operations[Op.UPDATE] = wrap_by_default  # type: ignore[index]
        assert (await c.post("/v1/sys/wrapping/wrap", json={"a": "b"})).status_code == 200
        entries = [e for e in _entries(log) if e["request"].get("path") == "sys/wrapping/wrap"]
        assert [e["type"] for e in entries] == ["request", "response"]
        assert "wrap_ttl" not in entries[0]["request"] and entries[1]["request"]["wrap_ttl"] == 300


async def _pair(broker: AuditBroker, log: Path, req: Request, change: Callable[[Request], None]) -> list[dict[str, Any]]:
    """The request and response entries of ``req``, with ``change`` applied in between (as a backend might)."""
    before = len(_entries(log)) if log.exists() else 0
    await broker.log_request(req)
    change(req)
    await broker.log_response(req, None, None)
    return _entries(log)[before:]


async def test_members_are_reused_unless_the_request_changed_and_hold_no_secret(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "a.log"
    broker = AuditBroker(None, AuditConfig(devices=(
        DeclaredDevice("file", "f/", options=(("file_path", str(log)),)),)), mount_of=lambda _p: None)
    await broker.setup()
    hasher = broker._devices["f/"].hasher
    built: list[str] = []
    real = audit_module.caller_member

    def counted(req: Request, h: Hasher) -> bytes:
        built.append(req.id)
        return real(req, h)

    monkeypatch.setattr(audit_module, "caller_member", counted)

    def request(rid: str, data: dict[str, Any] | None = None) -> Request:
        return Request(Operation.UPDATE, "secret/data/x", data or {}, id=rid, client_token="hvs.SECRET-TOKEN",
                       token_entry=TokenEntry(id="h", accessor="acc"))

    def unchanged(_req: Request) -> None:
        pass

    try:
        request_entry, response_entry = await _pair(broker, log, request("same"), unchanged)
        assert built == ["same"]  # built once, for both entries
        assert (request_entry["auth"], request_entry["request"]) == (response_entry["auth"], response_entry["request"])

        req = request("data", {"data": {"password": "hunter2"}})
        await broker.log_request(req)
        # SECURITY: what is kept for the response entry carries no token and no plaintext value.
        kept = repr([(b.key, b.members) for b in broker._built.values()])
        assert "hvs.SECRET-TOKEN" not in kept and "hunter2" not in kept and '"acc"' not in kept
        req.data["data"]["password"] = "changed"  # a backend changing the request data in place
        await broker.log_response(req, None, None)
        request_entry, response_entry = _entries(log)[-2:]
        assert request_entry["request"]["data"] == {"data": {"password": hasher.hash("hunter2")}}
        assert response_entry["request"]["data"] == {"data": {"password": hasher.hash("changed")}}

        def wrap(r: Request) -> None:
            r.wrap_ttl = 300

        def route(r: Request) -> None:
            r.mount_point = "secret/"

        request_entry, response_entry = await _pair(broker, log, request("wrap"), wrap)
        assert "wrap_ttl" not in request_entry["request"] and response_entry["request"]["wrap_ttl"] == 300
        request_entry, response_entry = await _pair(broker, log, request("route"), route)
        assert "mount_point" not in request_entry["request"]
        assert response_entry["request"]["mount_point"] == "secret/"
        assert not broker._built
    finally:
        await broker.teardown()


async def test_a_flat_request_member_is_built_once_unless_a_value_is_replaced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Data of plain values (transit's plaintext, a login's password) is HMAC'd once for both entries,
    and again only if the backend replaced, added or removed a value; the broker keeps no value."""
    log = tmp_path / "a.log"
    broker = AuditBroker(None, AuditConfig(devices=(
        DeclaredDevice("file", "f/", options=(("file_path", str(log)),)),)), mount_of=lambda _p: None)
    await broker.setup()
    hasher = broker._devices["f/"].hasher
    built: list[str] = []
    real = audit_module.request_member

    def counted(req: Request, h: Hasher, mount: Any) -> bytes:
        built.append(req.id)
        return real(req, h, mount)

    monkeypatch.setattr(audit_module, "request_member", counted)
    monkeypatch.setattr(broker_module, "request_member", counted)

    def request(rid: str) -> Request:
        return Request(Operation.UPDATE, "transit/encrypt/k", {"plaintext": "aHVudGVyMg==", "n": 1}, id=rid,
                       client_token="hvs.T", token_entry=TokenEntry(id="h", accessor="acc"))

    def replace(r: Request) -> None:
        r.data["plaintext"] = "b3RoZXI="

    def add(r: Request) -> None:
        r.data["extra"] = True

    try:
        req = request("same")
        await broker.log_request(req)
        kept = repr([(b.key, b.members) for b in broker._built.values()])
        assert "aHVudGVyMg==" not in kept  # SECURITY: the broker holds HMACs, never the value
        await broker.log_response(req, None, None)
        first, second = _entries(log)[-2:]
        assert built == ["same"] and first["request"] == second["request"]
        for name, change, data in (("replace", replace, {"plaintext": hasher.hash("b3RoZXI="), "n": 1}),
                                   ("add", add, {"plaintext": hasher.hash("aHVudGVyMg=="), "n": 1, "extra": True})):
            built.clear()
            first, second = await _pair(broker, log, request(name), change)
            assert built == [name, name]
            assert first["request"]["data"] == {"plaintext": hasher.hash("aHVudGVyMg=="), "n": 1}
            assert second["request"]["data"] == data
    finally:
        await broker.teardown()


async def test_several_inline_devices_need_no_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with _audited(tmp_path) as (_core, c, log):
        second = tmp_path / "second.log"
        r = await c.put("/v1/sys/audit/second", json={"type": "file", "options": {"file_path": str(second)}})
        assert r.status_code == 204

        async def no_task(*_args: object) -> None:
            raise AssertionError("a task per device (gathered _deliver) for devices that write inline")

        monkeypatch.setattr(AuditBroker, "_deliver", no_task)
        assert (await c.get("/v1/secret/data/nothing")).status_code == 404
        for path in (log, second):
            assert [e["type"] for e in _entries(path)][-2:] == ["request", "response"]


async def test_a_standby_follows_the_audit_table_without_a_moment_unaudited(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An HA standby's broker (``invalidate`` of the table, core/follow.py) takes the active's devices:
    the new set replaces the old in one step, an unchanged device is kept (its file and chain)."""
    from strongroom.core.audit.table import AUDIT_TABLE_KEY

    storage = InmemStorage()
    active = AuditBroker(storage, AuditConfig(allow_api_creation=True))
    standby = AuditBroker(storage, AuditConfig(allow_api_creation=True))
    await active.setup()
    await active.enable("a", "file", "", {"file_path": str(tmp_path / "a.log")}, False)
    await standby.setup()
    kept = standby._devices["a/"]
    seen_while_opening: list[int] = []
    real = AuditBroker._activate

    def opening(entry: Any) -> Any:
        seen_while_opening.append(len(standby._actives))  # what a request would be audited by now
        return real(entry)

    monkeypatch.setattr(AuditBroker, "_activate", staticmethod(opening))
    await active.enable("b", "file", "", {"file_path": str(tmp_path / "b.log")}, False)
    seen_while_opening.clear()
    await standby.invalidate(AUDIT_TABLE_KEY)
    assert sorted(standby._devices) == ["a/", "b/"] and standby._devices["a/"] is kept
    assert seen_while_opening == [1]  # b was opened while a still audited everything
    await active.disable("a")
    await standby.invalidate(AUDIT_TABLE_KEY)
    assert sorted(standby._devices) == ["b/"]
    await standby.log_request(Request(Operation.READ, "secret/x", id="r1"))
    assert '"id":"r1"' in (tmp_path / "b.log").read_text()
    await active.teardown()
    await standby.teardown()
