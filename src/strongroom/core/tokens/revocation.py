"""Token revocation: a token's whole subtree (or its children orphaned), expired tokens in the
background once a lookup notices them, and quarantine (revocation by accessor, entity or network).

A revocation and the creation of a child under the same parent meet through the births
bookkeeping here: create (store.py) registers a child as being born under the parent's lock, and a
revocation, once it has marked the parent dead, waits for those births before it lists the
children, so no child created concurrently escapes it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from strongroom.core.tokens.entry import NUM_USES_REVOKING, TokenEntry
from strongroom.core.tokens.records import (
    ACCESSOR_PREFIX,
    DEFAULT_CACHE_SIZE,
    ID_PREFIX,
    PARENT_PREFIX,
    TokenRecords,
)
from strongroom.logical import Storage, WriteOp, apply_writes

log = logging.getLogger(__name__)

RevokeHook = Callable[[TokenEntry], Awaitable[None]]


class TokenRevocation(TokenRecords):
    """Revocation over the token records; TokenStore (store.py) adds the rest."""

    def __init__(self, view: Storage, *, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        super().__init__(view, cache_size=cache_size)
        self._hooks: list[RevokeHook] = []
        self._births: dict[str, Births] = {}  # parent id -> its children being created now
        self._expiring: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def add_revoke_hook(self, fn: RevokeHook) -> None:
        """``fn(entry)`` is awaited for every token revoked, before its records are deleted."""
        self._hooks.append(fn)

    async def _births_settled(self, token_id: str) -> None:
        """Wait until no child of ``token_id`` is being created (call once it is marked dead)."""
        while (births := self._births.get(token_id)) is not None:
            await births.done.wait()

    # -- revoke ---------------------------------------------------------------------------------
    async def revoke(self, entry: TokenEntry, *, orphan_children: bool = False) -> None:
        """Revoke a token and (unless ``orphan_children``) its whole subtree, leaves first.

        Iterative, so tree depth is unbounded. Each token is first marked dead (persisted), so it
        stops working at once and a token cannot gain children while its subtree is being
        removed; then the revoke hooks run; then its records go. Idempotent: a token already
        gone is skipped, so a retry after a failed hook finishes the job.
        """
        if not await self._mark_revoking(entry.id):
            return
        if orphan_children:
            await self._births_settled(entry.id)
            await self._orphan_children(entry.id)
        else:
            # (token, parent it was listed under, children already pushed?)
            stack: list[tuple[str, str, bool]] = [(entry.id, "", False)]
            while stack:
                token_id, parent_id, expanded = stack.pop()
                if token_id == entry.id and expanded:
                    break
                if expanded:
                    await self._destroy(token_id, parent_id)
                elif not await self._mark_revoking(token_id):
                    # Index record of a token that no longer exists (crash mid-create/revoke).
                    await self._view.delete(f"{PARENT_PREFIX}{parent_id}/{token_id}")
                else:
                    stack.append((token_id, parent_id, True))
                    await self._births_settled(token_id)
                    children = await self._view.list(f"{PARENT_PREFIX}{token_id}/")
                    stack.extend((child, token_id, False) for child in children if not child.endswith("/"))
        await self._destroy(entry.id, "")

    async def _mark_revoking(self, token_id: str) -> bool:
        async with self._lock(token_id):
            canon = self._cache.get(token_id) or await self._read(token_id)
            if canon is None:
                return False
            if canon.num_uses != NUM_USES_REVOKING:
                canon.num_uses = NUM_USES_REVOKING
                await self._write(canon)
            self._cache_put(canon)
            return True

    async def _orphan_children(self, token_id: str) -> None:
        for child_id in await self._view.list(f"{PARENT_PREFIX}{token_id}/"):
            async with self._lock(child_id):
                child = self._cache.get(child_id) or await self._read(child_id)
                if child is not None:
                    child.parent = ""
                    await self._write(child)
                    self._cache_put(child)
            await self._view.delete(f"{PARENT_PREFIX}{token_id}/{child_id}")

    async def _destroy(self, token_id: str, listed_under: str) -> None:
        entry = self._cache.get(token_id) or await self._read(token_id)
        if entry is None:
            return
        # Hooks (cubbyhole, later leases) must be idempotent: a concurrent revoke may run them too.
        for hook in self._hooks:
            await hook(entry)  # a failing hook leaves the token marked dead, for a retry
        async with self._lock(token_id):
            self._cache.pop(token_id, None)
            self.generation += 1
            # One commit; the record first, so a store that applies it write by write never
            # leaves a live token without its indexes.
            ops: list[WriteOp] = [(ID_PREFIX + token_id, None), (ACCESSOR_PREFIX + self.hash(entry.accessor), None)]
            ops += [(f"{PARENT_PREFIX}{parent_id}/{token_id}", None) for parent_id in {entry.parent, listed_under} - {""}]
            await apply_writes(self._view, ops)

    def _revoke_in_background(self, entry: TokenEntry) -> None:
        """Expired tokens are revoked lazily, when a lookup first notices; at most once at a time."""
        if entry.id in self._expiring:
            return
        self._expiring.add(entry.id)
        task = asyncio.get_running_loop().create_task(self._revoke_expired(entry))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _revoke_expired(self, entry: TokenEntry) -> None:
        try:
            await self.revoke(entry)
        except Exception:
            log.exception("revoking expired token (accessor %s) failed", entry.accessor)
        finally:
            self._expiring.discard(entry.id)

    async def drain(self) -> None:
        """Wait for background revocations (before seal, and in tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- quarantine -----------------------------------------------------------------------------
    async def scan(self) -> list[TokenEntry]:
        """Every stored token (reads one record per token: for rare operator actions only)."""
        out: list[TokenEntry] = []
        for key in await self._view.list(ID_PREFIX):
            entry = self._cache.get(key) or await self._read(key)
            if entry is not None and entry.num_uses != NUM_USES_REVOKING:
                out.append(entry)
        return out

    async def quarantine(self, *, accessor: str = "", entity_id: str = "", network: Any = None,
                         spare: str = "") -> list[str]:
        """Revoke every token selected by ``accessor`` / ``entity_id`` / ``network`` (an ip_network
        the token was created from), every token those created (children and orphans alike,
        transitively), and so, through the revoke hooks, every lease they hold. The token with
        accessor ``spare`` (the operator's own) is never revoked. Returns the revoked accessors."""
        entries = await self.scan()
        made_by: dict[str, list[TokenEntry]] = {}
        for e in entries:
            if e.creator:
                made_by.setdefault(e.creator, []).append(e)
            if e.parent:
                made_by.setdefault("id:" + e.parent, []).append(e)

        def selected(e: TokenEntry) -> bool:
            if accessor and e.accessor == accessor:
                return True
            if entity_id and e.entity_id == entity_id:
                return True
            if network is not None and e.source_addr:
                try:
                    return ipaddress.ip_address(e.source_addr) in network
                except ValueError:
                    return False
            return False

        doomed: dict[str, TokenEntry] = {}
        todo = [e for e in entries if selected(e)]
        while todo:
            e = todo.pop()
            if e.accessor in doomed or e.accessor == spare:
                continue
            doomed[e.accessor] = e
            todo.extend(made_by.get(e.accessor, []))
            todo.extend(made_by.get("id:" + e.id, []))
        for e in doomed.values():
            await self.revoke(e)
        return sorted(doomed)


class Births:
    """The children of one token being created right now; ``done`` is set when the last is."""

    __slots__ = ("count", "done")

    def __init__(self) -> None:
        self.count = 0
        self.done = asyncio.Event()
