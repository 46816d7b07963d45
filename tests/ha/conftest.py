"""HA fixtures: fresh PostgreSQL tables per test, and Strongroom server processes sharing them."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.compat.conftest import RunningServer, free_port
from tests.storage.services import PG_URL, EtcdServer, drop_pg_table, pg_url_or_skip, start_etcd_or_skip


@pytest.fixture
def tables() -> Iterator[tuple[str, str]]:
    """(data table, HA table): new for each test, dropped afterwards. Skips without PostgreSQL."""
    pg_url_or_skip()
    name = f"sr_ha_{uuid.uuid4().hex[:12]}"
    yield name, name + "_locks"
    asyncio.run(drop_pg_table(name))
    asyncio.run(drop_pg_table(name + "_locks"))


def node(tmp_path: Path, tables: tuple[str, str], name: str, ttl: str = "1s", top: str = "") -> RunningServer:
    """A (not yet started) node on the shared tables; ``top``: more top-level HCL."""
    work = tmp_path / name
    work.mkdir()
    port = free_port()
    addr = f"http://127.0.0.1:{port}"
    cfg = work / "server.hcl"
    cfg.write_text(f'storage "postgresql" {{\n  connection_url = "{PG_URL}"\n  table = "{tables[0]}"\n'
                   f'  ha_enabled = "true"\n  ha_table = "{tables[1]}"\n  ha_lock_ttl = "{ttl}"\n}}\n'
                   f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n}}\n'
                   f'api_addr = "{addr}"\ncluster_addr = "https://127.0.0.1:{port + 1}"\n'
                   'disable_mlock = true\nlog_level = "warning"\n' + top)
    return RunningServer(cfg, addr, work)


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> float:
    """Seconds until ``check()`` holds; fails the test after ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if check():
                return time.monotonic() - start
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def leader(server: RunningServer) -> dict[str, object]:
    data: dict[str, object] = httpx.get(f"{server.addr}/v1/sys/leader", timeout=5).json()
    return data


def is_active(server: RunningServer) -> bool:
    return leader(server).get("is_self") is True


def unseal(server: RunningServer, keys: list[str]) -> None:
    for key in keys:
        httpx.put(f"{server.addr}/v1/sys/unseal", json={"key": key}, timeout=10).raise_for_status()


@pytest.fixture
def cluster(tmp_path: Path, tables: tuple[str, str]) -> Iterator[list[RunningServer]]:
    """Two unsealed nodes on the same tables: the first active (kv-v2 at secret/), the second standby.
    Request forwarding off (the standby redirects, 307): tests/ha/test_forwarding.py has it on."""
    servers = [node(tmp_path, tables, n, top="disable_request_forwarding = true\n") for n in "ab"]
    try:
        yield start_cluster(servers)
    finally:
        stop_all(servers)


# -- etcd (storage "etcd" { ha_enabled }), and any storage stanza ------------------------------------

def node_with(tmp_path: Path, name: str, storage_hcl: str) -> RunningServer:
    """A server whose storage stanza(s) are ``storage_hcl`` (storage, and ha_storage if wanted)."""
    work = tmp_path / name
    work.mkdir()
    port = free_port()
    addr = f"http://127.0.0.1:{port}"
    cfg = work / "server.hcl"
    cfg.write_text(storage_hcl + f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n}}\n'
                   f'api_addr = "{addr}"\ncluster_addr = "https://127.0.0.1:{port + 1}"\n'
                   'disable_mlock = true\nlog_level = "warning"\n')
    return RunningServer(cfg, addr, work)


@pytest.fixture(scope="module")
def etcd_fast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    """An etcd with 10 ms heartbeats (leases of 1 s), for the module's tests; skips without etcd."""
    # Its data on tmpfs when there is one: on a loaded machine a disk fsync can take seconds, longer
    # than the 1 s leases these tests use (a production etcd has its own disk).
    shm = Path("/dev/shm")
    work = Path(tempfile.mkdtemp(prefix="sr-etcd-ha-", dir=shm if shm.is_dir() else None))
    try:
        server = start_etcd_or_skip(work, fast=True)
        yield server
        server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def etcd_stanza(etcd: EtcdServer, path: str, *, kind: str = "storage", ttl: str = "1s") -> str:
    return (f'{kind} "etcd" {{\n  address = "{etcd.address}"\n  path = "{path}"\n'
            f'  ha_enabled = "true"\n  session_ttl = "{ttl}"\n}}\n')


def start_cluster(servers: list[RunningServer]) -> list[RunningServer]:
    """Start and unseal every node; the first initialises and becomes active (kv-v2 at secret/)."""
    a = servers[0]
    a.start()
    init = httpx.put(f"{a.addr}/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1}, timeout=30).json()
    keys, root = init["keys_base64"], init["root_token"]
    unseal(a, keys)
    wait_for(lambda: is_active(a))
    httpx.post(f"{a.addr}/v1/sys/mounts/secret", headers={"X-Vault-Token": root},
               json={"type": "kv", "options": {"version": "2"}}, timeout=10).raise_for_status()
    for s in servers[1:]:
        s.start()
        unseal(s, keys)
        wait_for(lambda s=s: leader(s).get("leader_address") == a.addr)  # type: ignore[misc]
    for s in servers:
        s.root_token, s.keys = root, keys
    return servers


def stop_all(servers: list[RunningServer]) -> None:
    for s in servers:
        if s.proc is not None and s.proc.poll() is None:
            s.stop()
