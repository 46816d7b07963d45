"""Security events (beyond Vault): evidence of tampering, recorded where an operator will see it.

An event is raised by the part that notices it (response wrapping: a spent wrapping token presented
again, a wrapping token that expired unclaimed; quarantine). Each event is

  - persisted through the barrier, newest ``max_events`` kept, listed at ``sys/security/events``;
  - counted per kind (the counts survive restarts);
  - written to every audit device as its own entry type (``AuditBroker.log_event``);
  - POSTed as JSON to each configured webhook URL, in the background, with retries and backoff.

Recording never fails the request that raised the event, and a slow or dead webhook never delays it.
SECURITY: an event carries accessors, paths and addresses, never a token or a secret value.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from strongroom.durations import rfc3339

if TYPE_CHECKING:
    from strongroom.core.audit import AuditBroker
    from strongroom.logical import Storage

log = logging.getLogger(__name__)

# Event kinds.
WRAPPING_TOKEN_REUSE = "wrapping-token-reuse"
WRAPPING_TOKEN_EXPIRED_UNCLAIMED = "wrapping-token-expired-unclaimed"
QUARANTINE = "quarantine"

# Storage layout inside the view handed to SecurityEvents:
# events/<20-digit ns timestamp>-<8 hex>: one event as JSON (keys sort by time).
EVENT_PREFIX = "events/"
# counts: {"<kind>": n, ...}
COUNTS_KEY = "counts"

WEBHOOK_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class SecurityConfig:
    """The server config's ``security { ... }`` stanza."""

    webhook_urls: tuple[str, ...] = ()
    # Revoke what a wrapping token carried (the token or lease inside) once its wrapper was tampered with.
    revoke_on_tamper: bool = False
    webhook_timeout: float = 5.0
    # First retry delay; doubled per attempt.
    webhook_backoff: float = 0.5
    max_events: int = 1000


class SecurityEvents:
    def __init__(self, view: Storage, audit: Callable[[], AuditBroker], config: SecurityConfig,
                 clock: Callable[[], float] = time.time) -> None:
        self._view = view
        self._audit = audit
        self.config = config
        self._clock = clock
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()

    async def record(self, kind: str, details: dict[str, Any]) -> dict[str, Any]:
        """Record one event everywhere it belongs; returns the event. Never raises."""
        now = self._clock()
        event = {"id": secrets.token_hex(8), "type": kind, "time": rfc3339(now), **details}
        try:
            async with self._lock:
                await self._view.put(f"{EVENT_PREFIX}{int(now * 1e9):020d}-{event['id']}", orjson.dumps(event))
                counts = await self.counts()
                counts[kind] = counts.get(kind, 0) + 1
                await self._view.put(COUNTS_KEY, orjson.dumps(counts))
                await self._prune()
        except Exception:  # evidence is best effort; the request that raised it goes on
            log.exception("could not persist security event %s", kind)
        await self._audit().log_event(kind, event)
        log.warning("security event %s: %s", kind, orjson.dumps(event).decode())
        for url in self.config.webhook_urls:
            task = asyncio.get_running_loop().create_task(self._deliver(url, event))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return event

    async def list(self) -> list[dict[str, Any]]:
        """Stored events, oldest first."""
        out = []
        for key in sorted(await self._view.list(EVENT_PREFIX)):
            raw = await self._view.get(EVENT_PREFIX + key)
            if raw is not None:
                out.append(orjson.loads(raw))
        return out

    async def counts(self) -> dict[str, int]:
        raw = await self._view.get(COUNTS_KEY)
        return {} if raw is None else {str(k): int(v) for k, v in orjson.loads(raw).items()}

    async def _prune(self) -> None:
        keys = sorted(await self._view.list(EVENT_PREFIX))
        for key in keys[: max(0, len(keys) - self.config.max_events)]:
            await self._view.delete(EVENT_PREFIX + key)

    async def _deliver(self, url: str, event: dict[str, Any]) -> None:
        import httpx  # only when a webhook fires: importing it costs ~80 ms of server start-up

        delay = self.config.webhook_backoff
        body = orjson.dumps(event)
        headers = {"Content-Type": "application/json", "User-Agent": "strongroom-security-event"}
        for attempt in range(1, WEBHOOK_ATTEMPTS + 1):
            try:
                async with httpx.AsyncClient(timeout=self.config.webhook_timeout) as client:
                    r = await client.post(url, content=body, headers=headers)
                if r.status_code < 300:
                    return
                reason = f"status {r.status_code}"
            except httpx.HTTPError as e:
                reason = type(e).__name__
            if attempt < WEBHOOK_ATTEMPTS:
                await asyncio.sleep(delay)
                delay *= 2
        log.error("security event %s: webhook %s failed after %d attempts (%s)", event["type"], url,
                  WEBHOOK_ATTEMPTS, reason)

    async def drain(self) -> None:
        """Wait for webhook deliveries in flight (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def stop(self) -> None:
        """Before seal: deliveries still retrying are abandoned (the event is stored and audited)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
