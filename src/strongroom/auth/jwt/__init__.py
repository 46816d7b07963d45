"""JWT/OIDC: clients log in with a signed JWT, people with an OIDC provider's browser flow.
Mounted as type "jwt" or "oidc" (the same backend, as in Vault).

Paths (the table of contents; handlers live in the sibling modules)::

    config                  key source (PEM keys / JWKS URL / OIDC discovery), OIDC client   config.py
    role/                   LIST roles                                                       roles.py
    role/<name>             role CRUD: bound audiences/subject/claims, mappings, token_*     roles.py
    login                   role + jwt -> token                                              login.py
    oidc/auth_url           start the authorization-code flow                                oidc.py
    oidc/callback           finish it: code -> ID token -> token                             oidc.py

Token verification (pure, `cryptography`): verify.py. JWKS and discovery fetching and caching:
keys.py. Storage: store.py.
"""

from __future__ import annotations

import time

from strongroom.auth.jwt import config, login, oidc, roles
from strongroom.auth.jwt.keys import KeySource
from strongroom.auth.jwt.oidc import PendingRequest
from strongroom.auth.jwt.store import JWTStore

from strongroom.framework import Backend, BackendConfig, Path, Request, storage_of


def paths() -> list[Path[JWTBackend]]:
    return [*config.paths(), *roles.paths(), *login.paths(), *oidc.paths()]


class JWTBackend(Backend):
    backend_type = "credential"
    help = ("The JWT auth method lets clients log in with a JWT signed by a trusted key or OIDC provider,\n"
            "and people with an OIDC provider's browser login (oidc/auth_url, oidc/callback).")

    def __init__(self, config: BackendConfig) -> None:
        super().__init__(config, paths())
        self.keys = KeySource()
        # Pending OIDC logins by state, in creation order (so the oldest are dropped first).
        self._pending: dict[str, PendingRequest] = {}

    async def store(self, req: Request) -> JWTStore:
        return JWTStore(storage_of(req))

    def remember(self, state: str, pending: PendingRequest) -> None:
        while len(self._pending) >= oidc.MAX_PENDING:
            self._pending.pop(next(iter(self._pending)))
        self._pending[state] = pending

    def take(self, state: str) -> PendingRequest | None:
        """The pending login of ``state``, removed: each state completes at most one login."""
        pending = self._pending.pop(state, None) if state else None
        if pending is None or pending.expires < time.time():
            return None
        return pending

    async def periodic(self, now: float) -> None:
        for state in [s for s, p in self._pending.items() if p.expires < now]:
            self._pending.pop(state, None)
        await super().periodic(now)

    async def deactivate(self) -> None:
        self._pending.clear()
        await self.keys.close()
        await super().deactivate()


__all__ = ["JWTBackend", "paths"]
