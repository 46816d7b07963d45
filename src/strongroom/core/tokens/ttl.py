"""Token TTL arithmetic, as Vault does it. Pure functions: no I/O, no clock of their own.

Vocabulary:
  mount max      the auth/token mount's effective max lease TTL (system default 768h)
  explicit max   a hard cap fixed on the token (or its role) at creation; never raised later
  limit          the smaller non-zero of the two: the longest a token may live, counted from issue
  period         a periodic token renews to exactly its period each time, with no limit of its
                 own beyond the explicit max

Capping is not an error: the TTL is shortened and a warning returned, worded as Vault words it,
because clients (and operators reading the CLI) rely on seeing why they got less than they asked.
"""

from __future__ import annotations

from strongroom.durations import format_duration
from strongroom.errors import InvalidRequest


def effective_limit(explicit_max_ttl: int, mount_max_ttl: int) -> int:
    """The smaller non-zero of the two caps (0 = no cap)."""
    if explicit_max_ttl > 0 and (mount_max_ttl <= 0 or explicit_max_ttl < mount_max_ttl):
        return explicit_max_ttl
    return max(mount_max_ttl, 0)


def _ttl_warning(requested: int, limit: int) -> str:
    return (f'TTL of "{format_duration(requested)}" exceeded the effective max_ttl of '
            f'"{format_duration(limit)}"; TTL value is capped accordingly')


def _period_warning(period: int, limit: int) -> str:
    return (f'period of "{format_duration(period)}" exceeded the effective max_ttl of '
            f'"{format_duration(limit)}"; period value is capped accordingly')


def creation_ttl(
    *,
    ttl: int,
    period: int,
    explicit_max_ttl: int,
    default_ttl: int,
    max_ttl: int,
    root_only: bool,
) -> tuple[int, list[str]]:
    """(TTL the new token gets, warnings). 0 means the token never expires.

    - A period wins over a requested TTL, capped by the limit.
    - No TTL asked: the mount default, except a token whose only policy is root, which never
      expires (unless an explicit max bounds it, then it lives exactly that long).
    - Anything longer than the limit is capped to it.
    """
    limit = effective_limit(explicit_max_ttl, max_ttl)
    if period > 0:
        if limit > 0 and period > limit:
            return limit, [_period_warning(period, limit)]
        return period, []
    if ttl <= 0:
        if root_only:
            return max(explicit_max_ttl, 0), []
        ttl = default_ttl
    if limit > 0 and ttl > limit:
        return limit, [_ttl_warning(ttl, limit)]
    return ttl, []


def renewal_ttl(
    *,
    increment: int,
    token_ttl: int,
    period: int,
    explicit_max_ttl: int,
    max_ttl: int,
    issued_at: float,
    now: float,
) -> tuple[int, list[str]]:
    """(new TTL from ``now``, warnings) for renewing a token.

    ``increment`` 0 means "the token's own TTL" (its creation TTL). A periodic token ignores the
    increment and renews to its period; only an explicit max bounds it in absolute time. Any other
    token may not outlive ``issued_at + limit``.
    """
    warnings: list[str] = []
    limit = effective_limit(explicit_max_ttl, max_ttl)
    if period > 0:
        ttl = period
        if limit > 0 and ttl > limit:
            ttl = limit
            warnings.append(_period_warning(period, limit))
        if explicit_max_ttl > 0:
            ttl = min(ttl, round(issued_at + explicit_max_ttl - now))
    else:
        requested = increment if increment > 0 else token_ttl
        ttl = requested
        if limit > 0:
            left = round(issued_at + limit - now)
            if ttl > left:
                ttl = left
                warnings.append(_ttl_warning(requested, limit))
    if ttl <= 0:
        raise InvalidRequest("past the max TTL, cannot renew")
    return ttl, warnings
