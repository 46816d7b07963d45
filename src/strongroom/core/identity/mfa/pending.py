"""Logins waiting for their second factor (Vault's MFA auth-response queue): in memory only,
bounded, expiring after five minutes (Vault's defaultMFAAuthResponseTTL), and single use: taking
one removes it; a failed validation puts it back (as Vault does) until it expires.

What is kept is what the auth method vouched for (the computed ``Auth``, which may hold the
method's renewal credential in ``internal_data``) and the facts of the login request a token
needs; never the password or other request data.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from strongroom.logical import Auth

PENDING_TTL = 300.0
MAX_PENDING = 10_000


@dataclass(slots=True)
class PendingLogin:
    request_id: str
    auth: Auth
    path: str  # the login's full path (the token's path)
    mount_point: str
    mount_accessor: str
    remote_addr: str
    created: float  # monotonic clock


class PendingLogins:
    def __init__(self, clock: Callable[[], float] = time.monotonic, ttl: float = PENDING_TTL,
                 limit: int = MAX_PENDING) -> None:
        self._items: OrderedDict[str, PendingLogin] = OrderedDict()
        self._clock = clock
        self._ttl = ttl
        self._limit = limit

    def now(self) -> float:
        return self._clock()

    def put(self, login: PendingLogin) -> None:
        self.prune()
        self._items[login.request_id] = login
        while len(self._items) > self._limit:
            self._items.popitem(last=False)  # the oldest waiting login is given up first

    def take(self, request_id: str) -> PendingLogin | None:
        login = self._items.pop(request_id, None)
        if login is None or login.created + self._ttl <= self._clock():
            return None
        return login

    def put_back(self, login: PendingLogin) -> None:
        if login.created + self._ttl > self._clock():
            self._items[login.request_id] = login

    def prune(self) -> None:
        cutoff = self._clock() - self._ttl
        while self._items:
            first = next(iter(self._items.values()))
            if first.created > cutoff:
                break
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
