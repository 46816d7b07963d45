"""Backend: dispatches a routed request through a path table.

A backend author declares ``paths()`` and handlers; this class matches the path, builds validated
:class:`FieldData`, answers 404/405 and help, runs existence checks (create vs update) and routes
lease renew/revoke to the declared :class:`SecretType`.

A backend that creates things outside Strongroom overrides :meth:`Backend.rollback` and records
each external create with :meth:`Backend.put_wal` first: framework/wal.py has the whole rule.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Self, TypeAlias

from strongroom.framework.tasks import stop_task
from strongroom.errors import Internal, InvalidRequest, UnsupportedOperation, UnsupportedPath
from strongroom.framework import wal
from strongroom.framework.fields import Field, FieldData
from strongroom.framework.path import B, B_contra, Path
from strongroom.framework.system import SystemView
from strongroom.lifecycle import Part
from strongroom.logical import LeaseInfo, Request, Response
from strongroom.logical import Operation as Op

SecretHandler: TypeAlias = Callable[[B, Request, FieldData], Awaitable["Response | None"]]

#: The key of a secret's internal data naming its :class:`SecretType` (set by
#: :meth:`SecretType.response`; renew and revoke are routed by it).
SECRET_TYPE_KEY = "secret_type"


@dataclass(slots=True)
class SecretType(Generic[B_contra]):
    """A kind of lease-bearing secret a backend hands out (e.g. database credentials). Generic over
    the backend class its renew/revoke handlers take first, like :class:`Path`."""

    name: str
    fields: dict[str, Field] = field(default_factory=dict)
    default_ttl: int = 0
    renew: SecretHandler[B_contra] | None = None
    revoke: SecretHandler[B_contra] | None = None

    def response(self, data: dict[str, Any] | None, internal: dict[str, Any] | None = None, *,
                 ttl: int = 0, max_ttl: int = 0, renewable: bool = True, wal_ids: Iterable[str] = (),
                 system: SystemView | None = None) -> Response:
        """A response handing out one secret of this type: ``data`` is what the client sees,
        ``internal`` what renew and revoke will be given back (stored with the lease, never shown).
        The secret type is recorded in the internal data by this method, nothing else.

        TTL: ``ttl`` if given, else this type's ``default_ttl``, else the mount's default lease TTL
        (``system.lease_ttls()``, tune applied; core applies the same default when neither is set).
        Core caps it at the mount's max TTL (and ``max_ttl``) when it registers the lease, with
        Vault's warning. ``wal_ids``: write-ahead entries (framework/wal.py) core deletes in the
        lease's own commit."""
        if not ttl:
            ttl = self.default_ttl or (system.lease_ttls()[0] if system is not None else 0)
        secret = LeaseInfo(ttl=ttl, max_ttl=max_ttl, renewable=renewable,
                           internal_data={**(internal or {}), SECRET_TYPE_KEY: self.name})
        return Response(data=data, secret=secret, wal_ids=list(wal_ids))

    @staticmethod
    def name_of(secret: LeaseInfo | None) -> str:
        """The secret type a lease's secret was issued as ("" if none is recorded)."""
        return str(secret.internal_data.get(SECRET_TYPE_KEY, "")) if secret is not None else ""


@dataclass(frozen=True, slots=True)
class BackendConfig:
    """What core tells a backend when mounting it."""

    mount_path: str = ""
    mount_type: str = ""
    options: dict[str, str] = field(default_factory=dict)
    default_lease_ttl: int = 0
    max_lease_ttl: int = 0
    # The backend's one way to the rest of the server (framework/system.py); None only for a
    # backend built outside a core that never asks for it.
    system: SystemView | None = None


class Backend(Part):
    """Base class for every secrets engine and auth method. Subclasses set ``paths`` and ``help``.

    Lifecycle (strongroom/lifecycle.py; core drives it): ``setup`` after mount and on every unseal,
    ``activate`` on the active node, ``deactivate`` before unmount, tune or seal, ``invalidate(key)``
    with a key relative to the mount's storage, ``periodic(now)`` from core's one scheduler.
    """

    help: str = ""
    # "logical" (secrets engine) or "credential" (auth method), as Vault reports it.
    backend_type: str = "logical"
    # Whether a ``secret`` in this backend's responses is a lease core must track (kv's is advisory).
    generates_leases: bool = True

    #: Seconds a write-ahead entry must have aged before ``periodic`` rolls it back (framework/wal.py).
    wal_rollback_min_age: float = wal.DEFAULT_MIN_AGE

    def __init__(self, config: BackendConfig, paths: Sequence[Path[Self]],
                 secrets: Sequence[SecretType[Self]] = ()) -> None:
        self.config = config
        self.paths: list[Path[Self]] = list(paths)
        self.secrets: dict[str, SecretType[Self]] = {s.name: s for s in secrets}
        self._match_cache: dict[str, tuple[Path[Self], dict[str, str]] | None] = {}
        self._wal_lock = asyncio.Lock()
        self._wal_task: asyncio.Task[wal.RollbackRound] | None = None

    @property
    def system(self) -> SystemView:
        """The mount's SystemView (storage, lease TTLs, clock, active, entities, logger)."""
        if self.config.system is None:
            raise Internal("backend used outside a core: no system view")
        return self.config.system

    # -- write-ahead log and rollback (framework/wal.py) ----------------------------------------
    async def rollback(self, kind: str, data: Any) -> bool | None:
        """Undo the external work a write-ahead entry describes (drop the user it was creating).
        Return True or None when done (the entry is deleted), False to keep it for the next round;
        raising keeps it too. A backend that creates nothing outside does not override this, and
        then pays nothing: no storage listing on activate or periodic."""
        raise NotImplementedError

    @property
    def rolls_back(self) -> bool:
        """Whether this backend overrides :meth:`rollback`."""
        return type(self).rollback is not Backend.rollback

    async def put_wal(self, kind: str, data: Any) -> str:
        """Record, durably, that ``kind``/``data`` is about to be created outside. Returns its id."""
        return await wal.put_wal(self.system.storage, kind, data, now=self.system.now())

    async def delete_wal(self, wal_id: str) -> None:
        await wal.delete_wal(self.system.storage, wal_id)

    async def rollback_wal(self, *, now: float | None = None, orphans: bool = False,
                           final: bool = False) -> wal.RollbackRound:
        """One rollback round (one at a time per backend; a round asked for while one runs is
        skipped, the running one covers it). ``final``: the mount is going away (unmount, as
        Vault rolls back before it): wait for a running round, then roll back every entry,
        whatever its age or owner (a request still running could not register its lease)."""
        if not self.rolls_back or (self._wal_lock.locked() and not final):
            return wal.RollbackRound()
        async with self._wal_lock:
            return await wal.rollback_wal(self.system.storage, self.rollback,
                                          now=self.system.now() if now is None else now,
                                          min_age=-math.inf if final else self.wal_rollback_min_age,
                                          orphans=orphans and not final, logger=self.system.logger)

    async def rollback_settled(self) -> None:
        """Wait for the rollback round ``activate`` started, if any (tests, orderly shutdown)."""
        task = self._wal_task
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    async def activate(self) -> None:
        """On the active node after unseal (or when mounted there): every write-ahead entry no
        running request of this process owns was left by a process that is gone, so it is rolled
        back now, whatever its age. In the background: an unreachable external system must not
        hold up the unseal. Subclasses that override this call ``super().activate()``."""
        if self.rolls_back:
            self._wal_task = asyncio.create_task(self.rollback_wal(orphans=True),
                                                 name=f"strongroom-rollback-{self.config.mount_path}")

    async def deactivate(self) -> None:
        """Stop the rollback round ``activate`` started. Subclasses call ``super().deactivate()``."""
        task, self._wal_task = self._wal_task, None
        await stop_task(task)

    async def periodic(self, now: float) -> None:
        """Roll back write-ahead entries older than ``wal_rollback_min_age``. Subclasses that
        override this call ``super().periodic(now)``."""
        if self.rolls_back:
            await self.rollback_wal(now=now)

    # -- routing --------------------------------------------------------------------------------
    def route(self, path: str) -> tuple[Path[Self], dict[str, str]] | None:
        hit = self._match_cache.get(path, False)
        if hit is not False:
            return hit  # type: ignore[return-value]
        found: tuple[Path[Self], dict[str, str]] | None = None
        for p in self.paths:
            groups = p.match(path)
            if groups is not None:
                found = (p, groups)
                break
        if len(self._match_cache) > 4096:
            self._match_cache.clear()
        self._match_cache[path] = found
        return found

    def is_unauthenticated(self, path: str) -> bool:
        hit = self.route(path)
        return hit is not None and hit[0].unauthenticated

    def is_root_path(self, path: str) -> bool:
        hit = self.route(path)
        return hit is not None and hit[0].root

    def field_data(self, p: Path[Self], req: Request, groups: dict[str, str]) -> FieldData:
        raw = req.data
        if groups:
            raw = {**raw, **groups}
        return FieldData(raw, p.fields)

    async def exists(self, req: Request) -> tuple[bool, bool]:
        """(check_found, exists): whether the path declares an existence check and its answer."""
        hit = self.route(req.path)
        if hit is None or hit[0].exists is None:
            return False, False
        p, groups = hit
        check = p.exists
        assert check is not None
        return True, await check(self, req, self.field_data(p, req, groups))

    async def handle(self, req: Request) -> Response | None:
        if req.operation in (Op.RENEW, Op.REVOKE):
            return await self._handle_secret(req)
        hit = self.route(req.path)
        if hit is None:
            raise UnsupportedPath("unsupported path")
        p, groups = hit
        if req.operation is Op.HELP:
            return Response(data={"help": self._help_text(p)})
        handler = p.handler(req.operation)
        if handler is None:
            raise UnsupportedOperation()
        return await handler(self, req, self.field_data(p, req, groups))

    async def _handle_secret(self: Self, req: Request) -> Response | None:
        secret = req.secret
        name = SecretType.name_of(secret)
        kind = self.secrets.get(name)
        if kind is None:
            raise InvalidRequest(f'unknown secret type "{name}"')
        fn = kind.renew if req.operation is Op.RENEW else kind.revoke
        if fn is None:
            if req.operation is Op.RENEW:
                raise InvalidRequest("lease is not renewable")
            return None
        return await fn(self, req, FieldData(secret.internal_data if secret else {}, kind.fields))

    def _help_text(self, p: Path[Self]) -> str:
        lines = [f"Request:        {p.pattern}", f"Matching Route: ^{p.pattern}$", "", p.synopsis]
        if p.fields:
            lines += ["", "## PARAMETERS", ""]
            for name, f in sorted(p.fields.items()):
                lines += [f"{name} ({f.type.value})", "", f"    {f.description}", ""]
        if p.description:
            lines += ["## DESCRIPTION", "", p.description]
        return "\n".join(lines)
