"""The HA lock on etcd (``storage "etcd" { ha_enabled = "true", session_ttl = "15s" }``), v3 API.

The same :class:`strongroom.core.ha.HALock` protocol as the PostgreSQL lock, so core/ha.py's loop,
fencing margins and API answers are unchanged (docs/ha.md):

- **Taking it**: the node keeps one etcd lease of ``ttl`` seconds (granted on first use, then renewed
  by a keep-alive on every round) and runs one transaction: *if the lock key does not exist* (its
  create revision is 0) *put it, attached to my lease; else read it*. The key's value names the
  holder: ``{"identity": ..., "value": api_addr}``.
- **Renewing it** is the same call: a keep-alive pushes the lease's expiry to ``ttl`` from when
  etcd handled it (after the HA loop took its ``sent`` time, so the fence ``sent + ttl - margin``
  stays inside the lease), and, in parallel, a read confirms the key is still ours on that lease
  (one round trip and no write per renewal; anything unexpected falls back to the transaction).
- **Expiry** is etcd's: when the holder stops renewing (killed, cut off), etcd revokes the lease
  and deletes the key with it; an expired lease can no longer be renewed, so a stale holder never
  gets it back. etcd grants leases in whole seconds and refuses TTLs below its own minimum
  (1.5 heartbeat-election rounds: 2 s with etcd's default timings); the TTL etcd actually granted is
  the one used.
- **Release** (seal, step-down) revokes the lease, which deletes the key at once.
- **Echoes** for sys/ha-status: each node puts ``nodes/<identity>`` on a second lease of 3 TTLs.

The HA keys live beside the data prefix, never inside it: ``path`` ``/vault/`` → ``/vault.ha/lock``
and ``/vault.ha/nodes/...`` (outside the range the storage lists), so listing data never shows them.
"""

from __future__ import annotations

import asyncio
import base64
import math
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

import orjson

from strongroom.errors import Internal, InvalidRequest
from strongroom.storage.etcd import EtcdStorage, upper_bound
from strongroom.storage.options import StorageOptions

DEFAULT_TTL = 15  # seconds: Vault's etcd session_ttl default
LOCK = "lock"
NODES = "nodes/"
T = TypeVar("T")


def ha_prefix(base: str) -> str:
    """The HA keys' prefix for data under ``base`` ("/vault/" → "/vault.ha/")."""
    return base.rstrip("/") + ".ha/"


def lock_ttl(opts: StorageOptions) -> int:
    """``session_ttl`` (Vault's key) or ``ha_lock_ttl`` (as in the postgresql stanza), whole seconds."""
    name = "ha_lock_ttl" if opts.options.get("ha_lock_ttl") not in (None, "") else "session_ttl"
    ttl = opts.seconds(name, DEFAULT_TTL)
    if ttl < 1:
        raise InvalidRequest(f'etcd storage: "{name}" must be at least 1s (etcd leases are whole seconds)')
    return math.ceil(ttl)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class EtcdHALock:
    """One node's view of the lock. ``client`` is an :class:`EtcdStorage` on the HA prefix (its own
    connections); create through ``open_etcd`` with ``ha_enabled``."""

    def __init__(self, client: EtcdStorage, ttl: int) -> None:
        self.ttl = float(ttl)
        self._ttl = ttl
        self._client = client
        self._base = client.path.encode()
        self._lease: str | None = None  # the lock lease (etcd lease IDs are decimal strings)
        self._echo_lease: str | None = None
        self._held: tuple[str, str] | None = None  # (identity, encoded value) while the key is ours on _lease
        self._echoed: tuple[str, str, str] | None = None  # (identity, value, lease) last put as this node's echo
        self._seen: tuple[tuple[str, str] | None, float] | None = None  # (holder, monotonic) read by _take
        self._changed = asyncio.Event()  # set by the watch on every change of the lock key (see changed)
        self._watching: asyncio.Task[None] | None = None

    def _key(self, name: str) -> str:
        return _b64(self._base + name.encode())

    async def _run(self, what: str, op: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self.ttl):
                return await op
        except TimeoutError:
            raise Internal(f"etcd HA lock: {what} timed out") from None

    async def _fresh(self, lease: str | None, ttl: int) -> str:
        """``lease`` kept alive, or a new lease of ``ttl`` when there is none or it expired."""
        if lease is not None:
            result = await self._client.call("lease/keepalive", {"ID": lease})
            if int((result.get("result") or {}).get("TTL") or 0) > 0:
                return lease
        granted = await self._client.call("lease/grant", {"TTL": ttl})
        if not granted.get("ID") or granted.get("error"):
            raise Internal(f"etcd HA lock: granting a lease failed: {granted.get('error') or 'no lease ID'}")
        actual = int(granted.get("TTL") or ttl)
        if lease is None and ttl == self._ttl and actual > ttl:
            self.ttl, self._ttl = float(actual), actual  # etcd's minimum TTL is longer: use what it gave
        return str(granted["ID"])

    # -- HALock ------------------------------------------------------------------------------------

    async def acquire(self, identity: str, value: str) -> bool:
        """Take or renew the lock; False when another node holds it."""
        return await self._run("acquire", self._acquire(identity, value))

    async def _acquire(self, identity: str, value: str) -> bool:
        key = self._key(LOCK)
        mine = _b64(orjson.dumps({"identity": identity, "value": value}))
        if self._lease is not None and self._held == (identity, mine):
            # Renewal: the keep-alive and a read of the key in parallel (one round trip, no write).
            # While our lease lives, the key on it stays ours: other nodes only create it if absent.
            renewed, current = await asyncio.gather(self._client.call("lease/keepalive", {"ID": self._lease}),
                                                    self._client.call("kv/range", {"key": key}))
            kvs = current.get("kvs") or []
            if (int((renewed.get("result") or {}).get("TTL") or 0) > 0 and kvs
                    and str(kvs[0].get("lease", "0")) == self._lease and kvs[0].get("value") == mine):
                return True
            self._held = None
        self._lease = lease = await self._fresh(self._lease, self._ttl)
        taken = await self._take(key, mine, identity, lease)
        self._held = (identity, mine) if taken else None
        return taken

    async def _take(self, key: str, mine: str, identity: str, lease: str) -> bool:
        put = {"requestPut": {"key": key, "value": mine, "lease": lease}}
        result = await self._client.call("kv/txn", {
            "compare": [{"key": key, "target": "CREATE", "result": "EQUAL", "create_revision": "0"}],
            "success": [put], "failure": [{"requestRange": {"key": key}}]})
        if result.get("succeeded") is True:
            return True
        kvs = ((result.get("responses") or [{}])[0].get("response_range") or {}).get("kvs") or []
        self._seen = (_holder(kvs[0]) if kvs else None, time.monotonic())  # holder() may reuse it
        if not kvs:
            return False  # deleted just now: the next round takes it
        kv = kvs[0]
        if _holder(kv)[0] != identity:
            return False
        if str(kv.get("lease", "0")) == lease and base64.b64decode(kv.get("value", "")) == base64.b64decode(mine):
            return True  # ours, on the lease the keep-alive just renewed
        # Ours on an older lease (it was replaced) or with another value: move it, if unchanged since read.
        moved = await self._client.call("kv/txn", {
            "compare": [{"key": key, "target": "MOD", "result": "EQUAL", "mod_revision": kv.get("mod_revision", "0")}],
            "success": [put]})
        return moved.get("succeeded") is True

    async def release(self, identity: str) -> None:
        """Give the lock up: revoking the lease deletes the key with it."""
        lease, self._lease, self._held = self._lease, None, None
        if lease is not None:
            await self._run("release", self._client.call("lease/revoke", {"ID": lease}))

    async def holder(self) -> tuple[str, str, float] | None:
        """(identity, value, seconds left at most) of the holder, None when the key is absent. The key
        exists only while its lease lives, which is at most ``ttl`` more seconds without a renewal."""
        seen, self._seen = self._seen, None
        if seen is not None and time.monotonic() - seen[1] < min(self.ttl / 6, 0.05):
            # A standby's round asks right after its failed acquire, which read the key: one read fewer.
            return None if seen[0] is None else (*seen[0], self.ttl)
        result = await self._run("holder", self._client.call("kv/range", {"key": self._key(LOCK)}))
        kvs = result.get("kvs") or []
        if not kvs:
            return None
        identity, value = _holder(kvs[0])
        return identity, value, self.ttl

    async def echo(self, identity: str, value: str) -> None:
        """Announce this node (``value``: its description) for 3 TTLs, for sys/ha-status."""
        async def op() -> None:
            self._echo_lease = lease = await self._fresh(self._echo_lease, 3 * self._ttl)
            if self._echoed != (identity, value, lease):  # else the keep-alive was the whole echo
                await self._client.call("kv/put", {"key": self._key(NODES + identity), "lease": lease,
                                                   "value": _b64(value.encode())})
                self._echoed = (identity, value, lease)

        await self._run("echo", op())

    async def forget(self, identity: str) -> None:
        """Withdraw this node's echo (it sealed or stopped)."""
        lease, self._echo_lease, self._echoed = self._echo_lease, None, None

        async def op() -> None:
            await self._client.call("kv/deleterange", {"key": self._key(NODES + identity)})
            if lease is not None:
                await self._client.call("lease/revoke", {"ID": lease})

        await self._run("forget", op())

    async def nodes(self) -> list[tuple[str, str, float]]:
        """(identity, value, seconds since its last echo) of every node heard from lately; the age comes
        from the echo lease (granted minus remaining TTL, whole seconds)."""
        async def op() -> list[tuple[str, str, float]]:
            start = self._base + NODES.encode()
            result = await self._client.call("kv/range", {"key": _b64(start), "range_end": _b64(upper_bound(start))})
            out: list[tuple[str, str, float]] = []
            for kv in result.get("kvs") or []:
                identity = base64.b64decode(kv["key"])[len(start):].decode()
                age = 0.0
                if kv.get("lease"):
                    ttl = await self._client.call("lease/timetolive", {"ID": kv["lease"]})
                    age = max(0.0, float(ttl.get("grantedTTL") or 0) - float(ttl.get("TTL") or 0) - 1.0)
                out.append((identity, base64.b64decode(kv.get("value", "")).decode(), age))
            return out

        return await self._run("nodes", op())

    async def changed(self, timeout: float) -> None:
        """Return when the lock key changes (its holder's lease ran out, it was released or taken),
        or after ``timeout`` seconds, whichever is first: the HA loop of a standby waits here between
        rounds, so it competes the moment a dead holder's key goes and learns a new holder at once,
        instead of at its next round (core/ha.py). The watch on the HA prefix starts on first use
        and is started again after it failed (the timeout still bounds every wait)."""
        if self._watching is None or self._watching.done():
            self._watching = asyncio.get_running_loop().create_task(self._watch(), name="etcd-ha-watch")
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except TimeoutError:
            return
        self._changed.clear()

    async def _watch(self) -> None:
        from strongroom.storage.etcd_watch import watch

        try:
            async for key in watch(self._client):
                if key == LOCK:
                    self._changed.set()
        except Internal:
            await asyncio.sleep(self.ttl)  # etcd unreachable: the rounds go on at their interval meanwhile

    async def close(self) -> None:
        task, self._watching = self._watching, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self._client.close()


def _holder(kv: dict[str, Any]) -> tuple[str, str]:
    try:
        data = orjson.loads(base64.b64decode(kv.get("value", "")))
        return str(data.get("identity", "")), str(data.get("value", ""))
    except (orjson.JSONDecodeError, AttributeError, ValueError):
        return "", ""  # not ours to read: held by something else


__all__ = ["DEFAULT_TTL", "EtcdHALock", "ha_prefix", "lock_ttl"]
