"""The github auth method against a real Strongroom server process, driven by hvac and by the real
OpenBao CLI, with the local GitHub API of fakegithub.py behind it.

OpenBao's CLI no longer knows ``login -method=github`` (OpenBao dropped the method), so the CLI
test logs in with ``bao write auth/github/login token=...`` and uses the token it gets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import hvac
import hvac.exceptions
import pytest
from tests.auth.github.conftest import ORG_ID
from tests.auth.github.fakegithub import FakeGitHub, Org, Team, User
from tests.compat.conftest import RunningServer, sqlite_server_process
from tests.compat.test_getting_started_bao import _init_and_unseal


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    (tmp_path / "srv").mkdir()
    s = sqlite_server_process(tmp_path / "srv")
    s.start()
    _init_and_unseal(s)
    yield s
    if s.proc is not None and s.proc.poll() is None:
        s.stop()


def _users(gh: FakeGitHub) -> None:
    acme = gh.orgs["acme"]
    gh.users["tok-alice"] = User("alice", 1, [acme], [Team("Dev Ops", "dev-ops", acme, 5)])
    gh.users["tok-bob"] = User("bob", 2, [Org("other", 7)], [])


def test_hvac_github(server: RunningServer, github: FakeGitHub) -> None:
    _users(github)
    client = hvac.Client(url=server.addr, token=server.root_token)
    client.sys.enable_auth_method("github", path="gh")
    client.auth.github.configure("acme", base_url=github.base_url, ttl="1h", mount_point="gh")
    config = client.auth.github.read_configuration(mount_point="gh")["data"]
    assert config["organization_id"] == ORG_ID and config["token_ttl"] == 3600
    client.auth.github.map_team("dev-ops", policies=["ops", "shared"], mount_point="gh")
    client.auth.github.map_user("alice", policies=["mine"], mount_point="gh")
    assert client.auth.github.read_team_mapping("dev-ops", mount_point="gh")["data"]["value"] == "ops,shared"
    assert client.auth.github.read_user_mapping("alice", mount_point="gh")["data"]["value"] == "mine"

    person = hvac.Client(url=server.addr)
    auth = person.auth.github.login("tok-alice", mount_point="gh")["auth"]
    assert auth["policies"] == ["default", "mine", "ops", "shared"] and auth["lease_duration"] == 3600
    assert auth["metadata"]["org"] == "acme" and auth["metadata"]["username"] == "alice"
    assert person.is_authenticated()
    assert person.auth.token.renew_self()["auth"]["client_token"] == auth["client_token"]
    with pytest.raises(hvac.exceptions.InvalidRequest, match="user is not part of required org"):
        hvac.Client(url=server.addr).auth.github.login("tok-bob", mount_point="gh")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="401 Bad credentials"):
        hvac.Client(url=server.addr).auth.github.login("tok-nobody", mount_point="gh")


def test_bao_cli_github(server: RunningServer, github: FakeGitHub) -> None:
    _users(github)
    s = server
    assert s.bao("auth", "enable", "github").returncode == 0
    out = s.bao("write", "auth/github/config", "organization=acme", f"base_url={github.base_url}",
                "token_policies=base")
    assert out.returncode == 0, out.stderr
    assert s.bao("write", "auth/github/map/teams/dev-ops", "value=ops").returncode == 0
    out = s.bao("list", "-format=json", "auth/github/map/teams")
    assert json.loads(out.stdout) == ["dev-ops"]
    out = s.bao("write", "-format=json", "auth/github/login", "token=tok-alice", token="")
    assert out.returncode == 0, out.stderr
    auth = json.loads(out.stdout)["auth"]
    assert auth["policies"] == ["base", "default", "ops"] and auth["metadata"]["username"] == "alice"
    out = s.bao("token", "lookup", "-format=json", token=auth["client_token"])
    assert json.loads(out.stdout)["data"]["display_name"] == "github-alice"
    out = s.bao("write", "auth/github/login", "token=tok-bob", token="")
    assert out.returncode == 2 and "user is not part of required org" in out.stderr and "Code: 400" in out.stderr
    out = s.bao("read", "-format=json", "auth/github/config")
    assert json.loads(out.stdout)["data"]["organization_id"] == ORG_ID
