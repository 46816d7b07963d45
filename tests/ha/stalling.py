"""A real HA lock whose renewals hang once ``stall`` is set: a store that stopped answering."""

from __future__ import annotations

import asyncio

from strongroom.core.ha import HALock


class Stalling:
    def __init__(self, lock: HALock) -> None:
        self.inner, self.ttl, self.stall = lock, lock.ttl, False

    async def acquire(self, identity: str, value: str) -> bool:
        if self.stall:
            await asyncio.sleep(3600)
        return await self.inner.acquire(identity, value)

    async def release(self, identity: str) -> None:
        await self.inner.release(identity)

    async def holder(self) -> tuple[str, str, float] | None:
        return await self.inner.holder()

    async def echo(self, identity: str, value: str) -> None:
        await self.inner.echo(identity, value)

    async def forget(self, identity: str) -> None:
        await self.inner.forget(identity)

    async def nodes(self) -> list[tuple[str, str, float]]:
        return await self.inner.nodes()
