"""The agent's API proxy: an application without a token reads through the agent's listener (tcp
and unix), with use_auto_auth_token true (added when absent) and "force" (replaces the caller's);
the real bao CLI works against it."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from strongroom.agent.config import ConfigError, parse
from strongroom.agent.main import run
from tests.compat.conftest import bao_binary, free_port
from tests.http.test_http_server import Running, serving


@pytest.fixture
async def server() -> AsyncIterator[tuple[Running, httpx.AsyncClient]]:
    async with serving() as running:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{running.port}", headers={"X-Vault-Token": "root"}) as c:
            await c.post("/v1/secret/data/app", json={"data": {"password": "hunter2"}})
            await c.post("/v1/sys/policies/acl/app", json={"policy": 'path "secret/data/app" { capabilities = ["read"] }'})
            yield running, c


async def _agent(running: Running, c: httpx.AsyncClient, tmp: Path, mode: object) -> tuple[asyncio.Event, asyncio.Task[int], int]:
    token = (await c.post("/v1/auth/token/create", json={"policies": ["app"]})).json()["auth"]["client_token"]
    (tmp / "tok").write_text(token)
    port = free_port()
    cfg = parse({"vault": {"address": f"http://127.0.0.1:{running.port}"},
                 "auto_auth": {"method": {"type": "token_file", "config": {"token_file_path": str(tmp / "tok")}}},
                 "listener": [{"tcp": {"address": f"127.0.0.1:{port}", "tls_disable": True}},
                              {"unix": {"address": str(tmp / "agent.sock")}}],
                 "api_proxy": {"use_auto_auth_token": mode}})
    stop = asyncio.Event()
    task = asyncio.create_task(run(cfg, stop=stop))
    for _ in range(200):
        await asyncio.sleep(0.02)
        if (tmp / "agent.sock").exists():
            break
    return stop, task, port


async def test_requests_without_a_token_get_the_agents(server: tuple[Running, httpx.AsyncClient], tmp_path: Path) -> None:
    running, c = server
    stop, task, port = await _agent(running, c, tmp_path, True)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as app:
            r = await app.get("/v1/secret/data/app")
            assert r.status_code == 200 and r.json()["data"]["data"] == {"password": "hunter2"}
            # A token the caller sends is kept (true, not force): a bad one is refused by the server.
            r = await app.get("/v1/secret/data/app", headers={"X-Vault-Token": "nope"})
            assert r.status_code == 403
            # The agent's token has only its policy.
            assert (await app.get("/v1/secret/data/other")).status_code == 403
        transport = httpx.AsyncHTTPTransport(uds=str(tmp_path / "agent.sock"))
        async with httpx.AsyncClient(transport=transport, base_url="http://agent") as app:
            assert (await app.get("/v1/secret/data/app")).json()["data"]["data"]["password"] == "hunter2"
        binary = bao_binary()
        if binary is not None:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
            env.update(BAO_ADDR=f"http://127.0.0.1:{port}", HOME=str(tmp_path))
            out = await asyncio.to_thread(subprocess.run, [binary, "kv", "get", "-field=password", "secret/app"],
                                          capture_output=True, text=True, env=env, timeout=60)
            assert out.stdout.strip() == "hunter2", out.stderr
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 10) == 0


async def test_force_replaces_the_callers_token(server: tuple[Running, httpx.AsyncClient], tmp_path: Path) -> None:
    running, c = server
    stop, task, port = await _agent(running, c, tmp_path, "force")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as app:
            r = await app.get("/v1/secret/data/app", headers={"X-Vault-Token": "nope"})
            assert r.status_code == 200
            r = await app.post("/v1/secret/data/app", json={"data": {"x": "y"}})
            assert r.status_code == 403  # the agent's token may only read
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 10) == 0


def test_listener_config_errors() -> None:
    with pytest.raises(ConfigError, match="tls_disable"):
        parse({"listener": {"tcp": {"address": "127.0.0.1:1"}}})
    with pytest.raises(ConfigError, match="requires an auto_auth"):
        parse({"api_proxy": {"use_auto_auth_token": True}})
