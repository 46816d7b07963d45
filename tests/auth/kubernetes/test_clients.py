"""The kubernetes auth method against a real Strongroom server process, driven by hvac and by the
real OpenBao CLI, with the local TokenReview API of conftest.py behind it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import hvac
import hvac.exceptions
import pytest
from tests.auth.kubernetes.conftest import Account, FakeKubeAPI, Signer
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


def test_hvac_kubernetes(server: RunningServer, kube_api: FakeKubeAPI, signer: Signer) -> None:
    client = hvac.Client(url=server.addr, token=server.root_token)
    client.sys.enable_auth_method("kubernetes")
    client.auth.kubernetes.configure(kube_api.url, kubernetes_ca_cert=kube_api.ca_pem,
                                     token_reviewer_jwt="reviewer-jwt", disable_local_ca_jwt=True)
    config = client.auth.kubernetes.read_config()
    assert config["kubernetes_host"] == kube_api.url and config["token_reviewer_jwt_set"] is True
    assert "token_reviewer_jwt" not in config
    client.auth.kubernetes.create_role("app", bound_service_account_names=["app"],
                                       bound_service_account_namespaces=["prod", "team-*"],
                                       policies=["app-read"], ttl="1h", audience="vault")
    role = client.auth.kubernetes.read_role("app")
    assert role["bound_service_account_namespaces"] == ["prod", "team-*"] and role["audience"] == "vault"
    assert client.auth.kubernetes.list_roles()["keys"] == ["app"]

    acct = Account("team-red", "app")
    jwt = kube_api.add(signer, acct, aud=["vault"])
    pod = hvac.Client(url=server.addr)
    auth = pod.auth.kubernetes.login("app", jwt)["auth"]
    assert auth["policies"] == ["app-read", "default"] and auth["lease_duration"] == 3600
    assert auth["metadata"]["service_account_uid"] == acct.uid and pod.is_authenticated()
    with pytest.raises(hvac.exceptions.Forbidden, match="namespace not authorized"):
        hvac.Client(url=server.addr).auth.kubernetes.login(
            "app", kube_api.add(signer, Account("dev", "app"), aud=["vault"]))
    with pytest.raises(hvac.exceptions.Forbidden, match="permission denied"):
        hvac.Client(url=server.addr).auth.kubernetes.login("app", Signer().projected(acct, ["vault"]))
    client.auth.kubernetes.delete_role("app")
    with pytest.raises(hvac.exceptions.InvalidRequest, match='invalid role name "app"'):
        hvac.Client(url=server.addr).auth.kubernetes.login("app", jwt)


def test_bao_cli_kubernetes(server: RunningServer, kube_api: FakeKubeAPI, signer: Signer, tmp_path: Path) -> None:
    s = server
    assert s.bao("auth", "enable", "kubernetes").returncode == 0
    ca = tmp_path / "ca.crt"
    ca.write_text(kube_api.ca_pem)
    out = s.bao("write", "auth/kubernetes/config", f"kubernetes_host={kube_api.url}", f"kubernetes_ca_cert=@{ca}",
                "token_reviewer_jwt=reviewer-jwt", "disable_local_ca_jwt=true")
    assert out.returncode == 0, out.stderr
    out = s.bao("write", "auth/kubernetes/role/r", "bound_service_account_names=app",
                "bound_service_account_namespaces=prod", "token_policies=dev")
    assert out.returncode == 0, out.stderr
    jwt = kube_api.add(signer, Account("prod", "app"))
    out = s.bao("write", "-format=json", "auth/kubernetes/login", "role=r", f"jwt={jwt}", token="")
    assert out.returncode == 0, out.stderr
    auth = json.loads(out.stdout)["auth"]
    assert auth["policies"] == ["default", "dev"] and auth["metadata"]["service_account_name"] == "app"
    out = s.bao("login", "-method=kubernetes", "-format=json", "role=r", f"jwt={jwt}", token="")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["auth"]["token_policies"] == ["default", "dev"]
    out = s.bao("write", "auth/kubernetes/login", "role=r", f"jwt={signer.projected(Account('prod', 'db'))}", token="")
    assert out.returncode == 2 and "service account name not authorized" in out.stderr and "Code: 403" in out.stderr
    out = s.bao("read", "-format=json", "auth/kubernetes/config")
    assert json.loads(out.stdout)["data"]["token_reviewer_jwt_set"] is True and "reviewer-jwt" not in out.stdout
