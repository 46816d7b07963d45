"""userpass and approle against a real Strongroom server process, driven by hvac and by the real
OpenBao CLI the way Vault users drive them."""

from __future__ import annotations

import json

import hvac
import hvac.exceptions
import pytest

from .conftest import RunningServer
from .test_getting_started_bao import _init_and_unseal


def test_hvac_userpass_and_approle(sqlite_server: RunningServer) -> None:
    _init_and_unseal(sqlite_server)
    client = hvac.Client(url=sqlite_server.addr, token=sqlite_server.root_token)
    client.sys.enable_auth_method("userpass")
    client.sys.enable_auth_method("approle")

    client.auth.userpass.create_or_update_user("alice", password="pw1", policies=["dev"])
    assert client.auth.userpass.read_user("alice")["data"]["token_policies"] == ["dev"]
    assert client.auth.userpass.list_user()["data"]["keys"] == ["alice"]
    user = hvac.Client(url=sqlite_server.addr)
    login = user.auth.userpass.login("alice", "pw1")
    assert login["auth"]["policies"] == ["default", "dev"] and user.is_authenticated()
    assert user.lookup_token()["data"]["display_name"] == "userpass-alice"
    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid username or password"):
        hvac.Client(url=sqlite_server.addr).auth.userpass.login("alice", "wrong")
    client.auth.userpass.update_password_on_user("alice", "pw2")
    assert hvac.Client(url=sqlite_server.addr).auth.userpass.login("alice", "pw2")["auth"]["client_token"]
    client.auth.userpass.delete_user("alice")

    client.auth.approle.create_or_update_approle("web", token_policies=["dev"], token_ttl="1h",
                                                 secret_id_num_uses=3)
    assert client.auth.approle.read_role("web")["data"]["secret_id_num_uses"] == 3
    assert client.auth.approle.list_roles()["data"]["keys"] == ["web"]
    role_id = client.auth.approle.read_role_id("web")["data"]["role_id"]
    secret = client.auth.approle.generate_secret_id("web", metadata={"team": "blue"})["data"]
    looked = client.auth.approle.read_secret_id("web", secret["secret_id"])["data"]
    assert looked["metadata"] == {"team": "blue"} and looked["secret_id_num_uses"] == 3
    assert client.auth.approle.read_secret_id_accessor("web", secret["secret_id_accessor"])["data"] == looked
    assert client.auth.approle.list_secret_id_accessors("web")["data"]["keys"] == [secret["secret_id_accessor"]]
    app = hvac.Client(url=sqlite_server.addr)
    auth = app.auth.approle.login(role_id, secret["secret_id"])["auth"]
    assert auth["metadata"] == {"role_name": "web", "team": "blue"} and auth["lease_duration"] == 3600
    assert app.is_authenticated()
    custom = client.auth.approle.create_custom_secret_id("web", "my-own-secret")["data"]
    assert custom["secret_id"] == "my-own-secret"
    client.auth.approle.destroy_secret_id("web", "my-own-secret")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid role or secret ID"):
        hvac.Client(url=sqlite_server.addr).auth.approle.login(role_id, "my-own-secret")
    client.auth.approle.destroy_secret_id_accessor("web", secret["secret_id_accessor"])
    assert client.adapter.post("/v1/auth/approle/tidy/secret-id").status_code == 202
    client.auth.approle.delete_role("web")


def test_bao_cli_userpass_and_approle(sqlite_server: RunningServer) -> None:
    s = sqlite_server
    _init_and_unseal(s)

    def ok(*args: str, token: str | None = None) -> str:
        r = s.bao(*args, token=token)
        assert r.returncode == 0, r.stderr
        return r.stdout

    ok("auth", "enable", "userpass")
    ok("auth", "enable", "approle")
    ok("write", "auth/userpass/users/alice", "password=pw1", "token_policies=dev")
    out = json.loads(ok("login", "-method=userpass", "-format=json", "-no-store", "username=alice", "password=pw1",
                        token=""))
    assert out["auth"]["policies"] == ["default", "dev"] and out["auth"]["metadata"] == {"username": "alice"}
    token = ok("login", "-method=userpass", "-token-only", "username=alice", "password=pw1", token="")
    looked = json.loads(ok("token", "lookup", "-format=json", token=token.strip()))
    assert looked["data"]["display_name"] == "userpass-alice"
    bad = s.bao("login", "-method=userpass", "username=alice", "password=nope", token="")
    assert bad.returncode == 2 and "invalid username or password" in bad.stderr

    ok("write", "auth/approle/role/web", "token_policies=dev", "secret_id_ttl=10m")
    role_id = ok("read", "-field=role_id", "auth/approle/role/web/role-id").strip()
    secret_id = ok("write", "-f", "-field=secret_id", "auth/approle/role/web/secret-id").strip()
    login = json.loads(ok("write", "-format=json", "auth/approle/login", f"role_id={role_id}",
                          f"secret_id={secret_id}", token=""))
    assert login["auth"]["metadata"] == {"role_name": "web"} and login["auth"]["client_token"]
    # Wrapped secret-id delivery: the wrapping token unwraps once, to a secret id that logs in.
    wrap = json.loads(ok("write", "-f", "-wrap-ttl=60s", "-format=json", "auth/approle/role/web/secret-id"))
    unwrapped = json.loads(ok("unwrap", "-format=json", wrap["wrap_info"]["token"], token=""))
    wrapped_sid = unwrapped["data"]["secret_id"]
    ok("write", "auth/approle/login", f"role_id={role_id}", f"secret_id={wrapped_sid}", token="")
    denied = s.bao("write", "auth/approle/login", f"role_id={role_id}", "secret_id=wrong", token="")
    assert denied.returncode == 2 and "invalid role or secret ID" in denied.stderr
