"""Leases and audit devices with the real OpenBao CLI against a Strongroom server process, and our
`strongroom audit verify` on the log that server wrote."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .conftest import RunningServer, sqlite_server_process
from .test_getting_started_bao import _init_and_unseal


def test_bao_lease_commands_on_token_leases(sqlite_server: RunningServer) -> None:
    s = sqlite_server
    _init_and_unseal(s)
    token = s.bao("token", "create", "-ttl=1h", "-field=token").stdout.strip()
    listed = s.bao("list", "-format=json", "sys/leases/lookup/auth/token/create/")
    assert listed.returncode == 0, listed.stderr
    keys = json.loads(listed.stdout)
    assert len(keys) == 1
    lease_id = "auth/token/create/" + keys[0]
    looked = json.loads(s.bao("lease", "lookup", "-format=json", lease_id).stdout)
    assert looked["data"]["id"] == lease_id and 3500 < looked["data"]["ttl"] <= 3600
    renew = s.bao("lease", "renew", lease_id)
    assert renew.returncode == 2 and "tokens cannot be renewed through this endpoint" in renew.stderr
    assert s.bao("token", "lookup", token=token).returncode == 0
    revoked = s.bao("lease", "revoke", "-sync", lease_id)
    assert revoked.returncode == 0 and "Success! Revoked lease" in revoked.stdout
    assert s.bao("token", "lookup", token=token).returncode == 2

    # Restart: a token's lease comes back, and revoke-prefix still reaches it.
    other = s.bao("token", "create", "-ttl=2h", "-field=token").stdout.strip()
    assert s.stop() == 0
    s.start()
    for key in s.keys[:3]:
        s.bao("operator", "unseal", key, token="")
    assert s.bao("token", "lookup", token=other).returncode == 0
    out = s.bao("lease", "revoke", "-prefix", "-sync", "auth/token/create")
    assert out.returncode == 0, out.stderr
    assert s.bao("token", "lookup", token=other).returncode == 2


def test_bao_audit_commands_and_chain_verify(tmp_path: Path) -> None:
    s = sqlite_server_process(tmp_path, top="unsafe_allow_api_audit_creation = true\n")
    s.start()
    try:
        _init_and_unseal(s)
        log = tmp_path / "audit.log"
        enabled = s.bao("audit", "enable", "file", f"file_path={log}")
        assert enabled.returncode == 0 and "Success! Enabled the file audit device at: file/" in enabled.stdout
        listed = json.loads(s.bao("audit", "list", "-format=json").stdout)
        assert listed["file/"]["type"] == "file"
        assert s.bao("secrets", "enable", "-path=kv", "kv").returncode == 0
        assert s.bao("write", "kv/app", "password=hunter2").returncode == 0
        text = log.read_text()
        assert "hunter2" not in text and s.root_token not in text  # SECURITY: HMAC'd, never plain
        entries = [json.loads(line) for line in text.splitlines()]
        writes = [e for e in entries if e.get("request", {}).get("path") == "kv/app"]
        assert writes and all(e["request"]["data"]["password"].startswith("hmac-sha256:") for e in writes)

        env = {"VAULT_ADDR": s.addr, "VAULT_TOKEN": s.root_token, "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
        verify = [sys.executable, "-m", "strongroom", "audit", "verify", "-path=file/", str(log)]
        ok = subprocess.run(verify, capture_output=True, text=True, env=env, timeout=60)
        assert ok.returncode == 0, ok.stderr
        lines = log.read_text().splitlines(keepends=True)
        log.write_text("".join(lines[:2] + lines[3:]))  # an intruder deletes one line
        bad = subprocess.run(verify, capture_output=True, text=True, env=env, timeout=60)
        assert bad.returncode == 2 and ":3:" in (bad.stdout + bad.stderr)

        disabled = s.bao("audit", "disable", "file/")
        assert disabled.returncode == 0, disabled.stderr
        assert s.bao("audit", "list").returncode == 2  # "No audit devices are enabled."
    finally:
        if s.proc is not None and s.proc.poll() is None:
            s.stop()
