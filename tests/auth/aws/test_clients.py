"""The aws auth method (iam) against a real Strongroom server process, driven by hvac's
``auth.aws`` API (its own SigV4 signer, signing for https://sts.amazonaws.com/ as always), with moto
behind the configured sts_endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import pytest
from tests.auth.aws.conftest import ACCOUNT, make_user
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


def test_hvac_iam_login(server: RunningServer, moto: str, iam: Any) -> None:
    client = hvac.Client(url=server.addr, token=server.root_token)
    client.sys.enable_auth_method("aws")
    client.auth.aws.configure(sts_endpoint=moto, sts_region="us-east-1", iam_endpoint=moto,
                              iam_server_id_header_value="srv-1")
    arn, key, secret = make_user(iam, "alice")
    assert client.auth.aws.read_config()["sts_endpoint"] == moto
    client.auth.aws.create_role("alice", auth_type="iam", bound_iam_principal_arn=[
        f"arn:aws:iam::{ACCOUNT}:user/alice"], policies=["dev"], ttl="1h")
    assert client.auth.aws.read_role("alice")["bound_iam_principal_arn"] == [f"arn:aws:iam::{ACCOUNT}:user/alice"]
    assert client.auth.aws.list_roles()["keys"] == ["alice"]

    app = hvac.Client(url=server.addr)
    auth = app.auth.aws.iam_login(key, secret, role="alice", header_value="srv-1")["auth"]
    assert auth["policies"] == ["default", "dev"] and auth["lease_duration"] == 3600
    assert auth["metadata"]["client_arn"] == arn and app.is_authenticated()

    with pytest.raises(hvac.exceptions.InvalidRequest, match="missing header"):
        hvac.Client(url=server.addr).auth.aws.iam_login(key, secret, role="alice")
    _, bkey, bsecret = make_user(iam, "bob")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="does not belong to the role"):
        hvac.Client(url=server.addr).auth.aws.iam_login(bkey, bsecret, role="alice", header_value="srv-1")
    client.auth.aws.delete_role("alice")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="entry for role alice not found"):
        hvac.Client(url=server.addr).auth.aws.iam_login(key, secret, role="alice", header_value="srv-1")


def test_hvac_ec2_login(server: RunningServer, moto: str) -> None:
    from tests.auth.aws.conftest import boto
    from tests.auth.aws.test_ec2 import SIGNER, document, run_instance

    client = hvac.Client(url=server.addr, token=server.root_token)
    client.sys.enable_auth_method("aws")
    client.auth.aws.configure(endpoint=moto, access_key="AKIAX", secret_key="s")
    client.auth.aws.create_certificate_configuration("test", SIGNER.pem)
    assert client.auth.aws.read_certificate_configuration("test")["type"] == "pkcs7"
    iid, ami = run_instance(boto("ec2", moto))
    client.auth.aws.create_role("web", auth_type="ec2", bound_ami_id=[ami], policies=["web"])
    pk = SIGNER.pkcs7(document(iid, ami))
    vm = hvac.Client(url=server.addr)
    auth = vm.auth.aws.ec2_login(pk, nonce="vm-nonce", role="web")["auth"]
    assert auth["policies"] == ["default", "web"] and auth["metadata"]["instance_id"] == iid and vm.is_authenticated()
    with pytest.raises(hvac.exceptions.InvalidRequest, match="client nonce mismatch"):
        hvac.Client(url=server.addr).auth.aws.ec2_login(pk, nonce="stolen", role="web")
    hvac.Client(url=server.addr).auth.aws.ec2_login(pk, nonce="vm-nonce", role="web")
