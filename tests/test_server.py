"""`strongroom server` as a process: TLS listeners (1.2+, client certificate requested), config errors, signals."""

from __future__ import annotations

import datetime
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.compat.conftest import RunningServer, free_port


def _cert(path: Path, name: str, issuer_key: ec.EllipticCurvePrivateKey | None = None,
          issuer: x509.Name | None = None, ca: bool = False) -> tuple[ec.EllipticCurvePrivateKey, x509.Name]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer or subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(now + datetime.timedelta(hours=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]), critical=False)
    cert = builder.sign(issuer_key or key, hashes.SHA256())
    path.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
    return key, subject


@pytest.fixture
def tls_server(tmp_path: Path) -> RunningServer:
    ca_key, ca_name = _cert(tmp_path / "ca", "test-ca", ca=True)
    _cert(tmp_path / "server", "127.0.0.1", ca_key, ca_name)
    _cert(tmp_path / "client", "client", ca_key, ca_name)
    port = free_port()
    cfg = tmp_path / "tls.json"
    cfg.write_text(
        '{"storage": {"inmem": {}}, "listener": {"tcp": {"address": "127.0.0.1:%d", "tls_cert_file": "%s",'
        ' "tls_key_file": "%s", "tls_min_version": "tls12", "tls_client_ca_file": "%s"}}}'
        % (port, tmp_path / "server.pem", tmp_path / "server.key", tmp_path / "ca.pem"))
    server = RunningServer(cfg, f"https://127.0.0.1:{port}", tmp_path)
    server.proc = subprocess.Popen([sys.executable, "-m", "strongroom", "server", f"-config={cfg}"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{server.addr}/v1/sys/seal-status", verify=str(tmp_path / "ca.pem"), timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.05)
    yield server
    server.proc.terminate()
    server.proc.wait(10)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tls_listener_serves_tls12_plus_and_requests_client_certs(tls_server: RunningServer) -> None:
    ca = str(tls_server.workdir / "ca.pem")
    r = httpx.get(f"{tls_server.addr}/v1/sys/seal-status", verify=ca)
    assert r.status_code == 200 and r.json()["initialized"] is False
    # A client presenting a certificate is accepted (it is requested, not required).
    ctx = ssl.create_default_context(cafile=ca)
    ctx.load_cert_chain(str(tls_server.workdir / "client.pem"), str(tls_server.workdir / "client.key"))
    r = httpx.get(f"{tls_server.addr}/v1/sys/health", verify=ctx)
    assert r.status_code == 501
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.load_verify_locations(ca)
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.minimum_version = ssl.TLSVersion.TLSv1
    with pytest.raises((httpx.ConnectError, ssl.SSLError)):
        httpx.get(f"{tls_server.addr}/v1/sys/health", verify=old)
    with pytest.raises((httpx.ConnectError, httpx.RemoteProtocolError)):
        httpx.get(f"{tls_server.addr.replace('https', 'http')}/v1/sys/health")  # no plaintext on a TLS port


def test_config_errors_name_key_and_file(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.hcl"
    cfg.write_text('storage "inmem" {}\nlistener "tcp" { address = "127.0.0.1:1" \n tls_disable = true }\nfoo = 1\n')
    r = subprocess.run([sys.executable, "-m", "strongroom", "server", f"-config={cfg}"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode != 0
    assert "foo" in r.stderr and "bad.hcl" in r.stderr


def test_dev_server_prints_root_token_unseal_key_and_export_line(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "strongroom", "server", "-dev", "-dev-root-token-id=devroot",
                             f"-dev-listen-address=127.0.0.1:{port}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/v1/secret/data/x", headers={"X-Vault-Token": "devroot"})
                break
            except httpx.TransportError:
                time.sleep(0.05)
        assert r.status_code == 404  # kv-v2 mounted at secret/, nothing there yet
        mounts = httpx.get(f"http://127.0.0.1:{port}/v1/sys/mounts", headers={"X-Vault-Token": "devroot"}).json()
        assert mounts["data"]["secret/"]["options"] == {"version": "2"}
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert f"export VAULT_ADDR='http://127.0.0.1:{port}'" in out
    assert "Root Token: devroot" in out and "Unseal Key: " in out


async def test_durable_storage_gets_the_physical_cache_unless_disabled(tmp_path: Path) -> None:
    from strongroom.server import with_cache
    from strongroom.storage import open_storage
    from strongroom.storage.cache import CachedStorage
    from strongroom.storage.inmem import InmemStorage

    physical = await open_storage("sqlite", {"path": str(tmp_path / "db")})
    try:
        cached = with_cache(physical, "sqlite", disable_cache=False)
        assert isinstance(cached, CachedStorage)
        await cached.put("k", b"v1")
        assert await cached.get("k") == b"v1"
        assert await cached.get("k") == b"v1"
        assert cached.hits == 1  # the second read never reached sqlite
        await cached.put("k", b"v2")  # a write through the cache invalidates it
        assert await cached.get("k") == b"v2"
        assert with_cache(physical, "sqlite", disable_cache=True) is physical
        inmem = InmemStorage()
        assert with_cache(inmem, "inmem", disable_cache=False) is inmem
    finally:
        await physical.close()


def test_a_busy_port_is_a_clear_error() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "strongroom", "server", "-dev",
                            f"-dev-listen-address=127.0.0.1:{port}"], capture_output=True, text=True, timeout=30,
                           check=False)
    assert r.returncode == 1
    assert f"Error starting server: [Errno 98] cannot listen on 127.0.0.1:{port}: Address already in use" in r.stderr
    assert "Root Token" not in r.stdout  # nothing claims to be serving
