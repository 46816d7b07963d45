"""Backend: dispatches a routed request through a path table.

A backend author declares ``paths()`` and handlers; this class matches the path, builds validated
:class:`FieldData`, answers 404/405 and help, runs existence checks (create vs update) and routes
lease renew/revoke to the declared :class:`SecretType`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from strongroom.errors import Internal, InvalidRequest, UnsupportedOperation, UnsupportedPath
from strongroom.framework.fields import Field, FieldData
from strongroom.framework.path import Path
from strongroom.framework.system import SystemView
from strongroom.lifecycle import Part
from strongroom.logical import Operation as Op
from strongroom.logical import Request, Response

SecretHandler = Callable[[Any, Request, FieldData], Awaitable["Response | None"]]


@dataclass(slots=True)
class SecretType:
    """A kind of lease-bearing secret a backend hands out (e.g. database credentials)."""

    name: str
    fields: dict[str, Field] = field(default_factory=dict)
    default_ttl: int = 0
    renew: SecretHandler | None = None
    revoke: SecretHandler | None = None


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

    def __init__(self, config: BackendConfig, paths: Sequence[Path], secrets: Sequence[SecretType] = ()) -> None:
        self.config = config
        self.paths = list(paths)
        self.secrets = {s.name: s for s in secrets}
        self._match_cache: dict[str, tuple[Path, dict[str, str]] | None] = {}

    @property
    def system(self) -> SystemView:
        """The mount's SystemView (storage, lease TTLs, clock, active, entities, logger)."""
        if self.config.system is None:
            raise Internal("backend used outside a core: no system view")
        return self.config.system

    # -- routing --------------------------------------------------------------------------------
    def route(self, path: str) -> tuple[Path, dict[str, str]] | None:
        hit = self._match_cache.get(path, False)
        if hit is not False:
            return hit  # type: ignore[return-value]
        found: tuple[Path, dict[str, str]] | None = None
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

    def field_data(self, p: Path, req: Request, groups: dict[str, str]) -> FieldData:
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

    async def _handle_secret(self, req: Request) -> Response | None:
        secret = req.secret
        name = str(secret.internal_data.get("secret_type", "")) if secret else ""
        kind = self.secrets.get(name)
        if kind is None:
            raise InvalidRequest(f'unknown secret type "{name}"')
        fn = kind.renew if req.operation is Op.RENEW else kind.revoke
        if fn is None:
            if req.operation is Op.RENEW:
                raise InvalidRequest("lease is not renewable")
            return None
        return await fn(self, req, FieldData(secret.internal_data if secret else {}, kind.fields))

    def _help_text(self, p: Path) -> str:
        lines = [f"Request:        {p.pattern}", f"Matching Route: ^{p.pattern}$", "", p.synopsis]
        if p.fields:
            lines += ["", "## PARAMETERS", ""]
            for name, f in sorted(p.fields.items()):
                lines += [f"{name} ({f.type.value})", "", f"    {f.description}", ""]
        if p.description:
            lines += ["## DESCRIPTION", "", p.description]
        return "\n".join(lines)
