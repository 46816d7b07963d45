"""The legacy app-id auth method against a real Strongroom server process, driven by hvac and the
real `bao` CLI: opt-in mounting with a deprecation warning, the two maps, login (both forms), CIDR,
renewal, and the refusals (Vault's 400s, no token)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import hvac
import hvac.exceptions
import pytest

from tests.compat.conftest import RunningServer, sqlite_server_process

INVALID = "invalid user ID or app ID"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    d: Path = tmp_path_factory.mktemp("appid")
    s = sqlite_server_process(d)
    s.start()
    try:
        c = hvac.Client(url=s.addr)
        init = c.sys.initialize(1, 1)
        c.sys.submit_unseal_key(init["keys"][0])
        s.root_token = init["root_token"]
        yield s
    finally:
        if s.proc is not None and s.proc.poll() is None:
            s.stop()


@pytest.fixture
def admin(server: RunningServer) -> Iterator[hvac.Client]:
    client = hvac.Client(url=server.addr, token=server.root_token)
    if "app-id/" not in client.sys.list_auth_methods()["data"]:
        client.sys.enable_auth_method("app-id")
    client.write("auth/app-id/map/app-id/web-app", value="web,ops", display_name="webapp")
    client.write("auth/app-id/map/user-id/host-1", value="web-app,other-app")
    yield client
    client.sys.disable_auth_method("app-id")


def _login(server: RunningServer, path: str = "auth/app-id/login", **body: Any) -> hvac.Client:
    """hvac's generic login: POSTs the body and keeps the token it gets."""
    client = hvac.Client(url=server.addr)
    client.login(f"/v1/{path}", json=body)
    return client


def _raw(server: RunningServer, path: str, body: dict[str, Any], token: str | None = None) -> httpx.Response:
    headers = {"X-Vault-Token": token} if token else {}
    return httpx.post(f"{server.addr}/v1/{path}", json=body, headers=headers)


def test_not_mounted_unless_asked_and_the_mount_warns(server: RunningServer) -> None:
    client = hvac.Client(url=server.addr, token=server.root_token)
    mounts = client.sys.list_auth_methods()["data"]
    assert not [m for m in mounts.values() if isinstance(m, dict) and m.get("type") == "app-id"]
    r = _raw(server, "sys/auth/legacy", {"type": "app-id"}, server.root_token)
    assert r.status_code == 200 and r.json()["warnings"] == ["mount entry associated with deprecated builtin"]
    entry = client.sys.list_auth_methods()["data"]["legacy/"]
    assert entry["type"] == "app-id" and entry["deprecation_status"] == "deprecated"
    assert client.sys.list_auth_methods()["data"]["token/"]["type"] == "token"
    # Other methods mount as before: no warning, plain 204.
    r = _raw(server, "sys/auth/up", {"type": "userpass"}, server.root_token)
    assert r.status_code == 204
    assert client.sys.list_auth_methods()["data"]["up/"]["deprecation_status"] == "supported"
    client.sys.disable_auth_method("legacy")
    client.sys.disable_auth_method("up")


def test_maps_read_list_and_ids_are_stored_hmaced(admin: hvac.Client) -> None:
    assert admin.read("auth/app-id/map/app-id/web-app")["data"] == {"value": "web,ops", "display_name": "webapp"}
    assert admin.read("auth/app-id/map/user-id/host-1")["data"] == {"value": "web-app,other-app", "cidr_block": ""}
    keys = admin.list("auth/app-id/map/user-id")["data"]["keys"]
    assert len(keys) == 1 and "host-1" not in keys[0] and len(keys[0]) == 64  # an HMAC, not the id
    assert keys[0] != hashlib.sha256(b"host-1").hexdigest()  # keyed (the mount's salt), not a plain hash
    apps = admin.list("auth/app-id/map/app-id")["data"]["keys"]
    assert len(apps) == 1 and "web-app" not in apps[0]
    assert admin.read("auth/app-id/map/app-id/nope") is None
    admin.delete("auth/app-id/map/app-id/web-app")
    assert admin.read("auth/app-id/map/app-id/web-app") is None
    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid restriction cidr"):
        admin.write("auth/app-id/map/user-id/host-2", value="web-app", cidr_block="10.0.0.300/8")
    assert admin.read("auth/app-id/map/user-id/host-2") is None


def test_hvac_login_both_forms(server: RunningServer, admin: hvac.Client) -> None:
    client = hvac.Client(url=server.addr)
    auth = client.write("auth/app-id/login", app_id="web-app", user_id="host-1")["auth"]
    assert auth["policies"] == ["default", "ops", "web"] and auth["renewable"] is True
    md = auth["metadata"]
    assert md["app-id"].startswith("hmac-sha256:") and md["user-id"].startswith("hmac-sha256:")
    assert "host-1" not in json.dumps(auth) and "web-app" not in json.dumps(md)
    client.token = auth["client_token"]
    look = client.lookup_token()["data"]
    assert look["display_name"] == "app-id-webapp" and look["path"] == "auth/app-id/login"
    auth2 = hvac.Client(url=server.addr).write("auth/app-id/login/web-app", user_id="host-1")["auth"]
    assert auth2["policies"] == ["default", "ops", "web"]
    # The "default" app id's policies go to every login (Vault's PolicyMap default key).
    admin.write("auth/app-id/map/app-id/default", value="everyone")
    auth3 = hvac.Client(url=server.addr).write("auth/app-id/login", app_id="web-app", user_id="host-1")["auth"]
    assert auth3["policies"] == ["default", "everyone", "ops", "web"]


@pytest.mark.parametrize(("body", "error"), [
    ({"app_id": "web-app", "user_id": "nobody"}, INVALID),              # unknown user
    ({"app_id": "ghost-app", "user_id": "host-1"}, INVALID),            # unknown app
    ({"app_id": "other-app", "user_id": "host-1"}, INVALID),            # mapped to the user, app not mapped
    ({"app_id": "web-ap", "user_id": "host-1"}, INVALID),               # a prefix of a mapped app id
    ({"app_id": "web-app"}, "missing 'app_id' or 'user_id'"),
    ({"user_id": "host-1"}, "missing 'app_id' or 'user_id'"),
])
def test_refusals(server: RunningServer, admin: hvac.Client, body: dict[str, str], error: str) -> None:
    r = _raw(server, "auth/app-id/login", body)
    assert r.status_code == 400 and r.json() == {"errors": [error]}, r.text


def test_user_mapped_to_another_app(server: RunningServer, admin: hvac.Client) -> None:
    admin.write("auth/app-id/map/app-id/db-app", value="db")
    admin.write("auth/app-id/map/user-id/host-9", value="db-app")
    r = _raw(server, "auth/app-id/login", {"app_id": "web-app", "user_id": "host-9"})
    assert r.status_code == 400 and r.json() == {"errors": [INVALID]}
    assert _login(server, app_id="db-app", user_id="host-9").is_authenticated()


def test_cidr_block(server: RunningServer, admin: hvac.Client) -> None:
    admin.write("auth/app-id/map/user-id/host-1", value="web-app", cidr_block="10.0.0.0/8")
    r = _raw(server, "auth/app-id/login", {"app_id": "web-app", "user_id": "host-1"})
    assert r.status_code == 400 and r.json() == {"errors": ["unauthorized source address"]}
    admin.write("auth/app-id/map/user-id/host-1", value="web-app", cidr_block="127.0.0.0/8")
    assert _login(server, app_id="web-app", user_id="host-1").is_authenticated()


def test_renewal_rechecks_the_mapping(server: RunningServer, admin: hvac.Client) -> None:
    client = _login(server, app_id="web-app", user_id="host-1")
    assert client.auth.token.renew_self()["auth"]["client_token"] == client.token
    admin.write("auth/app-id/map/app-id/web-app", value="web")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="policies do not match"):
        client.auth.token.renew_self()
    client = _login(server, app_id="web-app", user_id="host-1")
    admin.delete("auth/app-id/map/user-id/host-1")
    with pytest.raises(hvac.exceptions.InvalidRequest, match=INVALID):
        client.auth.token.renew_self()


def test_management_needs_a_token(server: RunningServer, admin: hvac.Client) -> None:
    r = _raw(server, "auth/app-id/map/user-id/evil", {"value": "web-app"})
    assert r.status_code == 403
    assert admin.read("auth/app-id/map/user-id/evil") is None


def test_bao_cli(server: RunningServer, admin: hvac.Client) -> None:
    out = server.bao("write", "-format=json", "auth/app-id/login", "app_id=web-app", "user_id=host-1", token="")
    assert out.returncode == 0, out.stderr
    auth = json.loads(out.stdout)["auth"]
    assert auth["policies"] == ["default", "ops", "web"]
    who = server.bao("token", "lookup", "-format=json", token=auth["client_token"])
    assert who.returncode == 0 and json.loads(who.stdout)["data"]["display_name"] == "app-id-webapp"
    out = server.bao("write", "auth/app-id/login", "app_id=web-app", "user_id=intruder", token="")
    assert out.returncode != 0 and INVALID in out.stderr and "client_token" not in out.stdout
    out = server.bao("write", "auth/app-id/map/user-id/host-5", "value=web-app", "cidr_block=127.0.0.1/32")
    assert out.returncode == 0, out.stderr
    out = server.bao("write", "-field=token", "auth/app-id/login/web-app", "user_id=host-5", token="")
    assert out.returncode == 0 and out.stdout.strip().startswith("hvs."), out.stderr
