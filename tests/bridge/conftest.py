"""A session-wide podman engine on a unix socket (skipped, with the reason, where it cannot run)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.podman_engine import PodmanEngine, unavailable


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PodmanEngine]:
    reason = unavailable()
    if reason:
        pytest.skip(f"needs a container engine: {reason}")
    e = PodmanEngine(tmp_path_factory.mktemp("podman"))
    try:
        e.start()
    except Exception as exc:  # noqa: BLE001 - any failure to bring podman up is a reason to skip
        e.stop()
        pytest.skip(f"podman could not start here: {exc}")
    try:
        yield e
    finally:
        e.stop()
