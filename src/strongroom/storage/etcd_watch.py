"""HA change feed on etcd: standbys follow the active's writes with a watch on the data prefix.

One ``POST /v3/watch`` stream through the gateway (newline-delimited JSON), from the current
revision, over the whole prefix: every put or delete the active makes arrives as an event naming the
key. Nothing is needed on the writing side. A watch etcd cancels (e.g. compaction) or a stream that
breaks raises, and the caller drops its caches and watches again (core/follow.py).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import httpx
import orjson

from strongroom.errors import Internal

if TYPE_CHECKING:
    from strongroom.storage.etcd import EtcdStorage

_CONNECT_TIMEOUT = 5.0


async def watch(store: EtcdStorage) -> AsyncIterator[str | None]:
    """Yield ``None`` once the watch is created, then each changed key (relative to the store's path)."""
    from strongroom.storage.etcd import upper_bound

    base = store.path.encode()
    body = {"create_request": {"key": base64.b64encode(base).decode(),
                               "range_end": base64.b64encode(upper_bound(base)).decode()}}
    headers = await store.auth_headers()
    last: str = "no endpoint"
    async with httpx.AsyncClient(timeout=httpx.Timeout(None, connect=_CONNECT_TIMEOUT)) as client:
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
                            reason = result.get("cancel_reason") or (message.get("error") or {}).get("message")
                            raise Internal(f"etcd change feed: watch canceled: {reason or 'no reason given'}")
                        if result.get("created"):
                            yield None
                        for event in result.get("events") or []:
                            key = base64.b64decode((event.get("kv") or {}).get("key", ""))
                            if key.startswith(base):
                                yield key[len(base):].decode()
                    raise Internal(f"etcd change feed: {endpoint} closed the watch")
            except httpx.TransportError as e:
                last = f"{endpoint}: {type(e).__name__}"
    raise Internal(f"etcd change feed: cannot watch ({last})")


__all__ = ["watch"]
