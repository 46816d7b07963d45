"""HA change feed on PostgreSQL: the active's writes reach the standbys through LISTEN/NOTIFY.

With HA on, every write of :class:`strongroom.storage.postgresql.PostgresqlStorage` also runs
``pg_notify(channel, key)`` in the writing statement or transaction, so the notification is sent at
commit, never for a write that rolled back, and never before the row is visible. Standbys LISTEN on
the channel (:func:`listen`) and invalidate the key (core/follow.py).

The channel is named after the table (``strongroom_`` + a hash of its name: one per store). A key
too long for a notification payload (PostgreSQL's limit is 8000 bytes) is sent as ``*``: "something
changed", which the listener reports as ``None`` (drop every cache).

The listener checks its connection every few seconds while idle; a lost connection raises, and the
caller drops its caches and subscribes again (notifications sent meanwhile are lost).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

from strongroom.errors import Internal

_MAX_PAYLOAD = 7900  # bytes; PostgreSQL refuses payloads of 8000 bytes or more
EVERYTHING = "*"
_IDLE_CHECK = 5.0  # seconds without a notification before the connection is checked


def change_channel(table: str) -> str:
    """The NOTIFY channel of the store in ``table`` (an identifier of at most 63 bytes)."""
    return "strongroom_" + hashlib.sha256(table.encode()).hexdigest()[:24]


def notify_payload(key: str) -> str:
    return key if len(key.encode()) <= _MAX_PAYLOAD else EVERYTHING


async def listen(conninfo: str, channel: str, where: str) -> AsyncIterator[str | None]:
    """Yield ``None`` once subscribed, then each key notified on ``channel`` (``None`` for
    :data:`EVERYTHING`). Raises :class:`Internal` when the connection fails or is lost."""
    import psycopg

    try:
        conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
    except psycopg.Error as e:
        raise Internal(f"postgresql change feed at {where}: cannot connect: {str(e).strip().splitlines()[0]}") from None
    try:
        await conn.execute(f'LISTEN "{channel}"')  # the channel is ours: "strongroom_" + hex
        yield None
        while True:
            got = False
            async for note in conn.notifies(timeout=_IDLE_CHECK):
                got = True
                yield None if note.payload == EVERYTHING else note.payload
            if not got:  # quiet for a while: make sure the connection still answers
                async with asyncio.timeout(_IDLE_CHECK):
                    await conn.execute("SELECT 1")
    except (psycopg.Error, TimeoutError) as e:
        raise Internal(f"postgresql change feed at {where}: connection lost: "
                       f"{(str(e).strip() or type(e).__name__).splitlines()[0]}") from None
    finally:
        try:
            await conn.close()
        except Exception:  # noqa: BLE001, S110 - the connection may be broken already
            pass


__all__ = ["EVERYTHING", "change_channel", "listen", "notify_payload"]
