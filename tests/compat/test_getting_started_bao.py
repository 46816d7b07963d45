"""The getting-started path with the real OpenBao CLI against a real Strongroom server on sqlite."""

from __future__ import annotations

import json

import httpx

from .conftest import RunningServer


def _init_and_unseal(server: RunningServer) -> None:
    out = server.bao("operator", "init", "-key-shares=5", "-key-threshold=3", "-format=json", token="")
    assert out.returncode == 0, out.stderr
    init = json.loads(out.stdout)
    assert len(init["unseal_keys_b64"]) == 5 and init["unseal_threshold"] == 3
    server.keys, server.root_token = init["unseal_keys_b64"], init["root_token"]
    assert server.root_token.startswith("hvs.") and len(server.root_token) == 28
    sealed = server.bao("status", token="")
    assert sealed.returncode == 2 and "Sealed" in sealed.stdout
    for key in server.keys[:3]:
        assert server.bao("operator", "unseal", key, token="").returncode == 0
    assert server.bao("status", token="").returncode == 0


def test_init_unseal_kv_tokens_policies_seal_restart(sqlite_server: RunningServer) -> None:
    s = sqlite_server
    _init_and_unseal(s)
    assert s.bao("secrets", "enable", "-path=secret", "-version=2", "kv").returncode == 0

    put = s.bao("kv", "put", "secret/app", "user=admin", "password=hunter2")
    assert put.returncode == 0, put.stderr
    got = json.loads(s.bao("kv", "get", "-format=json", "secret/app").stdout)
    assert got["data"]["data"] == {"user": "admin", "password": "hunter2"}
    assert s.bao("kv", "patch", "secret/app", "password=correct-horse").returncode == 0
    field = s.bao("kv", "get", "-field=password", "secret/app")
    assert field.stdout.strip() == "correct-horse"
    meta = json.loads(s.bao("kv", "metadata", "get", "-format=json", "secret/app").stdout)
    assert meta["data"]["current_version"] == 2 and set(meta["data"]["versions"]) == {"1", "2"}

    policy = 'path "secret/data/app" { capabilities = ["read"] }\n'
    assert s.bao("policy", "write", "app-read", "-", input=policy).returncode == 0
    token = s.bao("token", "create", "-policy=app-read", "-ttl=1h", "-field=token").stdout.strip()
    assert token.startswith("hvs.")
    ok = s.bao("kv", "get", "-field=user", "secret/app", token=token)
    assert ok.returncode == 0 and ok.stdout.strip() == "admin"
    denied = s.bao("kv", "put", "secret/app", "user=mallory", token=token)
    assert denied.returncode == 2 and "permission denied" in denied.stderr
    assert s.bao("kv", "get", "-field=user", "secret/app").stdout.strip() == "admin"

    assert s.bao("operator", "seal").returncode == 0
    r = httpx.get(f"{s.addr}/v1/secret/data/app", headers={"X-Vault-Token": s.root_token})
    assert r.status_code == 503 and r.json() == {"errors": ["Vault is sealed"]}
    for key in s.keys[2:5]:
        s.bao("operator", "unseal", key, token="")
    assert s.bao("kv", "get", "-field=user", "secret/app").stdout.strip() == "admin"

    assert s.stop() == 0  # SIGTERM is a graceful stop
    s.start()
    assert s.bao("status", token="").returncode == 2  # comes back sealed
    for key in s.keys[:3]:
        s.bao("operator", "unseal", key, token="")
    assert s.bao("kv", "get", "-field=password", "secret/app").stdout.strip() == "correct-horse"
    assert s.bao("kv", "get", "-field=user", "secret/app", token=token).stdout.strip() == "admin"


def test_nothing_secret_reaches_the_storage_files(sqlite_server: RunningServer) -> None:
    s = sqlite_server
    _init_and_unseal(s)
    s.bao("secrets", "enable", "-path=secret", "-version=2", "kv")
    marker = "TOPSECRET-c1a6f0e2-value"
    assert s.bao("kv", "put", "secret/db", f"password={marker}").returncode == 0
    token = s.bao("token", "create", "-policy=default", "-field=token").stdout.strip()
    accessor = json.loads(s.bao("token", "lookup", "-format=json", token).stdout)["data"]["accessor"]
    s.bao("write", "cubbyhole/note", f"v={marker}-cubby")
    s.stop()  # flush everything: the WAL is checkpointed or left beside the db, both are read below
    raw = b"".join(p.read_bytes() for p in (s.workdir / "data").iterdir() if p.is_file())
    assert raw, "no storage files written"
    for secret in [marker, s.root_token, token, accessor, *s.keys]:
        assert secret.encode() not in raw, f"{secret[:8]}… found in plaintext on disk"
    import base64

    for key in s.keys:  # nor the raw bytes of any key share
        assert base64.b64decode(key) not in raw
