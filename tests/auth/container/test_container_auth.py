"""The container auth method against real containers (podman's Docker-compatible socket): a running
container with the role's labels logs in and gets the role's policies; a stopped, unknown or
wrongly labelled container is refused; the remote-address check refuses a caller that is not the
container; config and role validation; an unreachable engine is a 502."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from strongroom.testing import asgi_client, unsealed_core
from tests.auth.conftest import Vault
from tests.podman_engine import PodmanEngine


@pytest.fixture
async def vault(engine: PodmanEngine) -> AsyncIterator[Vault]:
    async with unsealed_core() as (core, _), asgi_client(core) as client:
        v = Vault(core, client)
        await v.done("POST", "sys/auth/container", {"type": "container"})
        await v.done("POST", "auth/container/config", {"engine_socket": engine.socket})
        await v.done("POST", "auth/container/role/web", {"bound_labels": {"app": "web", "tier": "front"},
                                                        "token_policies": ["web"], "token_ttl": "10m",
                                                        "check_remote_address": False})
        yield v


async def test_a_running_labelled_container_logs_in(vault: Vault, engine: PodmanEngine) -> None:
    cid = await asyncio.to_thread(engine.run, {"app": "web", "tier": "front", "other": "x"})
    auth = (await vault.ok("POST", "auth/container/login", {"role": "web", "container_id": cid}, token=None))["auth"]
    assert auth["policies"] == ["default", "web"] and auth["lease_duration"] == 600
    assert auth["metadata"]["container_id"] == cid and auth["metadata"]["role"] == "web"
    me = (await vault.ok("GET", "auth/token/lookup-self", token=auth["client_token"]))["data"]
    assert "web" in me["policies"]
    # A short id or the name resolves to the same container.
    auth2 = (await vault.ok("POST", "auth/container/login", {"role": "web", "container_id": cid[:12]},
                            token=None))["auth"]
    assert auth2["metadata"]["container_id"] == cid
    # Renewal asks the engine again: fine while it runs, refused once it has stopped.
    await vault.ok("POST", "auth/token/renew-self", {"increment": "5m"}, token=auth["client_token"])
    await asyncio.to_thread(engine.stop_container, cid)
    r = await vault.call("POST", "auth/token/renew-self", {}, token=auth["client_token"])
    assert r.status_code == 400 and "no longer running" in r.text, r.text


async def test_stopped_unknown_and_mislabelled_containers_are_refused(vault: Vault, engine: PodmanEngine) -> None:
    wrong = await asyncio.to_thread(engine.run, {"app": "web", "tier": "back"})
    partial = await asyncio.to_thread(engine.run, {"app": "web"})
    created = await asyncio.to_thread(engine.run, {"app": "web", "tier": "front"}, start=False)
    stopped = await asyncio.to_thread(engine.run, {"app": "web", "tier": "front"})
    await asyncio.to_thread(engine.stop_container, stopped)
    login = "auth/container/login"
    assert await vault.fails(403, "POST", login, {"role": "web", "container_id": wrong}, token=None) == [
        "container labels do not match the role"]
    await vault.fails(403, "POST", login, {"role": "web", "container_id": partial}, token=None)
    assert await vault.fails(403, "POST", login, {"role": "web", "container_id": created}, token=None) == [
        "container is not running"]
    await vault.fails(403, "POST", login, {"role": "web", "container_id": stopped}, token=None)
    assert await vault.fails(403, "POST", login, {"role": "web", "container_id": "f" * 64}, token=None) == [
        "container not found"]
    await vault.fails(400, "POST", login, {"role": "web", "container_id": "../../_ping"}, token=None)
    await vault.fails(400, "POST", login, {"role": "web"}, token=None)
    await vault.fails(400, "POST", login, {"role": "nosuch", "container_id": wrong}, token=None)


async def test_the_remote_address_check_refuses_another_caller(vault: Vault, engine: PodmanEngine) -> None:
    await vault.done("POST", "auth/container/role/strict", {"bound_labels": "app=web", "token_policies": "web"})
    role = (await vault.ok("GET", "auth/container/role/strict"))["data"]
    assert role["check_remote_address"] is True and role["bound_labels"] == {"app": "web"}
    cid = await asyncio.to_thread(engine.run, {"app": "web"})  # no network: it has no address at all
    assert await vault.fails(403, "POST", "auth/container/login", {"role": "strict", "container_id": cid},
                             token=None) == ["login does not come from the container's address"]


async def test_config_and_role_validation_and_an_unreachable_engine(vault: Vault, engine: PodmanEngine,
                                                                    tmp_path: object) -> None:
    assert (await vault.ok("GET", "auth/container/config"))["data"] == {"engine_socket": engine.socket}
    await vault.fails(400, "POST", "auth/container/config", {"engine_socket": "relative.sock"})
    await vault.fails(400, "POST", "auth/container/config", {})
    await vault.fails(400, "POST", "auth/container/role/empty", {"token_policies": "web"})
    assert (await vault.ok("LIST", "auth/container/role"))["data"]["keys"] == ["web"]
    cid = await asyncio.to_thread(engine.run, {"app": "web", "tier": "front"})
    await vault.done("POST", "auth/container/config", {"engine_socket": f"{tmp_path}/absent.sock"})
    errors = await vault.fails(502, "POST", "auth/container/login", {"role": "web", "container_id": cid}, token=None)
    assert errors[0].startswith("container engine unavailable")
    await vault.done("DELETE", "auth/container/role/web")
    await vault.fails(404, "GET", "auth/container/role/web")


async def test_a_container_logs_in_from_its_own_address(vault: Vault, engine: PodmanEngine) -> None:
    """check_remote_address (the default) on the real path: the container calls the server itself."""
    from strongroom.http.app import App
    from strongroom.http.server import HttpServer

    await vault.done("POST", "auth/container/role/strict", {"bound_labels": "app=web", "token_policies": "web"})
    try:
        cid = await asyncio.to_thread(engine.run, {"app": "web"}, network=True)
    except AssertionError as e:  # no container networking here (netavark/CNI)
        pytest.skip(f"container networking is unavailable: {e}")
    net = (await asyncio.to_thread(engine.inspect, cid))["NetworkSettings"]
    gateway, address = net.get("Gateway"), net.get("IPAddress")
    if not gateway or not address:
        pytest.skip("the container got no address on podman's default network")
    server = HttpServer(App(vault.core), asyncio.get_running_loop())
    await server.start(gateway, 0)  # reachable from the container, through the bridge, not NAT
    port = server.sockets[0].getsockname()[1]
    try:
        body = f'{{"role": "strict", "container_id": "{cid}"}}'
        out = await asyncio.to_thread(engine.exec_, cid, "wget", "-q", "-O", "-", "--header",
                                      "Content-Type: application/json", "--post-data", body,
                                      f"http://{gateway}:{port}/v1/auth/container/login")
        assert out.returncode == 0, out.stderr
        import json
        auth = json.loads(out.stdout)["auth"]
        assert auth["policies"] == ["default", "web"] and auth["metadata"]["container_id"] == cid
        # The same login from another address (the host) is refused.
        assert await vault.fails(403, "POST", "auth/container/login", {"role": "strict", "container_id": cid},
                                 token=None) == ["login does not come from the container's address"]
    finally:
        await server.stop(grace=1)
