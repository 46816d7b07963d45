"""The podman engine fixture (tests/podman_engine.py)."""

from tests.podman_engine import engine

__all__ = ["engine"]
