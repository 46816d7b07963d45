"""TLS listeners and client certificates: asked for and kept unchecked (Vault's default), required and
verified (tls_require_and_verify_client_cert), or not asked for (tls_disable_client_certs)."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.http.test_http_server import get, read_response
from tests.test_server import _cert

from strongroom.config import ListenerConfig
from strongroom.http import tls
from strongroom.http.app import App
from strongroom.http.server import HttpServer
from strongroom.logical import Connection
from strongroom.server import tls_context
from strongroom.testing import unsealed_core


@dataclass
class Certs:
    """A CA, a server certificate, and client certificates of every kind, as PEM files in ``dir``."""

    dir: Path
    der: dict[str, bytes] = field(default_factory=dict)

    def pem(self, name: str) -> str:
        return str(self.dir / f"{name}.pem")

    def client(self, name: str | None, *, max_version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.pem("ca"))
        if max_version is not None:
            ctx.maximum_version = max_version
        if name is not None:
            ctx.load_cert_chain(self.pem(name), str(self.dir / f"{name}.key"))
        return ctx


@pytest.fixture
def certs(tmp_path: Path) -> Certs:
    ca_key, ca_name = _cert(tmp_path / "ca", "test-ca", ca=True)
    _cert(tmp_path / "server", "127.0.0.1", ca_key, ca_name)
    _cert(tmp_path / "signed", "signed-client", ca_key, ca_name)
    _cert(tmp_path / "self", "self-signed-client")  # what hvac's test set-up presents
    inter_key, inter_name = _cert(tmp_path / "inter", "unknown-intermediate", ca=True)
    _cert(tmp_path / "leaf", "leaf-client", inter_key, inter_name)
    # A client certificate file with its chain: the leaf, then the intermediate that signed it.
    (tmp_path / "chained.pem").write_text((tmp_path / "leaf.pem").read_text() + (tmp_path / "inter.pem").read_text())
    (tmp_path / "chained.key").write_bytes((tmp_path / "leaf.key").read_bytes())
    out = Certs(tmp_path)
    for name in ("ca", "signed", "self", "leaf", "inter"):
        out.der[name] = ssl.PEM_cert_to_DER_cert((tmp_path / f"{name}.pem").read_text())
    return out


def listener(certs: Certs, **options: Any) -> ListenerConfig:
    return ListenerConfig(tls_cert_file=certs.pem("server"), tls_key_file=str(certs.dir / "server.key"), **options)


@dataclass
class Served:
    port: int
    seen: list[Connection]

    async def ask(self, client: ssl.SSLContext) -> int:
        """One request on a new connection; its status."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port, ssl=client)
        try:
            writer.write(get("/v1/secret/data/x"))
            return (await read_response(reader))[0]
        finally:
            writer.close()

    async def refused(self, client: ssl.SSLContext) -> bool:
        """True if the server refuses the handshake (under TLS 1.3 the client may only learn it on reading)."""
        seen = len(self.seen)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port, ssl=client)
            writer.write(get("/v1/secret/data/x"))
            answer = await asyncio.wait_for(reader.read(), 5)
            writer.close()
        except (ssl.SSLError, ConnectionError):
            answer = b""
        return answer == b"" and len(self.seen) == seen


@asynccontextmanager
async def serving(ctx: ssl.SSLContext, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Served]:
    seen: list[Connection] = []
    async with unsealed_core() as (core, _):
        async def capture(req: Any) -> None:
            seen.append(req.connection)

        monkeypatch.setattr(core, "handle_request", capture)
        server = HttpServer(App(core), asyncio.get_running_loop())
        await server.start("127.0.0.1", 0, ctx)
        try:
            yield Served(server.sockets[0].getsockname()[1], seen)
        finally:
            await server.stop(grace=1)


async def test_any_presented_certificate_is_accepted_and_reaches_the_request(
        certs: Certs, monkeypatch: pytest.MonkeyPatch) -> None:
    # tls_client_ca_file is set, yet a self-signed or unknown certificate is not checked against it
    # (as Vault: the CA file only matters with tls_require_and_verify_client_cert).
    ctx = tls_context(listener(certs, tls_client_ca_file=certs.pem("ca")))
    assert ctx.verify_mode == ssl.CERT_OPTIONAL
    async with serving(ctx, monkeypatch) as srv:
        for name in ("self", "chained", "signed", None):
            for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
                assert await srv.ask(certs.client(name, max_version=version)) == 204
    by_client = srv.seen[::2]
    assert [c.peer_certificate for c in srv.seen[1::2]] == [c.peer_certificate for c in by_client]
    assert [c.peer_certificate for c in by_client] == [certs.der["self"], certs.der["leaf"], certs.der["signed"], None]
    # The chain as sent: OpenSSL clients add the issuers they can find in their own trust store
    # (here the CA, for the CA-signed certificate).
    assert [c.peer_certificate_chain for c in by_client] == [
        (certs.der["self"],), (certs.der["leaf"], certs.der["inter"]), (certs.der["signed"], certs.der["ca"]), ()]


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
async def test_require_and_verify_refuses_unknown_and_missing_certificates(
        certs: Certs, monkeypatch: pytest.MonkeyPatch, version: ssl.TLSVersion) -> None:
    ctx = tls_context(listener(certs, tls_client_ca_file=certs.pem("ca"), tls_require_and_verify_client_cert=True))
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    async with serving(ctx, monkeypatch) as srv:
        assert await srv.refused(certs.client("self", max_version=version))
        assert await srv.refused(certs.client("chained", max_version=version))
        assert await srv.refused(certs.client(None, max_version=version))
        assert await srv.ask(certs.client("signed", max_version=version)) == 204
    assert [(c.peer_certificate, c.peer_certificate_chain) for c in srv.seen] == [
        (certs.der["signed"], (certs.der["signed"], certs.der["ca"]))]


async def test_disabled_client_certs_are_not_asked_for(certs: Certs, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = tls_context(listener(certs, tls_client_ca_file=certs.pem("ca"), tls_disable_client_certs=True))
    assert ctx.verify_mode == ssl.CERT_NONE
    async with serving(ctx, monkeypatch) as srv:
        # A client sends its certificate only when asked: the server sees none.
        assert await srv.ask(certs.client("signed")) == 204
        assert await srv.ask(certs.client("self")) == 204
    assert [(c.peer_certificate, c.peer_certificate_chain) for c in srv.seen] == [(None, ()), (None, ())]


async def test_without_the_verify_callback_no_certificate_is_asked_for(
        certs: Certs, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # Where ctypes cannot install the accepting callback, the listener must not fall back to
    # CERT_OPTIONAL (which drops clients presenting unknown certificates): it asks for none, and says so.
    monkeypatch.setattr(tls, "_libssl", lambda: None)
    with caplog.at_level(logging.WARNING, logger="strongroom.http"):
        ctx = tls_context(listener(certs))
    assert ctx.verify_mode == ssl.CERT_NONE
    assert "will not ask clients for one" in caplog.text
    async with serving(ctx, monkeypatch) as srv:
        assert await srv.ask(certs.client("self")) == 204
    assert srv.seen[0].peer_certificate is None


def test_peer_chain_of_a_plain_connection_is_empty() -> None:
    assert tls.peer_chain(None) == ()
