"""SystemView: everything a backend may know of the server it runs in (OpenBao's logical.SystemView).

Core hands one to every mount through :class:`~strongroom.framework.BackendConfig`; a backend
reaches the rest of the server through nothing else. Eight members, each cheap to call on a hot path:

    storage        the mount's own storage view (chrooted to the mount, encrypted by the barrier)
    lease_ttls()   the mount's effective (default, max) lease TTLs in seconds, tune applied
    now()          the clock, seconds since the epoch (tests replace it)
    active()       whether this node is the active one (False on a standby: write nothing, expire nothing)
    entity(id)     the identity entity of that id, or None (identity is not built yet: always None)
    logger         a logger named for the mount
    generate_password(policy)  a password from the named password policy ("" = the default policy)
    emit_event(type, metadata)  publish a change event (core/events.py); never blocks, never fails
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from strongroom.errors import InvalidRequest
from strongroom.framework.passwords import PasswordPolicy, generate_default
from strongroom.logical import Storage


@dataclass(frozen=True, slots=True)
class Entity:
    """An identity entity as a backend sees it (the identity store fills in more later)."""

    id: str
    name: str = ""
    policies: tuple[str, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    disabled: bool = False


class SystemView(Protocol):
    """What a backend may ask of core. Implementations must not block and must stay valid for the
    life of the mount (a tune or remount builds a new backend with a new view)."""

    @property
    def storage(self) -> Storage: ...

    def lease_ttls(self) -> tuple[int, int]: ...

    def now(self) -> float: ...

    def active(self) -> bool: ...

    async def entity(self, entity_id: str) -> Entity | None: ...

    @property
    def logger(self) -> logging.Logger: ...

    async def generate_password(self, policy: str = "") -> str: ...

    def emit_event(self, event_type: str, metadata: dict[str, str]) -> None:
        """Publish event ``event_type`` (``kv-v2/data-write``) with Vault's metadata; ``path`` and
        ``data_path`` are relative to the mount (the view prefixes the mount path)."""
        ...


@dataclass(slots=True)
class StaticSystemView:
    """A SystemView of fixed values: for backends used outside a core (tests, tools)."""

    storage: Storage
    ttls: tuple[int, int] = (2764800, 2764800)
    clock: Callable[[], float] = time.time
    is_active: bool = True
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("strongroom.backend"))
    password_policies: dict[str, PasswordPolicy] = field(default_factory=dict)
    #: What emit_event was given, in order (tests read it).
    events: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def lease_ttls(self) -> tuple[int, int]:
        return self.ttls

    def now(self) -> float:
        return self.clock()

    def active(self) -> bool:
        return self.is_active

    async def entity(self, entity_id: str) -> Entity | None:
        return None

    async def generate_password(self, policy: str = "") -> str:
        if not policy:
            return generate_default()
        found = self.password_policies.get(policy)
        if found is None:
            raise InvalidRequest(f'failed to generate password: policy "{policy}" not found')
        return found.generate()

    def emit_event(self, event_type: str, metadata: dict[str, str]) -> None:
        self.events.append((event_type, dict(metadata)))


__all__ = ["Entity", "StaticSystemView", "SystemView"]
