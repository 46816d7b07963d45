"""The measuring instruments shared by core and storage: a cumulative :class:`Timer` and
:class:`TimedStorage`, the physical storage with each operation timed.

Nothing here allocates per observation beyond the float it is given, and nothing locks: one event
loop owns a process's metrics. core/metrics.py reads them and renders ``sys/metrics``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from strongroom.logical import Storage, WriteOp


class Timer:
    """Cumulative observations of a duration, in milliseconds (go-metrics' unit for timers)."""

    __slots__ = ("count", "high", "low", "sumsq", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.sumsq = 0.0
        self.low = 0.0
        self.high = 0.0

    def add(self, ms: float) -> None:
        if not self.count or ms < self.low:
            self.low = ms
        if ms > self.high:
            self.high = ms
        self.count += 1
        self.total += ms
        self.sumsq += ms * ms


def timers_for(table: dict[str, Timer], name: str) -> Timer:
    t = table.get(name)
    if t is None:
        t = table[name] = Timer()
    return t


class TimedStorage:
    """Physical storage with get/put/delete/list (and write_batch, when the backend has one) timed
    into ``timers`` by operation name. Placed under the storage cache, so it measures the store's
    own latency (a cache hit never reaches it). Every other attribute (close, the HA lock, a
    watch) is the backend's own."""

    def __init__(self, inner: Storage) -> None:
        self._inner = inner
        self.timers: dict[str, Timer] = {op: Timer() for op in ("get", "put", "delete", "list")}
        native: Callable[[Sequence[WriteOp]], Awaitable[None]] | None = getattr(inner, "write_batch", None)
        if native is not None:
            batch_timer = self.timers["write_batch"] = Timer()

            async def write_batch(ops: Sequence[WriteOp]) -> None:
                t0 = time.perf_counter()
                try:
                    await native(ops)
                finally:
                    batch_timer.add((time.perf_counter() - t0) * 1000.0)

            self.write_batch = write_batch

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def get(self, key: str) -> bytes | None:
        t0 = time.perf_counter()
        try:
            return await self._inner.get(key)
        finally:
            self.timers["get"].add((time.perf_counter() - t0) * 1000.0)

    async def put(self, key: str, value: bytes) -> None:
        t0 = time.perf_counter()
        try:
            await self._inner.put(key, value)
        finally:
            self.timers["put"].add((time.perf_counter() - t0) * 1000.0)

    async def delete(self, key: str) -> None:
        t0 = time.perf_counter()
        try:
            await self._inner.delete(key)
        finally:
            self.timers["delete"].add((time.perf_counter() - t0) * 1000.0)

    async def list(self, prefix: str) -> list[str]:
        t0 = time.perf_counter()
        try:
            return await self._inner.list(prefix)
        finally:
            self.timers["list"].add((time.perf_counter() - t0) * 1000.0)

    async def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close is not None:
            await close()
