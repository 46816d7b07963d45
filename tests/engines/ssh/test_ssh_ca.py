"""ssh engine, CA mode: issuers, roles, signing; certificates checked by cryptography and ssh-keygen."""

from __future__ import annotations

import asyncio
import base64
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import Op


@pytest.fixture
async def ssh(make_mount: Any) -> Any:
    return await make_mount("ssh")


def user_key(kind: str = "ed25519") -> tuple[Any, str]:
    key: Any = {"ed25519": lambda: ed25519.Ed25519PrivateKey.generate(),
                "ec": lambda: ec.generate_private_key(ec.SECP256R1()),
                "rsa": lambda: rsa.generate_private_key(65537, 2048)}[kind]()
    pub = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return key, pub.decode() + " user@test"


def load_cert(signed: str) -> Any:
    cert = serialization.load_ssh_public_identity(signed.encode())
    assert isinstance(cert, serialization.SSHCertificate)
    return cert


async def ca_role(ssh: Any, name: str = "dev", **extra: Any) -> None:
    body = {"key_type": "ca", "allow_user_certificates": True, "allowed_users": "alice,bob",
            "default_user": "alice", "allowed_extensions": "permit-pty,permit-port-forwarding",
            "default_extensions": {"permit-pty": ""}, "ttl": "1h", **extra}
    assert await ssh.call(Op.UPDATE, f"roles/{name}", body) is None


@pytest.mark.parametrize("key_type", ["ssh-ed25519", "ec", "ecdsa-sha2-nistp384", "ssh-rsa"])
async def test_generated_ca_signs_verifiable_certificates(ssh: Any, key_type: str) -> None:
    body: dict[str, Any] = {"key_type": key_type}
    if key_type == "ssh-rsa":
        body["key_bits"] = 2048  # fast enough for a test; 4096 is the default
    ca = await ssh.ok(Op.UPDATE, "config/ca", body)
    assert ca["public_key"].endswith("\n") and ca["issuer_name"] == ""
    raw = await ssh.call(Op.READ, "public_key")
    assert raw.raw_body == ca["public_key"].encode() and raw.raw_content_type == "text/plain"
    await ca_role(ssh)
    _, pub = user_key()
    signed = await ssh.ok(Op.UPDATE, "sign/dev", {"public_key": pub}, display_name="token")
    cert = load_cert(signed["signed_key"])
    cert.verify_cert_signature()  # raises if the signature does not verify
    assert cert.signature_key().public_bytes(serialization.Encoding.OpenSSH,
                                             serialization.PublicFormat.OpenSSH).decode() == ca["public_key"].strip()
    assert cert.valid_principals == [b"alice"] and cert.type is serialization.SSHCertificateType.USER
    assert cert.extensions == {b"permit-pty": b""} and cert.critical_options == {}
    assert format(cert.serial, "x") == signed["serial_number"] and signed["issuer_id"] == ca["issuer_id"]
    assert cert.valid_before - cert.valid_after == 3600 + 30  # ttl + not_before_duration
    assert cert.key_id.decode().startswith("vault-token-")


async def test_sign_rules(ssh: Any) -> None:
    await ssh.ok(Op.UPDATE, "config/ca", {"key_type": "ssh-ed25519"})
    await ca_role(ssh, allowed_critical_options="force-command", max_ttl="2h")
    _, pub = user_key()
    bad: list[tuple[dict[str, Any], str]] = [
        ({"valid_principals": "carol"}, "carol is not a valid value for valid_principals"),
        ({"cert_type": "host"}, "cert_type 'host' is not allowed by role"),
        ({"cert_type": "bogus"}, "cert_type must be either 'user' or 'host'"),
        ({"extensions": {"permit-X11-forwarding": ""}}, "extensions [permit-X11-forwarding] are not on allowed list"),
        ({"critical_options": {"source-address": "1.2.3.4"}}, "critical options not on allowed list: [source-address]"),
        ({"ttl": "3h"}, "ttl is larger than maximum allowed 7200"),
        ({"key_id": "mine"}, "setting key_id is not allowed by role"),
    ]
    for extra, message in bad:
        with pytest.raises(InvalidRequest, match=message.replace("[", r"\[").replace("]", r"\]")):
            await ssh.call(Op.UPDATE, "sign/dev", {"public_key": pub, **extra})
    with pytest.raises(InvalidRequest, match="failed to parse public_key as SSH key"):
        await ssh.call(Op.UPDATE, "sign/dev", {"public_key": "ssh-ed25519 garbage!"})
    with pytest.raises(InvalidRequest, match="missing public_key"):
        await ssh.call(Op.UPDATE, "sign/dev", {})
    with pytest.raises(InvalidRequest, match="Unknown role: nope"):
        await ssh.call(Op.UPDATE, "sign/nope", {"public_key": pub})

    signed = await ssh.ok(Op.UPDATE, "sign/dev", {
        "public_key": pub, "valid_principals": "bob,alice", "ttl": "10m",
        "extensions": {"permit-port-forwarding": "", "permit-pty": ""},
        "critical_options": {"force-command": "/bin/true"}})
    cert = load_cert(signed["signed_key"])
    assert cert.valid_principals == [b"bob", b"alice"]
    assert cert.critical_options == {b"force-command": b"/bin/true"}
    assert set(cert.extensions) == {b"permit-port-forwarding", b"permit-pty"}
    assert cert.valid_before - cert.valid_after == 600 + 30


async def test_host_certificates_and_domains(ssh: Any) -> None:
    await ssh.ok(Op.UPDATE, "config/ca", {"key_type": "ssh-ed25519"})
    await ssh.call(Op.UPDATE, "roles/hosts", {"key_type": "ca", "allow_host_certificates": True,
                                              "allowed_domains": "example.com", "allow_subdomains": True})
    _, pub = user_key("ec")
    cert = load_cert((await ssh.ok(Op.UPDATE, "sign/hosts", {
        "public_key": pub, "cert_type": "host", "valid_principals": "web.example.com"}))["signed_key"])
    assert cert.type is serialization.SSHCertificateType.HOST and cert.valid_principals == [b"web.example.com"]
    with pytest.raises(InvalidRequest, match="example.com is not a valid value"):  # bare domain not allowed
        await ssh.call(Op.UPDATE, "sign/hosts", {"public_key": pub, "cert_type": "host",
                                                 "valid_principals": "example.com"})
    with pytest.raises(InvalidRequest, match="refusing to issue unsafe"):
        await ssh.call(Op.UPDATE, "sign/hosts", {"public_key": pub, "cert_type": "host"})


async def test_allowed_user_key_lengths(ssh: Any) -> None:
    await ssh.ok(Op.UPDATE, "config/ca", {"key_type": "ssh-ed25519"})
    await ca_role(ssh, allowed_user_key_lengths={"rsa": [3072, 4096], "ed25519": 0})
    _, rsa_pub = user_key("rsa")
    with pytest.raises(InvalidRequest, match="key is of an invalid size: 2048"):
        await ssh.call(Op.UPDATE, "sign/dev", {"public_key": rsa_pub})
    _, ec_pub = user_key("ec")
    with pytest.raises(InvalidRequest, match="key of type ecdsa is not allowed"):
        await ssh.call(Op.UPDATE, "sign/dev", {"public_key": ec_pub})
    await ssh.ok(Op.UPDATE, "sign/dev", {"public_key": user_key()[1]})


async def test_rsa_algorithm_signer(ssh: Any) -> None:
    await ssh.ok(Op.UPDATE, "config/ca", {"key_type": "rsa", "key_bits": 2048})
    for signer, name in (("default", b"rsa-sha2-256"), ("rsa-sha2-512", b"rsa-sha2-512")):
        await ca_role(ssh, algorithm_signer=signer)
        signed = (await ssh.ok(Op.UPDATE, "sign/dev", {"public_key": user_key()[1]}))["signed_key"]
        load_cert(signed).verify_cert_signature()
        blob = base64.b64decode(signed.split()[1])
        assert name in blob[-300:]  # the signature's algorithm name
    with pytest.raises(InvalidRequest, match='unknown algorithm signer "foo"'):
        await ca_role(ssh, algorithm_signer="foo")


async def test_imported_ca_key(ssh: Any) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    priv = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                             serialization.NoEncryption()).decode()
    pub = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    with pytest.raises(InvalidRequest, match="only one of public_key and private_key set"):
        await ssh.call(Op.UPDATE, "config/ca", {"public_key": pub})
    other = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    with pytest.raises(InvalidRequest, match="public_key failed to match private_key"):
        await ssh.call(Op.UPDATE, "config/ca", {"public_key": other, "private_key": priv})
    with pytest.raises(InvalidRequest, match="failed to parse private_key"):
        await ssh.call(Op.UPDATE, "config/ca", {"public_key": pub, "private_key": "junk"})
    assert await ssh.storage.list("issuer/") == []  # nothing half-written
    ca = await ssh.ok(Op.UPDATE, "config/ca", {"public_key": pub, "private_key": priv})
    assert ca["public_key"].strip() == pub
    assert priv.encode() not in repr(await ssh.ok(Op.READ, "config/ca")).encode()
    with pytest.raises(InvalidRequest, match="unknown ssh key pair algorithm: foo"):
        await ssh.call(Op.UPDATE, "config/ca", {"key_type": "foo"})
    with pytest.raises(InvalidRequest, match="refusing to generate weak rsa key: 1024 bits < 2048 bits"):
        await ssh.call(Op.UPDATE, "config/ca", {"key_type": "rsa", "key_bits": 1024})


async def test_multiple_issuers(ssh: Any) -> None:
    with pytest.raises(InvalidRequest, match="no default issuer currently configured"):
        await ssh.call(Op.READ, "public_key")
    first = await ssh.ok(Op.UPDATE, "config/ca", {"key_type": "ssh-ed25519"})
    second = await ssh.ok(Op.UPDATE, "issuers/import/second", {"key_type": "ec", "key_bits": 384})
    assert second["issuer_name"] == "second"
    assert (await ssh.ok(Op.READ, "config/issuers"))["default"] == first["issuer_id"]
    listed = await ssh.ok(Op.LIST, "issuers")
    assert sorted(listed["keys"]) == sorted([first["issuer_id"], second["issuer_id"]])
    assert listed["key_info"][first["issuer_id"]]["is_default"] is True
    assert listed["key_info"][second["issuer_id"]]["is_default"] is False

    page = sorted([first["issuer_id"], second["issuer_id"]])
    assert (await ssh.ok(Op.LIST, "issuers", {"limit": 1}))["keys"] == page[:1]
    assert (await ssh.ok(Op.LIST, "issuers", {"after": page[0]}))["keys"] == page[1:]
    resp = await ssh.call(Op.UPDATE, "config/issuers", {"default": "second"})
    assert resp.data == {"default": second["issuer_id"]} and "Previous default" in resp.warnings[0]
    assert (await ssh.call(Op.READ, "public_key")).raw_body == second["public_key"].encode()
    assert (await ssh.call(Op.READ, "issuer/second/public_key")).raw_body == second["public_key"].encode()
    assert ssh.backend.is_unauthenticated("issuer/second/public_key") and ssh.backend.is_unauthenticated("public_key")
    assert not ssh.backend.is_unauthenticated("issuer/second") and not ssh.backend.is_unauthenticated("config/ca")
    assert (await ssh.ok(Op.READ, "issuer/default"))["issuer_id"] == second["issuer_id"]
    with pytest.raises(InvalidRequest, match="unable to find issuer for reference: nope"):
        await ssh.call(Op.READ, "issuer/nope")
    with pytest.raises(InvalidRequest, match="error resolving issuer reference"):
        await ssh.call(Op.UPDATE, "config/issuers", {"default": "nope"})

    # A role pinned to the first issuer signs with it, whatever the default.
    await ca_role(ssh, issuer_ref=first["issuer_id"])
    signed = await ssh.ok(Op.UPDATE, "sign/dev", {"public_key": user_key()[1]})
    assert signed["issuer_id"] == first["issuer_id"]
    renamed = await ssh.ok(Op.UPDATE, f"issuer/{first['issuer_id']}", {"issuer_name": "old"})
    assert renamed["issuer_name"] == "old"
    with pytest.raises(InvalidRequest, match="issuer name already in use"):
        await ssh.call(Op.UPDATE, "issuer/old", {"issuer_name": "second"})
    assert (await ssh.ok(Op.READ, "issuer/old"))["issuer_id"] == first["issuer_id"]

    deleted = await ssh.call(Op.DELETE, "issuer/second")
    assert "this was configured as the default issuer" in deleted.warnings[0]
    assert await ssh.call(Op.DELETE, "issuer/second") is None  # gone: still a success
    with pytest.raises(InvalidRequest, match="no default issuer"):
        await ssh.call(Op.READ, "config/ca")
    resp = await ssh.call(Op.DELETE, "config/ca")
    assert resp.warnings == ["Deleted 1 issuers, including default issuer if configured."]
    with pytest.raises(NotFound):
        await ssh.call(Op.LIST, "issuers")
    assert await ssh.call(Op.DELETE, "config/ca") is None  # nothing left: 204 as OpenBao
    with pytest.raises(InvalidRequest, match="reserved keyword 'default' can not be used as issuer name"):
        await ssh.call(Op.UPDATE, "issuers/import/default", {"key_type": "ssh-ed25519"})
    with pytest.raises(InvalidRequest, match="issuer name contained invalid characters"):
        await ssh.call(Op.UPDATE, "issuers/import", {"key_type": "ssh-ed25519", "issuer_name": "x y"})
    assert await ssh.storage.list("issuer/") == []


async def test_roles_crud_and_validation(ssh: Any) -> None:
    await ca_role(ssh)
    read = await ssh.ok(Op.READ, "roles/dev")
    assert read["key_type"] == "ca" and read["ttl"] == 3600 and read["allowed_users"] == "alice,bob"
    assert read["default_extensions"] == {"permit-pty": ""} and read["issuer_ref"] == "default"
    assert read["algorithm_signer"] == "default" and read["not_before_duration"] == 30
    await ssh.call(Op.UPDATE, "roles/otp1", {"key_type": "otp", "default_user": "bob", "cidr_list": "10.0.0.0/8"})
    assert await ssh.ok(Op.READ, "roles/otp1") == {"allowed_users": "", "cidr_list": "10.0.0.0/8",
                                                    "default_user": "bob", "exclude_cidr_list": "",
                                                    "key_type": "otp", "port": 22}
    listed = await ssh.ok(Op.LIST, "roles")
    assert listed == {"keys": ["dev", "otp1"], "key_info": {"dev": {"issuer_ref": "default", "key_type": "ca"},
                                                           "otp1": {"key_type": "otp"}}}
    errors = [({}, "missing key type"), ({"key_type": "dynamic"}, "dynamic key type roles are no longer supported"),
              ({"key_type": "ca"}, "Either 'allow_user_certificates' or 'allow_host_certificates'"),
              ({"key_type": "otp"}, "missing default user"),
              ({"key_type": "otp", "default_user": "x", "cidr_list": "garbage"},
               "failed to validate cidr_list: invalid CIDR address: garbage"),
              ({"key_type": "ca", "allow_user_certificates": True, "ttl": "2h", "max_ttl": "1h"},
               '"ttl" value must be less than "max_ttl"')]
    for body, message in errors:
        with pytest.raises(InvalidRequest, match=message):
            await ssh.call(Op.UPDATE, "roles/bad", body)
    with pytest.raises(NotFound):
        await ssh.call(Op.READ, "roles/bad")
    await ssh.call(Op.DELETE, "roles/dev")
    with pytest.raises(NotFound):
        await ssh.call(Op.READ, "roles/dev")


@pytest.mark.parametrize("body,pem_type,key_class", [
    ({"key_type": "ed25519"}, "OPENSSH PRIVATE KEY", ed25519.Ed25519PrivateKey),
    ({"key_type": "ec", "key_bits": 384}, "EC PRIVATE KEY", ec.EllipticCurvePrivateKey),
    ({"key_type": "rsa", "key_bits": 2048}, "RSA PRIVATE KEY", rsa.RSAPrivateKey),
])
async def test_issue_generates_a_key_pair_and_its_certificate(ssh: Any, body: dict[str, Any], pem_type: str,
                                                              key_class: type) -> None:
    await ssh.ok(Op.UPDATE, "config/ca", {"key_type": "ssh-ed25519"})
    await ca_role(ssh)
    issued = await ssh.ok(Op.UPDATE, "issue/dev", {**body, "valid_principals": "bob"})
    assert issued["private_key"].startswith(f"-----BEGIN {pem_type}-----")
    assert issued["private_key_type"] == body["key_type"]
    pem = issued["private_key"].encode()
    key = (serialization.load_ssh_private_key(pem, None) if b"OPENSSH" in pem
           else serialization.load_pem_private_key(pem, None))
    assert isinstance(key, key_class)
    cert = load_cert(issued["signed_key"])
    cert.verify_cert_signature()
    assert cert.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH) == \
        key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    assert cert.valid_principals == [b"bob"] and format(cert.serial, "x") == issued["serial_number"]


async def test_issue_errors(ssh: Any) -> None:
    await ssh.ok(Op.UPDATE, "config/ca", {"key_type": "ssh-ed25519"})
    await ca_role(ssh, allowed_user_key_lengths={"ed25519": 0})
    for body, message in (({"key_type": "foo"}, "unknown ssh key pair algorithm: foo"),
                          ({"key_type": "rsa", "key_bits": 1024}, "refusing to generate weak rsa key"),
                          ({"key_type": "ec"}, "key of type ecdsa is not allowed"),
                          ({"key_type": "ed25519", "valid_principals": "eve"}, "eve is not a valid value")):
        with pytest.raises(InvalidRequest, match=message):
            await ssh.call(Op.UPDATE, "issue/dev", body)
    with pytest.raises(InvalidRequest, match="unknown role: nope"):
        await ssh.call(Op.UPDATE, "issue/nope", {})


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen (Debian openssh-client) is not installed")
async def test_ssh_keygen_reads_the_certificate(ssh: Any, tmp_path: Path) -> None:
    await ssh.ok(Op.UPDATE, "config/ca", {"key_type": "ec"})
    await ca_role(ssh, allowed_critical_options="force-command,source-address")
    signed = await ssh.ok(Op.UPDATE, "sign/dev", {
        "public_key": user_key()[1], "valid_principals": "alice,bob",
        "critical_options": {"force-command": "/usr/bin/id", "source-address": "127.0.0.1/32"},
        "extensions": {"permit-pty": "", "permit-port-forwarding": ""}})
    path = tmp_path / "key-cert.pub"
    path.write_text(signed["signed_key"])
    done = await asyncio.to_thread(subprocess.run, ["ssh-keygen", "-L", "-f", str(path)],
                                   capture_output=True, text=True, check=True)
    out = done.stdout
    assert "Type: ssh-ed25519-cert-v01@openssh.com user certificate" in out
    assert f"Serial: {int(signed['serial_number'], 16)}" in out
    assert "Signing CA: ECDSA SHA256:" in out
    for line in ("alice", "bob", "force-command /usr/bin/id", "source-address 127.0.0.1/32",
                 "permit-pty", "permit-port-forwarding"):
        assert line in out, out
