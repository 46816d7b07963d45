"""pki: root generation, roles, issue/sign/sign-verbatim, checked with cryptography and openssl."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from tests.engines.conftest import Mount
from tests.engines.pki.conftest import cert, error_of, mount, openssl, openssl_verify

from strongroom.framework import Op


def csr_pem(cn: str, sans: list[str] = (), key: object = None) -> tuple[str, object]:  # type: ignore[assignment]
    key = key or ec.generate_private_key(ec.SECP256R1())
    b = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False)
    csr = b.sign(key, None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256())  # type: ignore[arg-type]
    return csr.public_bytes(serialization.Encoding.PEM).decode(), key


async def test_root_generate_kinds_and_output() -> None:
    m = await mount()
    resp = await m.call(Op.UPDATE, "root/generate/internal", {"common_name": "example.com", "key_type": "ec"})
    assert resp is not None and resp.data is not None
    d = resp.data
    assert "private_key" not in d and d["issuing_ca"] == d["certificate"]
    assert any("authority information access" in w for w in resp.warnings)
    root = cert(d["certificate"])
    root.verify_directly_issued_by(root)
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert root.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName) == ["example.com"]
    assert d["serial_number"] == ":".join(f"{b:02x}" for b in root.serial_number.to_bytes(20, "big").lstrip(b"\0"))
    assert isinstance(root.public_key(), ec.EllipticCurvePublicKey)
    assert d["expiration"] == int(root.not_valid_after_utc.timestamp())

    for kt, cls in (("rsa", rsa.RSAPrivateKey), ("ed25519", ed25519.Ed25519PrivateKey)):
        d = await m.ok(Op.UPDATE, "root/generate/exported", {"common_name": f"{kt}.example", "key_type": kt,
                                                              "format": "pem", "private_key_format": "pem"})
        key = serialization.load_pem_private_key(d["private_key"].encode(), None)
        assert isinstance(key, cls) and d["private_key_type"] == kt
        c = cert(d["certificate"])
        c.verify_directly_issued_by(c)
        assert c.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) \
            == key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    listed = await m.ok(Op.LIST, "issuers/")
    assert len(listed["keys"]) == 3 and len((await m.ok(Op.LIST, "keys/"))["keys"]) == 3
    # the first root stays the default
    assert sum(i["is_default"] for i in listed["key_info"].values()) == 1


async def test_root_generate_bad_input_stores_nothing() -> None:
    m = await mount()
    assert await error_of(m, Op.UPDATE, "root/generate/internal", {"common_name": "x", "key_type": "foo"}) == (
        400, "unknown key type foo")
    assert await error_of(m, Op.UPDATE, "root/generate/internal",
                          {"common_name": "x", "key_type": "rsa", "key_bits": 1024}) == (
        400, "RSA keys < 2048 bits are unsafe and not supported: got 1024")
    assert (await error_of(m, Op.UPDATE, "root/generate/internal", {}))[0] == 400
    assert (await error_of(m, Op.LIST, "issuers/"))[0] == 404 and (await error_of(m, Op.LIST, "keys/"))[0] == 404
    assert (await error_of(m, Op.LIST, "roles/"))[0] == 404 and (await error_of(m, Op.LIST, "certs/"))[0] == 404
    assert await m.storage.list("") == []


async def test_role_defaults_match_openbao_and_list_delete() -> None:
    m = await mount()
    d = await m.ok(Op.UPDATE, "roles/r1", {"allowed_domains": ["a.com", "b.com"]})
    assert d["key_bits"] == 2048 and d["key_type"] == "rsa" and d["allow_localhost"] is True
    assert d["key_usage"] == ["DigitalSignature", "KeyAgreement", "KeyEncipherment"]
    assert d["issuer_ref"] == "default" and d["not_before_duration"] == 30 and d["server_flag"] is True
    read = await m.ok(Op.READ, "roles/r1")
    assert read["allowed_domains"] == ["a.com", "b.com"] and len(read) == 52
    await m.ok(Op.UPDATE, "roles/r2", {"key_type": "ec"})
    assert (await m.ok(Op.READ, "roles/r2"))["key_bits"] == 256
    assert (await m.ok(Op.LIST, "roles/"))["keys"] == ["r1", "r2"]
    assert await error_of(m, Op.UPDATE, "roles/bad", {"key_type": "rsa", "key_bits": 1024}) == (
        400, "RSA keys < 2048 bits are unsafe and not supported: got 1024")
    assert (await error_of(m, Op.UPDATE, "roles/bad", {"ttl": "2h", "max_ttl": "1h"}))[0] == 400
    await m.call(Op.DELETE, "roles/r1")
    assert (await m.ok(Op.LIST, "roles/"))["keys"] == ["r2"]
    assert (await error_of(m, Op.READ, "roles/r1"))[0] == 404


async def test_issue_verifies_and_carries_role_settings(pki: Mount, tmp_path: Path) -> None:
    d = await pki.ok(Op.UPDATE, "issue/web", {"common_name": "a.example.com", "alt_names": "b.example.com",
                                              "ip_sans": "10.0.0.1", "ttl": "1h"})
    leaf, root = cert(d["certificate"]), cert(d["issuing_ca"])
    leaf.verify_directly_issued_by(root)
    assert d["ca_chain"] == [d["issuing_ca"]] and d["private_key_type"] == "ec"
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["a.example.com", "b.example.com"]
    assert [str(i) for i in san.get_values_for_type(x509.IPAddress)] == ["10.0.0.1"]
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    ku = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.key_agreement and not ku.key_cert_sign
    assert 3500 < (leaf.not_valid_after_utc - leaf.not_valid_before_utc).total_seconds() <= 3630
    assert d["serial_number"] in (await pki.ok(Op.LIST, "certs/"))["keys"]
    assert openssl_verify(tmp_path, d["certificate"], d["ca_chain"]).returncode == 0
    key = serialization.load_pem_private_key(d["private_key"].encode(), None)
    assert key.public_key() == leaf.public_key()  # type: ignore[union-attr]


async def test_issue_refuses_what_the_role_forbids(pki: Mount) -> None:
    assert await error_of(pki, Op.UPDATE, "issue/web", {"common_name": "bad.org"}) == (
        400, "common name bad.org not allowed by this role")
    assert await error_of(pki, Op.UPDATE, "issue/web", {"common_name": "a.example.com",
                                                         "alt_names": "b.other.com"}) == (
        400, "subject alternate name b.other.com not allowed by this role")
    assert await error_of(pki, Op.UPDATE, "issue/web", {"common_name": "example.com"}) == (
        400, "common name example.com not allowed by this role")  # bare domain not allowed
    assert await error_of(pki, Op.UPDATE, "issue/web", {"common_name": "a.example.com", "uri_sans": "spiffe://x"}) \
        == (400, "URI Subject Alternative Names are not allowed in this role, but were provided via the API")
    assert await error_of(pki, Op.UPDATE, "issue/nope", {"common_name": "a.example.com"}) == (400, "unknown role: nope")
    assert (await error_of(pki, Op.UPDATE, "issue/web", {}))[1].startswith("the common_name field is required")
    await pki.ok(Op.UPDATE, "roles/noip", {"allowed_domains": "example.com", "allow_subdomains": True,
                                           "allow_ip_sans": False, "key_type": "ec"})
    assert await error_of(pki, Op.UPDATE, "issue/noip", {"common_name": "a.example.com", "ip_sans": "1.2.3.4"}) == (
        400, "IP Subject Alternative Names are not allowed in this role, but was provided 1.2.3.4")
    assert await pki.ok(Op.LIST, "certs/") == {"keys": [(await pki.ok(Op.READ, "issuer/root"))["certificate"] and
                                                         (await pki.ok(Op.LIST, "issuers/"))["key_info"].popitem()[1]
                                                         ["serial_number"]]}  # only the root: nothing stored


async def test_role_name_rules(pki: Mount) -> None:
    async def allowed(role: dict[str, object], name: str) -> bool:
        await pki.ok(Op.UPDATE, "roles/t", {"key_type": "ec", **role})
        resp = await pki.call(Op.UPDATE, "issue/t", {"common_name": name}) if name else None
        return resp is not None

    async def ok(role: dict[str, object], name: str) -> bool:
        try:
            return await allowed(role, name)
        except Exception:  # noqa: BLE001
            return False

    assert await ok({"allowed_domains": "example.com", "allow_bare_domains": True}, "example.com")
    assert not await ok({"allowed_domains": "example.com", "allow_bare_domains": True}, "a.example.com")
    assert await ok({"allowed_domains": "*.svc.example.com", "allow_glob_domains": True}, "db.svc.example.com")
    assert not await ok({"allowed_domains": "*.svc.example.com", "allow_glob_domains": True}, "db.other.com")
    assert await ok({"allowed_domains": "example.com", "allow_subdomains": True}, "*.example.com")
    assert not await ok({"allowed_domains": "example.com", "allow_subdomains": True,
                         "allow_wildcard_certificates": False}, "*.example.com")
    assert await ok({}, "localhost")
    assert not await ok({"allow_localhost": False}, "localhost")
    assert await ok({"allow_any_name": True}, "anything.org")
    assert not await ok({"allow_any_name": True}, "not a hostname!")
    assert await ok({"allow_any_name": True, "enforce_hostnames": False}, "not a hostname!")


async def test_ttls_capped_by_role_and_issuer(pki: Mount) -> None:
    resp = await pki.call(Op.UPDATE, "issue/web", {"common_name": "a.example.com", "ttl": "100h"})
    assert resp is not None and resp.data is not None
    assert resp.warnings == ['TTL "100h0m0s" is longer than permitted maxTTL "72h0m0s", so maxTTL is being used']
    leaf = cert(resp.data["certificate"])
    assert (leaf.not_valid_after_utc - leaf.not_valid_before_utc).total_seconds() == 72 * 3600 + 30
    await pki.ok(Op.UPDATE, "root/generate/internal", {"common_name": "short", "key_type": "ec", "ttl": "2h",
                                                        "issuer_name": "short"})
    await pki.ok(Op.UPDATE, "roles/s", {"allow_any_name": True, "key_type": "ec", "issuer_ref": "short"})
    status, msg = await error_of(pki, Op.UPDATE, "issue/s", {"common_name": "x.org", "ttl": "10h"})
    assert status == 400 and "beyond the expiration of the CA certificate" in msg
    await pki.ok(Op.UPDATE, "issuer/short", {"leaf_not_after_behavior": "truncate"})
    d = await pki.ok(Op.UPDATE, "issue/s", {"common_name": "x.org", "ttl": "10h"})
    short = cert((await pki.ok(Op.READ, "issuer/short"))["certificate"])
    assert cert(d["certificate"]).not_valid_after_utc == short.not_valid_after_utc
    cert(d["certificate"]).verify_directly_issued_by(short)


async def test_key_types_no_store_and_subject_fields(pki: Mount) -> None:
    await pki.ok(Op.UPDATE, "roles/r", {"allow_any_name": True, "key_type": "rsa", "key_bits": 3072,
                                        "organization": "Acme", "no_store": True, "ext_key_usage": "CodeSigning",
                                        "client_flag": False})
    d = await pki.ok(Op.UPDATE, "issue/r", {"common_name": "svc"})
    leaf = cert(d["certificate"])
    assert d["private_key_type"] == "rsa" and leaf.public_key().key_size == 3072  # type: ignore[union-attr]
    assert leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Acme"
    assert set(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == {
        ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CODE_SIGNING}
    assert d["serial_number"] not in (await pki.ok(Op.LIST, "certs/"))["keys"]
    await pki.ok(Op.UPDATE, "roles/e", {"allow_any_name": True, "key_type": "ed25519"})
    d = await pki.ok(Op.UPDATE, "issue/e", {"common_name": "svc", "format": "pem"})
    assert d["private_key_type"] == "ed25519"
    cert(d["certificate"]).verify_directly_issued_by(cert(d["issuing_ca"]))


async def test_sign_role_checks_the_csr(pki: Mount, tmp_path: Path) -> None:
    pem, key = csr_pem("svc.example.com", ["svc.example.com", "alt.example.com"])
    d = await pki.ok(Op.UPDATE, "sign/web", {"csr": pem, "common_name": "ignored.example.com"})
    leaf = cert(d["certificate"])
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "svc.example.com"
    assert "private_key" not in d and leaf.public_key() == key.public_key()  # type: ignore[attr-defined]
    assert openssl_verify(tmp_path, d["certificate"], d["ca_chain"]).returncode == 0
    bad, _ = csr_pem("svc.example.com", ["evil.org"])
    assert await error_of(pki, Op.UPDATE, "sign/web", {"csr": bad}) == (
        400, "subject alternate name evil.org not allowed by this role")
    rsa_pem, _ = csr_pem("svc.example.com", [], rsa.generate_private_key(public_exponent=65537, key_size=2048))
    assert await error_of(pki, Op.UPDATE, "sign/web", {"csr": rsa_pem}) == (400, "role requires keys of type ec")
    weak, _ = csr_pem("svc.example.com", [], rsa.generate_private_key(public_exponent=65537, key_size=1024))
    await pki.ok(Op.UPDATE, "roles/any", {"allowed_domains": "example.com", "allow_subdomains": True,
                                          "key_type": "any"})
    assert await error_of(pki, Op.UPDATE, "sign/any", {"csr": weak}) == (
        400, "RSA keys < 2048 bits are unsafe and not supported: got 1024")
    assert (await error_of(pki, Op.UPDATE, "sign/web", {"csr": "garbage"}))[0] == 400
    assert (await error_of(pki, Op.UPDATE, "issue/any", {"common_name": "a.example.com"}))[0] == 400


async def test_sign_verbatim_keeps_the_csr_subject(pki: Mount) -> None:
    pem, _ = csr_pem("anything.internal", ["x.internal"], ed25519.Ed25519PrivateKey.generate())
    d = await pki.ok(Op.UPDATE, "sign-verbatim", {"csr": pem, "ttl": "1h", "ext_key_usage": "ServerAuth"})
    leaf = cert(d["certificate"])
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "anything.internal"
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName) == ["x.internal"]
    leaf.verify_directly_issued_by(cert(d["issuing_ca"]))
    d2 = await pki.ok(Op.UPDATE, "issuer/root/sign-verbatim", {"csr": pem})
    assert d2["issuing_ca"] == d["issuing_ca"]


async def test_mutual_tls_with_certificates_from_the_mount(pki: Mount, tmp_path: Path) -> None:
    await pki.ok(Op.UPDATE, "roles/mtls", {"allowed_domains": "example.com", "allow_subdomains": True,
                                           "key_type": "ec"})
    srv = await pki.ok(Op.UPDATE, "issue/mtls", {"common_name": "localhost", "ip_sans": "127.0.0.1"})
    cli = await pki.ok(Op.UPDATE, "issue/mtls", {"common_name": "client.example.com"})
    ca = tmp_path / "ca.pem"
    ca.write_text(srv["issuing_ca"] + "\n")
    for name, d in (("srv", srv), ("cli", cli)):
        (tmp_path / f"{name}.pem").write_text(d["certificate"] + "\n" + d["private_key"] + "\n")
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(tmp_path / "srv.pem")
    sctx.load_verify_locations(ca)
    sctx.verify_mode = ssl.CERT_REQUIRED
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.load_cert_chain(tmp_path / "cli.pem")
    cctx.load_verify_locations(ca)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen: dict[str, object] = {}

    def serve() -> None:
        conn, _ = listener.accept()
        with sctx.wrap_socket(conn, server_side=True) as tls:
            seen["peer"] = tls.getpeercert()
            tls.sendall(b"ok")

    t = threading.Thread(target=serve)
    t.start()

    def connect() -> bytes:
        with socket.create_connection(("127.0.0.1", port)) as raw, \
                cctx.wrap_socket(raw, server_hostname="localhost") as tls:
            return tls.recv(2)

    assert await asyncio.to_thread(connect) == b"ok"
    t.join(5)
    listener.close()
    peer = seen["peer"]
    assert isinstance(peer, dict) and ("commonName", "client.example.com") in [x[0] for x in peer["subject"]]


async def test_bad_input_is_a_400_never_a_crash(pki: Mount) -> None:
    await pki.ok(Op.UPDATE, "roles/loose", {"allow_any_name": True, "enforce_hostnames": False, "key_type": "ec"})
    cases = [
        ("issue/loose", {"common_name": "x" * 80}),
        ("issue/loose", {"common_name": "bücher.example"}),
        ("issue/loose", {"common_name": "ok", "ip_sans": "999.1.1.1"}),
        ("issue/loose", {"common_name": "ok", "not_after": "tomorrow"}),
        ("issue/loose", {"common_name": "ok", "ttl": "forever"}),
        ("roles/x", {"allowed_ip_sans_cidr": "10.0.0.0/99"}),
        ("roles/x", {"ext_key_usage_oids": "not-an-oid"}),
        ("roles/x", {"key_usage": "Everything"}),
        ("roles/x", {"ext_key_usage": "Telepathy"}),
        ("sign-verbatim", {"csr": csr_pem("a")[0], "ext_key_usage": "Telepathy"}),
        ("sign-verbatim", {"csr": csr_pem("a")[0], "ext_key_usage_oids": "1.x"}),
        ("sign-verbatim", {"csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----"}),
        ("root/generate/internal", {"common_name": "y" * 80, "key_type": "ec"}),
        ("intermediate/generate/internal", {"common_name": "y" * 80, "key_type": "ec"}),
    ]
    for path, data in cases:
        status, msg = await error_of(pki, Op.UPDATE, path, data)
        assert status == 400 and msg, (path, data)
    assert (await pki.ok(Op.LIST, "roles/"))["keys"] == ["loose", "web"]
    assert len((await pki.ok(Op.LIST, "issuers/"))["keys"]) == 1 and len((await pki.ok(Op.LIST, "keys/"))["keys"]) == 1


def _openssl_mtls(tmp_path: Path, port: int) -> tuple[subprocess.CompletedProcess[str], str]:
    """s_server requiring a client certificate from the CA, one s_client presenting one."""
    server = subprocess.Popen(
        ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-naccept", "1", "-cert", str(tmp_path / "srv.crt"),
         "-key", str(tmp_path / "srv.key"), "-CAfile", str(tmp_path / "ca.pem"), "-Verify", "2",
         "-verify_return_error"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.PIPE, text=True)
    assert server.stdout is not None
    while "ACCEPT" not in server.stdout.readline():  # s_server prints ACCEPT once it listens
        assert server.poll() is None, "s_server exited"
    try:
        client = subprocess.run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-cert", str(tmp_path / "cli.crt"),
             "-key", str(tmp_path / "cli.key"), "-CAfile", str(tmp_path / "ca.pem"), "-verify_return_error",
             "-verify_ip", "127.0.0.1", "-brief"], input="hello\n", capture_output=True, text=True, timeout=20,
            check=False)
        return client, server.communicate(timeout=20)[0]
    finally:
        if server.poll() is None:
            server.kill()


async def test_mutual_tls_between_openssl_s_server_and_s_client(pki: Mount, tmp_path: Path) -> None:
    openssl()
    srv = await pki.ok(Op.UPDATE, "issue/web", {"common_name": "srv.example.com", "ip_sans": "127.0.0.1"})
    cli = await pki.ok(Op.UPDATE, "issue/web", {"common_name": "cli.example.com"})
    for name, d in (("srv", srv), ("cli", cli)):
        (tmp_path / f"{name}.crt").write_text(d["certificate"] + "\n")
        (tmp_path / f"{name}.key").write_text(d["private_key"] + "\n")
    (tmp_path / "ca.pem").write_text(srv["issuing_ca"] + "\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client, out = await asyncio.to_thread(_openssl_mtls, tmp_path, port)
    assert client.returncode == 0, client.stderr
    assert "Verification: OK" in client.stderr
    assert "CN = cli.example.com" in out or "CN=cli.example.com" in out, out


async def test_output_formats_as_openbao(pki: Mount) -> None:
    import base64

    d = await pki.ok(Op.UPDATE, "issue/web", {"common_name": "a.example.com", "format": "der"})
    for v in (d["certificate"], d["issuing_ca"], *d["ca_chain"]):
        x509.load_der_x509_certificate(base64.b64decode(v))
    assert serialization.load_der_private_key(base64.b64decode(d["private_key"]), None)
    d = await pki.ok(Op.UPDATE, "issue/web", {"common_name": "a.example.com", "format": "pem_bundle",
                                              "private_key_format": "pkcs8"})
    assert d["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    assert d["certificate"].startswith("-----BEGIN EC PRIVATE KEY-----") and d["certificate"].count("CERTIFICATE-----") == 4
    d = await pki.ok(Op.UPDATE, "issue/web", {"common_name": "a.example.com", "private_key_format": "pkcs8"})
    assert d["private_key"].startswith("-----BEGIN PRIVATE KEY-----")


async def test_issued_ec_key_outputs_match_their_certificate(pki: Mount, tmp_path: Path) -> None:
    """issue/<role> encodes an EC key once (SEC1 DER for the output and the SKI): every curve and
    format gives what cryptography's own encoding gives, and the SKI of the certificate's key."""
    import base64

    enc, trad, none = serialization.Encoding, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    for bits in (224, 256, 384, 521):
        await pki.ok(Op.UPDATE, f"roles/ec{bits}", {"allow_any_name": True, "key_type": "ec", "key_bits": bits})
        for fmt in ("pem", "der", "pem_bundle"):
            for key_format in ("", "der", "pkcs8"):
                d = await pki.ok(Op.UPDATE, f"issue/ec{bits}", {"common_name": "a.example.com", "format": fmt,
                                                                 "private_key_format": key_format})
                pkcs8 = key_format == "pkcs8"
                if fmt == "der":
                    leaf = x509.load_der_x509_certificate(base64.b64decode(d["certificate"]))
                    key = serialization.load_der_private_key(base64.b64decode(d["private_key"]), None)
                    text = base64.b64encode(key.private_bytes(
                        enc.DER, serialization.PrivateFormat.PKCS8 if pkcs8 else trad, none)).decode()
                else:
                    blocks = d["certificate"].split("-----END")
                    leaf = cert(d["certificate"][d["certificate"].index("-----BEGIN CERTIFICATE"):])
                    key = serialization.load_pem_private_key(d["private_key"].encode(), None)
                    text = key.private_bytes(enc.PEM, serialization.PrivateFormat.PKCS8 if pkcs8 else trad,
                                             none).decode().strip()
                    if fmt == "pem_bundle":
                        assert blocks[0] + "-----END EC PRIVATE KEY-----" == key.private_bytes(
                            enc.PEM, trad, none).decode().strip()
                    assert openssl_verify(tmp_path, leaf.public_bytes(enc.PEM).decode(), [d["issuing_ca"]]
                                          ).returncode == 0
                assert d["private_key"] == text and key.public_key() == leaf.public_key()  # type: ignore[union-attr]
                assert leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value == \
                    x509.SubjectKeyIdentifier.from_public_key(leaf.public_key())  # type: ignore[arg-type]


async def test_role_certificate_options(pki: Mount) -> None:
    from cryptography.hazmat.primitives.asymmetric import padding

    await pki.ok(Op.UPDATE, "root/generate/internal", {"common_name": "RSA Root", "key_type": "rsa",
                                                        "issuer_name": "rsa", "ttl": "8760h"})
    await pki.ok(Op.UPDATE, "roles/opts", {
        "allow_any_name": True, "key_type": "ec", "issuer_ref": "rsa", "use_pss": True,
        "basic_constraints_valid_for_non_ca": True, "policy_identifiers": "1.3.6.1.4.1.44947.1.1.1",
        "not_after": "2027-06-01T00:00:00Z", "allowed_serial_numbers": "dev-*"})
    d = await pki.ok(Op.UPDATE, "issue/opts", {"common_name": "svc", "serial_number": "dev-42"})
    leaf, issuer = cert(d["certificate"]), cert(d["issuing_ca"])
    pub = issuer.public_key()
    assert isinstance(pub, rsa.RSAPublicKey) and leaf.signature_hash_algorithm is not None
    pub.verify(leaf.signature, leaf.tbs_certificate_bytes,
               padding.PSS(mgf=padding.MGF1(leaf.signature_hash_algorithm), salt_length=padding.PSS.AUTO),
               leaf.signature_hash_algorithm)
    bc = leaf.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca is False
    policies = leaf.extensions.get_extension_for_class(x509.CertificatePolicies).value
    assert [p.policy_identifier.dotted_string for p in policies] == ["1.3.6.1.4.1.44947.1.1.1"]
    assert leaf.not_valid_after_utc.isoformat() == "2027-06-01T00:00:00+00:00"
    assert leaf.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == "dev-42"
    assert await error_of(pki, Op.UPDATE, "issue/opts", {"common_name": "svc", "serial_number": "prod-1"}) == (
        400, "serial_number prod-1 not allowed by this role")
    assert await error_of(pki, Op.UPDATE, "issue/opts", {"common_name": "svc", "other_sans": "1.2.3;UTF8:x"}) == (
        400, "other_sans are not supported")
    assert (await error_of(pki, Op.UPDATE, "roles/bad", {"not_after": "soon"}))[0] == 400
    assert (await error_of(pki, Op.UPDATE, "roles/bad", {"policy_identifiers": "x.y"}))[0] == 400


async def test_unknown_parameters_are_warned_about(pki: Mount) -> None:
    resp = await pki.call(Op.UPDATE, "roles/w", {"allow_any_name": True, "bogus": 1})
    assert resp is not None and resp.warnings == ["Endpoint ignored these unrecognized parameters: [bogus]"]
    resp = await pki.call(Op.UPDATE, "issue/web", {"common_name": "a.example.com", "colour": "blue"})
    assert resp is not None and "Endpoint ignored these unrecognized parameters: [colour]" in resp.warnings


async def test_an_ip_common_name_follows_the_name_rules_as_openbao(pki: Mount) -> None:
    """OpenBao checks a common name that is an IP address as a host name, and puts it in the DNS SANs."""
    assert await error_of(pki, Op.UPDATE, "issue/web", {"common_name": "192.0.2.10"}) == (
        400, "common name 192.0.2.10 not allowed by this role")
    await pki.ok(Op.UPDATE, "roles/anyn", {"allow_any_name": True, "key_type": "ec"})
    d = await pki.ok(Op.UPDATE, "issue/anyn", {"common_name": "192.0.2.10"})
    san = cert(d["certificate"]).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["192.0.2.10"]
