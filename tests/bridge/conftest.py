"""The podman engine fixture (tests/podman_engine.py); every test starts with no containers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.podman_engine import PodmanEngine, engine

__all__ = ["engine"]


@pytest.fixture(autouse=True)
async def no_containers_left(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    yield
    if "engine" in request.fixturenames:
        e: PodmanEngine = request.getfixturevalue("engine")
        await asyncio.to_thread(e.remove_all)
