"""Helpers for framework-level engine tests: a backend from the registry over in-memory storage."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.engines import SECRETS_ENGINES
from strongroom.framework.registry import resolve
from strongroom.framework.system import StaticSystemView
from strongroom.framework import Backend, BackendConfig, Op, Request, Response
from strongroom.storage.inmem import InmemStorage

START = 1_700_000_000_123_456_789  # a fixed "now" in nanoseconds


class Clock:
    """A settable clock in nanoseconds for backends that take one (kv v2)."""

    def __init__(self, now: int = START) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1_000_000_000)


class Mount:
    """One mounted backend and its storage; ``call`` sends a logical request straight to it."""

    def __init__(self, backend: Backend, storage: InmemStorage, token_id: str = "") -> None:
        self.backend = backend
        self.storage = storage
        self.token_id = token_id

    def request(self, op: Op, path: str, data: dict[str, Any] | None = None, **kw: Any) -> Request:
        kw.setdefault("token_id", self.token_id)
        return Request(op, path, data=dict(data or {}), storage=self.storage, **kw)

    async def call(self, op: Op, path: str, data: dict[str, Any] | None = None, **kw: Any) -> Response | None:
        return await self.backend.handle(self.request(op, path, data, **kw))

    async def ok(self, op: Op, path: str, data: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        """The response data of a call expected to answer 200 with a body."""
        resp = await self.call(op, path, data, **kw)
        assert resp is not None and resp.status in (0, 200), resp
        assert resp.data is not None
        return resp.data

    async def exists(self, path: str, op: Op = Op.CREATE) -> bool:
        found, exists = await self.backend.exists(self.request(op, path))
        assert found
        return exists


async def mount(
    mount_type: str,
    options: dict[str, str] | None = None,
    storage: InmemStorage | None = None,
    default_lease_ttl: int = 0,
    clock: Clock | None = None,
) -> Mount:
    """Build a backend through the registry and initialize it, as core does on mount and unseal."""
    storage = storage if storage is not None else InmemStorage()
    config = BackendConfig(mount_path=f"{mount_type}/", mount_type=mount_type, options=dict(options or {}),
                           default_lease_ttl=default_lease_ttl, system=StaticSystemView(storage))
    backend = resolve(SECRETS_ENGINES[mount_type])(config)
    if clock is not None:
        backend.clock = clock  # type: ignore[attr-defined]
    await backend.setup()
    return Mount(backend, storage)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_mount() -> Any:
    """``await make_mount("kv", {"version": "2"}, clock=...)``: see :func:`mount`."""
    return mount


@pytest.fixture
async def kv(clock: Clock) -> Mount:
    """A kv version 2 mount on a fixed clock."""
    return await mount("kv", {"version": "2"}, clock=clock)
