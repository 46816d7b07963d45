"""A real `strongroom server` on `storage "postgresql"` and `storage "etcd"`: init, unseal, write KV,
restart, read back; and a database that does not answer stops the start with a clear error."""

from __future__ import annotations

import asyncio
import base64
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.compat.conftest import RunningServer, free_port
from strongroom.storage.etcd import upper_bound
from tests.storage.services import PG_URL, EtcdServer, drop_pg_table, pg_url_or_skip


@pytest.fixture
def table() -> Iterator[str]:
    pg_url_or_skip()
    name = f"sr_srv_{uuid.uuid4().hex[:12]}"
    yield name
    asyncio.run(drop_pg_table(name))


def _config(tmp_path: Path, url: str, table: str, stanza: str = "") -> tuple[Path, int]:
    port = free_port()
    cfg = tmp_path / "server.hcl"
    stanza = stanza or f'storage "postgresql" {{\n  connection_url = "{url}"\n  table = "{table}"\n  max_parallel = 8\n}}\n'
    cfg.write_text(stanza +
                   f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n}}\n'
                   'log_level = "warning"\n')
    return cfg, port


def test_server_on_postgresql_survives_a_restart(tmp_path: Path, table: str) -> None:
    cfg, port = _config(tmp_path, PG_URL, table)
    server = RunningServer(cfg, f"http://127.0.0.1:{port}", tmp_path)
    _init_write_restart_read(server)
    # Everything is in the table, as ciphertext: the secret's plaintext is nowhere in it.
    import psycopg

    with psycopg.connect(PG_URL) as conn:
        rows = conn.execute(f"SELECT path, key, value FROM {table}").fetchall()
    assert any(path == "/core/" for path, _key, _value in rows)
    assert not any(b"s3cr3t" in bytes(value) for _path, _key, value in rows)


def test_server_on_etcd_survives_a_restart(tmp_path: Path, etcd_server: EtcdServer) -> None:
    path = f"/sr-srv-{uuid.uuid4().hex[:10]}/"
    cfg, port = _config(tmp_path, "", "", f'storage "etcd" {{\n  address = "{etcd_server.address}"\n'
                                          f'  path = "{path}"\n  etcd_api = "v3"\n}}\n')
    server = RunningServer(cfg, f"http://127.0.0.1:{port}", tmp_path)
    _init_write_restart_read(server)
    keys = httpx.post(f"{etcd_server.address}/v3/kv/range", json={
        "key": base64.b64encode(path.encode()).decode(),
        "range_end": base64.b64encode(upper_bound(path.encode())).decode()}).json()["kvs"]
    assert any(base64.b64decode(kv["key"]).startswith(f"{path}core/".encode()) for kv in keys)
    assert not any(b"s3cr3t" in base64.b64decode(kv.get("value", "")) for kv in keys)


def _init_write_restart_read(server: RunningServer) -> None:
    """Init and unseal over HTTP, write with the bao CLI, restart, unseal and read back with hvac."""
    server.start()
    try:
        with httpx.Client(base_url=server.addr + "/v1", timeout=30) as c:
            r = c.put("/sys/init", json={"secret_shares": 1, "secret_threshold": 1})
            assert r.status_code == 200, r.text
            init = r.json()
            key, token = init["keys_base64"][0], init["root_token"]
            assert c.put("/sys/unseal", json={"key": key}).json()["sealed"] is False
        server.root_token = token
        done = server.bao("secrets", "enable", "-path=secret", "-version=2", "kv")
        assert done.returncode == 0, done.stderr
        done = server.bao("kv", "put", "-mount=secret", "app/db", "password=s3cr3t")
        assert done.returncode == 0, done.stderr
    finally:
        assert server.stop() == 0
    server.start()
    try:
        import hvac

        client = hvac.Client(url=server.addr, token=token)
        assert client.sys.read_seal_status()["initialized"] is True
        assert client.sys.submit_unseal_key(key)["sealed"] is False
        read = client.secrets.kv.v2.read_secret_version(path="app/db", mount_point="secret",
                                                          raise_on_deleted_version=True)
        assert read["data"]["data"] == {"password": "s3cr3t"}
        assert client.secrets.kv.v2.list_secrets(path="app", mount_point="secret")["data"]["keys"] == ["db"]
    finally:
        server.stop()


def test_server_with_an_unreachable_database_exits_with_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts, never answers: a hung database
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        url = f"postgresql://postgres:pw@127.0.0.1:{silent.getsockname()[1]}/postgres?connect_timeout=2"
        cfg, _port = _config(tmp_path, url, "t")
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "strongroom", "server", f"-config={cfg}"],
                              capture_output=True, text=True, timeout=30)
        elapsed = time.monotonic() - start
    assert proc.returncode == 1
    assert "Error starting server: postgresql storage: could not connect to 127.0.0.1:" in proc.stderr
    assert "pw@" not in proc.stderr + proc.stdout
    assert elapsed < 10
