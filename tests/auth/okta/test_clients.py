"""The okta auth method against a real Strongroom server process, driven by hvac and by the real
OpenBao CLI, with the local Okta org of fakeokta.py behind it.

OpenBao's CLI no longer knows ``login -method=okta`` (OpenBao dropped the method), so the CLI test
logs in with ``bao write auth/okta/login/NAME password=...``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import hvac
import hvac.exceptions
import pytest
from tests.auth.okta.fakeokta import FakeOkta, Person
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


def test_hvac_okta(server: RunningServer, okta: FakeOkta) -> None:
    okta.add(Person("alice", "pw-1", groups=["Engineering", "Everyone", "Ops"]))
    client = hvac.Client(url=server.addr, token=server.root_token)
    client.sys.enable_auth_method("okta")
    client.auth.okta.configure("acme", api_token=okta.api_token, base_url=okta.url, ttl="1h")
    config = client.auth.okta.read_config()["data"]
    assert config["org_name"] == "acme" and "api_token" not in config and config["token_ttl"] == 3600
    client.auth.okta.register_group("Ops", policies=["ops"])
    client.auth.okta.register_user("alice", groups=["local"], policies=["mine"])
    client.auth.okta.register_group("local", policies=["loc"])
    assert client.auth.okta.read_group("ops")["data"]["policies"] == ["ops"]
    assert client.auth.okta.list_groups()["data"]["keys"] == ["local", "ops"]

    person = hvac.Client(url=server.addr)
    auth = person.auth.okta.login("alice", "pw-1")["auth"]
    assert auth["policies"] == ["default", "loc", "mine", "ops"] and auth["lease_duration"] == 3600
    assert auth["metadata"]["username"] == "alice" and person.is_authenticated()
    person.auth.token.renew_self()
    with pytest.raises(hvac.exceptions.InvalidRequest, match="Authentication failed"):
        hvac.Client(url=server.addr).auth.okta.login("alice", "wrong")


def test_bao_cli_okta(server: RunningServer, okta: FakeOkta) -> None:
    okta.add(Person("bob", "pw-b", groups=["Dev"]))
    s = server
    assert s.bao("auth", "enable", "okta").returncode == 0
    out = s.bao("write", "auth/okta/config", "org_name=acme", f"base_url={okta.url}", f"api_token={okta.api_token}",
                "token_policies=base")
    assert out.returncode == 0, out.stderr
    assert s.bao("write", "auth/okta/groups/dev", "policies=dev").returncode == 0
    out = s.bao("write", "-format=json", "auth/okta/login/bob", "password=pw-b", token="")
    assert out.returncode == 0, out.stderr
    auth = json.loads(out.stdout)["auth"]
    assert auth["policies"] == ["base", "default", "dev"] and auth["metadata"]["policies"] == "dev"
    out = s.bao("write", "auth/okta/login/bob", "password=nope", token="")
    assert out.returncode == 2 and "Authentication failed" in out.stderr and "Code: 400" in out.stderr
    out = s.bao("read", "-format=json", "auth/okta/config")
    assert okta.api_token not in out.stdout and json.loads(out.stdout)["data"]["org_name"] == "acme"
