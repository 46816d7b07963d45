"""``python -m strongroom`` as a real child process: exit codes, streams, env, stdin."""

from __future__ import annotations

import json
from typing import Any


def test_version_process(strongroom_process: Any) -> None:
    p = strongroom_process("version")
    assert (p.returncode, p.stdout, p.stderr) == (0, "Strongroom v0.1.0\n", "")
    p = strongroom_process("--version")
    assert p.stdout.splitlines()[0] == "Strongroom v0.1.0"


def test_status_and_unreachable(strongroom_process: Any) -> None:
    p = strongroom_process("status", "-format=json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["sealed"] is False
    p = strongroom_process("status", VAULT_ADDR="http://127.0.0.1:1")
    assert p.returncode == 1
    assert p.stdout == ""
    assert p.stderr.startswith("Error checking seal status: ")


def test_kv_roundtrip_with_stdin_and_field(strongroom_process: Any, name: str) -> None:
    p = strongroom_process("kv", "put", f"secret/{name}", "-", stdin='{"user": "alice", "n": 1}')
    assert p.returncode == 0, p.stderr
    assert f"secret/data/{name}" in p.stdout
    p = strongroom_process("kv", "get", "-field=user", f"secret/{name}")
    assert (p.returncode, p.stdout) == (0, "alice")  # no newline when stdout is not a terminal
    p = strongroom_process("kv", "put", f"secret/{name}", "note=-", stdin="from stdin\n")
    assert p.returncode == 0, p.stderr
    p = strongroom_process("kv", "get", "-format=json", f"secret/{name}")
    assert json.loads(p.stdout)["data"]["data"] == {"note": "from stdin\n"}


def test_strongroom_env_takes_precedence(strongroom_process: Any, dev_server: Any) -> None:
    p = strongroom_process("token", "lookup", "-format=json", VAULT_TOKEN="not-a-valid-token",
                           STRONGROOM_TOKEN="root")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["data"]["id"] == "root"
    p = strongroom_process("status", VAULT_ADDR="http://127.0.0.1:1", BAO_ADDR="http://127.0.0.1:1",
                           STRONGROOM_ADDR=dev_server.addr)
    assert p.returncode == 0, p.stderr


def test_permission_denied_exit_2(strongroom_process: Any, name: str) -> None:
    p = strongroom_process("token", "create", "-field=token", "-policy=default")
    assert p.returncode == 0, p.stderr
    token = p.stdout
    p = strongroom_process("write", f"secret/data/{name}", "-", stdin='{"data": {"a": 1}}', VAULT_TOKEN=token)
    assert p.returncode == 2
    assert p.stdout == ""
    assert p.stderr.startswith(f"Error writing data to secret/data/{name}: Error making API request.")
    assert "Code: 403. Errors:" in p.stderr and "permission denied" in p.stderr
