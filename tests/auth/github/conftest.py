"""Fixtures for the github auth method: the local GitHub API of fakegithub.py with an organization
"acme" (id 42), and an in-process core with the method mounted at auth/github."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from tests.auth.conftest import Vault
from tests.auth.github.fakegithub import FakeGitHub

from strongroom.testing import asgi_client, unsealed_core

ORG_ID = 42


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    gh = FakeGitHub().start()
    gh.org("acme", ORG_ID)
    yield gh
    gh.stop()


@pytest.fixture
async def gv() -> AsyncIterator[Vault]:
    async with unsealed_core() as (core, _), asgi_client(core) as client:
        v = Vault(core, client)
        await v.done("POST", "sys/auth/github", {"type": "github"})
        yield v
