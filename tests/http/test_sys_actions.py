"""sys/seal and sys/step-down take the pipeline's steps: token (bound CIDRs, use counts), sudo,
audit request (fail closed), then act."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from strongroom.core import Core, CoreConfig
from strongroom.core.audit import AuditConfig, DeclaredDevice
from strongroom.errors import Internal
from strongroom.http.app import App
from strongroom.http.logical import Peer
from strongroom.storage.inmem import InmemStorage
from strongroom.testing import AppTransport

SUDO_SEAL = 'path "sys/seal" { capabilities = ["update", "sudo"] }\npath "sys/step-down" { capabilities = ["update", "sudo"] }'
NO_SUDO = 'path "sys/seal" { capabilities = ["update"] }\npath "sys/step-down" { capabilities = ["update"] }'


@asynccontextmanager
async def _server(tmp_path: Path) -> AsyncIterator[tuple[Core, httpx.AsyncClient, Path]]:
    """A dev core with a file audit device; a root client speaking from 127.0.0.1."""
    log = tmp_path / "audit.log"
    config = CoreConfig(audit=AuditConfig(devices=(DeclaredDevice("file", "file/", options=(("file_path", str(log)),)),)))
    core = Core(InmemStorage(), config)
    await core.dev_bootstrap("root")
    try:
        async with _client(core, Peer("127.0.0.1", 4000)) as c:
            c.headers["X-Vault-Token"] = "root"
            for name, rules in (("sudo-seal", SUDO_SEAL), ("no-sudo", NO_SUDO)):
                assert (await c.put(f"/v1/sys/policies/acl/{name}", json={"policy": rules})).status_code == 204
            yield core, c, log
    finally:
        await core.seal()


def _client(core: Core, peer: Peer) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=AppTransport(App(core), peer), base_url="http://strongroom")


async def _token(c: httpx.AsyncClient, **body: Any) -> str:
    r = await c.post("/v1/auth/token/create", json=body)
    assert r.status_code == 200, r.text
    return str(r.json()["auth"]["client_token"])


def _entries(log: Path, path: str) -> list[dict[str, Any]]:
    out = [json.loads(line) for line in log.read_bytes().splitlines()]
    return [e for e in out if e["request"]["path"] == path]


async def test_seal_is_audited(tmp_path: Path) -> None:
    async with _server(tmp_path) as (core, c, log):
        token = await _token(c, policies=["sudo-seal"])
        r = await c.put("/v1/sys/seal", headers={"X-Vault-Token": token})
        assert r.status_code == 204 and core.sealed
        entries = _entries(log, "sys/seal")
        assert [e["type"] for e in entries] == ["request"]  # the devices go with the seal, as in Vault
        req = entries[0]["request"]
        assert req["operation"] == "update" and req["remote_address"] == "127.0.0.1"
        assert entries[0]["auth"]["policies"] == ["default", "sudo-seal"]
        assert "error" not in entries[0] or not entries[0]["error"]


async def test_step_down_is_audited_request_and_response(tmp_path: Path) -> None:
    async with _server(tmp_path) as (core, c, log):
        assert (await c.put("/v1/sys/step-down")).status_code == 204
        assert [e["type"] for e in _entries(log, "sys/step-down")] == ["request", "response"]
        assert not core.sealed


async def test_non_sudo_token_refused_and_the_refusal_audited(tmp_path: Path) -> None:
    async with _server(tmp_path) as (core, c, log):
        token = await _token(c, policies=["no-sudo"])
        for path in ("sys/seal", "sys/step-down"):
            r = await c.put(f"/v1/{path}", headers={"X-Vault-Token": token})
            assert r.status_code == 403, path
            entries = _entries(log, path)
            assert [e["type"] for e in entries] == ["request", "response"]
            assert all(e["error"] == "permission denied" for e in entries)
        # No token, or an unknown one: refused and audited too.
        for headers in ({"X-Vault-Token": ""}, {"X-Vault-Token": "nope"}):
            assert (await c.put("/v1/sys/seal", headers=headers)).status_code == 403
        assert len(_entries(log, "sys/seal")) == 6
        assert not core.sealed


async def test_token_bound_to_a_cidr_refused_from_outside_it(tmp_path: Path) -> None:
    async with _server(tmp_path) as (core, c, _log):
        # As in Vault, CIDR bindings come from a token role.
        for role, cidr in (("elsewhere", "10.0.0.0/8"), ("here", "127.0.0.0/8")):
            r = await c.post(f"/v1/auth/token/roles/{role}",
                             json={"allowed_policies": ["sudo-seal"], "token_bound_cidrs": [cidr]})
            assert r.status_code == 204, r.text
        elsewhere = (await c.post("/v1/auth/token/create/elsewhere", json={"policies": ["sudo-seal"]})).json()
        here = (await c.post("/v1/auth/token/create/here", json={"policies": ["sudo-seal"]})).json()
        assert elsewhere["auth"]["token_policies"] == ["default", "sudo-seal"]
        elsewhere, here = elsewhere["auth"]["client_token"], here["auth"]["client_token"]
        for path in ("sys/step-down", "sys/seal"):
            assert (await c.put(f"/v1/{path}", headers={"X-Vault-Token": elsewhere})).status_code == 403
        assert not core.sealed
        async with _client(core, Peer("10.1.2.3", 5000)) as inside:
            assert (await inside.put("/v1/sys/step-down", headers={"X-Vault-Token": elsewhere})).status_code == 204
        assert (await c.put("/v1/sys/seal", headers={"X-Vault-Token": here})).status_code == 204
        assert core.sealed


async def test_step_down_spends_a_use(tmp_path: Path) -> None:
    async with _server(tmp_path) as (_core, c, _log):
        once = await _token(c, num_uses=1)  # root's child: root policy
        twice = await _token(c, num_uses=2)
        assert (await c.put("/v1/sys/step-down", headers={"X-Vault-Token": twice})).status_code == 204
        assert (await c.get("/v1/auth/token/lookup-self", headers={"X-Vault-Token": twice})).status_code == 200
        assert (await c.get("/v1/auth/token/lookup-self", headers={"X-Vault-Token": twice})).status_code == 403
        assert (await c.put("/v1/sys/step-down", headers={"X-Vault-Token": once})).status_code == 204
        assert (await c.get("/v1/auth/token/lookup-self", headers={"X-Vault-Token": once})).status_code == 403


async def test_a_one_use_token_spent_by_seal_stays_spent_after_unseal(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    config = CoreConfig(audit=AuditConfig(devices=(DeclaredDevice("file", "file/", options=(("file_path", str(log)),)),)))
    core = Core(InmemStorage(), config)
    key, _ = await core.dev_bootstrap("root")
    try:
        async with _client(core, Peer("127.0.0.1", 1)) as c:
            c.headers["X-Vault-Token"] = "root"
            once = await _token(c, num_uses=1)
            assert (await c.put("/v1/sys/seal", headers={"X-Vault-Token": once})).status_code == 204
            await core.unseal(key)
            assert (await c.get("/v1/auth/token/lookup-self", headers={"X-Vault-Token": once})).status_code == 403
            assert (await c.get("/v1/auth/token/lookup-self")).status_code == 200
    finally:
        await core.seal()


async def test_seal_fails_closed_when_no_audit_device_can_record_it(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    async with _server(tmp_path) as (core, c, _log):
        async def broken(*_a: Any, **_k: Any) -> None:
            raise Internal("audit: no enabled audit device could record the request")

        monkeypatch.setattr(core.audit, "log_request", broken)
        r = await c.put("/v1/sys/seal")
        assert r.status_code == 500 and not core.sealed


async def test_wrong_methods_are_405_and_sealed_is_503(tmp_path: Path) -> None:
    async with _server(tmp_path) as (core, c, _log):
        for path in ("sys/seal", "sys/step-down"):
            for method in ("GET", "DELETE", "PATCH"):
                assert (await c.request(method, f"/v1/{path}")).status_code == 405, (method, path)
        await core.seal()
        assert (await c.put("/v1/sys/seal")).status_code == 503
