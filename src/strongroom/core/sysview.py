"""The SystemView core hands each mount (the protocol: strongroom/framework/system.py)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from strongroom.core.events import Event
from strongroom.errors import InvalidRequest
from strongroom.framework.passwords import generate_default
from strongroom.framework.system import Entity
from strongroom.logical import Storage

if TYPE_CHECKING:
    from strongroom.core.mounts import MountEntry

EntityLookup = Callable[[str], Awaitable[Entity | None]]
PasswordSource = Callable[[str], Awaitable[str]]
EventSink = Callable[[Event], None]


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

    __slots__ = ("_active", "_clock", "_entities", "_entry", "_events", "_passwords", "_ttls", "logger", "storage")

    def __init__(self, entry: MountEntry, storage: Storage, *, ttls: Callable[[MountEntry], tuple[int, int]],
                 clock: Callable[[], float], active: Callable[[], bool], entities: EntityLookup = no_entity,
                 passwords: PasswordSource = default_password, events: EventSink | None = None) -> None:
        self._entry = entry
        self._events = events
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

    def emit_event(self, event_type: str, metadata: dict[str, str]) -> None:
        """Publish to core's event bus: the mount's plugin information added, ``path`` and
        ``data_path`` prefixed with the mount path (what subscribers' ACLs are checked against)."""
        if self._events is None:
            return
        e = self._entry
        full = dict(metadata)
        for key in ("path", "data_path"):
            if full.get(key):
                full[key] = e.full_path + full[key]
        info = {"mount_class": "auth" if e.table == "auth" else "secret", "mount_accessor": e.accessor,
                "mount_path": e.full_path, "plugin": e.type}
        try:
            self._events(Event(event_type, full, info))
        except Exception:  # an event must never fail the write that caused it
            self.logger.exception("publishing event %s failed", event_type)


__all__ = ["EntityLookup", "EventSink", "MountSystemView", "PasswordSource", "default_password", "no_entity"]
