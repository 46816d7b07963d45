"""ACME tests: the test CA mounted at pki/ of an unsealed in-memory core, reached in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from tests.engines.pki.acme import ca_backend
from tests.engines.pki.acme.challenge import ChallengeServer, DnsServer
from tests.engines.pki.acme.jose import AcmeClient

from strongroom.core import Core
from strongroom.engines import SECRETS_ENGINES
from strongroom.testing import app_client, unsealed_core

BASE = "http://strongroom/v1/pki"


@dataclass
class Env:
    core: Core
    http: httpx.AsyncClient  # unauthenticated, as ACME clients are
    admin: httpx.AsyncClient  # with the root token

    @property
    def backend(self) -> ca_backend.TestCABackend:
        hit = self.core.router.match("pki/")
        assert hit is not None and isinstance(hit[0].backend, ca_backend.TestCABackend)
        return hit[0].backend

    def client(self, directory: str = f"{BASE}/acme/directory") -> AcmeClient:
        return AcmeClient(self.http, directory, ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture
async def env(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Env]:
    monkeypatch.setitem(SECRETS_ENGINES, ca_backend.TYPE, "tests.engines.pki.acme.ca_backend:TestCABackend")
    async with unsealed_core() as (core, token), app_client(core, token) as admin, app_client(core) as http:
        assert (await admin.post("/v1/sys/mounts/pki", json={"type": ca_backend.TYPE})).status_code == 204
        assert (await admin.post("/v1/pki/config/cluster", json={"path": BASE})).status_code == 204
        r = await admin.post("/v1/pki/config/acme", json={"enabled": True})
        assert r.status_code == 200, r.text
        yield Env(core, http, admin)


@pytest.fixture
def challenge_server() -> Iterator[ChallengeServer]:
    """An http-01 responder on 127.0.0.1 (tests fill ``answers``)."""
    s = ChallengeServer()
    yield s
    s.server.shutdown()
    s.server.server_close()


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    """A TXT-answering DNS server on 127.0.0.1 (tests fill ``records``)."""
    s = DnsServer()
    yield s
    s.close()
