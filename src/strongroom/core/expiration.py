"""ExpirationManager: the lease registry. Every secret or login with a TTL gets a lease, persisted
through the barrier, renewed or revoked on request and revoked at expiry.

This module is the interface the pipeline and the token store rely on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.logical import Request, Response

if TYPE_CHECKING:
    from strongroom.core.tokens import TokenEntry


class ExpirationManager:
    async def setup(self) -> None:
        """After unseal: restore persisted leases and start the expiry timer."""

    async def stop(self) -> None:
        """Before seal: stop the timer and wait for in-flight revocations."""

    async def register_secret(self, req: Request, resp: Response) -> None:
        """``resp.secret`` from a lease-generating backend: persist a lease for it, owned by the
        caller's token, and fill in ``resp.secret.lease_id`` (and the TTL, capped by the mount)."""

    async def register_token(self, entry: TokenEntry) -> None:
        """A token with a TTL was created (token create or login): track its expiry."""

    async def token_renewed(self, entry: TokenEntry) -> None:
        """A token's expire_time moved."""

    async def revoke_by_token(self, entry: TokenEntry) -> None:
        """The token is being revoked: revoke every lease it holds and forget its own lease."""
