"""A real `strongroom server` on `storage "postgresql"` and `storage "etcd"`: init, unseal, write KV,
restart, read back; a database that does not answer yet is tried again until it does."""

from __future__ import annotations

import asyncio
import base64
import socket
import subprocess
import sys
import threading
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


def _forward(port: int, target: tuple[str, int]) -> tuple[threading.Thread, asyncio.AbstractEventLoop]:
    """A TCP proxy on 127.0.0.1:``port`` to ``target``, in a thread (the database coming up there)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*target)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def main() -> None:
        await asyncio.start_server(serve, "127.0.0.1", port, reuse_address=True)
        ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main())
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    return thread, loop


def test_a_database_down_at_start_is_tried_again_until_it_answers(tmp_path: Path, table: str) -> None:
    """Issue #15: the store down at start gives a clear error (no password in it) and the server keeps
    trying; once the database answers, it starts."""
    with socket.socket() as silent:  # accepts, never answers: a hung database
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        db_port = silent.getsockname()[1]
        url = f"postgresql://postgres:pw@127.0.0.1:{db_port}/postgres?connect_timeout=1"
        cfg, port = _config(tmp_path, url, table)
        log = tmp_path / "server.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "strongroom", "server", f"-config={cfg}"],
                                    stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while log.read_text().count("trying again") < 2:
                assert proc.poll() is None, log.read_text()  # still trying, not gone
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            text = log.read_text()
            assert "Error opening storage (postgresql storage: could not connect to 127.0.0.1:" in text
            assert "pw@" not in text and ":pw" not in text
            silent.close()
            _thread, loop = _forward(db_port, ("127.0.0.1", 5432))
            try:
                deadline = time.monotonic() + 30
                while True:
                    try:
                        health = httpx.get(f"http://127.0.0.1:{port}/v1/sys/health", timeout=2)
                        break
                    except httpx.TransportError:
                        assert proc.poll() is None, log.read_text()
                        assert time.monotonic() < deadline, log.read_text()
                        time.sleep(0.2)
                assert health.status_code == 501 and health.json()["initialized"] is False
            finally:
                proc.terminate()
                proc.wait(15)
                loop.call_soon_threadsafe(loop.stop)
        finally:
            if proc.poll() is None:
                proc.kill()


def test_a_storage_config_it_refuses_stops_the_start_at_once(tmp_path: Path) -> None:
    cfg, _port = _config(tmp_path, "", "", 'storage "etcd" {\n  address = "ftp://nowhere"\n}\n')
    proc = subprocess.run([sys.executable, "-m", "strongroom", "server", f"-config={cfg}"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1 and "Error starting server: etcd storage: invalid \"address\"" in proc.stderr
