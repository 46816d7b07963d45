"""hvac (``client.secrets.aws``) and the real bao CLI against a real Strongroom server (a subprocess
on sqlite) whose aws engine talks to the moto server."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import hvac
import hvac.exceptions
import pytest

from tests.compat.conftest import RunningServer, sqlite_server_process
from tests.compat.test_getting_started_bao import _init_and_unseal

from .conftest import READ_S3, ROOT_KEY, ROOT_SECRET, assume_role_policy, boto, user_names


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    s = sqlite_server_process(tmp_path)
    s.start()
    yield s
    if s.proc is not None and s.proc.poll() is None:
        s.stop()


def _wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _hvac_server(s: RunningServer) -> hvac.Client:
    client = hvac.Client(url=s.addr)
    init = client.sys.initialize(secret_shares=1, secret_threshold=1)
    client.sys.submit_unseal_keys(init["keys"])
    client.token = init["root_token"]
    return client


def test_hvac_aws(server: RunningServer, moto: str) -> None:
    client = _hvac_server(server)
    iam = boto("iam", moto)
    client.sys.enable_secrets_engine("aws")
    aws = client.secrets.aws
    aws.configure_root_iam_credentials(ROOT_KEY, ROOT_SECRET, region="us-east-1", iam_endpoint=moto,
                                       sts_endpoint=moto)
    aws.configure_lease("10m", "1h")
    assert aws.read_lease_config()["data"] == {"lease": "10m0s", "lease_max": "1h0m0s"}
    aws.create_or_update_role("app", "iam_user", policy_document=json.loads(READ_S3), iam_tags=["team=core"])
    role = aws.read_role("app")["data"]
    assert role["credential_type"] == "iam_user" and json.loads(role["policy_document"]) == json.loads(READ_S3)
    arn = iam.create_role(RoleName="deploy", AssumeRolePolicyDocument=assume_role_policy())["Role"]["Arn"]
    aws.create_or_update_role("deploy", "assumed_role", role_arns=[arn], default_sts_ttl="15m")
    assert aws.list_roles()["data"]["keys"] == ["app", "deploy"]

    creds = aws.generate_credentials("app")
    assert creds["lease_duration"] == 600 and creds["renewable"] is True
    [username] = user_names(iam)
    who = boto("sts", moto, creds["data"]["access_key"], creds["data"]["secret_key"]).get_caller_identity()
    assert who["Arn"].endswith(f":user/{username}")
    client.sys.revoke_lease(creds["lease_id"])
    assert user_names(iam) == []

    sts = aws.generate_credentials("deploy", endpoint="sts", ttl="20m")
    assert sts["renewable"] is False and 1190 <= sts["lease_duration"] <= 1200
    assert sts["data"]["arn"].startswith("arn:aws:sts::123456789012:assumed-role/deploy/")
    assert aws.generate_credentials("deploy")["lease_duration"] <= 900  # GET creds/, the role's default

    with pytest.raises(hvac.exceptions.InvalidRequest, match="cannot supply role_arns when credential_type"):
        aws.create_or_update_role("bad", "iam_user", role_arns=[arn])
    aws.delete_role("app")
    with pytest.raises(hvac.exceptions.InvalidPath):
        aws.read_role("app")


def test_bao_cli_aws(server: RunningServer, moto: str, tmp_path: Path) -> None:
    s = server
    _init_and_unseal(s)
    iam = boto("iam", moto)
    assert s.bao("secrets", "enable", "aws").returncode == 0
    out = s.bao("write", "aws/config/root", f"access_key={ROOT_KEY}", f"secret_key={ROOT_SECRET}",
                "region=us-east-1", f"iam_endpoint={moto}", f"sts_endpoint={moto}")
    assert out.returncode == 0, out.stderr
    cfg = json.loads(s.bao("read", "-format=json", "aws/config/root").stdout)["data"]
    assert cfg["access_key"] == ROOT_KEY and "secret_key" not in cfg
    (tmp_path / "policy.json").write_text(READ_S3)
    out = s.bao("write", "aws/roles/app", "credential_type=iam_user", f"policy_document=@{tmp_path}/policy.json",
                "iam_tags=team=core", "iam_tags=env=ci")
    assert out.returncode == 0, out.stderr
    role = json.loads(s.bao("read", "-format=json", "aws/roles/app").stdout)["data"]
    assert role["iam_tags"] == {"team": "core", "env": "ci"}
    assert "app" in s.bao("list", "aws/roles").stdout

    out = s.bao("read", "-format=json", "aws/creds/app")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["lease_id"].startswith("aws/creds/app/") and got["data"]["access_key"]
    [username] = user_names(iam)
    tags = iam.list_user_tags(UserName=username)["Tags"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("env", "ci"), ("team", "core")]
    table = s.bao("read", "aws/creds/app")  # the table a user sees
    assert table.returncode == 0 and "access_key" in table.stdout and "secret_key" in table.stdout
    assert len(user_names(iam)) == 2
    out = s.bao("lease", "revoke", "-sync", got["lease_id"])
    assert out.returncode == 0, out.stderr
    assert len(user_names(iam)) == 1
    out = s.bao("lease", "revoke", "-prefix", "aws/creds/app")  # queued (the CLI's default), then done
    assert out.returncode == 0, out.stderr
    _wait_for(lambda: user_names(iam) == [])

    out = s.bao("write", "aws/roles/fed", "credential_type=federation_token", f"policy_document=@{tmp_path}/policy.json")
    assert out.returncode == 0, out.stderr
    sts = json.loads(s.bao("write", "-format=json", "aws/sts/fed", "ttl=15m").stdout)
    assert sts["data"]["security_token"] and sts["renewable"] is False
    bad = s.bao("write", "aws/roles/bad", "credential_type=iam_user", "role_arns=arn:x")
    assert bad.returncode == 2 and ("error(s) validating supplied role data: \"1 error occurred:\\n\\t* cannot supply role_arns when "
                                   "credential_type isn't assumed_role\\n\\n\"") in bad.stderr, bad.stderr
