"""The real clients against a Strongroom server process and the test slapd: hvac's
``client.auth.ldap`` and the bao CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import hvac
import hvac.exceptions
import pytest
from tests.auth.ldap.conftest import ADMIN_DN, ADMIN_PW, GROUPS, USERS, Directory
from tests.compat.conftest import RunningServer, sqlite_server_process
from tests.compat.test_getting_started_bao import _init_and_unseal


@pytest.fixture
def server(tmp_path: Path, directory: Directory) -> Iterator[RunningServer]:
    s = sqlite_server_process(tmp_path)
    s.start()
    _init_and_unseal(s)
    yield s
    if s.proc is not None and s.proc.poll() is None:
        s.stop()


def test_hvac_ldap(server: RunningServer, directory: Directory) -> None:
    client = hvac.Client(url=server.addr, token=server.root_token)
    client.sys.enable_auth_method("ldap")
    client.auth.ldap.configure(url=directory.url, binddn=ADMIN_DN, bindpass=ADMIN_PW, userdn=USERS,
                               userattr="uid", groupdn=GROUPS, groupfilter="(member={{.UserDN}})", groupattr="cn")
    config = client.auth.ldap.read_configuration()["data"]
    assert config["userattr"] == "uid" and "bindpass" not in config
    client.auth.ldap.create_or_update_group("devs", policies=["dev"])
    client.auth.ldap.create_or_update_user("bob", policies=["bob"], groups=["extra"])
    client.auth.ldap.create_or_update_group("extra", policies=["x"])
    assert client.auth.ldap.read_group("devs")["data"]["policies"] == ["dev"]
    assert client.auth.ldap.read_user("bob")["data"] == {"groups": "extra", "policies": ["bob"]}
    assert client.auth.ldap.list_groups()["data"]["keys"] == ["devs", "extra"]
    assert client.auth.ldap.list_users()["data"]["keys"] == ["bob"]

    user = hvac.Client(url=server.addr)
    auth = user.auth.ldap.login("bob", "bob-pw")["auth"]
    assert auth["policies"] == ["bob", "default", "dev", "x"] and auth["metadata"] == {"username": "bob"}
    assert user.is_authenticated() and user.lookup_token()["data"]["display_name"] == "ldap-bob"
    with pytest.raises(hvac.exceptions.InvalidRequest, match="failed to bind as user"):
        hvac.Client(url=server.addr).auth.ldap.login("bob", "wrong")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="failed to bind as user"):
        hvac.Client(url=server.addr).auth.ldap.login("b*", "bob-pw")
    client.auth.ldap.delete_user("bob")
    client.auth.ldap.delete_group("extra")
    assert hvac.Client(url=server.addr).auth.ldap.login("bob", "bob-pw")["auth"]["policies"] == ["default", "dev"]


def test_bao_cli_ldap(server: RunningServer, directory: Directory) -> None:
    def ok(*args: str, token: str | None = None) -> str:
        r = server.bao(*args, token=token)
        assert r.returncode == 0, r.stderr
        return r.stdout

    ok("auth", "enable", "ldap")
    ok("write", "auth/ldap/config", f"url={directory.url}", f"userdn={USERS}", "userattr=uid",
       f"groupdn={GROUPS}", "groupfilter=(member={{.UserDN}})")
    ok("write", "auth/ldap/groups/ops", "policies=ops")
    # This OpenBao CLI build has no ldap login helper ("Unknown auth method: ldap": OpenBao ships ldap
    # as an external plugin), so the CLI logs in through the generic write, as its docs allow.
    out = json.loads(ok("write", "-format=json", "auth/ldap/login/bob", "password=bob-pw", token=""))
    assert out["auth"]["policies"] == ["default", "ops"] and out["auth"]["metadata"] == {"username": "bob"}
    token = ok("write", "-field=token", "auth/ldap/login/alice", "password=alice-pw", token="").strip()
    looked = json.loads(ok("token", "lookup", "-format=json", token=token))
    assert looked["data"]["display_name"] == "ldap-alice"
    bad = server.bao("write", "auth/ldap/login/alice", "password=nope", token="")
    assert bad.returncode == 2 and "failed to bind as user" in bad.stderr


def test_strongroom_cli_login_method_ldap(server: RunningServer, directory: Directory) -> None:
    def ok(*args: str) -> str:
        r = server.bao(*args)
        assert r.returncode == 0, r.stderr
        return r.stdout

    ok("auth", "enable", "ldap")
    ok("write", "auth/ldap/config", f"url={directory.url}", f"userdn={USERS}", "userattr=uid")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env.update(VAULT_ADDR=server.addr, HOME=str(server.workdir))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "strongroom", *args], capture_output=True, text=True,
                              env=env, timeout=60)

    r = cli("login", "-method=ldap", "-token-only", "username=carol", "password=carol-pw")
    assert r.returncode == 0, r.stderr
    looked = json.loads(ok("token", "lookup", "-format=json", r.stdout.strip()))
    assert looked["data"]["meta"] == {"username": "carol"}
    bad = cli("login", "-method=ldap", "username=carol", "password=nope")
    assert bad.returncode == 2 and "failed to bind as user" in bad.stderr
