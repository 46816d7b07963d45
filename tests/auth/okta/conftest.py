"""Fixtures for the okta auth method: the local Okta org of fakeokta.py, and an in-process core
with the method mounted at auth/okta."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from tests.auth.conftest import Vault
from tests.auth.okta.fakeokta import FakeOkta

from strongroom.testing import asgi_client, unsealed_core


@pytest.fixture
def okta() -> Iterator[FakeOkta]:
    o = FakeOkta(page_size=2).start()
    yield o
    o.stop()


@pytest.fixture
async def ov() -> AsyncIterator[Vault]:
    async with unsealed_core() as (core, _), asgi_client(core) as client:
        v = Vault(core, client)
        await v.done("POST", "sys/auth/okta", {"type": "okta"})
        yield v
