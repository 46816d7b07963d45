"""The SystemView core hands each mount (the protocol: strongroom/framework/system.py)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from strongroom.errors import InvalidRequest
from strongroom.framework.passwords import generate_default
from strongroom.framework.system import Entity
from strongroom.logical import Storage

if TYPE_CHECKING:
    from strongroom.core.mounts import MountEntry

EntityLookup = Callable[[str], Awaitable[Entity | None]]
PasswordSource = Callable[[str], Awaitable[str]]


async def no_entity(entity_id: str) -> Entity | None:
    """Entity lookup until the identity store exists: no entity is known."""
    return None


async def default_password(policy: str) -> str:
    """Passwords until named password policies are stored: only the default policy exists."""
    if policy:
        raise InvalidRequest(f'failed to generate password: policy "{policy}" not found')
    return generate_default()


class MountSystemView:
    """One mount's view of the server. Holds the mount entry (for its tuned TTLs) and small callables
    into core, never core itself."""

    __slots__ = ("_active", "_clock", "_entities", "_entry", "_passwords", "_ttls", "logger", "storage")

    def __init__(self, entry: MountEntry, storage: Storage, *, ttls: Callable[[MountEntry], tuple[int, int]],
                 clock: Callable[[], float], active: Callable[[], bool], entities: EntityLookup = no_entity,
                 passwords: PasswordSource = default_password) -> None:
        self._entry = entry
        self.storage = storage
        self._ttls = ttls
        self._clock = clock
        self._active = active
        self._entities = entities
        self._passwords = passwords
        self.logger = logging.getLogger(f"strongroom.mount.{entry.type}")

    def lease_ttls(self) -> tuple[int, int]:
        return self._ttls(self._entry)

    def now(self) -> float:
        return self._clock()

    def active(self) -> bool:
        return self._active()

    async def entity(self, entity_id: str) -> Entity | None:
        return await self._entities(entity_id)

    async def generate_password(self, policy: str = "") -> str:
        return await self._passwords(policy)


__all__ = ["MountSystemView", "PasswordSource", "default_password", "no_entity"]
