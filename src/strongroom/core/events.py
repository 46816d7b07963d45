"""Change events (Vault 1.16's event notifications): a bus backends publish to and subscribers read.

A backend emits through its SystemView (``emit_event``); the mount's view adds the plugin
information and prefixes the event's ``path``/``data_path`` with the mount path, then calls
:meth:`EventBus.publish`. Publishing never waits: each subscriber has a bounded queue, and a
subscriber whose queue is full (it does not read fast enough) is dropped, its stream ended, so a
slow client never holds up a write. Subscriptions match event types with ``*`` globs (``kv*``,
``*``), as Vault's do.

:func:`open_subscription` is the request side: the guard, the token, ``read`` on
``sys/events/subscribe/EVENT_TYPE`` (Vault's rule for that path) and both audit entries, as for
any request. A :class:`Subscriber` then hands out only the events whose data path the token may
read, checked per event with the token's current ACL (a revoked token ends the stream).
"""

from __future__ import annotations

import asyncio
import collections
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from strongroom.core import pipeline
from strongroom.errors import InvalidRequest, PermissionDenied, StrongroomError
from strongroom.logical import Operation, Request

if TYPE_CHECKING:
    from strongroom.core import Core
    from strongroom.core.tokens import TokenEntry

#: Events a subscriber may have waiting before it is dropped as too slow.
QUEUE_SIZE = 1024
SUBSCRIBE_PREFIX = "sys/events/subscribe/"
#: Vault's CloudEvents ``source`` (clients do not read it; kept for byte-level likeness).
SOURCE = "https://vaultproject.io/"


@dataclass(frozen=True, slots=True)
class Event:
    """One event as published: type (``kv-v2/data-write``), Vault's metadata, the emitting mount."""

    event_type: str
    metadata: dict[str, str]
    plugin_info: dict[str, str]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: float = field(default_factory=time.time)

    @property
    def data_path(self) -> str:
        """The path a subscriber must be able to read to see this event."""
        return self.metadata.get("data_path") or self.metadata.get("path", "")

    def cloudevent(self) -> dict[str, Any]:
        """Vault's JSON message: a CloudEvents envelope around the event."""
        stamp = datetime.fromtimestamp(self.time, UTC).isoformat().replace("+00:00", "Z")
        return {
            "id": self.id,
            "source": SOURCE,
            "specversion": "1.0",
            "type": "*",
            "data": {
                "event": {"id": self.id, "metadata": dict(self.metadata)},
                "event_type": self.event_type,
                "plugin_info": dict(self.plugin_info),
            },
            "datacontentype": "application/cloudevents",
            "time": stamp,
        }


def glob(pattern: str) -> re.Pattern[str]:
    """Vault's event-type glob: ``*`` matches any run of characters, nothing else is special."""
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


class Subscription:
    """One subscriber's bounded queue of events of the types its pattern matches."""

    __slots__ = ("_match", "_queue", "_size", "_waiter", "closed", "dropped", "pattern")

    def __init__(self, pattern: str, size: int) -> None:
        self.pattern = pattern
        self._match = glob(pattern).fullmatch
        self._queue: collections.deque[Event] = collections.deque()
        self._size = size
        self._waiter: asyncio.Future[None] | None = None
        self.closed = False
        self.dropped = False  # closed because it fell behind

    def matches(self, event_type: str) -> bool:
        return self._match(event_type) is not None

    def offer(self, event: Event) -> bool:
        """Queue ``event``; False (and the subscription closed) when the queue is full."""
        if self.closed:
            return False
        if len(self._queue) >= self._size:
            self.dropped = True
            self.close()
            return False
        self._queue.append(event)
        self._wake()
        return True

    async def next(self) -> Event | None:
        """The next event, waiting for one; None once closed (anything still queued is dropped)."""
        while not self._queue:
            if self.closed:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self.closed:
            return None
        return self._queue.popleft()

    def close(self) -> None:
        self.closed = True
        self._queue.clear()
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class EventBus:
    """Fan-out of published events to subscriptions. Publishing is synchronous and never blocks."""

    def __init__(self, queue_size: int = QUEUE_SIZE) -> None:
        self.queue_size = queue_size
        self.subscriptions: set[Subscription] = set()
        self.published = 0
        self.dropped = 0  # subscriptions closed for falling behind

    def subscribe(self, pattern: str) -> Subscription:
        sub = Subscription(pattern, self.queue_size)
        self.subscriptions.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        sub.close()
        self.subscriptions.discard(sub)

    def publish(self, event: Event) -> None:
        self.published += 1
        for sub in list(self.subscriptions):
            if sub.matches(event.event_type) and not sub.offer(event) and sub.dropped:
                self.dropped += 1
                self.subscriptions.discard(sub)

    def close_all(self) -> None:
        """Seal: every stream ends."""
        for sub in self.subscriptions:
            sub.close()
        self.subscriptions.clear()


class Subscriber:
    """A token's subscription: yields the events it may see, as Vault's JSON messages."""

    def __init__(self, core: Core, token: str, subscription: Subscription) -> None:
        self.core = core
        self.token = token
        self.subscription = subscription

    async def next(self) -> dict[str, Any] | None:
        """The next event this token may read, as a CloudEvents dict; None when the stream ends
        (closed, dropped as too slow, sealed, or the token no longer valid)."""
        while True:
            event = await self.subscription.next()
            if event is None:
                return None
            if self.core.sealed:
                return None
            entry = await self.core.tokens.lookup(self.token)
            if entry is None:
                return None
            acl = await self.core.policies.acl(entry.policies)
            if acl.check(Operation.READ, event.data_path).allowed:
                return event.cloudevent()

    def close(self) -> None:
        self.core.events.unsubscribe(self.subscription)


async def open_subscription(core: Core, req: Request) -> Subscriber:
    """Authenticate and authorise a subscribe request (``req.path`` is
    ``sys/events/subscribe/EVENT_TYPE``, a READ) and audit it; raises as a request would (503
    sealed, 403 no token or no ``read`` on the path, 400 no event type)."""
    pipeline.guard(core)
    entry: TokenEntry | None = None
    audited = exhausted = False
    err: StrongroomError | None = None
    try:
        entry = await pipeline.authenticate(core, req, optional=False)
        assert entry is not None
        exhausted = await core.tokens.use(entry)
        await pipeline.authorize(core, req, entry, None)
        await core.audit.log_request(req)
        audited = True
        event_type = req.path[len(SUBSCRIBE_PREFIX):]
        if not event_type:
            raise InvalidRequest("did not specify eventType to subscribe to")
        if exhausted:
            raise PermissionDenied()  # a token on its last use cannot hold a stream open
        return Subscriber(core, req.client_token, core.events.subscribe(event_type))
    except Exception as e:
        err = pipeline.as_error(e)
        if err is e:
            raise
        raise err from e
    finally:
        await pipeline.audit_outcome(core, req, None, err, request_logged=audited)
        if exhausted and entry is not None:
            await core.tokens.revoke(entry)


__all__ = ["Event", "EventBus", "Subscriber", "Subscription", "glob", "open_subscription"]
