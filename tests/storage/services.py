"""The real servers behind the postgresql and etcd storage tests: found or started, else a skip."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres?connect_timeout=5"
_pg_ok: bool | None = None


def pg_url_or_skip() -> str:
    """The local PostgreSQL's URL, or skip the test when nothing answers there."""
    global _pg_ok
    if _pg_ok is None:
        import psycopg

        try:
            psycopg.connect(PG_URL, connect_timeout=3).close()
            _pg_ok = True
        except psycopg.Error:
            _pg_ok = False
    if not _pg_ok:
        pytest.skip("no PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth)")
    return PG_URL


async def drop_pg_table(table: str) -> None:
    import psycopg
    from psycopg import sql

    async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
        await conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(*table.split("."))))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class EtcdServer:
    address: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        end_process(self.proc)


def end_process(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """Stop a service the tests started: SIGTERM, then SIGKILL if it is not gone within ``timeout``."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


def start_etcd_or_skip(workdir: Path, *, fast: bool = False) -> EtcdServer:
    """A single-member etcd on free ports with its data in ``workdir`` (Debian's etcd-server).
    ``fast``: 10 ms heartbeats, so etcd grants leases as short as 1 s (HA tests)."""
    binary = shutil.which("etcd") or ("/usr/bin/etcd" if Path("/usr/bin/etcd").exists() else None)
    if binary is None:
        pytest.skip("the etcd binary is not installed (Debian package etcd-server; .ci/run installs it)")
    client, peer = free_port(), free_port()
    address = f"http://127.0.0.1:{client}"
    log = workdir / "etcd.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [binary, "--name", "sr-test", "--data-dir", str(workdir / "data"),
             "--listen-client-urls", address, "--advertise-client-urls", address,
             "--listen-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-cluster", f"sr-test=http://127.0.0.1:{peer}", "--log-level", "warn",
             *(["--heartbeat-interval", "10", "--election-timeout", "100"] if fast else [])],
            stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"etcd exited: {log.read_text()}")
        try:
            if httpx.get(f"{address}/health", timeout=1).status_code == 200:
                return EtcdServer(address, proc, log)
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"etcd did not start: {log.read_text()}")
