"""Fixtures for the CLI tests: a dev server, and ways to run the CLI against it.

By default the server is ours (``python -m strongroom server -dev``). With
``STRONGROOM_TEST_REFERENCE=bao`` it is OpenBao's ``bao server -dev`` from the venv, the
reference the CLI's behaviour was checked against; every test must pass on both.
"""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.storage.services import end_process

from strongroom.cli import main

REFERENCE = os.environ.get("STRONGROOM_TEST_REFERENCE", "")
ROOT_TOKEN = "root"
ENV_PREFIXES = ("STRONGROOM_", "VAULT_", "BAO_")


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A free port whose successor is free too (bao's dev server also binds port+1)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port < 65000 and _port_free(port + 1):
            return port
    raise RuntimeError("no free port pair")


def clean_env(home: Path) -> dict[str, str]:
    """The test process's environment without any server/token variables, HOME set to ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIXES)}
    env["HOME"] = str(home)
    return env


def server_command(extra: list[str]) -> list[str]:
    if REFERENCE == "bao":
        return [str(Path(sys.executable).parent / "bao"), "server", *extra]
    return [sys.executable, "-m", "strongroom", "server", *extra]


@dataclass
class Server:
    """A running server process and how to reach it."""

    addr: str
    proc: subprocess.Popen[bytes]
    log: Path
    token: str = ROOT_TOKEN
    extra: dict[str, str] = field(default_factory=dict)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def unseal_key(self) -> str | None:
        m = re.search(r"Unseal Key: (\S+)", self.log_text())
        return m.group(1) if m else None

    def stop(self) -> None:
        end_process(self.proc)


def start_server(workdir: Path, args: list[str], port: int, *, ready: tuple[int, ...] = (200,)) -> Server:
    """Start a server and wait until ``GET /v1/sys/health`` answers with one of ``ready``."""
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(server_command(args), stdout=out, stderr=subprocess.STDOUT,
                                env=clean_env(workdir), cwd=workdir)
    server = Server(f"http://127.0.0.1:{port}", proc, log)
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}:\n{server.log_text()}")
        try:
            r = httpx.get(f"{server.addr}/v1/sys/health", timeout=2)
            if r.status_code in ready:
                return server
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            pytest.fail(f"server did not become ready:\n{server.log_text()}")
        time.sleep(0.05)


def start_dev_server(workdir: Path) -> Server:
    port = free_port()
    return start_server(workdir, ["-dev", f"-dev-root-token-id={ROOT_TOKEN}",
                                  f"-dev-listen-address=127.0.0.1:{port}"], port)



@dataclass
class Result:
    code: int
    out: str
    err: str


class CLI:
    """Runs ``strongroom`` in-process with ``main(argv)``, capturing its output."""

    def __init__(self, server: Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                 home: Path) -> None:
        self.server = server
        self.monkeypatch = monkeypatch
        self.capsys = capsys
        self.home = home
        for name in list(os.environ):
            if name.startswith(ENV_PREFIXES):
                monkeypatch.delenv(name)
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.setenv("VAULT_ADDR", server.addr)
        monkeypatch.setenv("VAULT_TOKEN", server.token)

    def __call__(self, *args: str, stdin: str | None = None) -> Result:
        if stdin is not None:
            self.monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        self.capsys.readouterr()
        code = main(list(args))
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err)

    def ok(self, *args: str, stdin: str | None = None) -> str:
        """Run; assert exit 0 and an empty stderr; return stdout."""
        r = self(*args, stdin=stdin)
        assert r.code == 0, f"exit {r.code}\nstdout: {r.out}\nstderr: {r.err}"
        return r.out




def run_process(args: list[str], env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m strongroom`` as a separate process."""
    return subprocess.run([sys.executable, "-m", "strongroom", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=60, check=False)

@pytest.fixture(scope="session")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_dev_server(tmp_path_factory.mktemp("devserver"))
    yield server
    server.stop()


@pytest.fixture
def fresh_dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A dev server of its own, for tests that seal it."""
    server = start_dev_server(tmp_path_factory.mktemp("freshdev"))
    yield server
    server.stop()


@pytest.fixture
def uninitialized_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server from a config file with in-memory storage, not yet initialized."""
    workdir = tmp_path_factory.mktemp("initserver")
    port = free_port()
    config = workdir / "config.hcl"
    config.write_text(
        'storage "inmem" {}\n\n'
        'listener "tcp" {\n'
        f'  address     = "127.0.0.1:{port}"\n'
        '  tls_disable = true\n'
        '}\n'
    )
    # 501: not initialized; 503: sealed; either means the listener is up.
    server = start_server(workdir, [f"-config={config}"], port, ready=(501, 503))
    yield server
    server.stop()


@pytest.fixture
def cli(dev_server: Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> CLI:
    return CLI(dev_server, monkeypatch, capsys, tmp_path)


@pytest.fixture
def name() -> str:
    """A unique name, so tests sharing the session's server do not collide."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
def fresh_cli(fresh_dev_server: Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
              tmp_path: Path) -> CLI:
    """The CLI against a dev server of its own, which the test may seal."""
    return CLI(fresh_dev_server, monkeypatch, capsys, tmp_path)


@pytest.fixture
def init_cli(uninitialized_server: Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
             tmp_path: Path) -> CLI:
    """The CLI against an uninitialized server, with no token set."""
    cli = CLI(uninitialized_server, monkeypatch, capsys, tmp_path)
    monkeypatch.delenv("VAULT_TOKEN")
    return cli


@pytest.fixture
def strongroom_process(dev_server: Server, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Runs ``python -m strongroom ARGS`` as a child process against the dev server."""

    def run(*args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
        environ = clean_env(tmp_path)
        environ.update({"VAULT_ADDR": dev_server.addr, "VAULT_TOKEN": dev_server.token})
        environ.update(env)
        return run_process(list(args), environ, stdin)

    return run
