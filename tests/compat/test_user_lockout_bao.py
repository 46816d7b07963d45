"""User lockout (OpenBao's) on a real Strongroom server, driven by the real bao CLI and hvac: the
server config's user_lockout stanzas, a tuned mount, sys/locked-users, expiry, and a lock that
survives a restart."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import hvac
import hvac.exceptions
import pytest

from .conftest import RunningServer, sqlite_server_process

CONFIG = """
user_lockout "userpass" {
  lockout_threshold = 3
  lockout_duration = "2s"
}
user_lockout "approle" {
  disable_lockout = true
}
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    s = sqlite_server_process(tmp_path, top=CONFIG)
    s.start()
    init = hvac.Client(url=s.addr).sys.initialize(secret_shares=1, secret_threshold=1)
    s.keys, s.root_token = init["keys_base64"], init["root_token"]
    hvac.Client(url=s.addr).sys.submit_unseal_key(s.keys[0])
    yield s
    if s.proc is not None and s.proc.poll() is None:
        s.stop()


def login(s: RunningServer, password: str, path: str = "userpass") -> tuple[int, str]:
    out = s.bao("login", "-method=userpass", f"-path={path}", "-no-store", "-format=json", "username=alice",
                f"password={password}", token="")
    return out.returncode, out.stdout + out.stderr


def test_bao_cli_lockout_unlock_expiry_and_restart(server: RunningServer) -> None:
    s = server
    assert s.bao("auth", "enable", "userpass").returncode == 0
    assert s.bao("auth", "enable", "-path=people", "userpass").returncode == 0
    for mount in ("userpass", "people"):
        assert s.bao("write", f"auth/{mount}/users/alice", "password=right-pw").returncode == 0
    client = hvac.Client(url=s.addr, token=s.root_token)
    accessor = client.sys.list_auth_methods()["data"]["userpass/"]["accessor"]

    # Three wrong passwords (the config's threshold) lock alice on userpass/.
    for _ in range(3):
        code, out = login(s, "wrong-pw")
        assert code == 2 and "invalid username or password" in out, out
    code, out = login(s, "right-pw")
    assert code == 2 and "Code: 403" in out and "permission denied" in out, out
    with pytest.raises(hvac.exceptions.Forbidden):
        hvac.Client(url=s.addr).auth.userpass.login("alice", "right-pw")
    locked = client.read("sys/locked-users")["data"]
    assert locked["total"] == 1
    assert locked["by_namespace"][0]["mount_accessors"] == [
        {"mount_accessor": accessor, "counts": 1, "alias_identifiers": ["alice"]}]
    # The other mount of the same type has its own counters.
    assert login(s, "right-pw", "people")[0] == 0

    # Unlocking through the API lets the right password in at once.
    client.adapter.post(f"/v1/sys/locked-users/{accessor}/unlock/alice")
    assert login(s, "right-pw")[0] == 0
    # lockout_duration (2s here) unlocks by itself.
    for _ in range(3):
        login(s, "wrong-pw")
    assert login(s, "right-pw")[0] == 2
    time.sleep(2.2)
    assert login(s, "right-pw")[0] == 0

    # A tuned mount: two failures and a lock of an hour, shown by the tune read.
    tune = s.bao("auth", "tune", "-user-lockout-threshold=2", "-user-lockout-duration=1h", "people/")
    assert tune.returncode == 0, tune.stderr
    shown = json.loads(s.bao("read", "-format=json", "sys/auth/people/tune").stdout)["data"]
    assert (shown["user_lockout_threshold"], shown["user_lockout_duration"]) == (2, 3600)
    for _ in range(2):
        login(s, "wrong-pw", "people")
    assert login(s, "right-pw", "people")[0] == 2

    # The lock survives a restart (it is kept through the barrier).
    assert s.stop() == 0
    s.start()
    assert s.bao("operator", "unseal", s.keys[0], token="").returncode == 0
    code, out = login(s, "right-pw", "people")
    assert code == 2 and "permission denied" in out, out
    assert login(s, "right-pw")[0] == 0


def test_hvac_disable_lockout_per_type(server: RunningServer) -> None:
    client = hvac.Client(url=server.addr, token=server.root_token)
    client.sys.enable_auth_method("approle")
    client.auth.approle.create_or_update_approle("app", token_policies=["default"])
    role_id = client.auth.approle.read_role_id("app")["data"]["role_id"]
    secret_id = client.auth.approle.generate_secret_id("app")["data"]["secret_id"]
    anonymous = hvac.Client(url=server.addr)
    for _ in range(8):  # the config disables lockout for approle
        with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid role or secret ID"):
            anonymous.auth.approle.login(role_id, "wrong-secret")
    assert anonymous.auth.approle.login(role_id, secret_id)["auth"]["client_token"]
    # Tuning approle's lockout is accepted but cannot re-enable it; userpass's can be tuned off.
    client.sys.tune_auth_method("approle", user_lockout_config={"lockout_threshold": "2"})
    for _ in range(3):
        with pytest.raises(hvac.exceptions.InvalidRequest):
            anonymous.auth.approle.login(role_id, "wrong-secret")
    assert anonymous.auth.approle.login(role_id, secret_id)["auth"]["client_token"]
    client.sys.enable_auth_method("userpass")
    client.write("auth/userpass/users/alice", password="right-pw")
    client.sys.tune_auth_method("userpass", user_lockout_config={"lockout_disable": True})
    for _ in range(5):
        with pytest.raises(hvac.exceptions.InvalidRequest):
            anonymous.auth.userpass.login("alice", "wrong-pw")
    assert anonymous.auth.userpass.login("alice", "right-pw")["auth"]["client_token"]
