"""Scheduler: when leases expire, revoke them in the background. One timer task, a few workers.

Scale: nothing here is per lease but a heap entry. The heap holds (fire at ms, digest) for the
leases of the *loaded* expiry buckets only: restore lists ``due/`` for the bucket numbers (a
key list, nothing decrypted), loads the buckets that start within one bucket width of now (those
in the past included), and loads each later bucket as the clock reaches it. A lease registered
or renewed into a bucket not yet loaded is only noted by its bucket number; its key will be
listed when that bucket loads. So the memory held is bounded by the leases due within two bucket
widths (the width is the store's: lease.py, "Bucket width"), whatever the total.

Stale heap entries (a lease renewed, revoked, or rescheduled for a retry) are skipped lazily:
``_entries`` holds the one live fire-at time per digest, and a popped entry that does not match
it is dropped. The worker's ``fire`` re-reads the index and the lease from storage anyway, so a
stale entry that slipped through costs one read and does nothing. A loaded lease costs its heap
tuple, its digest, one int and one dict slot: the fire-at time is its expiry, except while a
retry waits, and those few expiries are kept apart in ``_retrying`` rather than paying a pair
per lease.

Failures: a revocation that raises (or exceeds ``revoke_timeout``) is retried with exponential
backoff, ``attempts`` times in all; then ``give_up`` marks the lease irrevocable. A failing lease
occupies a worker only while its own attempt runs, so it never delays others.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from strongroom.core.expiration.lease import DUE_PREFIX, parse_due_name
from strongroom.logical import Storage

log = logging.getLogger(__name__)

Fire = Callable[[int, str], Awaitable[None]]
GiveUp = Callable[[int, str, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    # The expiry bucket width of a *new* store; an existing store keeps the width it recorded.
    bucket_seconds: int = 300
    workers: int = 8
    attempts: int = 6  # Vault's maxRevokeAttempts
    retry_base: float = 1.0  # seconds before the first retry; doubles each time
    retry_max: float = 300.0
    revoke_timeout: float = 60.0


class Scheduler:
    def __init__(self, view: Storage, fire: Fire, give_up: GiveUp, config: SchedulerConfig, *,
                 bucket_ms: int, clock: Callable[[], float] = time.time) -> None:
        self._view = view
        self._fire = fire
        self._give_up = give_up
        self.config = config
        self.bucket_ms = bucket_ms  # the store's, not necessarily config.bucket_seconds
        self._clock = clock
        self._heap: list[tuple[int, str]] = []
        self._entries: dict[str, int] = {}  # digest -> fire at ms (its expire ms unless retrying)
        self._retrying: dict[str, int] = {}  # digest -> expire ms, while a retry waits
        self._attempts: dict[str, int] = {}
        self._pending: list[int] = []  # buckets not loaded yet (a heap)
        self._pending_set: set[int] = set()
        self._loaded_upto = -1  # every bucket <= this is in the heap
        self._queue: asyncio.Queue[tuple[int, str] | None] = asyncio.Queue()
        self._inflight: set[str] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Restore: note every bucket, load the ones due soon, start the timer and the workers."""
        for name in await self._view.list(DUE_PREFIX):
            bucket = name.rstrip("/")
            if name.endswith("/") and bucket.isdigit():
                self._note_bucket(int(bucket))
        await self._load_buckets(self._now_ms())
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._timer(), name="expiration-timer")]
        self._tasks += [loop.create_task(self._worker(), name=f"expiration-worker-{i}")
                        for i in range(self.config.workers)]

    async def stop(self) -> None:
        """Stop the timer, drop queued work (it is all in storage), let in-flight revocations end."""
        if not self._tasks:
            return
        timer, workers = self._tasks[0], self._tasks[1:]
        timer.cancel()
        while not self._queue.empty():
            self._queue.get_nowait()
            self._queue.task_done()
        for _ in workers:
            self._queue.put_nowait(None)
        await asyncio.gather(timer, *workers, return_exceptions=True)
        self._tasks = []

    # -- scheduling -----------------------------------------------------------------------------
    def schedule(self, expire_ms: int, lease_digest: str) -> None:
        """The lease's due/ index entry is persisted: fire it at ``expire_ms``."""
        self._attempts.pop(lease_digest, None)
        bucket = expire_ms // self.bucket_ms
        if bucket > self._loaded_upto:
            self._drop(lease_digest)  # its old entry, if any, is stale now
            self._note_bucket(bucket)
            return
        self._push(expire_ms, expire_ms, lease_digest)

    def unschedule(self, lease_digest: str) -> None:
        self._drop(lease_digest)
        self._attempts.pop(lease_digest, None)

    def _drop(self, lease_digest: str) -> None:
        self._entries.pop(lease_digest, None)
        self._retrying.pop(lease_digest, None)

    def _push(self, at_ms: int, expire_ms: int, lease_digest: str) -> None:
        self._entries[lease_digest] = at_ms
        if at_ms == expire_ms:
            self._retrying.pop(lease_digest, None)
        else:
            self._retrying[lease_digest] = expire_ms
        if not self._heap or at_ms < self._heap[0][0]:
            self._wake.set()
        heapq.heappush(self._heap, (at_ms, lease_digest))

    def _note_bucket(self, bucket: int) -> None:
        if bucket > self._loaded_upto and bucket not in self._pending_set:
            self._pending_set.add(bucket)
            heapq.heappush(self._pending, bucket)
            self._wake.set()

    def _next_load_ms(self) -> int | None:
        """When the earliest unloaded bucket must be loaded: one bucket width before it starts."""
        return (self._pending[0] - 1) * self.bucket_ms if self._pending else None

    async def _load_buckets(self, now_ms: int) -> None:
        """Load every noted bucket that starts within one bucket width of ``now_ms``."""
        while self._pending and self._pending[0] <= now_ms // self.bucket_ms + 1:
            bucket = heapq.heappop(self._pending)
            self._pending_set.discard(bucket)
            # Mark loaded before listing, so a lease registered during the list lands in the heap.
            self._loaded_upto = max(self._loaded_upto, bucket)
            for name in await self._view.list(f"{DUE_PREFIX}{bucket}/"):
                parsed = parse_due_name(name)
                if parsed is not None and parsed[1] not in self._entries:
                    self._push(parsed[0], parsed[0], parsed[1])
        # Every bucket up to the next one is in the heap now (loaded above, or never noted, so
        # empty): a lease registered into one later goes straight to the heap, no list needed.
        self._loaded_upto = max(self._loaded_upto, now_ms // self.bucket_ms + 1)

    async def _timer(self) -> None:
        while True:
            now_ms = self._now_ms()
            try:
                await self._load_buckets(now_ms)
            except Exception:
                log.exception("loading lease expiry buckets failed; will retry")
            heap = self._heap
            while heap and heap[0][0] <= now_ms:
                at_ms, lease_digest = heapq.heappop(heap)
                if self._entries.get(lease_digest) != at_ms:
                    continue  # stale: renewed, revoked or rescheduled since
                del self._entries[lease_digest]
                self._queue.put_nowait((self._retrying.pop(lease_digest, at_ms), lease_digest))
            wake_at = [t for t in (heap[0][0] if heap else None, self._next_load_ms()) if t is not None]
            self._wake.clear()
            # The scheduler's one timer. (Not asyncio.wait_for: on Python 3.11 a cancel that lands
            # as its timeout fires can be lost, and stop() would wait forever.)
            alarm = None
            if wake_at:
                delay = max(0.0, (min(wake_at) - now_ms) / 1000)
                alarm = asyncio.get_running_loop().call_later(delay, self._wake.set)
            try:
                await self._wake.wait()
            finally:
                if alarm is not None:
                    alarm.cancel()

    async def _worker(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                if item is None:
                    return
                await self._attempt(*item)
            finally:
                self._queue.task_done()

    async def _attempt(self, expire_ms: int, lease_digest: str) -> None:
        self._inflight.add(lease_digest)
        try:
            async with asyncio.timeout(self.config.revoke_timeout):
                await self._fire(expire_ms, lease_digest)
            self._attempts.pop(lease_digest, None)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - any failure of a backend is retried, never fatal
            n = self._attempts.get(lease_digest, 0) + 1
            reason = str(e) or type(e).__name__
            if n >= self.config.attempts:
                self._attempts.pop(lease_digest, None)
                log.error("revoking lease %s failed %d times, giving up: %s", lease_digest, n, reason)
                try:
                    await self._give_up(expire_ms, lease_digest, reason)
                except Exception:
                    log.exception("marking lease %s irrevocable failed", lease_digest)
                return
            self._attempts[lease_digest] = n
            delay = min(self.config.retry_base * 2 ** (n - 1), self.config.retry_max)
            log.warning("revoking lease %s failed (attempt %d), retrying in %.1fs: %s",
                        lease_digest, n, delay, reason)
            if lease_digest not in self._entries:  # not renewed or re-registered meanwhile
                self._push(self._now_ms() + int(delay * 1000), expire_ms, lease_digest)
        finally:
            self._inflight.discard(lease_digest)

    # -- for tests and tools --------------------------------------------------------------------
    async def wait_idle(self) -> None:
        """Return once nothing is due: no queued or running revocation and no heap entry past due."""
        while True:
            await self._queue.join()
            now_ms = self._now_ms()
            due = any(at <= now_ms and self._entries.get(d) == at for at, d in self._heap[:64])
            if not due and not self._inflight:
                return
            await asyncio.sleep(0.01)

    def stats(self) -> dict[str, int]:
        return {"scheduled": len(self._entries), "retrying": len(self._retrying),
                "pending_buckets": len(self._pending),
                "queued": self._queue.qsize(), "inflight": len(self._inflight)}
