"""Password policies and the rabbitmq engine driven by the real `bao` CLI and hvac against a real
Strongroom server process (sqlite storage), with the credentials checked on the real local broker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import hvac
import pytest

from .conftest import RunningServer, sqlite_server_process

MGMT = "http://127.0.0.1:15672"
POLICY = 'length = 24\nrule "charset" {\n  charset = "abcdef"\n  min-chars = 2\n}\nrule "charset" {\n  charset = "0123"\n  min-chars = 2\n}\n'


def _broker_or_skip() -> None:
    try:
        ok = httpx.get(f"{MGMT}/api/whoami", auth=("guest", "guest"), timeout=3).status_code == 200
    except httpx.HTTPError:
        ok = False
    if not ok:
        pytest.skip(f"RabbitMQ management API at {MGMT} unreachable with guest/guest (run .ci/run)")


def _whoami(user: str, password: str) -> int:
    return httpx.get(f"{MGMT}/api/whoami", auth=(user, password), timeout=5).status_code


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    s = sqlite_server_process(tmp_path_factory.mktemp("rabbitmq-compat"))
    s.start()
    client = hvac.Client(url=s.addr)
    init = client.sys.initialize(secret_shares=1, secret_threshold=1)
    client.sys.submit_unseal_keys(init["keys"])
    s.root_token, s.keys = init["root_token"], init["keys"]
    yield s
    s.stop()


def test_bao_password_policies(server: RunningServer, tmp_path: Path) -> None:
    policy_file = tmp_path / "p.hcl"
    policy_file.write_text(POLICY)
    out = server.bao("write", "sys/policies/password/p", f"policy=@{policy_file}")
    assert out.returncode == 0, out.stderr
    got = json.loads(server.bao("read", "-format=json", "sys/policies/password/p").stdout)
    assert got["data"]["policy"] == POLICY
    for _ in range(5):
        out = server.bao("read", "-format=json", "sys/policies/password/p/generate")
        assert out.returncode == 0, out.stderr
        pw = json.loads(out.stdout)["data"]["password"]
        assert len(pw) == 24 and set(pw) <= set("abcdef0123")
        assert sum(ch in "abcdef" for ch in pw) >= 2 and sum(ch in "0123" for ch in pw) >= 2
    field = server.bao("read", "-field=password", "sys/policies/password/p/generate")
    assert len(field.stdout.strip()) == 24
    assert json.loads(server.bao("list", "-format=json", "sys/policies/password").stdout) == ["p"]
    # An impossible policy: the CLI shows the server's 400 and its message.
    policy_file.write_text('length = 4\nrule "charset" {\n  charset = "a"\n  min-chars = 5\n}\n')
    bad = server.bao("write", "sys/policies/password/bad", f"policy=@{policy_file}")
    assert bad.returncode == 2 and "Code: 400" in bad.stderr
    assert "specified rules require at least 5 characters but 4 is specified" in bad.stderr
    assert server.bao("delete", "sys/policies/password/p").returncode == 0
    missing = server.bao("read", "sys/policies/password/p/generate")
    assert missing.returncode == 2 and "No value found at sys/policies/password/p/generate" in missing.stderr
    # hvac has no helper for these paths; its generic read/write work.
    client = hvac.Client(url=server.addr, token=server.root_token)
    client.write_data("sys/policies/password/h", data={"policy": POLICY})
    assert len(client.read("sys/policies/password/h/generate")["data"]["password"]) == 24


def test_hvac_rabbitmq(server: RunningServer) -> None:
    _broker_or_skip()
    client = hvac.Client(url=server.addr, token=server.root_token)
    client.sys.enable_secrets_engine("rabbitmq", path="rabbitmq")
    client.secrets.rabbitmq.configure(connection_uri=MGMT, username="guest", password="guest")
    client.secrets.rabbitmq.configure_lease(ttl=3600, max_ttl=7200)
    vhosts = json.dumps({"/": {"configure": "^hvac-.*", "write": ".*", "read": ".*"}})
    client.secrets.rabbitmq.create_role("hv", tags="management", vhosts=vhosts)
    role = client.secrets.rabbitmq.read_role("hv")["data"]
    assert role["tags"] == "management" and role["vhosts"]["/"]["configure"] == "^hvac-.*"
    creds = client.secrets.rabbitmq.generate_credentials("hv")
    user, pw = creds["data"]["username"], creds["data"]["password"]
    assert creds["lease_duration"] == 3600 and creds["renewable"] is True
    assert _whoami(user, pw) == 200
    renewed = client.sys.renew_lease(creds["lease_id"], increment=60)
    assert renewed["lease_duration"] == 3600  # config/lease's ttl, as Vault
    client.sys.revoke_lease(creds["lease_id"])
    assert _whoami(user, pw) == 401
    client.secrets.rabbitmq.delete_role("hv")
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.secrets.rabbitmq.read_role("hv")


def test_bao_rabbitmq(server: RunningServer) -> None:
    _broker_or_skip()
    assert server.bao("secrets", "enable", "-path=rmq", "rabbitmq").returncode == 0
    out = server.bao("write", "rmq/config/connection", f"connection_uri={MGMT}", "username=guest", "password=guest")
    assert out.returncode == 0, out.stderr
    vhosts = json.dumps({"/": {"configure": ".*", "write": ".*", "read": ".*"}})
    out = server.bao("write", "rmq/roles/r", "tags=management", f"vhosts={vhosts}")
    assert out.returncode == 0, out.stderr
    assert json.loads(server.bao("list", "-format=json", "rmq/roles").stdout) == ["r"]
    out = server.bao("read", "-format=json", "rmq/creds/r")
    assert out.returncode == 0, out.stderr
    creds = json.loads(out.stdout)
    user, pw = creds["data"]["username"], creds["data"]["password"]
    assert creds["lease_id"].startswith("rmq/creds/r/")
    assert _whoami(user, pw) == 200
    assert server.bao("lease", "revoke", creds["lease_id"]).returncode == 0
    assert _whoami(user, pw) == 401
    # Two more, revoked by prefix.
    users = [json.loads(server.bao("read", "-format=json", "rmq/creds/r").stdout)["data"] for _ in range(2)]
    assert all(_whoami(u["username"], u["password"]) == 200 for u in users)
    assert server.bao("lease", "revoke", "-prefix", "rmq/creds/r").returncode == 0
    assert all(_whoami(u["username"], u["password"]) == 401 for u in users)
    bad = server.bao("read", "rmq/creds/nope")
    assert bad.returncode == 2 and "unknown role: nope" in bad.stderr


def test_lease_survives_restart_and_revoke_deletes_the_user(server: RunningServer) -> None:
    """After a restart and unseal the engine rebuilds its broker client from the stored config, and
    the lease issued before still deletes its user (and a named password policy still applies)."""
    _broker_or_skip()
    client = hvac.Client(url=server.addr, token=server.root_token)
    client.sys.enable_secrets_engine("rabbitmq", path="rmq-restart")
    client.write_data("sys/policies/password/long", data={"policy": 'length = 40\nrule "charset" {\n charset = "xyz"\n}'})
    client.write_data("rmq-restart/config/connection", data={
        "connection_uri": MGMT, "username": "guest", "password": "guest", "password_policy": "long"})
    client.write_data("rmq-restart/roles/r", data={"tags": "management"})
    creds = client.read("rmq-restart/creds/r")
    user, pw = creds["data"]["username"], creds["data"]["password"]
    assert len(pw) == 40 and _whoami(user, pw) == 200
    server.stop()
    server.start()
    client.sys.submit_unseal_keys(server.keys)
    again = client.read("rmq-restart/creds/r")["data"]
    assert set(again["password"]) <= set("xyz") and len(again["password"]) == 40
    assert server.bao("lease", "revoke", "-prefix", "rmq-restart/creds/r").returncode == 0
    assert _whoami(user, pw) == 401 and _whoami(again["username"], again["password"]) == 401
