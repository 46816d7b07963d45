"""Snapshots on any storage: sys/storage/raft/snapshot(-force), the file format, the CLI, bao."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from strongroom.core import Core
from strongroom.snapshot import SnapshotError, decode, encode
from strongroom.storage.inmem import InmemStorage
from strongroom.testing import app_client
from tests.compat.conftest import sqlite_server_process

SNAP = "/v1/sys/storage/raft/snapshot"


@asynccontextmanager
async def _core() -> AsyncIterator[tuple[Core, bytes, httpx.AsyncClient]]:
    core = Core(InmemStorage())
    key, root = await core.dev_bootstrap("root")
    try:
        async with app_client(core, root) as c:
            yield core, key, c
    finally:
        await core.seal()


async def test_save_then_restore_rolls_back_and_seals() -> None:
    async with _core() as (core, key, c):
        await c.post("/v1/secret/data/app", json={"data": {"v": "s3cr3t-old"}})
        r = await c.get(SNAP)
        assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
        snap = decode(r.content)
        assert snap.header["entries"] == len(snap.entries) and snap.header["keyring_sha256"]
        assert not any(b"s3cr3t-old" in v for _, v in snap.entries)  # entries as stored: ciphertext
        await c.post("/v1/secret/data/app", json={"data": {"v": "new"}})
        await c.post("/v1/secret/data/later", json={"data": {"v": "x"}})
        assert (await c.post(SNAP, content=r.content)).status_code == 204
        assert core.sealed
        await core.unseal(key)
        assert (await c.get("/v1/secret/data/app")).json()["data"]["data"] == {"v": "s3cr3t-old"}
        assert (await c.get("/v1/secret/data/later")).status_code == 404  # not in the snapshot: gone


async def test_a_corrupted_snapshot_is_refused_and_nothing_changes() -> None:
    async with _core() as (core, _key, c):
        await c.post("/v1/secret/data/app", json={"data": {"v": "1"}})
        good = (await c.get(SNAP)).content
        await c.post("/v1/secret/data/app", json={"data": {"v": "2"}})
        bad = bytearray(good)
        bad[len(bad) // 2] ^= 0x01
        for body, why in ((bytes(bad), "corrupted"), (good[:-5], "corrupted"),
                          (b"not a snapshot", "corrupted or not a snapshot")):
            r = await c.post(SNAP, content=body)
            assert r.status_code == 400 and why in r.json()["errors"][0], r.text
        assert not core.sealed
        assert (await c.get("/v1/secret/data/app")).json()["data"]["data"] == {"v": "2"}


async def test_another_barriers_snapshot_needs_force_and_then_unseals_with_its_own_key() -> None:
    async with _core() as (_other, other_key, oc):
        await oc.post("/v1/secret/data/app", json={"data": {"v": "theirs"}})
        theirs = (await oc.get(SNAP)).content
    async with _core() as (core, _key, c):
        r = await c.post(SNAP, content=theirs)
        assert r.status_code == 400 and "different set of unseal keys" in r.json()["errors"][0]
        assert not core.sealed
        assert (await c.post(SNAP + "-force", content=theirs)).status_code == 204
        assert core.sealed
        await core.unseal(other_key)
        assert not core.sealed
        assert (await c.get("/v1/secret/data/app")).json()["data"]["data"] == {"v": "theirs"}


async def test_snapshots_need_sudo() -> None:
    async with _core() as (_core_, _key, c):
        await c.post("/v1/sys/policy/snap", json={"policy": 'path "sys/storage/raft/*" { capabilities = ["read", "update"] }'})
        tok = (await c.post("/v1/auth/token/create", json={"policies": ["snap"]})).json()["auth"]["client_token"]
        good = (await c.get(SNAP)).content
        async with app_client(_core_, tok) as weak:
            assert (await weak.get(SNAP)).status_code == 403
            assert (await weak.post(SNAP, content=good)).status_code == 403
        async with app_client(_core_) as anon:
            assert (await anon.get(SNAP)).status_code == 403


def test_format_round_trip_and_corruption() -> None:
    import gzip
    import io
    import tarfile

    data = encode([("b", b"2"), ("core/keyring", b"k"), ("a", b"")], lambda sums: b"sealed:" + sums, storage_type="sqlite")
    snap = decode(data)
    assert snap.entries == [("a", b""), ("b", b"2"), ("core/keyring", b"k")]
    assert snap.header["storage_type"] == "sqlite" and snap.header["version"] == 1
    assert snap.sealed == b"sealed:" + snap.sums
    with pytest.raises(SnapshotError):
        decode(data[:-1])
    # A member changed and the archive rebuilt (gzip and tar intact): SHA256SUMS catches it.
    with tarfile.open(fileobj=gzip.GzipFile(fileobj=io.BytesIO(data))) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar}  # type: ignore[union-attr]
    members["state.bin"] = members["state.bin"].replace(b"\x012", b"\x013")
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb") as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    with pytest.raises(SnapshotError, match="checksum of state.bin does not match"):
        decode(out.getvalue())


def _sr(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "strongroom", *args], capture_output=True, text=True, timeout=60, env=env)


def test_bao_save_and_strongroom_restore_into_a_fresh_server(tmp_path: Path) -> None:
    """`bao operator raft snapshot save` against our server; the file restored (forced) into a fresh
    server initialised with other keys, which then unseals with the original shares. Audited."""
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    audit = tmp_path / "audit.log"
    one = sqlite_server_process(tmp_path / "one", top="unsafe_allow_api_audit_creation = true\n")
    one.start()
    try:
        with httpx.Client(base_url=one.addr + "/v1", timeout=30) as c:
            init = c.put("/sys/init", json={"secret_shares": 3, "secret_threshold": 2}).json()
            for k in init["keys_base64"][:2]:
                c.put("/sys/unseal", json={"key": k})
            one.root_token = init["root_token"]
            h = {"X-Vault-Token": init["root_token"]}
            assert c.put("/sys/audit/file", headers=h, json={"type": "file", "options": {"file_path": str(audit)}}).status_code == 204
            c.post("/sys/mounts/secret", headers=h, json={"type": "kv", "options": {"version": "2"}})
            c.post("/secret/data/app", headers=h, json={"data": {"password": "s3cr3t"}})
        snap = tmp_path / "backup.snap"
        done = one.bao("operator", "raft", "snapshot", "save", str(snap))
        assert done.returncode == 0, done.stderr
        assert b"s3cr3t" not in snap.read_bytes()
        assert "sys/storage/raft/snapshot" in audit.read_text()
    finally:
        one.stop()
    shown = _sr("operator", "snapshot", "inspect", "-format=json", str(snap))
    assert shown.returncode == 0 and '"storage_type": "sqlite"' in shown.stdout, shown.stderr
    broken = tmp_path / "broken.snap"
    raw = bytearray(snap.read_bytes())
    raw[100] ^= 0xFF
    broken.write_bytes(bytes(raw))
    assert "corrupted" in _sr("operator", "snapshot", "inspect", str(broken)).stderr

    two = sqlite_server_process(tmp_path / "two")
    two.start()
    try:
        with httpx.Client(base_url=two.addr + "/v1", timeout=30) as c:
            fresh = c.put("/sys/init", json={"secret_shares": 1, "secret_threshold": 1}).json()
            c.put("/sys/unseal", json={"key": fresh["keys_base64"][0]})
            env = {"PATH": "/usr/bin:/bin", "VAULT_ADDR": two.addr, "VAULT_TOKEN": fresh["root_token"],
                   "HOME": str(tmp_path)}
            refused = _sr("operator", "snapshot", "restore", str(broken), env=env)
            assert refused.returncode == 2 and "corrupted" in refused.stderr
            refused = _sr("operator", "snapshot", "restore", str(snap), env=env)
            assert refused.returncode == 2 and "different set of unseal keys" in refused.stderr
            done = _sr("operator", "snapshot", "restore", "-force", str(snap), env=env)
            assert done.returncode == 0, done.stderr
            assert c.get("/sys/seal-status").json()["sealed"] is True
            for k in init["keys_base64"][1:]:
                status = c.put("/sys/unseal", json={"key": k}).json()
            assert status["sealed"] is False
            r = c.get("/secret/data/app", headers={"X-Vault-Token": init["root_token"]})
            assert r.json()["data"]["data"] == {"password": "s3cr3t"}
            # bao's restore (same barrier now) round-trips too.
            two.root_token = init["root_token"]
            done = two.bao("operator", "raft", "snapshot", "restore", str(snap))
            assert done.returncode == 0, done.stderr
            assert c.get("/sys/seal-status").json()["sealed"] is True
    finally:
        two.stop()
