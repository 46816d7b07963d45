"""``ha_storage``: the HA lock on one store, the data on another (Vault's split), with real server
processes: storage "postgresql" + ha_storage "etcd", and storage "etcd" + ha_storage "postgresql"."""

from __future__ import annotations

import base64
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from tests.compat.conftest import RunningServer
from tests.ha.conftest import etcd_stanza, is_active, leader, node_with, start_cluster, stop_all, wait_for
from tests.storage.services import PG_URL, EtcdServer


def _pg_data(table: str) -> str:  # data only: no ha_enabled in the storage stanza
    return f'storage "postgresql" {{\n  connection_url = "{PG_URL}"\n  table = "{table}"\n}}\n'


def _pg_ha(table: str) -> str:
    return (f'ha_storage "postgresql" {{\n  connection_url = "{PG_URL}"\n  ha_enabled = "true"\n'
            f'  ha_table = "{table}"\n  ha_lock_ttl = "1s"\n}}\n')


def _etcd_data(etcd: EtcdServer, path: str) -> str:
    return f'storage "etcd" {{\n  address = "{etcd.address}"\n  path = "{path}"\n}}\n'


def _failover(servers: list[RunningServer]) -> None:
    a, b = servers
    h = {"X-Vault-Token": a.root_token}
    assert httpx.post(f"{a.addr}/v1/secret/data/k", headers=h, json={"data": {"n": "1"}}, timeout=10).status_code == 200
    assert leader(b)["leader_address"] == a.addr and not is_active(b)
    assert a.proc is not None
    a.proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    a.proc.wait(5)
    a.log.close()
    wait_for(lambda: is_active(b), timeout=5)
    took = time.monotonic() - killed
    assert took < 2.0, f"failover took {took:.2f}s"
    got = httpx.get(f"{b.addr}/v1/secret/data/k", headers=h, timeout=5).json()
    assert got["data"]["data"] == {"n": "1"}  # the data store is shared, the lock elsewhere


def test_postgresql_data_with_etcd_lock(tmp_path: Path, tables: tuple[str, str], etcd_fast: EtcdServer) -> None:
    path = f"/sr-hs-{uuid.uuid4().hex[:10]}/"
    hcl = _pg_data(tables[0]) + etcd_stanza(etcd_fast, path, kind="ha_storage")
    servers = [node_with(tmp_path, n, hcl) for n in ("a", "b")]
    try:
        start_cluster(servers)
        # The lock is in etcd, beside the (empty) data path there.
        got = httpx.post(f"{etcd_fast.address}/v3/kv/range",
                         json={"key": base64.b64encode(f"{path.rstrip('/')}.ha/lock".encode()).decode()})
        assert got.json().get("kvs"), "the lock key is in etcd"
        _failover(servers)
    finally:
        stop_all(servers)


def test_etcd_data_with_postgresql_lock(tmp_path: Path, tables: tuple[str, str], etcd_fast: EtcdServer) -> None:
    hcl = _etcd_data(etcd_fast, f"/sr-hs-{uuid.uuid4().hex[:10]}/") + _pg_ha(tables[1])
    servers = [node_with(tmp_path, n, hcl) for n in ("a", "b")]
    try:
        start_cluster(servers)
        _failover(servers)
    finally:
        stop_all(servers)


def test_ha_storage_with_ha_disabled_is_refused(tmp_path: Path, tables: tuple[str, str],
                                                 etcd_fast: EtcdServer) -> None:
    hcl = _pg_data(tables[0]) + f'ha_storage "etcd" {{\n  address = "{etcd_fast.address}"\n}}\n'
    server = node_with(tmp_path, "a", hcl)
    run = subprocess.run([sys.executable, "-m", "strongroom", "server", f"-config={server.config_path}"],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode != 0
    assert 'ha_storage "etcd" has HA support disabled' in run.stdout + run.stderr
