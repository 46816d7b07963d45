"""TOTP passcode checks for login MFA (Vault's validateTOTP), over the shared OTP code in
framework/otp.py, with the two in-memory guards Vault keeps:

- used codes: a passcode accepted for a method and entity is refused again (replay) until it can
  no longer be valid, ``period * (2 + skew)`` seconds;
- attempts: failed-or-not checks per (method, entity) counted over a window of one period; past
  ``max_validation_attempts`` every check is refused until the window ends. A success resets it.

Both are bounded (oldest dropped first) and expire; a seal empties them (as Vault's teardown).
SECURITY: one generic error for a wrong, malformed or replayed code (HCSEC-2025-19), and every
candidate code is compared in constant time (framework/otp.validate).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from strongroom.core.identity.mfa.config import TOTPSecret
from strongroom.framework import otp

BAD_CREDENTIALS = "MFA credentials not supplied or incorrect"
MAX_ENTRIES = 100_000


class MFAFailure(Exception):
    """A method's check failed; the text is Vault's, put into the 403 answer."""


class ExpiringMap:
    """key -> (value, expiry on the monotonic clock), oldest dropped past ``limit``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, limit: int = MAX_ENTRIES) -> None:
        self._items: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._clock = clock
        self._limit = limit

    def get(self, key: str) -> int | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[1] <= self._clock():
            del self._items[key]
            return None
        return item[0]

    def add(self, key: str, value: int, ttl: float) -> None:
        """Set ``key`` unless it is already there (and live): its expiry is not extended."""
        if self.get(key) is None:
            self.put(key, value, ttl)

    def put(self, key: str, value: int, ttl: float) -> None:
        self._items.pop(key, None)
        self._items[key] = (value, self._clock() + ttl)
        while len(self._items) > self._limit:
            self._items.popitem(last=False)

    def increment(self, key: str) -> int:
        value, expiry = self._items[key]
        self._items[key] = (value + 1, expiry)
        return value + 1

    def delete(self, key: str) -> None:
        self._items.pop(key, None)

    def prune(self) -> None:
        now = self._clock()
        for key in [k for k, (_, exp) in self._items.items() if exp <= now]:
            del self._items[key]

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


def _go_seconds(period: int, skew: int) -> str:
    """Vault's window as Go prints it: ``period`` seconds plus ``2 * skew`` nanoseconds (sic)."""
    minutes, seconds = divmod(period, 60)
    hours, minutes = divmod(minutes, 60)
    frac = f".{2 * skew:09d}".rstrip("0") if skew else ""
    if hours:
        return f"{hours}h{minutes}m{seconds}{frac}s"
    if minutes:
        return f"{minutes}m{seconds}{frac}s"
    return f"{seconds}{frac}s"


class TOTPGuard:
    def __init__(self, clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self.used = ExpiringMap(clock)
        self.attempts = ExpiringMap(clock)
        self._wall = wall

    def clear(self) -> None:
        self.used.clear()
        self.attempts.clear()

    def prune(self) -> None:
        self.used.prune()
        self.attempts.prune()

    def check(self, passcode: str, secret: TOTPSecret, method_id: str, entity_id: str, max_attempts: int) -> None:
        """Accept ``passcode`` or raise MFAFailure with Vault's text."""
        if not passcode or passcode.strip() != passcode or len(passcode) != secret.digits:
            raise MFAFailure(BAD_CREDENTIALS)
        # Beyond Vault (which keys used codes by method only): by method and entity, so one
        # user's accepted code never blocks another's that happens to be equal.
        used_key = f"{method_id}_{entity_id}_{passcode}"
        if self.used.get(used_key) is not None:
            raise MFAFailure(BAD_CREDENTIALS)
        limit_key = f"{method_id}_{entity_id}"
        self.attempts.add(limit_key, 0, secret.period)
        count = self.attempts.increment(limit_key)
        if count > max_attempts:
            raise MFAFailure(f"maximum TOTP validation attempts {count} exceeded the allowed attempts "
                             f"{max_attempts}. Please try again in {_go_seconds(secret.period, secret.skew)} seconds")
        try:
            key = otp.decode_key(secret.key)
        except Exception:
            raise MFAFailure("empty key for entity's TOTP secret") from None
        if not otp.validate(passcode, key, self._wall(), secret.period, secret.digits, secret.algorithm,
                            secret.skew):
            raise MFAFailure(BAD_CREDENTIALS)
        self.used.put(used_key, 1, secret.period * (2 + secret.skew))
        self.attempts.delete(limit_key)
