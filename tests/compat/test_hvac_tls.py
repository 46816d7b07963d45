"""hvac over TLS against a real Strongroom process, presenting client certificates as many clients do."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import hvac
import pytest
import requests

from tests.test_server import _cert

from .conftest import RunningServer, free_port


def tls_server(tmp_path: Path, listener: str = "") -> RunningServer:
    """A (not yet started) server on a TLS listener; ``listener`` is extra HCL for its block.

    ``tmp_path`` gets ca.pem, server.pem, signed.pem (signed by the CA) and self.pem (self-signed),
    each with its .key."""
    ca_key, ca_name = _cert(tmp_path / "ca", "test-ca", ca=True)
    _cert(tmp_path / "server", "127.0.0.1", ca_key, ca_name)
    _cert(tmp_path / "signed", "signed-client", ca_key, ca_name)
    _cert(tmp_path / "self", "self-signed-client")
    port = free_port()
    cfg = tmp_path / "server.hcl"
    cfg.write_text(f'storage "inmem" {{}}\nlog_level = "warning"\n'
                   f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n'
                   f'  tls_cert_file = "{tmp_path}/server.pem"\n  tls_key_file = "{tmp_path}/server.key"\n'
                   f'  tls_client_ca_file = "{tmp_path}/ca.pem"\n{listener}}}\n')
    server = RunningServer(cfg, f"https://127.0.0.1:{port}", tmp_path)
    server.verify = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    server.verify.load_cert_chain(str(tmp_path / "signed.pem"), str(tmp_path / "signed.key"))
    return server


@pytest.fixture
def started(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningServer]:
    server = tls_server(tmp_path, getattr(request, "param", ""))
    server.start()
    yield server
    if server.proc is not None and server.proc.poll() is None:
        server.stop()


def client(server: RunningServer, cert: str | None) -> hvac.Client:
    d = server.workdir
    return hvac.Client(url=server.addr, verify=str(d / "ca.pem"),
                       cert=(str(d / f"{cert}.pem"), str(d / f"{cert}.key")) if cert else None)


def test_hvac_with_a_self_signed_client_certificate_gets_answers(started: RunningServer) -> None:
    # hvac's own test set-up presents a self-signed certificate on every connection; it is requested,
    # never checked by the listener (tls_client_ca_file is set, and still does not apply to it).
    vault = client(started, "self")
    assert vault.sys.is_initialized() is False
    init = vault.sys.initialize(secret_shares=1, secret_threshold=1)
    assert vault.sys.submit_unseal_keys(init["keys"])["sealed"] is False
    vault.token = init["root_token"]
    vault.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
    vault.secrets.kv.v2.create_or_update_secret("app", secret={"password": "pw"})
    assert vault.secrets.kv.v2.read_secret_version("app", raise_on_deleted_version=True)["data"]["data"] == {
        "password": "pw"}
    for cert in ("signed", None):  # a CA-signed certificate, or none at all, work as well
        other = client(started, cert)
        other.token = init["root_token"]
        assert other.lookup_token()["data"]["policies"] == ["root"]


@pytest.mark.parametrize("started", ["  tls_require_and_verify_client_cert = true\n"], indirect=True)
def test_hvac_against_require_and_verify_client_cert(started: RunningServer) -> None:
    for cert in ("self", None):  # an unknown certificate, or none: the handshake is refused
        with pytest.raises(requests.exceptions.ConnectionError):
            client(started, cert).sys.read_health_status(method="GET")
    assert client(started, "signed").sys.is_initialized() is False


@pytest.mark.parametrize("started", ["  tls_disable_client_certs = true\n"], indirect=True)
def test_hvac_against_disabled_client_certs(started: RunningServer) -> None:
    for cert in ("self", "signed", None):
        assert client(started, cert).sys.is_initialized() is False
