"""The agent over TLS, against a real server on a TLS listener: auto_auth method "cert" (the method's
certificate, the vault stanza's as a fallback, reload, a certificate of another CA refused) and TLS on
the agent's own listeners (TLS 1.2+ only, tls_min_version, client certificates required)."""

from __future__ import annotations

import asyncio
import shutil
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from strongroom.agent.auth import AuthError
from strongroom.agent.config import ConfigError, parse
from strongroom.agent.main import run
from strongroom.agent.proxy import server_context
from strongroom.agent.runner import Agent
from tests.auth.cert.conftest import CertServer, running_cert_server
from tests.compat.conftest import free_port


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CertServer]:
    with running_cert_server(tmp_path_factory.mktemp("agent-tls")) as s:
        assert s.root("POST", "sys/mounts/secret", {"type": "kv", "options": {"version": "2"}}).status_code == 204
        assert s.root("POST", "secret/data/app", {"data": {"password": "hunter2"}}).status_code == 200
        assert s.root("POST", "sys/policies/acl/app",
                      {"policy": 'path "secret/data/app" { capabilities = ["read"] }'}).status_code == 204
        # Two certificate roles of the same CA: "web" gives policy app, "ops" policy ops.
        for name, policy in (("web", "app"), ("ops", "ops")):
            r = s.root("POST", f"auth/cert/certs/{name}", {"certificate": s.pki.pem("ca"), "token_policies": policy})
            assert r.status_code == 204, r.text
        yield s


def _cfg(s: CertServer, method_config: dict[str, Any], vault: dict[str, Any] | None = None,
         **top: Any) -> dict[str, Any]:
    return {"vault": {"address": s.addr, "ca_cert": str(s.pki.dir / "ca.pem"), **(vault or {})},
            "auto_auth": {"method": {"type": "cert", "config": method_config}}, **top}


def _policies(s: CertServer, token: str) -> list[str]:
    r = s.call("GET", "auth/token/lookup-self", token=token)
    assert r.status_code == 200, r.text
    return list(r.json()["data"]["policies"])


async def _login(cfg: dict[str, Any]) -> str:
    agent = Agent(parse(cfg))
    try:
        return await agent.authenticate()
    finally:
        await agent.aclose()


async def test_cert_login_with_the_methods_certificate(tls_server: CertServer) -> None:
    cert, key = tls_server.pki.pair("web")
    token = await _login(_cfg(tls_server, {"name": "web", "client_cert": cert, "client_key": key}))
    assert _policies(tls_server, token) == ["app", "default"]
    # name picks the role: the same certificate through "ops"
    token = await _login(_cfg(tls_server, {"name": "ops", "client_cert": cert, "client_key": key}))
    assert _policies(tls_server, token) == ["default", "ops"]


async def test_cert_login_falls_back_to_the_vault_stanzas_certificate(tls_server: CertServer) -> None:
    cert, key = tls_server.pki.pair("plain")
    token = await _login(_cfg(tls_server, {"name": "web"}, {"client_cert": cert, "client_key": key}))
    assert _policies(tls_server, token) == ["app", "default"]


async def test_cert_login_with_tls_skip_verify_still_presents_the_certificate(tls_server: CertServer) -> None:
    cert, key = tls_server.pki.pair("web")
    cfg = _cfg(tls_server, {"name": "web", "exit_on_err": True},
               {"ca_cert": "", "tls_skip_verify": True, "client_cert": cert, "client_key": key})
    assert _policies(tls_server, await _login(cfg)) == ["app", "default"]


async def test_cert_login_refuses_a_certificate_of_another_ca_and_needs_one(tls_server: CertServer) -> None:
    cert, key = tls_server.pki.pair("foreign")
    with pytest.raises(AuthError, match="cert login failed"):
        await _login(_cfg(tls_server, {"name": "web", "client_cert": cert, "client_key": key, "exit_on_err": True}))
    with pytest.raises(ConfigError, match="client certificate is required"):
        Agent(parse(_cfg(tls_server, {"name": "web"})))
    with pytest.raises(ConfigError, match="together"):
        Agent(parse(_cfg(tls_server, {"client_cert": cert})))


async def test_cert_reload_reads_the_files_again_at_each_login(tls_server: CertServer, tmp_path: Path) -> None:
    pki = tls_server.pki
    cert, key = tmp_path / "c.pem", tmp_path / "c.key"
    shutil.copy(pki.pair("web")[0], cert)
    shutil.copy(pki.pair("web")[1], key)
    for reload, then in ((True, ["default", "ops"]), (False, ["app", "default"])):
        shutil.copy(pki.pair("web")[0], cert)
        shutil.copy(pki.pair("web")[1], key)
        # The role is chosen by the certificate: "web" trusts only the CA's leaf named web.example.com.
        assert tls_server.root("POST", "auth/cert/certs/web",
                               {"certificate": pki.pem("ca"), "token_policies": "app",
                                "allowed_common_names": "web.example.com"}).status_code == 204
        assert tls_server.root("POST", "auth/cert/certs/ops",
                               {"certificate": pki.pem("ca"), "token_policies": "ops",
                                "allowed_common_names": "plain.example.org"}).status_code == 204
        agent = Agent(parse(_cfg(tls_server, {"client_cert": str(cert), "client_key": str(key), "reload": reload})))
        try:
            assert _policies(tls_server, await agent.authenticate()) == ["app", "default"]
            shutil.copy(pki.pair("plain")[0], cert)  # the certificate was renewed on disk
            shutil.copy(pki.pair("plain")[1], key)
            assert _policies(tls_server, await agent.authenticate()) == then
        finally:
            await agent.aclose()
    for name, policy in (("web", "app"), ("ops", "ops")):
        tls_server.root("POST", f"auth/cert/certs/{name}", {"certificate": pki.pem("ca"), "token_policies": policy})


# -- TLS on the agent's listeners -------------------------------------------------------------


@pytest.fixture
async def proxy_agent(tls_server: CertServer, tmp_path: Path,
                      request: pytest.FixtureRequest) -> AsyncIterator[tuple[int, Path]]:
    """An agent (token_file) with a TLS tcp listener; the test's param adds listener keys."""
    d = tls_server.pki.dir
    r = tls_server.root("POST", "auth/token/create", {"policies": ["app"]})
    (tmp_path / "tok").write_text(r.json()["auth"]["client_token"])
    port = free_port()
    listener = {"address": f"127.0.0.1:{port}", "tls_cert_file": str(d / "server.pem"),
                "tls_key_file": str(d / "server.key")}
    listener.update({k: str(d / "ca.pem") if v == "CA" else v for k, v in getattr(request, "param", {}).items()})
    cfg = parse({"vault": {"address": tls_server.addr, "ca_cert": str(d / "ca.pem")},
                 "auto_auth": {"method": {"type": "token_file", "config": {"token_file_path": str(tmp_path / "tok")}}},
                 "listener": {"tcp": listener}, "api_proxy": {"use_auto_auth_token": True}})
    stop = asyncio.Event()
    task = asyncio.create_task(run(cfg, stop=stop))
    try:
        for _ in range(300):
            await asyncio.sleep(0.02)
            try:
                _, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                break
            except OSError:
                continue
        yield port, d
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 10) == 0


def _ctx(d: Path, *, cert: str = "", max_version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(d / "ca.pem"))
    if max_version is not None:
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        ctx.maximum_version = max_version
    if cert:
        ctx.load_cert_chain(str(d / f"{cert}.pem"), str(d / f"{cert}.key"))
    return ctx


async def _get(port: int, verify: ssl.SSLContext, scheme: str = "https") -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"{scheme}://127.0.0.1:{port}", verify=verify, timeout=10) as app:
        return await app.get("/v1/secret/data/app")


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
async def test_the_api_proxy_serves_tls_12_and_later_only(proxy_agent: tuple[int, Path]) -> None:
    port, d = proxy_agent
    with pytest.raises(ssl.SSLError):  # the server's context itself refuses anything before TLS 1.2
        ssl_client = _ctx(d, max_version=ssl.TLSVersion.TLSv1_1)
        ssl_client.minimum_version = ssl.TLSVersion.TLSv1_1
        await asyncio.open_connection("127.0.0.1", port, ssl=ssl_client)
    r = await _get(port, _ctx(d))
    assert r.status_code == 200 and r.json()["data"]["data"] == {"password": "hunter2"}
    assert (await _get(port, _ctx(d, max_version=ssl.TLSVersion.TLSv1_2))).status_code == 200
    with pytest.raises(httpx.ConnectError):  # TLS 1.1 is refused (as 1.0)
        await _get(port, _ctx(d, max_version=ssl.TLSVersion.TLSv1_1))
    with pytest.raises(httpx.HTTPError):  # and plain HTTP gets no answer
        await _get(port, _ctx(d), scheme="http")


@pytest.mark.parametrize("proxy_agent", [{"tls_min_version": "tls13"}], indirect=True)
async def test_tls_min_version(proxy_agent: tuple[int, Path]) -> None:
    port, d = proxy_agent
    assert (await _get(port, _ctx(d))).status_code == 200
    with pytest.raises(httpx.ConnectError):
        await _get(port, _ctx(d, max_version=ssl.TLSVersion.TLSv1_2))


@pytest.mark.parametrize("proxy_agent", [{"tls_require_and_verify_client_cert": True}], indirect=True)
async def test_client_certificates_required(proxy_agent: tuple[int, Path], tls_server: CertServer) -> None:
    port, d = proxy_agent
    # Without tls_client_ca_file the system's CAs are the anchors: our test CA's client is refused.
    with pytest.raises(httpx.HTTPError):
        await _get(port, _ctx(d, cert="web"))


@pytest.mark.parametrize("proxy_agent", [{"tls_require_and_verify_client_cert": True, "tls_client_ca_file": "CA"}],
                         indirect=True)
async def test_client_certificates_required_from_the_client_ca(proxy_agent: tuple[int, Path]) -> None:
    port, d = proxy_agent
    assert (await _get(port, _ctx(d, cert="web"))).status_code == 200
    for cert in ("", "foreign"):  # none, or one of another CA
        with pytest.raises(httpx.HTTPError):
            await _get(port, _ctx(d, cert=cert))


def test_listener_config_errors(tmp_path: Path) -> None:
    base = {"auto_auth": {"method": {"type": "token_file", "config": {"token_file_path": "/x"}}}}
    with pytest.raises(ConfigError, match="tls_cert_file and tls_key_file are required"):
        parse({**base, "listener": {"tcp": {"address": "127.0.0.1:8100"}}})
    with pytest.raises(ConfigError, match="not supported"):
        parse({**base, "listener": {"tcp": {"address": "127.0.0.1:8100", "tls_cert_file": "c", "tls_key_file": "k",
                                            "tls_min_version": "tls11"}}})
    cfg = parse({**base, "listener": {"tcp": {"address": "127.0.0.1:8100", "tls_disable": True}}})
    assert not cfg.listeners[0].tls_cert_file and server_context(cfg.listeners[0]) is None
    cfg = parse({**base, "listener": {"tcp": {"address": "127.0.0.1:8100", "tls_cert_file": str(tmp_path / "no.pem"),
                                              "tls_key_file": str(tmp_path / "no.key")}}})
    with pytest.raises(ConfigError, match="error loading TLS files"):
        server_context(cfg.listeners[0])
