"""Answers to repeated reads, given again without running the pipeline (Strongroom's own).

A token re-reading the same secret is the commonest request a secrets server gets, and most of its
cost is work whose result cannot have changed: the token lookup, the ACL check, routing, storage,
decryption, the JSON envelope and, above all, the audit members (an HMAC per token, accessor and
secret value). So the HTTP edge remembers the answer to a read whose backend declares it reusable
(``Response.cache_until``), with everything its two audit entries need except what differs per
request (time, request id, remote address and port). The same read by the same token (same path,
same query, no headers that change processing) is then answered from here: its audit entries are
still written, one pair per device, before the answer leaves (fail closed, as on the pipeline), and
the answer carries a fresh request id.

Correctness: an entry is used only while nothing it was computed from has changed. Its ``stamp`` is
taken before its request started and must equal the current one, made of the change counters of
everything a read depends on:

- the barrier: every write, moved before it starts and after it ends (so a read that raced a write
  is never kept), and seal/unseal;
- the router: mount, unmount, remount, tune;
- the policy store; the token store (use, renew, revoke, orphaning); the audit device table;
- the core's serving epoch, which moves when it starts serving and on seal: nothing kept before
  an unseal's post-unseal has finished can be given after it (and the core keeps and gives
  nothing while it is not serving, see ``Core.sealed``).

Time-bound facts are checked on every use: the token's expiry, an ACL stanza that lapses, and the
backend's own limit (lookup-self's ``ttl`` second). Tokens with use limits or CIDR bindings never
qualify (each use is a write, or the answer depends on the caller's address), nor do wrapped
answers, leases, logins or anything with a body. Sealing empties the cache.

SECURITY: entries hold answers in plaintext in memory (as the request did while it ran), keyed by
the token's salted hash, never the token. The cache is bounded (``DEFAULT_SIZE`` entries, oldest
dropped first), emptied on seal, and off when the config sets ``disable_cache``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

# Entries (about 2 KB each with one audit device): the hot set of reads, not every secret.
DEFAULT_SIZE = 1024


@dataclass(frozen=True, slots=True)
class Cacheable:
    """Core's consent to keep an answer: valid until ``until`` (token-store clock), and the audit
    members to write again (a core.audit.Replay)."""

    until: float
    replay: Any


@dataclass(frozen=True, slots=True)
class CachedRead:
    stamp: Hashable
    until: float
    status: int
    head: bytes  # the body up to the request id
    tail: bytes  # the body after it
    replay: Any

    def body(self, request_id: str) -> bytes:
        return self.head + request_id.encode() + self.tail


class ReadCache:
    __slots__ = ("_clock", "_entries", "_stamp", "hits", "size")

    def __init__(self, stamp: Callable[[], Hashable], clock: Callable[[], float], size: int = DEFAULT_SIZE) -> None:
        """``stamp``: the current change counters (see the module docstring); ``clock``: the token
        store's. ``size`` 0 turns the cache off."""
        self._stamp = stamp
        self._clock = clock
        self._entries: dict[Hashable, CachedRead] = {}
        self.size = size
        # Answers given from here (for tests and operators): counted by the edge once an answer's
        # entries are audited, not by get (a hit refused for want of audit is no answer given).
        self.hits = 0

    def __len__(self) -> int:
        return len(self._entries)

    def stamp(self) -> Hashable:
        """Take before the request starts; hand to :meth:`put` after."""
        return self._stamp()

    def get(self, key: Hashable) -> CachedRead | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.stamp != self._stamp() or self._clock() >= entry.until:
            del self._entries[key]
            return None
        return entry

    def put(self, key: Hashable, stamp: Hashable, cacheable: Cacheable, status: int, body: bytes,
            request_id: str) -> None:
        """Keep an answer whose body names ``request_id`` once (else, or if anything changed since
        ``stamp`` was taken, it is not kept)."""
        if not self.size or stamp != self._stamp():
            return
        rid = request_id.encode()
        if body.count(rid) != 1:
            return
        head, tail = body.split(rid)
        entries = self._entries
        if key not in entries and len(entries) >= self.size:
            del entries[next(iter(entries))]  # the oldest insertion: O(1)
        entries[key] = CachedRead(stamp, cacheable.until, status, head, tail, cacheable.replay)

    def clear(self) -> None:
        self._entries.clear()
