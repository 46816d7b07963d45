"""AuditBroker: fans each request, response and security event out to the enabled audit devices.

SECURITY: fail closed. When at least one device is enabled and none of them records an entry,
``log_request`` raises, and the pipeline refuses the request before any backend runs.

This module is the interface the pipeline relies on; devices live in :mod:`strongroom.audit`.
"""

from __future__ import annotations

from typing import Any

from strongroom.errors import StrongroomError
from strongroom.logical import Request, Response


class AuditBroker:
    """No devices: every call is a no-op (Vault serves requests when no audit device is enabled)."""

    @property
    def enabled(self) -> bool:
        return False

    async def log_request(self, req: Request) -> None:
        """Record ``req`` before the backend runs. Raises Internal if no enabled device could."""

    async def log_response(self, req: Request, resp: Response | None, err: StrongroomError | None) -> None:
        """Record the outcome (``resp`` or ``err``). Raises Internal if no enabled device could."""

    async def log_event(self, kind: str, data: dict[str, Any]) -> None:
        """Record a security event of type ``kind`` (e.g. "wrapping-token-reuse") with its details.
        Never raises: an event is evidence, and losing it must not break the request that raised it."""

    async def teardown(self) -> None:
        """Close every device (seal)."""
