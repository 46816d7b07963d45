"""ExpirationManager: the lease registry. Every secret with a TTL and every token with a TTL has a
lease, persisted through the barrier (see lease.py for the layout), restored after unseal, renewed
or revoked on request, and revoked in the background when it expires (scheduler.py).

Core hands it only what it needs: its storage view, the router (to reach the backend a secret
came from), each mount's TTLs, and the current token store (rebuilt on every unseal).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from strongroom.core.expiration.lease import (
    ID_PREFIX,
    KIND_SECRET,
    KIND_TOKEN,
    SALT_KEY,
    TOKEN_PREFIX,
    Lease,
    due_key,
)
from strongroom.core.expiration.scheduler import Scheduler, SchedulerConfig
from strongroom.core.expiration.storage import LeaseStorage, recorded_bucket_seconds
from strongroom.core.tokens.entry import TokenEntry, random_base62
from strongroom.durations import format_duration, rfc3339
from strongroom.errors import Internal, InvalidRequest, StrongroomError
from strongroom.framework.salt import load_or_create_secret
from strongroom.framework.wal import stage_wal_deletes
from strongroom.logical import LeaseInfo, Operation, Request, Response, Storage, WriteBatch

if TYPE_CHECKING:
    from strongroom.core.events import Event
    from strongroom.core.mounts import MountEntry
    from strongroom.core.router import Router
    from strongroom.core.tokens import TokenStore

MountTTLs = Callable[["MountEntry"], tuple[int, int]]

log = logging.getLogger("strongroom.expiration")


# The change event published when a lease runs out (core/events.py).
LEASE_EXPIRED = "lease/expired"

# Leases revoke-prefix revokes at once (see ExpirationManager.revoke_prefix).
REVOKE_PREFIX_WORKERS = 32

class ExpirationManager:
    def __init__(self, view: Storage, *, router: Router, mount_ttls: MountTTLs,
                 tokens: Callable[[], TokenStore], config: SchedulerConfig | None = None,
                 clock: Callable[[], float] = time.time, events: Callable[[Event], None] | None = None) -> None:
        self._router = router
        self._events = events
        self._mount_ttls = mount_ttls
        self._tokens = tokens
        self._clock = clock
        self._config = config or SchedulerConfig()
        # Until setup reads the store's own width (lease.py, "Bucket width"), the configured one.
        self._store = LeaseStorage(view, self._config.bucket_seconds * 1000)
        self._view = view
        self._mac: Any = None
        self.scheduler = Scheduler(view, self._fire, self._give_up, self._config,
                                   bucket_ms=self._store.bucket_ms, clock=clock)
        self._background: set[asyncio.Task[None]] = set()

    # -- lifecycle ------------------------------------------------------------------------------
    async def setup(self) -> None:
        """After unseal: restore persisted leases and start the expiry timer."""
        self._mac = hmac.new(await load_or_create_secret(self._view, SALT_KEY), digestmod=hashlib.sha256)
        self._store.bucket_ms = await recorded_bucket_seconds(self._view, self._config.bucket_seconds) * 1000
        self.scheduler = Scheduler(self._view, self._fire, self._give_up, self._config,
                                   bucket_ms=self._store.bucket_ms, clock=self._clock)
        self._store.on_index = self.scheduler.schedule
        self._store.on_forget = self.scheduler.unschedule
        await self.scheduler.start()

    async def stop(self) -> None:
        """Before seal: stop the timer and wait for in-flight revocations."""
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.scheduler.stop()

    async def wait_idle(self) -> None:
        """Wait until no revocation is due or running (tests, and sync callers of queued work)."""
        await self.scheduler.wait_idle()

    # -- registration ---------------------------------------------------------------------------
    async def register_secret(self, req: Request, resp: Response) -> None:
        """``resp.secret`` from a lease-generating backend: persist a lease for it, owned by the
        caller's token, and fill in ``resp.secret.lease_id`` (and the TTL, capped by the mount)."""
        secret = resp.secret
        assert secret is not None
        mount = self._router.get(req.mount_point)
        if mount is None:
            raise Internal("no mount for a lease-bearing response")
        default_ttl, max_ttl = self._mount_ttls(mount)
        limit = min(max_ttl, secret.max_ttl) if secret.max_ttl else max_ttl
        ttl = secret.ttl or default_ttl
        if ttl > limit:
            resp.warnings.append(f'TTL of "{format_duration(ttl)}" exceeded the effective max_ttl of '
                                 f'"{format_duration(limit)}"; TTL value is capped accordingly')
            ttl = limit
        path = (req.full_path or req.path).strip("/")
        now = self._clock()
        lease = Lease(id=f"{path}/{random_base62()}", path=path, kind=KIND_SECRET, issue_time=now,
                      expire_time=now + ttl, renewable=secret.renewable, ttl=ttl, max_ttl=secret.max_ttl,
                      token_id=req.token_id, internal_data=dict(secret.internal_data),
                      mount_accessor=mount.accessor)
        # The backend's write-ahead entries for this secret go in the lease's own commit: the
        # lease durable and the entries gone, or neither (framework/wal.py).
        wal_ids, view = resp.wal_ids, mount.view
        then = None
        if wal_ids and view is not None:
            def then(batch: WriteBatch) -> None:
                stage_wal_deletes(batch, view, wal_ids)
        await self._store.create(lease, then)
        if then is not None:
            resp.wal_ids = []
        secret.lease_id, secret.ttl = lease.id, ttl

    def token_lease_id(self, entry: TokenEntry) -> str:
        """Vault's form, "<creation path>/h<hash>". SECURITY: the hash is an HMAC (under this
        manager's own salt) of the token store's salted id: neither the token nor the store's key."""
        if self._mac is None:
            raise RuntimeError("ExpirationManager.setup() has not run")
        mac = self._mac.copy()
        mac.update(entry.id.encode())
        return f"{entry.path.strip('/')}/h{mac.hexdigest()}"

    async def register_token(self, entry: TokenEntry, batch: WriteBatch | None = None) -> None:
        """A token with a TTL was created (token create or login): track its expiry. With
        ``batch`` (the token store's create hook), the lease joins the token's own commit, so a
        token and its lease become durable together; without, it is committed here."""
        if not entry.expire_time:
            return
        lease = Lease(id=self.token_lease_id(entry), path=entry.path.strip("/"), kind=KIND_TOKEN,
                      issue_time=entry.issue_time or entry.creation_time, expire_time=entry.expire_time,
                      renewable=entry.renewable, ttl=entry.ttl, token_id=entry.id)
        if batch is not None:
            self._store.stage_create(lease, batch)
        else:
            await self._store.create(lease)

    async def token_renewed(self, entry: TokenEntry) -> None:
        """A token's expire_time moved."""
        lease_id = self.token_lease_id(entry)
        async with self._store.lock(lease_id):
            lease = await self._store.load(lease_id)
            if lease is not None:
                lease.last_renewal = entry.last_renewal or self._clock()
                await self._store.move(lease, entry.expire_time)
                return
        await self.register_token(entry)  # a token made before it had a lease

    async def revoke_by_token(self, entry: TokenEntry) -> None:
        """The token is being revoked: forget its own lease and queue every lease it holds for
        revocation now (persisted, so a crash or seal does not lose them). Idempotent."""
        own = self.token_lease_id(entry)
        async with self._store.lock(own):
            lease = await self._store.load(own)
            if lease is not None:
                await self._store.delete(lease)
        for name in await self._view.list(f"{TOKEN_PREFIX}{entry.id}/"):
            raw = await self._view.get(f"{TOKEN_PREFIX}{entry.id}/{name}")
            if raw is None:
                continue
            await self._expire_now(raw.decode())

    # -- sys/leases operations ------------------------------------------------------------------
    async def lookup(self, lease_id: str) -> dict[str, Any]:
        lease = await self._store.load(lease_id)
        if lease is None:
            raise InvalidRequest("invalid lease")
        now = self._clock()
        data: dict[str, Any] = {
            "id": lease.id, "path": lease.path, "issue_time": rfc3339(lease.issue_time),
            "expire_time": rfc3339(lease.expire_time) if lease.expire_time else None,
            "last_renewal": rfc3339(lease.last_renewal) if lease.last_renewal else None,
            "ttl": lease.remaining(now),
            "renewable": lease.renewable and not lease.revoke_error and lease.expire_time > now,
        }
        if lease.revoke_error:
            data["revoke_error"] = lease.revoke_error
        return data

    async def list_ids(self, prefix: str) -> list[str]:
        """LIST sys/leases/lookup/<prefix>: the children of ``prefix`` among lease ids."""
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return await self._view.list(ID_PREFIX + prefix)

    def lease_ids(self) -> AsyncIterator[str]:
        """Every lease id (key names only, nothing decrypted): sys/metrics' counts by mount."""
        return self._store.walk(ID_PREFIX)

    async def renew(self, lease_id: str, increment: int) -> Response:
        async with self._store.lock(lease_id):
            lease = await self._store.load(lease_id)
            if lease is None:
                raise InvalidRequest("lease not found")
            now = self._clock()
            # Vault's checks, in Vault's order and words.
            if lease.revoke_error:
                raise InvalidRequest("lease is expired and has failed previous revocation attempts")
            if not lease.expire_time:
                raise InvalidRequest("lease is not renewable")
            if lease.expire_time <= now:
                raise InvalidRequest("lease expired")
            if not lease.renewable:
                raise InvalidRequest("lease is not renewable")
            if lease.kind == KIND_TOKEN:
                raise InvalidRequest("tokens cannot be renewed through this endpoint")
            mount, rel = self._route(lease)
            default_ttl, max_ttl = self._mount_ttls(mount)
            limit = min(max_ttl, lease.max_ttl) if lease.max_ttl else max_ttl
            requested = increment or lease.ttl or default_ttl
            secret = LeaseInfo(ttl=requested, max_ttl=limit, renewable=True, lease_id=lease.id,
                               internal_data=dict(lease.internal_data))
            resp = await self._call(Operation.RENEW, lease, mount, rel, secret)
            granted = requested
            if resp is not None and resp.secret is not None:
                granted = resp.secret.ttl or requested
                if resp.secret.internal_data:
                    lease.internal_data = dict(resp.secret.internal_data)
            warnings = list(resp.warnings) if resp is not None else []
            # Renewal never extends a lease past its max TTL counted from when it was issued.
            left = max(0, int(lease.issue_time + limit - now))
            if granted > left:
                warnings.append(f'TTL of "{format_duration(granted)}" exceeded the effective max_ttl of '
                                f'"{format_duration(left)}"; TTL value is capped accordingly')
                granted = left
            lease.last_renewal = now
            await self._store.move(lease, now + granted)
        return Response(data=resp.data if resp is not None else None, warnings=warnings,
                        secret=LeaseInfo(ttl=granted, renewable=lease.renewable, lease_id=lease.id))

    async def revoke(self, lease_id: str, *, sync: bool = True) -> None:
        """Revoke one lease now (``sync``) or queue it for the background workers. Unknown: no-op."""
        if not sync:
            await self._expire_now(lease_id)
            return
        lease = await self._store.load(lease_id)
        if lease is not None:
            await self._revoke(lease, force=False)

    async def revoke_prefix(self, prefix: str, *, sync: bool = True, force: bool = False) -> None:
        """Every lease whose id is under ``prefix`` (a path: "database/creds" or "auth/token/create").
        ``force`` removes leases even when their backend fails to revoke (revoke-force)."""
        exact = prefix.strip("/")
        prefix = exact + "/" if exact else ""
        ids = [exact] if exact and await self._store.load(exact) is not None else []  # a lease id itself
        ids += [prefix + rel async for rel in self._store.walk(ID_PREFIX + prefix)]
        if not sync and not force:
            for lease_id in ids:
                await self._expire_now(lease_id)
            return
        # Revoked REVOKE_PREFIX_WORKERS at a time: each revocation waits on its backend (a DROP
        # ROLE, an IAM call), and a thousand of them one by one take a thousand round trips. As
        # Vault, the first failure stops the rest (those already started finish) and is raised.
        pending = iter(ids)
        failed: list[BaseException] = []

        async def worker() -> None:
            for lease_id in pending:
                if failed:
                    return
                lease = await self._store.load(lease_id)
                if lease is None:
                    continue
                try:
                    await self._revoke(lease, force=force)
                except Exception as e:  # noqa: BLE001 (re-raised below, the first one)
                    failed.append(e)
                    return

        await asyncio.gather(*(worker() for _ in range(min(REVOKE_PREFIX_WORKERS, len(ids)))))
        if failed:
            raise failed[0]

    def tidy(self) -> None:
        """Start a background pass: revoke leases whose owning token is gone, drop dangling index
        entries. Reads every lease: for rare operator use."""
        task = asyncio.get_running_loop().create_task(self.tidy_now())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def tidy_now(self) -> None:
        """One tidy pass, awaited (what ``tidy`` runs in the background)."""
        tokens = self._tokens()
        async for lease_id in self._store.walk(ID_PREFIX):
            lease = await self._store.load(lease_id)
            orphaned = (lease is not None and lease.kind == KIND_SECRET and lease.token_id
                        and await tokens.lookup_id(lease.token_id) is None)
            if orphaned:
                await self._expire_now(lease_id)
        await self._store.drop_dangling()

    # -- revocation -----------------------------------------------------------------------------
    async def _expire_now(self, lease_id: str) -> None:
        async with self._store.lock(lease_id):
            lease = await self._store.load(lease_id)
            if lease is not None:
                lease.revoke_error = ""
                await self._store.move(lease, min(lease.expire_time, self._clock()))

    async def _fire(self, expire_ms: int, lease_digest: str) -> None:
        """The scheduler's callback: the lease indexed at ``due/.../<expire_ms>-<digest>`` is due."""
        key = due_key(expire_ms, lease_digest, self._store.bucket_ms)
        raw = await self._view.get(key)
        if raw is None:
            return  # renewed or revoked since it was scheduled
        lease = await self._store.load(raw.decode())
        if lease is None or lease.expire_ms != expire_ms:
            await self._view.delete(key)  # dangling: crash between writes
            return
        hit = self._router.match(lease.path)
        await self._revoke(lease, force=False)
        if self._events is not None:
            self._publish_expired(lease, hit[0] if hit is not None else None)

    def _publish_expired(self, lease: Lease, mount: MountEntry | None) -> None:
        """Beyond Vault: a ``lease/expired`` change event once a lease ran out and was revoked (not
        on an explicit revoke), seen by subscribers who may read the lease's path."""
        from strongroom.core.events import Event  # core.events imports the pipeline, which imports core

        assert self._events is not None
        info = ({"mount_class": "auth" if mount.table == "auth" else "secret", "mount_accessor": mount.accessor,
                 "mount_path": mount.full_path, "plugin": mount.type} if mount is not None else {})
        kind = "token" if lease.kind == KIND_TOKEN else "secret"
        try:
            self._events(Event(LEASE_EXPIRED, {"lease_id": lease.id, "path": lease.path, "kind": kind,
                                               "operation": "expired"}, info))
        except Exception:  # an event must never fail the revocation that caused it
            log.exception("publishing the expiry event of a lease failed")

    async def _give_up(self, expire_ms: int, lease_digest: str, reason: str) -> None:
        """After the last failed attempt: keep the lease for inspection, with its error, out of
        the schedule (Vault's irrevocable lease). revoke-force or a manual revoke clears it."""
        raw = await self._view.get(due_key(expire_ms, lease_digest, self._store.bucket_ms))
        if raw is None:
            return
        async with self._store.lock(raw.decode()):
            lease = await self._store.load(raw.decode())
            if lease is not None:
                lease.revoke_error = reason
                await self._store.park(lease)

    async def _revoke(self, lease: Lease, *, force: bool) -> None:
        if lease.kind == KIND_TOKEN:
            # Revoking the token runs the revoke hooks, ours included (revoke_by_token deletes this
            # lease under its lock), so no lock is held here. The delete after covers a token that
            # was already gone, whose revocation runs no hooks.
            try:
                await self._tokens().revoke(TokenEntry(id=lease.token_id, accessor=""))
            except Exception:
                if not force:
                    raise
            async with self._store.lock(lease.id):
                current = await self._store.load(lease.id)
                if current is not None:
                    await self._store.delete(current)
            return
        async with self._store.lock(lease.id):
            current = await self._store.load(lease.id)
            if current is None:
                return
            try:
                mount, rel = self._route(current)
                await self._call(Operation.REVOKE, current, mount, rel,
                                 LeaseInfo(ttl=current.ttl, renewable=current.renewable, lease_id=current.id,
                                           internal_data=dict(current.internal_data)))
            except Exception as e:
                if not force:
                    if isinstance(e, StrongroomError):
                        raise
                    raise Internal(f"failed to revoke lease {current.id}") from e
            await self._store.delete(current)

    def _route(self, lease: Lease) -> tuple[MountEntry, str]:
        hit = self._router.match(lease.path)
        if hit is None or hit[0].backend is None or hit[0].accessor != lease.mount_accessor:
            raise InvalidRequest(f"no backend is mounted for lease {lease.id}")
        return hit

    async def _call(self, op: Operation, lease: Lease, mount: MountEntry, rel: str,
                    secret: LeaseInfo) -> Response | None:
        from strongroom.core.pipeline import prepare  # the pipeline imports core, core imports us

        req = prepare(Request(op, lease.path, secret=secret, token_id=lease.token_id), mount, rel)
        assert mount.backend is not None
        return await mount.backend.handle(req)
