"""strongroom bridge against a real server and real containers (podman's Docker-compatible socket):
a labelled container gets a single-use wrapping token (a second unwrap raises the tamper alarm), its
token is revoked when it stops, unlabeled/unknown/stopped containers get nothing, the bridge's own
token cannot create tokens for other roles, a restarted bridge resumes from the engine's state, and
the CLI runs it from an HCL file."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from strongroom.bridge.bridge import Bridge
from strongroom.bridge.config import ConfigError, load, parse
from tests.http.test_http_server import Running, serving
from tests.podman_engine import PodmanEngine

DELIVER = "/run/strongroom/token"
BRIDGE_POLICY = '''
path "auth/token/create/web-role" { capabilities = ["create", "update"] }
path "auth/token/revoke-accessor" { capabilities = ["update"] }
'''


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[Running, httpx.AsyncClient]]:
    async with serving() as running:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{running.port}",
                                     headers={"X-Vault-Token": "root"}) as c:
            await c.post("/v1/sys/policies/acl/web", json={"policy": 'path "secret/*" { capabilities = ["read"] }'})
            await c.post("/v1/sys/policies/acl/db", json={"policy": 'path "db/*" { capabilities = ["read"] }'})
            await c.post("/v1/sys/policies/acl/bridge", json={"policy": BRIDGE_POLICY})
            for role, pol in (("web-role", "web"), ("db-role", "db")):
                r = await c.post(f"/v1/auth/token/roles/{role}", json={"allowed_policies": [pol], "orphan": True,
                                                                        "token_ttl": "1h"})
                assert r.status_code == 204, r.text
            r = await c.post("/v1/auth/token/create", json={"policies": ["bridge"], "ttl": "2h"})
            (tmp_path / "bridge-token").write_text(r.json()["auth"]["client_token"] + "\n")
            yield running, c


def _cfg(tmp: Path, port: int, engine: PodmanEngine, roles: str = 'web = "web-role"', wrap_ttl: str = "60s") -> Path:
    p = tmp / "bridge.hcl"
    p.write_text(f'''
vault {{
  address = "http://127.0.0.1:{port}"
}}
bridge {{
  engine_socket = "{engine.socket}"
  token_file    = "{tmp}/bridge-token"
  label         = "strongroom.role"
  roles         = {{ {roles} }}
  wrap_ttl      = "{wrap_ttl}"
  deliver_path  = "{DELIVER}"
}}
''')
    return p


@contextlib.asynccontextmanager
async def running_bridge(cfg_path: Path) -> AsyncIterator[Bridge]:
    bridge = Bridge(load(cfg_path))
    stop = asyncio.Event()
    task = asyncio.create_task(bridge.run(stop))
    try:
        await asyncio.wait_for(bridge.connected.wait(), 15)
        yield bridge
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await bridge.aclose()


async def _until(check: Callable[[], Awaitable[Any]], timeout: float = 15) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.1)


async def _file(engine: PodmanEngine, cid: str) -> bytes | None:
    return await asyncio.to_thread(engine.read_file, cid, DELIVER)


async def test_a_labelled_container_gets_a_single_use_token_revoked_when_it_stops(
        server: tuple[Running, httpx.AsyncClient], engine: PodmanEngine, tmp_path: Path) -> None:
    running, c = server
    async with running_bridge(_cfg(tmp_path, running.port, engine)) as bridge:
        cid = await asyncio.to_thread(engine.run, {"strongroom.role": "web"}, tmpfs="/run/strongroom")
        wrapping = (await _until(lambda: _file(engine, cid))).decode()
        assert await asyncio.to_thread(engine.file_mode, cid, DELIVER) == 0o400
        seen = await asyncio.to_thread(engine.exec_, cid, "cat", DELIVER)  # the application can read it
        assert seen.returncode == 0 and seen.stdout.decode() == wrapping
        # What was delivered is a wrapping token of the role's creation path, not the token itself.
        look = (await c.post("/v1/sys/wrapping/lookup", json={"token": wrapping})).json()["data"]
        assert look["creation_path"] == "auth/token/create/web-role"
        # The application unwraps it once and gets a token with the role's policies.
        r = await c.post("/v1/sys/wrapping/unwrap", headers={"X-Vault-Token": wrapping})
        assert r.status_code == 200, r.text
        token = r.json()["auth"]["client_token"]
        assert "web" in r.json()["auth"]["policies"]
        me = await c.get("/v1/auth/token/lookup-self", headers={"X-Vault-Token": token})
        assert me.status_code == 200 and "web" in me.json()["data"]["policies"]
        assert bridge.delivered[cid] == me.json()["data"]["accessor"]
        # A second unwrap (someone copied the file) fails and raises the tamper alarm.
        again = await c.post("/v1/sys/wrapping/unwrap", headers={"X-Vault-Token": wrapping})
        assert again.status_code == 400
        events = (await c.get("/v1/sys/security/events")).json()["data"]["events"]
        assert [e["type"] for e in events] == ["wrapping-token-reuse"]
        # The container stops: its token is revoked.
        await asyncio.to_thread(engine.stop_container, cid)

        async def revoked() -> bool:
            r = await c.get("/v1/auth/token/lookup-self", headers={"X-Vault-Token": token})
            return r.status_code == 403
        await _until(revoked)
        assert cid not in bridge.delivered


async def test_a_token_nobody_unwraps_in_time_raises_the_unclaimed_alarm(
        server: tuple[Running, httpx.AsyncClient], engine: PodmanEngine, tmp_path: Path) -> None:
    running, c = server
    async with running_bridge(_cfg(tmp_path, running.port, engine, wrap_ttl="1s")) as bridge:
        cid = await asyncio.to_thread(engine.run, {"strongroom.role": "web"})
        await _until(lambda: _file(engine, cid))

        async def alarm() -> list[dict[str, Any]]:
            events = (await c.get("/v1/sys/security/events")).json()["data"]["events"]
            return [e for e in events if e["type"] == "wrapping-token-expired-unclaimed"]
        (event,) = await _until(alarm)
        assert event["wrapped_accessor"] == bridge.delivered[cid]
        assert event["creation_path"] == "auth/token/create/web-role"


async def test_unlabeled_unknown_stopped_and_unmapped_containers_get_nothing(
        server: tuple[Running, httpx.AsyncClient], engine: PodmanEngine, tmp_path: Path) -> None:
    running, c = server
    async with running_bridge(_cfg(tmp_path, running.port, engine)) as bridge:
        plain = await asyncio.to_thread(engine.run, {"app": "web"})
        other = await asyncio.to_thread(engine.run, {"strongroom.role": "nosuch"})
        witness = await asyncio.to_thread(engine.run, {"strongroom.role": "web"})
        await _until(lambda: _file(engine, witness))  # events are handled in order: the others are done
        assert await _file(engine, plain) is None
        assert await _file(engine, other) is None
        assert set(bridge.delivered) == {witness}
        # A forged start event is checked against the engine: unknown or not running → nothing.
        stopped = await asyncio.to_thread(engine.run, {"strongroom.role": "web"}, start=False)
        await bridge.handle({"Type": "container", "Action": "start", "id": stopped})
        await bridge.handle({"Type": "container", "Action": "start", "id": "f" * 64})
        assert set(bridge.delivered) == {witness}
        assert await _file(engine, stopped) is None


async def test_the_bridge_token_cannot_create_tokens_for_other_roles(
        server: tuple[Running, httpx.AsyncClient], engine: PodmanEngine, tmp_path: Path) -> None:
    running, c = server
    bridge_token = (tmp_path / "bridge-token").read_text().strip()
    r = await c.post("/v1/auth/token/create/db-role", headers={"X-Vault-Token": bridge_token, "X-Vault-Wrap-TTL": "60s"})
    assert r.status_code == 403
    r = await c.post("/v1/auth/token/create", headers={"X-Vault-Token": bridge_token}, json={"policies": ["root"]})
    assert r.status_code == 403
    # A bridge configured for a role its token may not use delivers nothing (and keeps running).
    async with running_bridge(_cfg(tmp_path, running.port, engine, 'web = "web-role"\n db = "db-role"')) as bridge:
        db = await asyncio.to_thread(engine.run, {"strongroom.role": "db"})
        web = await asyncio.to_thread(engine.run, {"strongroom.role": "web"})
        await _until(lambda: _file(engine, web))
        assert await _file(engine, db) is None
        assert set(bridge.delivered) == {web}


async def test_a_restarted_bridge_resumes_from_the_engine_state(
        server: tuple[Running, httpx.AsyncClient], engine: PodmanEngine, tmp_path: Path) -> None:
    running, c = server
    cfg = _cfg(tmp_path, running.port, engine)
    before = await asyncio.to_thread(engine.run, {"strongroom.role": "web"})  # started while no bridge ran
    served = await asyncio.to_thread(engine.run, {"strongroom.role": "web"})
    async with running_bridge(cfg) as first:
        assert before in first.delivered and served in first.delivered
        delivered = dict(first.delivered)
    old = await _file(engine, served)
    async with running_bridge(cfg) as second:  # both were served: nothing new, nothing revoked
        assert second.delivered == delivered
        late = await asyncio.to_thread(engine.run, {"strongroom.role": "web"})
        await _until(lambda: _file(engine, late))
    assert await _file(engine, served) == old


async def _unwrap(c: httpx.AsyncClient, engine: PodmanEngine, cid: str) -> str:
    wrapping = (await _until(lambda: _file(engine, cid))).decode()
    r = await c.post("/v1/sys/wrapping/unwrap", headers={"X-Vault-Token": wrapping})
    assert r.status_code == 200, r.text
    return str(r.json()["auth"]["client_token"])


async def test_tokens_are_revoked_across_a_bridge_restart(
        server: tuple[Running, httpx.AsyncClient], engine: PodmanEngine, tmp_path: Path) -> None:
    running, c = server
    cfg = _cfg(tmp_path, running.port, engine)
    bridge_token = (tmp_path / "bridge-token").read_text().strip()

    async def alive(token: str) -> bool:
        return (await c.get("/v1/auth/token/lookup-self", headers={"X-Vault-Token": token})).status_code == 200

    async with running_bridge(cfg):
        stays = await asyncio.to_thread(engine.run, {"strongroom.role": "web"}, tmpfs="/run/strongroom")
        stops = await asyncio.to_thread(engine.run, {"strongroom.role": "web"}, tmpfs="/run/strongroom")
        restarts = await asyncio.to_thread(engine.run, {"strongroom.role": "web"}, tmpfs="/run/strongroom")
        tokens = {cid: await _unwrap(c, engine, cid) for cid in (stays, stops, restarts)}
    # The records are in the bridge token's cubbyhole: accessors, never tokens.
    r = await c.get(f"/v1/cubbyhole/strongroom-bridge/{stays}", headers={"X-Vault-Token": bridge_token})
    assert r.status_code == 200 and set(r.json()["data"]) == {"accessor", "started_at", "role"}
    assert tokens[stays] not in r.text
    me = (await c.get("/v1/auth/token/lookup-self", headers={"X-Vault-Token": tokens[stays]})).json()["data"]
    assert r.json()["data"]["accessor"] == me["accessor"]
    # While no bridge runs: one container stops, one restarts, a new one starts.
    await asyncio.to_thread(engine.stop_container, stops)
    await asyncio.to_thread(engine.stop_container, restarts)
    await asyncio.to_thread(engine.start_container, restarts)
    new = await asyncio.to_thread(engine.run, {"strongroom.role": "web"}, tmpfs="/run/strongroom")
    assert all([await alive(t) for t in tokens.values()])
    async with running_bridge(cfg) as second:
        assert not await alive(tokens[stops])  # stopped meanwhile: revoked on resume
        assert not await alive(tokens[restarts])  # restarted meanwhile: revoked, and a new one delivered
        assert await alive(await _unwrap(c, engine, restarts))
        assert await alive(await _unwrap(c, engine, new))  # started meanwhile: served
        assert await alive(tokens[stays])  # still running: kept ...
        assert stays in second.delivered
        await asyncio.to_thread(engine.stop_container, stays)

        async def revoked() -> bool:
            return not await alive(tokens[stays])
        await _until(revoked)  # ... and revoked when it stops, by a bridge that did not deliver it
    listed = await c.request("LIST", "/v1/cubbyhole/strongroom-bridge", headers={"X-Vault-Token": bridge_token})
    assert set(listed.json()["data"]["keys"]) == {restarts, new}  # the stopped ones' records are gone


def test_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="bridge block"):
        parse({})
    with pytest.raises(ConfigError, match="token_file"):
        parse({"bridge": {"roles": {"web": "web-role"}}})
    with pytest.raises(ConfigError, match="roles"):
        parse({"bridge": {"token_file": "/t"}})
    with pytest.raises(ConfigError, match="wrap_ttl"):
        parse({"bridge": {"token_file": "/t", "roles": {"web": "w"}, "wrap_ttl": "soon"}})
    with pytest.raises(ConfigError, match="deliver_path"):
        parse({"bridge": {"token_file": "/t", "roles": {"web": "w"}, "deliver_path": "relative/x"}})
    with pytest.raises(ConfigError, match="role name"):
        parse({"bridge": {"token_file": "/t", "roles": {"web": "../sys"}}})
    cfg = parse({"bridge": [{"token_file": "/t", "roles": [{"web": "web-role"}], "wrap_ttl": "2m"}]})
    assert (cfg.roles, cfg.wrap_ttl, cfg.label, cfg.deliver_path) == (
        {"web": "web-role"}, 120, "strongroom.role", "/run/strongroom/token")
    (tmp_path / "b.json").write_text('{"bridge": {"token_file": "/t", "roles": {"a": "b"}}}')
    assert load(tmp_path / "b.json").roles == {"a": "b"}


async def test_the_cli_runs_the_bridge(server: tuple[Running, httpx.AsyncClient], engine: PodmanEngine,
                                       tmp_path: Path) -> None:
    running, c = server
    bad = tmp_path / "bad.hcl"
    bad.write_text("bridge { }")
    p = await asyncio.create_subprocess_exec(sys.executable, "-m", "strongroom", "bridge", f"-config={bad}",
                                             stderr=asyncio.subprocess.PIPE)
    _, err = await p.communicate()
    assert p.returncode == 1 and b"token_file" in err
    p = await asyncio.create_subprocess_exec(sys.executable, "-m", "strongroom", "bridge",
                                             f"-config={_cfg(tmp_path, running.port, engine)}",
                                             stderr=asyncio.subprocess.PIPE, env={**os.environ})
    try:
        cid = await asyncio.to_thread(engine.run, {"strongroom.role": "web"})
        wrapping = (await _until(lambda: _file(engine, cid), 30)).decode()
        r = await c.post("/v1/sys/wrapping/unwrap", headers={"X-Vault-Token": wrapping})
        assert r.status_code == 200 and "web" in r.json()["auth"]["policies"]
    finally:
        p.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(p.communicate(), 15)
    assert p.returncode == 0, err.decode()


async def test_the_bridge_waits_for_the_engine_and_catches_up_when_it_appears(
        server: tuple[Running, httpx.AsyncClient], engine: PodmanEngine, tmp_path: Path) -> None:
    running, c = server
    sock = tmp_path / "late.sock"
    cfg_path = _cfg(tmp_path, running.port, engine)
    cfg_path.write_text(cfg_path.read_text().replace(engine.socket, str(sock)))
    cid = await asyncio.to_thread(engine.run, {"strongroom.role": "web"})
    bridge = Bridge(load(cfg_path))
    stop = asyncio.Event()
    task = asyncio.create_task(bridge.run(stop))
    service = None
    try:
        await asyncio.sleep(1.5)  # no engine yet: the bridge keeps retrying, delivering nothing
        assert not bridge.connected.is_set() and not task.done()
        service = await asyncio.create_subprocess_exec(*engine.base, "system", "service", "--time=0",
                                                       f"unix://{sock}", env=engine.env,
                                                       stdout=asyncio.subprocess.DEVNULL,
                                                       stderr=asyncio.subprocess.DEVNULL)
        await asyncio.wait_for(bridge.connected.wait(), 20)
        assert cid in bridge.delivered and await _file(engine, cid)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await bridge.aclose()
        if service is not None:
            service.send_signal(signal.SIGTERM)
            await asyncio.wait_for(service.wait(), 10)


async def test_a_start_while_the_server_is_sealed_is_delivered_after_unseal(
        engine: PodmanEngine, tmp_path: Path) -> None:
    import base64

    from strongroom.core import Core
    from strongroom.http.app import App
    from strongroom.http.server import HttpServer
    from strongroom.storage.inmem import InmemStorage

    core = Core(InmemStorage())
    key, root = await core.dev_bootstrap("root")
    server = HttpServer(App(core), asyncio.get_running_loop())
    await server.start("127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers={"X-Vault-Token": root}) as c:
            await c.post("/v1/sys/policies/acl/bridge", json={"policy": BRIDGE_POLICY})
            await c.post("/v1/auth/token/roles/web-role", json={"allowed_policies": ["web"], "orphan": True})
            r = await c.post("/v1/auth/token/create", json={"policies": ["bridge"]})
            (tmp_path / "bridge-token").write_text(r.json()["auth"]["client_token"])
            async with running_bridge(_cfg(tmp_path, port, engine)) as bridge:
                assert (await c.put("/v1/sys/seal")).status_code == 204
                cid = await asyncio.to_thread(engine.run, {"strongroom.role": "web"})
                await _until(lambda: _has_retry(bridge, cid))
                await asyncio.sleep(1.5)  # a failed attempt or two: nothing delivered, the bridge keeps trying
                assert await _file(engine, cid) is None
                r = await c.put("/v1/sys/unseal", json={"key": base64.b64encode(key).decode()})
                assert r.json()["sealed"] is False
                wrapping = (await _until(lambda: _file(engine, cid), 30)).decode()
                r = await c.post("/v1/sys/wrapping/unwrap", headers={"X-Vault-Token": wrapping})
                assert r.status_code == 200 and "web" in r.json()["auth"]["policies"]
    finally:
        await server.stop(grace=1)
        await core.seal()


async def _has_retry(bridge: Bridge, cid: str) -> bool:
    return cid in bridge._retries


async def test_the_bridge_keeps_its_own_periodic_token_alive(
        server: tuple[Running, httpx.AsyncClient], engine: PodmanEngine, tmp_path: Path) -> None:
    running, c = server
    r = await c.post("/v1/auth/token/create", json={"policies": ["bridge"], "period": "3s"})
    token = r.json()["auth"]["client_token"]
    (tmp_path / "bridge-token").write_text(token)
    async with running_bridge(_cfg(tmp_path, running.port, engine)):
        await asyncio.sleep(5)  # beyond its period: alive only because it was renewed
        me = await c.get("/v1/auth/token/lookup-self", headers={"X-Vault-Token": token})
        assert me.status_code == 200, me.text
