"""Response wrapping: a response is stored in the cubbyhole of a new single-use token, and the client
gets only that token (wrap_info). Whoever unwraps first gets the response; the token is then gone.

Tamper alarms (beyond Vault): a wrapping token leaves a tombstone when it is unwrapped or rewrapped,
so a later attempt to unwrap or look it up is recognised as the reuse of a spent wrapping token
(someone else got there first) rather than a mistyped token, and raises a security event. A
wrapping token that expires with its response still inside raises another (the delivery never
arrived). With ``revoke_on_tamper`` the token or lease that was wrapped is revoked as well.

Storage: the wrapping token's cubbyhole holds ``response`` ({"response": "<the JSON envelope>"},
as Vault keeps it, so legacy ``cubbyhole/response`` reads work) and ``wrapinfo`` (creation facts).
Tombstones live in the view handed to this class, under ``used/<salted hash of the token>``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from strongroom.core.security import WRAPPING_TOKEN_EXPIRED_UNCLAIMED, WRAPPING_TOKEN_REUSE, SecurityEvents
from strongroom.durations import rfc3339
from strongroom.errors import InvalidRequest, PermissionDenied
from strongroom.logical import Request, Response, WrapInfo, response_body

if TYPE_CHECKING:
    from strongroom.core.tokens import TokenEntry, TokenStore
    from strongroom.logical import Storage

log = logging.getLogger(__name__)

# The built-in policy of every wrapping token (core/policy.py defines what it allows).
WRAPPING_POLICY = "response-wrapping"
RESPONSE_KEY = "response"
INFO_KEY = "wrapinfo"
TOMBSTONE_PREFIX = "used/"
# A tombstone outlives the token it remembers by this long: reuse attempts within it raise alarms.
TOMBSTONE_RETENTION = 7 * 24 * 3600
# sys/wrapping/wrap without a wrap TTL (Vault's default for that endpoint).
DEFAULT_WRAP_TTL = 300
INVALID = "wrapping token is not valid or does not exist"
_PRUNE_EVERY = 1000


class Wrapping:
    def __init__(
        self, view: Storage, *, tokens: Callable[[], TokenStore], cubbyhole: Callable[[str], Storage],
        events: SecurityEvents, revoke_lease: Callable[[str], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._view = view
        self._tokens = tokens
        self._cubbyhole = cubbyhole
        self._events = events
        self.revoke_lease = revoke_lease
        self._clock = clock
        self._tombstones_written = 0

    # -- wrap -----------------------------------------------------------------------------------
    async def wrap(self, req: Request, resp: Response) -> Response:
        """Store ``resp`` in a new wrapping token's cubbyhole; the client gets the token instead."""
        ttl = req.wrap_ttl
        if ttl <= 0:
            raise InvalidRequest("wrap TTL must be positive")
        body = orjson.dumps(response_body(resp, req.id)).decode()
        # What the wrapper carries, named by accessor: a token, or (as Vault reports it) an AppRole secret ID.
        wrapped_accessor = resp.auth.accessor if resp.auth is not None else ""
        if not wrapped_accessor and resp.data and isinstance(resp.data.get("secret_id_accessor"), str):
            wrapped_accessor = resp.data["secret_id_accessor"]
        wrapped_lease = resp.secret.lease_id if resp.secret is not None else ""
        return await self._new_wrapper(req, body, req.full_path or req.path, ttl, wrapped_accessor, wrapped_lease)

    async def _new_wrapper(self, req: Request, body: str, creation_path: str, ttl: int,
                           wrapped_accessor: str, wrapped_lease: str) -> Response:
        store = self._tokens()
        token, entry = await store.create(
            policies=[WRAPPING_POLICY], no_default_policy=True, path=creation_path,
            display_name="response-wrapping", ttl=ttl, num_uses=1, renewable=False,
            source_addr=req.connection.remote_addr, creator=req.client_token_accessor)
        created = rfc3339(entry.issue_time)
        info = {"creation_path": creation_path, "creation_time": created, "creation_ttl": ttl,
                "accessor": entry.accessor, "wrapped_accessor": wrapped_accessor, "wrapped_lease_id": wrapped_lease}
        box = self._box(entry)
        await box.put(RESPONSE_KEY, orjson.dumps({"response": body}))
        await box.put(INFO_KEY, orjson.dumps(info))
        return Response(wrap_info=WrapInfo(token=token, accessor=entry.accessor, ttl=ttl, creation_time=created,
                                           creation_path=creation_path, wrapped_accessor=wrapped_accessor))

    # -- lookup / unwrap / rewrap ---------------------------------------------------------------
    async def lookup(self, token: str, req: Request) -> dict[str, Any]:
        entry = await self._find(token, req)
        info = await self._info(entry)
        return {"creation_path": info["creation_path"], "creation_time": info["creation_time"],
                "creation_ttl": info["creation_ttl"]}

    async def unwrap(self, token: str, req: Request) -> Response:
        """The wrapped response, exactly as the original request would have returned it."""
        entry, info, body = await self._claim(token, req)
        await self._spend(entry, info, req, "unwrapped")
        envelope = orjson.loads(body)
        envelope["request_id"] = req.id
        return Response(raw_body=orjson.dumps(envelope), raw_status=200)

    async def rewrap(self, token: str, req: Request) -> Response:
        """Move the response into a fresh wrapping token with the same TTL; the old one is spent."""
        entry, info, body = await self._claim(token, req)
        new = await self._new_wrapper(req, body, info["creation_path"], int(info["creation_ttl"]),
                                      info.get("wrapped_accessor", ""), info.get("wrapped_lease_id", ""))
        await self._spend(entry, info, req, "rewrapped")
        return new

    async def _find(self, token: str, req: Request) -> TokenEntry:
        """The live wrapping token, or 400; a spent one raises the reuse alarm first."""
        store = self._tokens()
        entry = await store.lookup(token) if token else None
        if entry is None or entry.policies != [WRAPPING_POLICY]:
            if token:
                await self._reuse_alarm(store.hash(token), req)
            raise InvalidRequest(INVALID)
        return entry

    async def _claim(self, token: str, req: Request) -> tuple[TokenEntry, dict[str, Any], str]:
        """Spend the token's single use. Of two concurrent claims exactly one wins; the other is
        treated as the reuse it is."""
        entry = await self._find(token, req)
        try:
            await self._tokens().use(entry)
        except PermissionDenied:
            await self._reuse_alarm(entry.id, req)
            raise InvalidRequest(INVALID) from None
        info = await self._info(entry)
        raw = await self._box(entry).get(RESPONSE_KEY)
        if raw is None:
            raise InvalidRequest(INVALID)
        return entry, info, str(orjson.loads(raw)["response"])

    async def _spend(self, entry: TokenEntry, info: dict[str, Any], req: Request, reason: str) -> None:
        tomb = {**info, "reason": reason, "spent_at": rfc3339(self._clock()),
                "spent_from": req.connection.remote_addr,
                "keep_until": max(entry.expire_time, self._clock()) + TOMBSTONE_RETENTION}
        await self._view.put(TOMBSTONE_PREFIX + entry.id, orjson.dumps(tomb))
        await self._tokens().revoke(entry)
        self._tombstones_written += 1
        if self._tombstones_written % _PRUNE_EVERY == 0:
            await self.prune()

    async def _info(self, entry: TokenEntry) -> dict[str, Any]:
        raw = await self._box(entry).get(INFO_KEY)
        if raw is None:
            raise InvalidRequest(INVALID)
        info: dict[str, Any] = orjson.loads(raw)
        return info

    def _box(self, entry: TokenEntry) -> Storage:
        """The token's cubbyhole (core hands us the per-token view of the cubbyhole mount)."""
        return self._cubbyhole(entry.id)

    # -- alarms ---------------------------------------------------------------------------------
    async def _reuse_alarm(self, token_id: str, req: Request) -> None:
        raw = await self._view.get(TOMBSTONE_PREFIX + token_id)
        if raw is None:
            return  # never a wrapping token we issued (or long forgotten): an ordinary bad token
        tomb = orjson.loads(raw)
        if tomb["keep_until"] < self._clock():
            await self._view.delete(TOMBSTONE_PREFIX + token_id)
            return
        await self._events.record(WRAPPING_TOKEN_REUSE, {
            "accessor": tomb["accessor"], "creation_path": tomb["creation_path"],
            "creation_time": tomb["creation_time"], "spent": tomb["reason"], "spent_at": tomb["spent_at"],
            "spent_from": tomb["spent_from"], "attempt_path": req.full_path or req.path,
            "attempt_from": req.connection.remote_addr, "wrapped_accessor": tomb.get("wrapped_accessor", ""),
            "wrapped_lease_id": tomb.get("wrapped_lease_id", ""),
        })
        await self._revoke_contents(tomb)

    async def on_token_revoked(self, entry: TokenEntry) -> None:
        """Token revoke hook (runs before the cubbyhole is destroyed): a wrapping token that expired
        with its response still inside was never delivered."""
        if entry.policies != [WRAPPING_POLICY] or not entry.is_expired(self._clock()):
            return
        box = self._box(entry)
        raw = await box.get(INFO_KEY)
        if raw is None or await box.get(RESPONSE_KEY) is None:
            return
        info = orjson.loads(raw)
        await self._events.record(WRAPPING_TOKEN_EXPIRED_UNCLAIMED, {
            "accessor": entry.accessor, "creation_path": info["creation_path"],
            "creation_time": info["creation_time"], "creation_ttl": info["creation_ttl"],
            "wrapped_accessor": info.get("wrapped_accessor", ""),
            "wrapped_lease_id": info.get("wrapped_lease_id", ""),
        })
        await box.delete(RESPONSE_KEY)
        await self._revoke_contents(info)

    async def _revoke_contents(self, info: dict[str, Any]) -> None:
        if not self._events.config.revoke_on_tamper:
            return
        try:
            accessor = info.get("wrapped_accessor", "")
            if accessor:
                store = self._tokens()
                wrapped = await store.lookup_accessor(accessor)
                if wrapped is not None:
                    await store.revoke(wrapped)
            lease = info.get("wrapped_lease_id", "")
            if lease and self.revoke_lease is not None:
                await self.revoke_lease(lease)
        except Exception:  # the alarm stands even if the clean-up fails
            log.exception("revoking the contents of a tampered wrapping token failed")

    async def prune(self) -> None:
        """Forget tombstones past their retention."""
        now = self._clock()
        for key in await self._view.list(TOMBSTONE_PREFIX):
            raw = await self._view.get(TOMBSTONE_PREFIX + key)
            if raw is not None and orjson.loads(raw)["keep_until"] < now:
                await self._view.delete(TOMBSTONE_PREFIX + key)
