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

Memory: the cache is bounded in bytes (``DEFAULT_BYTES``, counting what each entry holds on its
own plus a fixed overhead) and in entries (``DEFAULT_SIZE``); the oldest insertion goes first. What
entries have in common is kept once: the token's hash in the key, the stamp, the body's head, and
(core/audit/) a token's audit auth member and the start of its request member. A kv-v2 read of a
small secret costs about 1.5 KB with one audit device, so the default holds a working set of some
10k such reads; a large secret costs its size and displaces many small ones.

Admission: while the cache has room, every answer that qualifies is kept. Once it is nearly full,
a key is kept only on its second miss within the last ``SEEN_MAX`` misses (:meth:`ReadCache.admit`,
which the HTTP edge asks exactly once per request that missed): reads spread over far
more keys than fit (a scan, or random reads over a million secrets) would otherwise build and
evict an entry on every request (~30 us each) for hits that never come.

SECURITY: entries hold answers in plaintext in memory (as the request did while it ran), keyed by
the token's salted hash, never the token. The cache is bounded, emptied on seal, and off when the
config sets ``disable_cache``.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

DEFAULT_BYTES = 16 * 1024 * 1024
DEFAULT_SIZE = 65536  # entries: a cap for tiny answers; the byte budget binds first for most
# What an entry costs beyond the bytes of its answer and replay: object headers, the key tuple and
# its path, the OrderedDict node, the CachedRead, the Replay and its tuples (tracemalloc, kv-v2
# reads of a small secret with one audit device: 1,530 bytes an entry, 775 of them counted).
ENTRY_OVERHEAD = 750
SEEN_MAX = 8192  # hashes of keys missed while the cache was nearly full (see Admission)


@dataclass(frozen=True, slots=True)
class Cacheable:
    """Core's consent to keep an answer: valid until ``until`` (token-store clock), the audit
    members to write again (a core.audit.Replay), and the bytes those hold on their own."""

    until: float
    replay: Any
    size: int = 0


@dataclass(frozen=True, slots=True)
class CachedRead:
    stamp: Hashable
    until: float
    status: int
    head: bytes  # the body up to the request id
    tail: bytes  # the body after it
    replay: Any
    cost: int  # what it counts for against the byte budget

    def body(self, request_id: str) -> bytes:
        return self.head + request_id.encode() + self.tail


class ReadCache:
    __slots__ = ("_clock", "_entries", "_head", "_last_stamp", "_seen", "_stamp", "hits", "max_bytes", "size",
                 "used")

    def __init__(self, stamp: Callable[[], Hashable], clock: Callable[[], float], size: int = DEFAULT_SIZE,
                 max_bytes: int = DEFAULT_BYTES) -> None:
        """``stamp``: the current change counters (see the module docstring); ``clock``: the token
        store's. ``size`` (entries) or ``max_bytes`` 0 turns the cache off."""
        self._stamp = stamp
        self._clock = clock
        # OrderedDict: dropping the oldest is O(1) (a dict's first live slot is found by a scan
        # past every deleted one: ~7 us at 16k entries with FIFO churn).
        self._entries: OrderedDict[Hashable, CachedRead] = OrderedDict()
        self.size = size if max_bytes > 0 else 0
        self.max_bytes = max_bytes
        self.used = 0  # bytes counted against max_bytes
        self._last_stamp: Hashable = None  # shared by the entries kept under it
        self._head = b""  # likewise: every envelope starts the same
        self._seen: set[int] = set()  # see Admission in the module docstring
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
            self._forget(key)
            return None
        return entry

    def admit(self, key: Hashable) -> bool:
        """May the answer to a read that missed under ``key`` be kept? (See Admission.)"""
        if self.used < self.max_bytes - self.max_bytes // 8 and len(self._entries) < self.size - self.size // 8:
            return True
        h = hash(key)
        seen = self._seen
        if h in seen:
            seen.discard(h)
            return True
        if len(seen) >= SEEN_MAX:
            seen.clear()
        seen.add(h)
        return False

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
        cost = len(head) + len(tail) + cacheable.size + ENTRY_OVERHEAD
        if cost > self.max_bytes // 4:
            return  # one answer must not empty the cache
        # One copy of what entries share (see the module docstring).
        if stamp == self._last_stamp:
            stamp = self._last_stamp
        else:
            self._last_stamp = stamp
        if head == self._head:
            head = self._head
        else:
            self._head = head
        if type(key) is tuple and key and type(key[0]) is str:
            key = (sys.intern(key[0]), *key[1:])  # core's (token hash, path, query)
        self._forget(key)
        entries = self._entries
        while entries and (len(entries) >= self.size or self.used + cost > self.max_bytes):
            self.used -= entries.popitem(last=False)[1].cost  # the oldest insertion
        entries[key] = CachedRead(stamp, cacheable.until, status, head, tail, cacheable.replay, cost)
        self.used += cost

    def _forget(self, key: Hashable) -> None:
        """Drop ``key``'s entry, if any, and the bytes it counted."""
        old = self._entries.pop(key, None)
        if old is not None:
            self.used -= old.cost

    def clear(self) -> None:
        self._entries.clear()
        self._seen.clear()
        self.used = 0
