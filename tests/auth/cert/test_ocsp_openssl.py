"""The OCSP client (ocsp.OcspClient) against an independent responder: `openssl ocsp -index ...
-port`, signing as the CA itself or as a delegated responder. Also the answer cache: reused until
nextUpdate, bounded by its size."""

from __future__ import annotations

import asyncio
import datetime
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from strongroom.auth.cert.ocsp import OcspClient, OcspError
from strongroom.auth.cert.store import OcspSettings
from tests.compat.conftest import free_port

from .conftest import Pki

NOW = datetime.datetime.now(datetime.UTC)

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command is not installed")


def _index_line(pki: Pki, name: str, revoked: bool) -> str:
    cert = pki.certs[name]
    exp = cert.not_valid_after_utc.strftime("%y%m%d%H%M%SZ")
    rev = (NOW - datetime.timedelta(minutes=1)).strftime("%y%m%d%H%M%SZ") if revoked else ""
    return "\t".join(["R" if revoked else "V", exp, rev, f"{cert.serial_number:X}", "unknown",
                      "/CN=" + name]) + "\n"


def _responder(pki: Pki, signer: str, port: int) -> subprocess.Popen[bytes]:
    index = pki.dir / "index.txt"
    index.write_text(_index_line(pki, "good", False) + _index_line(pki, "bad", True)
                     + _index_line(pki, "good2", False) + _index_line(pki, "good3", False))
    proc = subprocess.Popen(["openssl", "ocsp", "-index", str(index), "-port", str(port),
                             "-CA", str(pki.dir / "ca.pem"), "-rsigner", str(pki.dir / f"{signer}.pem"),
                             "-rkey", str(pki.dir / f"{signer}.key"), "-nmin", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    # Ready once it says so (a probe connection would hang this one-connection-at-a-time server).
    assert proc.stdout is not None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if b"waiting for OCSP client connections" in line:
            return proc
    proc.kill()
    pytest.fail("openssl ocsp did not start")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    p = Pki(Path(tmp_path_factory.mktemp("openssl-ocsp")))
    p.issue("ca", "openssl ocsp CA", ca=True, days=10)
    for name in ("good", "bad", "good2", "good3"):
        p.issue(name, f"{name}.example.com", "ca")
    p.issue("responder", "delegated responder", "ca", eku=[ExtendedKeyUsageOID.OCSP_SIGNING])
    p.issue("stranger", "unrelated", ca=True)
    return p


@pytest.fixture(params=["ca", "responder"])
def url(request: pytest.FixtureRequest, pki: Pki) -> Iterator[str]:
    port = free_port()
    proc = _responder(pki, request.param, port)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.kill()
        proc.wait()


async def _status(client: OcspClient, pki: Pki, name: str, url: str) -> tuple[bool, bool]:
    st = await client.status(pki.certs[name], pki.certs["ca"], OcspSettings(servers_override=[url], max_retries=0),
                             [], datetime.datetime.now(datetime.UTC))
    return st.good, st.revoked


def test_openssl_responder_good_and_revoked(pki: Pki, url: str) -> None:
    async def run() -> None:
        client = OcspClient()
        try:
            assert await _status(client, pki, "good", url) == (True, False)
            assert await _status(client, pki, "bad", url) == (False, True)
        finally:
            await client.close()
    asyncio.run(run())


def test_cache_until_next_update_and_bounded(pki: Pki, url: str) -> None:
    async def run() -> None:
        client = OcspClient(cache_size=2)
        try:
            await _status(client, pki, "good", url)
            await _status(client, pki, "good", url)
            assert client.queries == 1  # the second answer came from the cache
            await _status(client, pki, "good2", url)
            await _status(client, pki, "good3", url)  # evicts "good" (least recently used)
            assert client.queries == 3
            await _status(client, pki, "good3", url)
            assert client.queries == 3
            await _status(client, pki, "good", url)
            assert client.queries == 4
        finally:
            await client.close()
    asyncio.run(run())


def test_a_responder_for_another_issuer_is_not_believed(pki: Pki) -> None:
    port = free_port()
    proc = _responder(pki, "stranger", port)  # openssl signs with a key the issuer never vouched for

    async def run() -> None:
        client = OcspClient()
        try:
            with pytest.raises(OcspError, match="not signed by the issuer or a delegated responder"):
                await _status(client, pki, "bad", f"http://127.0.0.1:{port}/")
        finally:
            await client.close()
    try:
        asyncio.run(run())
    finally:
        proc.kill()
        proc.wait()
