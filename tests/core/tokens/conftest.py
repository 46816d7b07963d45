"""Fixtures for token store tests: a store over recording storage with a settable clock, and its backend."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.barrier.view import StorageView
from strongroom.core.tokens import TokenBackend, TokenEntry, TokenStore, token_backend
from strongroom.framework import BackendConfig, Op, Request, Response
from strongroom.storage.inmem import InmemStorage

T0 = 1_800_000_000.25
H768 = 768 * 3600


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingStorage(InmemStorage):
    """InmemStorage that remembers every key and value ever written, and counts reads."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[tuple[str, bytes]] = []
        self.gets = 0

    async def get(self, key: str) -> bytes | None:
        self.gets += 1
        return await super().get(key)

    async def put(self, key: str, value: bytes) -> None:
        self.written.append((key, bytes(value)))
        await super().put(key, value)

    async def keys(self, prefix: str = "") -> list[str]:
        out: list[str] = []
        pending = [prefix]
        while pending:
            folder = pending.pop()
            for child in await self.list(folder):
                (pending if child.endswith("/") else out).append(folder + child)
        return sorted(out)


class Caller:
    """Sends requests to the token backend as core would, authenticated as one token."""

    def __init__(self, backend: TokenBackend, token: str, entry: TokenEntry, sudo: bool = False) -> None:
        self.backend, self.token, self.entry, self.sudo = backend, token, entry, sudo

    async def __call__(self, op: Op, path: str, data: dict[str, Any] | None = None) -> Response | None:
        req = Request(op, path, data=dict(data or {}), client_token=self.token, token_id=self.entry.id,
                      token_entry=self.entry, sudo=self.sudo or "root" in self.entry.policies,
                      mount_point="auth/token/")
        return await self.backend.handle(req)

    async def create(self, data: dict[str, Any] | None = None, path: str = "create") -> Caller:
        resp = await self(Op.UPDATE, path, data)
        assert resp is not None and resp.auth is not None
        entry = await self.backend.store.lookup(resp.auth.client_token)
        assert entry is not None
        return Caller(self.backend, resp.auth.client_token, entry)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def storage() -> RecordingStorage:
    return RecordingStorage()


@pytest.fixture
def storage_class() -> type[RecordingStorage]:
    return RecordingStorage


def new_store(storage: RecordingStorage, clock: Clock, **kw: Any) -> TokenStore:
    return TokenStore(StorageView(storage, "sys/token/"), default_ttl=lambda: H768, max_ttl=lambda: H768,
                      clock=clock, **kw)


@pytest.fixture
def make_store(clock: Clock) -> Any:
    """``await make_store(storage, **kw)``: another store (empty cache) over some storage."""

    async def make(storage: RecordingStorage, **kw: Any) -> TokenStore:
        s = new_store(storage, clock, **kw)
        await s.setup()
        await s.activate()  # as on the active node (a standby only sets up)
        return s

    return make


@pytest.fixture
async def store(storage: RecordingStorage, make_store: Any) -> TokenStore:
    made: TokenStore = await make_store(storage)
    return made


@pytest.fixture
def backend(store: TokenStore) -> TokenBackend:
    return token_backend(store, BackendConfig(mount_path="auth/token/", mount_type="token"))


@pytest.fixture
async def root(store: TokenStore) -> tuple[str, TokenEntry]:
    return await store.create_root("root")


@pytest.fixture
def as_root(backend: TokenBackend, root: tuple[str, TokenEntry]) -> Caller:
    return Caller(backend, *root)
