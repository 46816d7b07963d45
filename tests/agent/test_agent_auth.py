"""strongroom agent's auto-auth, sinks and token lifetime against a real server on a socket:
approle (plain, wrapped secret id, a swapped or spent wrapping token), token_file, userpass,
file sinks (mode, wrapped), renewal and re-login, and the CLI with -exit-after-auth."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from strongroom.agent.auth import AuthError
from strongroom.agent.config import ConfigError, load, parse
from strongroom.agent.main import run
from strongroom.agent.runner import Agent
from tests.http.test_http_server import Running, serving

ROLE = "auth/approle/role/web"


@pytest.fixture
async def server() -> AsyncIterator[tuple[Running, httpx.AsyncClient]]:
    async with serving() as running:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{running.port}", headers={"X-Vault-Token": "root"}) as c:
            yield running, c


async def _approle(c: httpx.AsyncClient, tmp: Path, *, token_ttl: str = "1h", token_max_ttl: str = "") -> str:
    assert (await c.post("/v1/sys/auth/approle", json={"type": "approle"})).status_code == 204
    await c.post("/v1/sys/policies/acl/web", json={"policy": 'path "secret/*" { capabilities = ["read"] }'})
    body: dict[str, Any] = {"token_policies": ["web"], "token_ttl": token_ttl}
    if token_max_ttl:
        body["token_max_ttl"] = token_max_ttl
    assert (await c.post(f"/v1/{ROLE}", json=body)).status_code == 204
    role_id = (await c.get(f"/v1/{ROLE}/role-id")).json()["data"]["role_id"]
    (tmp / "role_id").write_text(role_id + "\n")
    return str(role_id)


def _config(tmp: Path, port: int, method: str, extra_sink: str = "") -> Path:
    cfg = tmp / "agent.hcl"
    cfg.write_text(f'''
vault {{
  address = "http://127.0.0.1:{port}"
}}
auto_auth {{
  {method}
  sink "file" {{
    {extra_sink}
    config = {{
      path = "{tmp}/sink"
      mode = 0600
    }}
  }}
}}
''')
    return cfg


def _approle_method(tmp: Path, extra: str = "") -> str:
    return f'''method "approle" {{
    mount_path = "auth/approle"
    config = {{
      role_id_file_path = "{tmp}/role_id"
      secret_id_file_path = "{tmp}/secret_id"
      {extra}
    }}
  }}'''


async def _lookup(c: httpx.AsyncClient, token: str) -> httpx.Response:
    return await c.get("/v1/auth/token/lookup-self", headers={"X-Vault-Token": token})


async def test_approle_login_writes_the_sink_and_removes_the_secret_id(server: tuple[Running, httpx.AsyncClient],
                                                                       tmp_path: Path) -> None:
    running, c = server
    await _approle(c, tmp_path)
    (tmp_path / "secret_id").write_text((await c.post(f"/v1/{ROLE}/secret-id")).json()["data"]["secret_id"])
    agent = Agent(load(_config(tmp_path, running.port, _approle_method(tmp_path))))
    try:
        token = await agent.authenticate()
    finally:
        await agent.aclose()
    sink = tmp_path / "sink"
    assert sink.read_text() == token and (sink.stat().st_mode & 0o777) == 0o600
    assert not (tmp_path / "secret_id").exists()  # Vault's default: removed after reading
    r = await _lookup(c, token)
    assert r.status_code == 200 and r.json()["data"]["policies"] == ["default", "web"]


async def test_wrapped_secret_id_is_checked_then_unwrapped(server: tuple[Running, httpx.AsyncClient],
                                                           tmp_path: Path) -> None:
    running, c = server
    await _approle(c, tmp_path)
    wrapped = (await c.post(f"/v1/{ROLE}/secret-id", headers={"X-Vault-Wrap-TTL": "60s"})).json()["wrap_info"]
    (tmp_path / "secret_id").write_text(wrapped["token"])
    method = _approle_method(tmp_path, f'secret_id_response_wrapping_path = "{ROLE}/secret-id"')
    agent = Agent(load(_config(tmp_path, running.port, method)))
    try:
        token = await agent.authenticate()
        assert (await _lookup(c, token)).status_code == 200
        # The file is gone; a second login uses the secret id kept in memory, not the spent token.
        assert not (tmp_path / "secret_id").exists()
        assert await agent.authenticate() != token
    finally:
        await agent.aclose()


async def test_a_token_wrapped_elsewhere_is_refused_and_left_unspent(server: tuple[Running, httpx.AsyncClient],
                                                                     tmp_path: Path) -> None:
    running, c = server
    await _approle(c, tmp_path)
    forged = (await c.post("/v1/sys/wrapping/wrap", json={"secret_id": "attacker-chosen"},
                           headers={"X-Vault-Wrap-TTL": "60s"})).json()["wrap_info"]
    (tmp_path / "secret_id").write_text(forged["token"])
    method = _approle_method(tmp_path, f'secret_id_response_wrapping_path = "{ROLE}/secret-id"\n exit_on_err = true')
    agent = Agent(load(_config(tmp_path, running.port, method)))
    try:
        with pytest.raises(AuthError, match="unexpected creation path"):
            await agent.authenticate()
    finally:
        await agent.aclose()
    assert not (tmp_path / "sink").exists()
    # Not unwrapped: the owner can still see it was never delivered.
    assert (await c.post("/v1/sys/wrapping/lookup", json={"token": forged["token"]})).status_code == 200


async def test_a_spent_wrapping_token_fails_and_raises_the_tamper_alarm(server: tuple[Running, httpx.AsyncClient],
                                                                       tmp_path: Path) -> None:
    running, c = server
    await _approle(c, tmp_path)
    wrapped = (await c.post(f"/v1/{ROLE}/secret-id", headers={"X-Vault-Wrap-TTL": "60s"})).json()["wrap_info"]
    assert (await c.post("/v1/sys/wrapping/unwrap", json={"token": wrapped["token"]})).status_code == 200  # stolen
    (tmp_path / "secret_id").write_text(wrapped["token"])
    method = _approle_method(tmp_path, f'secret_id_response_wrapping_path = "{ROLE}/secret-id"\n exit_on_err = true')
    agent = Agent(load(_config(tmp_path, running.port, method)))
    try:
        with pytest.raises(AuthError):
            await agent.authenticate()
    finally:
        await agent.aclose()
    events = (await c.get("/v1/sys/security/events")).json()["data"]["events"]
    assert [e["type"] for e in events] == ["wrapping-token-reuse"] and events[0]["accessor"] == wrapped["accessor"]


async def test_token_file_and_userpass_and_a_wrapped_sink(server: tuple[Running, httpx.AsyncClient],
                                                          tmp_path: Path) -> None:
    running, c = server
    child = (await c.post("/v1/auth/token/create", json={"ttl": "1h"})).json()["auth"]["client_token"]
    (tmp_path / "tok").write_text(child)
    method = f'method "token_file" {{\n config = {{ token_file_path = "{tmp_path}/tok" }}\n }}'
    agent = Agent(load(_config(tmp_path, running.port, method, extra_sink='wrap_ttl = "5m"')))
    try:
        assert await agent.authenticate() == child
        assert 3500 < agent.auth["lease_duration"] <= 3600 and agent.auth["renewable"]
    finally:
        await agent.aclose()
    wrap = json.loads((tmp_path / "sink").read_text())  # the sink holds wrap_info, not the token
    assert wrap["ttl"] == 300 and child not in (tmp_path / "sink").read_text()
    r = await c.post("/v1/sys/wrapping/unwrap", json={}, headers={"X-Vault-Token": wrap["token"]})
    assert r.json()["data"] == {"token": child}  # as bao agent: sys/wrapping/wrap {"token": ...}

    await c.post("/v1/sys/auth/userpass", json={"type": "userpass"})
    await c.post("/v1/auth/userpass/users/ann", json={"password": "pw-123", "token_policies": "web"})
    cfg = parse({"vault": {"address": f"http://127.0.0.1:{running.port}"},
                 "auto_auth": {"method": {"type": "userpass", "config": {"username": "ann", "password": "pw-123"}},
                               "sink": {"file": {"config": {"path": str(tmp_path / "up")}}}}})
    agent = Agent(cfg)
    try:
        token = await agent.authenticate()
    finally:
        await agent.aclose()
    assert (await _lookup(c, token)).json()["data"]["display_name"] == "userpass-ann"
    assert ((tmp_path / "up").stat().st_mode & 0o777) == 0o640  # Vault Agent's default sink mode


async def test_renews_then_logs_in_again_at_max_ttl_and_after_revocation(
        server: tuple[Running, httpx.AsyncClient], tmp_path: Path) -> None:
    running, c = server
    await _approle(c, tmp_path, token_ttl="3s", token_max_ttl="5s")
    (tmp_path / "secret_id").write_text((await c.post(f"/v1/{ROLE}/secret-id")).json()["data"]["secret_id"])
    agent = Agent(load(_config(tmp_path, running.port, _approle_method(tmp_path))))
    renewals: list[str] = []
    original = agent._renew

    async def counting(ttl: int) -> int | None:
        got = await original(ttl)
        renewals.append(f"{ttl}->{got}")
        return got

    agent._renew = counting  # type: ignore[method-assign]
    try:
        first = await agent.authenticate()
        task = asyncio.create_task(agent.keep_alive())
        for _ in range(100):
            await asyncio.sleep(0.1)
            if agent.logins >= 2:
                break
        assert agent.logins == 2 and renewals, renewals  # renewed at 2 s, capped at 5 s: logged in again
        second = agent.token
        assert second != first and (tmp_path / "sink").read_text() == second
        await c.post("/v1/auth/token/revoke", json={"token": second})
        agent.token_rejected()  # a template got 403
        for _ in range(50):
            await asyncio.sleep(0.05)
            if agent.logins >= 3:
                break
        assert agent.logins == 3 and (await _lookup(c, agent.token)).status_code == 200
        task.cancel()
    finally:
        await agent.aclose()


def test_config_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="exactly one method"):
        parse({"auto_auth": {"sink": {"file": {"config": {"path": "x"}}}}})
    with pytest.raises(ConfigError, match="not supported"):
        from strongroom.agent.auth import method_for
        method_for(parse({"auto_auth": {"method": {"type": "kerberos"}}}).auto_auth.method)  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="exactly one of source and contents"):
        parse({"auto_auth": {"method": {"type": "token_file"}}, "template": {"destination": "x"}})
    bad = tmp_path / "a.hcl"
    bad.write_text("vault {")
    with pytest.raises(ConfigError, match="error parsing"):
        load(bad)


async def test_cli_exit_after_auth(server: tuple[Running, httpx.AsyncClient], tmp_path: Path) -> None:
    running, c = server
    await _approle(c, tmp_path)
    (tmp_path / "secret_id").write_text((await c.post(f"/v1/{ROLE}/secret-id")).json()["data"]["secret_id"])
    cfg = _config(tmp_path, running.port, _approle_method(tmp_path))
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "strongroom", "agent", f"-config={cfg}",
                                                "-exit-after-auth", stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, out.decode()
    assert (await _lookup(c, (tmp_path / "sink").read_text())).status_code == 200
    bad = tmp_path / "bad.hcl"
    bad.write_text('auto_auth { method "nope" {} }')
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "strongroom", "agent", f"-config={bad}",
                                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1 and b"not supported" in out, out


async def test_run_stops_on_the_stop_event(server: tuple[Running, httpx.AsyncClient], tmp_path: Path) -> None:
    running, c = server
    child = (await c.post("/v1/auth/token/create", json={"ttl": "1h"})).json()["auth"]["client_token"]
    (tmp_path / "tok").write_text(child)
    cfg = parse({"vault": {"address": f"http://127.0.0.1:{running.port}"}, "pid_file": str(tmp_path / "pid"),
                 "auto_auth": {"method": {"type": "token_file", "config": {"token_file_path": str(tmp_path / "tok")}},
                               "sink": {"file": {"config": {"path": str(tmp_path / "s")}}}}})
    stop = asyncio.Event()
    task = asyncio.create_task(run(cfg, stop=stop))
    for _ in range(100):
        await asyncio.sleep(0.02)
        if (tmp_path / "s").exists():
            break
    assert (tmp_path / "pid").read_text().strip() == str(os.getpid())
    stop.set()
    assert await asyncio.wait_for(task, 5) == 0
    assert not (tmp_path / "pid").exists()


async def test_jwt_login_reads_and_removes_the_jwt_file(server: tuple[Running, httpx.AsyncClient], tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    from tests.auth.jwt.conftest import claims, public_pem, sign

    running, c = server
    key = rsa.generate_private_key(65537, 2048)
    assert (await c.post("/v1/sys/auth/jwt", json={"type": "jwt"})).status_code == 204
    r = await c.post("/v1/auth/jwt/config", json={"jwt_validation_pubkeys": [public_pem(key)]})
    assert r.status_code in (200, 204), r.text
    r = await c.post("/v1/auth/jwt/role/app", json={"role_type": "jwt", "user_claim": "sub", "bound_audiences": "strongroom",
                                                     "token_policies": "web", "token_ttl": "1h"})
    assert r.status_code in (200, 204), r.text
    (tmp_path / "jwt").write_text(sign(claims(), key))
    method = f'method "jwt" {{\n config = {{\n path = "{tmp_path}/jwt"\n role = "app"\n }}\n }}'
    agent = Agent(load(_config(tmp_path, running.port, method)))
    try:
        token = await agent.authenticate()
        assert not (tmp_path / "jwt").exists()  # Vault's default: removed after reading
        assert await agent.authenticate() != token  # again, with the JWT kept in memory
    finally:
        await agent.aclose()
    me = (await _lookup(c, token)).json()["data"]
    assert me["path"] == "auth/jwt/login" and "web" in me["policies"]


def test_kubernetes_method_reads_the_pods_token_by_default() -> None:
    from strongroom.agent.auth import K8S_TOKEN, RoleJWT, method_for

    m = method_for(parse({"auto_auth": {"method": {"type": "kubernetes", "config": {"role": "app"}}}}).auto_auth.method)  # type: ignore[union-attr]
    assert isinstance(m, RoleJWT) and m.path == K8S_TOKEN and m.mount == "auth/kubernetes" and not m.remove
    with pytest.raises(ConfigError, match="role and path are required"):
        method_for(parse({"auto_auth": {"method": {"type": "jwt", "config": {"role": "app"}}}}).auto_auth.method)  # type: ignore[union-attr]
