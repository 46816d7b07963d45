"""HA change feed on etcd: standbys follow the active's writes with a watch on the data prefix.

One ``POST /v3/watch`` stream through the gateway (newline-delimited JSON) over the whole prefix:
every put or delete the active makes arrives as an event naming the key. Nothing is needed on the
writing side.

After each message that brings the watch up to a revision (its events' last, or a new watch's
start), it yields ``INDEX_PREFIX + "<cluster id> <revision>"``: every change of the prefix
up to that revision has been yielded (etcd delivers them in revision order). The active's
``X-Vault-Index`` is the revision of its last write (``EtcdStorage.write_revision``), so a standby
that has followed it answers that client's read itself (core/write_index.py).

The watch remembers the revision it has seen up to. A stream that breaks or stays silent for
:data:`SILENCE` seconds (a half-open connection would otherwise go unnoticed) is re-opened from the
next revision, so nothing is missed and no cache is dropped. Only when that is impossible (every
endpoint unreachable, or etcd compacted the revisions needed) does the watch raise, and the caller
drops its caches and watches afresh (core/follow.py).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from strongroom.errors import Internal
from strongroom.storage import INDEX_PREFIX

if TYPE_CHECKING:
    from strongroom.storage.etcd import EtcdStorage

_CONNECT_TIMEOUT = 5.0
SILENCE = 30.0  # seconds without a message before the stream is re-opened (etcd sends progress notes)


async def watch(store: EtcdStorage, silence: float = SILENCE) -> AsyncIterator[str | None]:
    """Yield ``None`` once the watch is in place, then each changed key (relative to the store's path)."""
    from strongroom.storage.etcd import upper_bound

    base = store.path.encode()
    request: dict[str, Any] = {"key": base64.b64encode(base).decode(),
                               "range_end": base64.b64encode(upper_bound(base)).decode(), "progress_notify": True}
    after: int | None = None  # the last revision seen; a re-opened watch starts past it
    announced = False
    async with httpx.AsyncClient(timeout=httpx.Timeout(silence, connect=_CONNECT_TIMEOUT)) as client:
        while True:
            body = {"create_request": {**request, **({"start_revision": str(after + 1)} if after is not None else {})}}
            headers = await store.auth_headers()
            opened = False
            last = "no endpoint"
            for endpoint in store.endpoints:
                try:
                    async with client.stream("POST", f"{endpoint}/v3/watch", json=body, headers=headers) as response:
                        if response.status_code != 200:
                            raise Internal(f"etcd change feed: watch refused by {endpoint}: HTTP {response.status_code}")
                        async for line in response.aiter_lines():
                            if not line.strip():
                                continue
                            message = orjson.loads(line)
                            result = message.get("result") or {}
                            if message.get("error") or result.get("canceled"):
                                reason = (result.get("cancel_reason") or (message.get("error") or {}).get("message")
                                          or f"compacted past revision {result.get('compact_revision')}")
                                raise Internal(f"etcd change feed: watch canceled: {reason}")
                            opened = True
                            if result.get("created") and not announced:
                                announced = True
                                yield None
                            header = result.get("header") or {}
                            events = result.get("events") or []
                            for event in events:
                                key = base64.b64decode((event.get("kv") or {}).get("key", ""))
                                if key.startswith(base):
                                    yield key[len(base):].decode()
                            # The revision every change up to which has been yielded: the events'
                            # last (a catching-up message's header may name a later one), a new
                            # watch's start (the caller reloaded everything after it: ``None``),
                            # not a re-opened watch's (it catches up from ``after`` first). A
                            # progress notification's moves ``after`` only (a quiet prefix resumes
                            # past revisions etcd may compact): the index trusts events alone
                            # (requested ones have come ahead of their events, etcd-io/etcd#15220),
                            # and the active's index is always an event's revision.
                            revision = int(header.get("revision") or 0)
                            index = 0
                            if events:
                                index = max(int((e.get("kv") or {}).get("mod_revision") or 0) for e in events)
                            elif result.get("created"):
                                index = revision if after is None else 0
                            elif revision and (after is None or revision > after):
                                after = revision  # a progress notification
                            if index and (after is None or index > after):
                                after = index
                                cluster = str(header.get("cluster_id") or "")
                                if cluster.isdigit():
                                    yield f"{INDEX_PREFIX}{cluster} {index}"
                    break  # the server ended the stream: re-open from ``after``
                except httpx.ReadTimeout:
                    opened = True  # silent for too long: re-open from ``after``
                    break
                except httpx.TransportError as e:
                    if opened:
                        break  # it was working: re-open (this endpoint first)
                    last = f"{endpoint}: {type(e).__name__}"
            else:
                raise Internal(f"etcd change feed: cannot watch ({last})")


__all__ = ["SILENCE", "watch"]
