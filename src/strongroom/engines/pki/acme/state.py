"""Per-mount ACME state kept in memory: nonces, background validations, record locks.

Nonces live in memory as in Vault (a restart or another node answers badNonce and the client
retries with a fresh one, as RFC 8555 §6.5 expects). They are single-use and expire after
``NONCE_TTL``; at most ``MAX_NONCES`` are kept (the oldest go first), so memory is bounded whatever
clients do. One :class:`AcmeState` per backend object, created on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
import weakref
from collections.abc import Callable, Coroutine
from typing import Any

from strongroom.framework import StripedLocks

NONCE_TTL = 15 * 60.0
MAX_NONCES = 100_000
#: http-01 validation: seconds for one fetch (connect + answer), attempts, seconds between them.
HTTP01_TIMEOUT = 10.0
HTTP01_ATTEMPTS = 3
HTTP01_RETRY_DELAY = 2.0


class AcmeState:
    def __init__(self) -> None:
        self.clock: Callable[[], float] = time.time
        self.nonces: dict[str, float] = {}
        self.locks = StripedLocks()
        self.tasks: set[asyncio.Task[None]] = set()
        self.create_lock = asyncio.Lock()  # account creation (accounts.py)
        self.http01_timeout = HTTP01_TIMEOUT
        self.http01_attempts = HTTP01_ATTEMPTS
        self.http01_retry_delay = HTTP01_RETRY_DELAY

    def new_nonce(self) -> str:
        now = self.clock()
        nonces = self.nonces
        while nonces:  # insertion order is expiry order: drop the expired, then the oldest past the cap
            oldest = next(iter(nonces))
            if nonces[oldest] > now and len(nonces) < MAX_NONCES:
                break
            del nonces[oldest]
        nonce = secrets.token_urlsafe(16)
        nonces[nonce] = now + NONCE_TTL
        return nonce

    def consume_nonce(self, nonce: str) -> bool:
        """True once for a nonce this server issued and that has not expired."""
        expires = self.nonces.pop(nonce, None)
        return expires is not None and expires > self.clock()

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def settled(self) -> None:
        """Wait for every background validation (tests, orderly shutdown)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    async def stop(self) -> None:
        tasks, self.tasks = list(self.tasks), set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


_STATES: weakref.WeakKeyDictionary[object, AcmeState] = weakref.WeakKeyDictionary()


def state_of(backend: object) -> AcmeState:
    """The ACME state of a mount's backend (made on first use)."""
    state = _STATES.get(backend)
    if state is None:
        state = _STATES[backend] = AcmeState()
    return state


async def acme_deactivate(backend: object) -> None:
    """Stop a backend's background validations and forget its nonces (the pki backend's
    ``deactivate`` calls this)."""
    state = _STATES.pop(backend, None)
    if state is not None:
        await state.stop()
