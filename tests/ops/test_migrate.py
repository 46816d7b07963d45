"""strongroom operator migrate: every entry copied as stored, between sqlite, file, postgresql and
etcd; the migration lock; a non-empty destination refused; -start resumes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from strongroom.migrate import MIGRATION_LOCK_KEY, migrate
from strongroom.snapshot import all_keys
from strongroom.storage import open_storage
from strongroom.storage.inmem import InmemStorage
from tests.compat.conftest import RunningServer, free_port, sqlite_server_process
from tests.storage.services import EtcdServer, drop_pg_table, pg_url_or_skip


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "strongroom", "operator", "migrate", *args],
                          capture_output=True, text=True, timeout=120)


def test_sqlite_to_postgresql_to_etcd_to_sqlite_then_unseal_and_read(tmp_path: Path, etcd_server: EtcdServer) -> None:
    pg = pg_url_or_skip()
    table = f"sr_mig_{uuid.uuid4().hex[:10]}"
    etcd_path = f"/sr-mig-{uuid.uuid4().hex[:8]}/"
    (tmp_path / "a").mkdir()
    first = sqlite_server_process(tmp_path / "a")
    first.start()
    try:
        with httpx.Client(base_url=first.addr + "/v1", timeout=30) as c:
            init = c.put("/sys/init", json={"secret_shares": 3, "secret_threshold": 2}).json()
            for k in init["keys_base64"][:2]:
                c.put("/sys/unseal", json={"key": k})
            h = {"X-Vault-Token": init["root_token"]}
            assert c.post("/sys/mounts/secret", json={"type": "kv", "options": {"version": "2"}}, headers=h).status_code == 204
            assert c.post("/secret/data/app", json={"data": {"password": "s3cr3t"}}, headers=h).status_code == 200
    finally:
        assert first.stop() == 0
    stanzas = {
        "a": f'"sqlite" {{\n  path = "{tmp_path}/a/data/strongroom.db"\n}}\n',
        "pg": f'"postgresql" {{\n  connection_url = "{pg}"\n  table = "{table}"\n}}\n',
        "etcd": f'"etcd" {{\n  address = "{etcd_server.address}"\n  path = "{etcd_path}"\n  etcd_api = "v3"\n}}\n',
        "b": f'"sqlite" {{\n  path = "{tmp_path}/b/strongroom.db"\n}}\n',
    }
    (tmp_path / "b").mkdir()
    try:
        for src, dst in (("a", "pg"), ("pg", "etcd"), ("etcd", "b")):
            cfg = tmp_path / f"{src}-{dst}.hcl"
            cfg.write_text(f"storage_source {stanzas[src]}storage_destination {stanzas[dst]}")
            done = _cli(f"-config={cfg}")
            assert done.returncode == 0, done.stderr
            assert "copied key: core/keyring" in done.stdout and "Success! All of the keys have been migrated" in done.stdout
        port = free_port()
        cfg = tmp_path / "final.hcl"
        cfg.write_text(f"storage {stanzas['b']}"
                       f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n}}\nlog_level = "warning"\n')
        final = RunningServer(cfg, f"http://127.0.0.1:{port}", tmp_path / "b")
        final.start()
        try:
            with httpx.Client(base_url=final.addr + "/v1", timeout=30) as c:
                assert c.get("/sys/seal-status").json()["sealed"] is True
                for k in init["keys_base64"][1:]:  # two of the original shares, not the ones used before
                    status = c.put("/sys/unseal", json={"key": k}).json()
                assert status["sealed"] is False
                r = c.get("/secret/data/app", headers={"X-Vault-Token": init["root_token"]})
                assert r.status_code == 200 and r.json()["data"]["data"] == {"password": "s3cr3t"}
        finally:
            final.stop()
    finally:
        asyncio.run(drop_pg_table(table))


async def test_copies_every_entry_as_stored_and_drops_the_lock() -> None:
    src, dst = InmemStorage(), InmemStorage()
    entries = {"core/keyring": b"\x01k", "logical/a/b/c": b"\x02", "logical/a/d": b"\x03", "sys/token/x": b"\x04"}
    for k, v in entries.items():
        await src.put(k, v)
    seen: list[str] = []
    assert await migrate(src, dst, log=seen.append) == 4
    assert {k: await dst.get(k) for k in await all_keys(dst)} == entries
    assert seen == [f"copied key: {k}" for k in sorted(entries)]
    assert await src.get(MIGRATION_LOCK_KEY) is None and await dst.get(MIGRATION_LOCK_KEY) is None


async def test_refuses_a_non_empty_destination_and_resumes_with_start() -> None:
    src, dst = InmemStorage(), InmemStorage()
    for k in ("a/1", "b/2", "c/3"):
        await src.put(k, k.encode())
    await dst.put("a/1", b"a/1")  # a migration that stopped after its first key
    with pytest.raises(Exception, match="destination storage is not empty"):
        await migrate(src, dst)
    assert await migrate(src, dst, start="b/") == 2
    assert await all_keys(dst) == ["a/1", "b/2", "c/3"]


async def test_a_migration_in_progress_blocks_another_and_the_server(tmp_path: Path) -> None:
    src = await open_storage("sqlite", {"path": str(tmp_path / "data" / "strongroom.db")})
    await src.put("core/x", b"1")
    await src.put(MIGRATION_LOCK_KEY, b'{"start_time": "2026-01-01T00:00:00Z"}')  # a killed migration's
    with pytest.raises(Exception, match=r"Storage migration in progress \(started: 2026-01-01T00:00:00Z\)"):
        await migrate(src, InmemStorage())
    await src.close()
    server = sqlite_server_process(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "strongroom", "server", f"-config={server.config_path}"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1 and "Storage migration in progress" in proc.stderr
    cfg = tmp_path / "m.hcl"
    cfg.write_text(f'storage_source "sqlite" {{\n  path = "{tmp_path}/data/strongroom.db"\n}}\n'
                   f'storage_destination "file" {{\n  path = "{tmp_path}/dest"\n}}\n')
    assert "Storage migration in progress" in _cli(f"-config={cfg}").stderr
    assert _cli(f"-config={cfg}", "-reset").returncode == 0
    done = _cli(f"-config={cfg}")
    assert done.returncode == 0 and "copied key: core/x" in done.stdout
    dest = await open_storage("file", {"path": str(tmp_path / "dest")})
    assert await dest.get("core/x") == b"1"
    await dest.close()


def test_bad_config_is_a_clear_error(tmp_path: Path) -> None:
    cfg = tmp_path / "m.hcl"
    cfg.write_text('storage_source "inmem" {}\n')
    done = _cli(f"-config={cfg}")
    assert done.returncode == 2 and "missing storage_destination stanza" in done.stderr
    assert _cli().returncode != 0


def test_a_source_an_active_server_holds_is_refused(tmp_path: Path) -> None:
    from tests.ha.conftest import is_active, node, wait_for
    from tests.storage.services import PG_URL

    pg_url_or_skip()
    name = f"sr_migha_{uuid.uuid4().hex[:10]}"
    tables = (name, name + "_locks")
    server = node(tmp_path, tables, "n1")
    server.start()
    try:
        with httpx.Client(base_url=server.addr + "/v1", timeout=30) as c:
            init = c.put("/sys/init", json={"secret_shares": 1, "secret_threshold": 1}).json()
            c.put("/sys/unseal", json={"key": init["keys_base64"][0]})
        wait_for(lambda: is_active(server))
        cfg = tmp_path / "m.hcl"
        cfg.write_text(f'storage_source "postgresql" {{\n  connection_url = "{PG_URL}"\n  table = "{tables[0]}"\n'
                       f'  ha_enabled = "true"\n  ha_table = "{tables[1]}"\n}}\n'
                       f'storage_destination "file" {{\n  path = "{tmp_path}/dest"\n}}\n')
        done = _cli(f"-config={cfg}")
        assert done.returncode == 2 and "an active server holds its HA lock" in done.stderr
        assert not (tmp_path / "dest").exists() or not any((tmp_path / "dest").iterdir())
    finally:
        server.stop()
        for t in tables:
            asyncio.run(drop_pg_table(t))
