"""TTL arithmetic for token creation and renewal (expected values observed on OpenBao)."""

from __future__ import annotations

import pytest

from strongroom.core.tokens.ttl import creation_ttl, effective_limit, renewal_ttl
from strongroom.errors import InvalidRequest

H = 3600
H768 = 768 * H


def create(ttl: int = 0, period: int = 0, explicit: int = 0, root_only: bool = False) -> tuple[int, list[str]]:
    return creation_ttl(ttl=ttl, period=period, explicit_max_ttl=explicit, default_ttl=H768, max_ttl=H768,
                        root_only=root_only)


def test_effective_limit_is_the_smaller_nonzero_cap() -> None:
    assert effective_limit(0, H768) == H768
    assert effective_limit(H, H768) == H
    assert effective_limit(1000 * H, H768) == H768
    assert effective_limit(H, 0) == H
    assert effective_limit(0, 0) == 0


def test_default_and_requested_ttl() -> None:
    assert create() == (H768, [])
    assert create(ttl=2 * H) == (2 * H, [])


def test_root_only_tokens_never_expire_unless_bounded() -> None:
    assert create(root_only=True) == (0, [])
    assert create(root_only=True, explicit=H) == (H, [])  # no warning, as OpenBao
    assert create(root_only=True, ttl=H) == (H, [])


def test_ttl_capped_by_mount_max_with_warning() -> None:
    assert create(ttl=1000 * H + 1800) == (H768, [
        'TTL of "1000h30m" exceeded the effective max_ttl of "768h"; TTL value is capped accordingly'])


def test_default_ttl_capped_by_explicit_max_with_warning() -> None:
    assert create(explicit=H) == (H, [
        'TTL of "768h" exceeded the effective max_ttl of "1h"; TTL value is capped accordingly'])
    assert create(ttl=90 * 60, explicit=H)[1] == [
        'TTL of "1h30m" exceeded the effective max_ttl of "1h"; TTL value is capped accordingly']
    assert create(explicit=1000 * H) == (H768, [])  # the mount max still applies, silently here


def test_period_wins_and_is_capped() -> None:
    assert create(period=1800, ttl=2 * H) == (1800, [])
    assert create(period=1800, explicit=600) == (600, [
        'period of "30m" exceeded the effective max_ttl of "10m"; period value is capped accordingly'])
    assert create(period=1000 * H)[0] == H768


def renew(increment: int = 0, token_ttl: int = H, period: int = 0, explicit: int = 0,
          elapsed: float = 0) -> tuple[int, list[str]]:
    return renewal_ttl(increment=increment, token_ttl=token_ttl, period=period, explicit_max_ttl=explicit,
                       max_ttl=H768, issued_at=1000.0, now=1000.0 + elapsed)


def test_renew_defaults_to_the_tokens_own_ttl() -> None:
    assert renew() == (H, [])
    assert renew(increment=2 * H) == (2 * H, [])
    assert renew(increment=1800) == (1800, [])  # a renewal may shorten the token


def test_renew_never_passes_issue_plus_limit() -> None:
    ttl, warnings = renew(increment=10000 * H, elapsed=100)
    assert ttl == H768 - 100
    assert warnings == ['TTL of "10000h" exceeded the effective max_ttl of "768h"; TTL value is capped accordingly']
    assert renew(increment=5 * H, explicit=2 * H) == (2 * H, [
        'TTL of "5h" exceeded the effective max_ttl of "2h"; TTL value is capped accordingly'])


def test_renew_periodic() -> None:
    assert renew(increment=5 * H, period=H) == (H, [])
    assert renew(increment=60, period=H) == (H, [])
    assert renew(period=H, explicit=3 * H, elapsed=2.5 * H) == (1800, [])


def test_renew_past_the_limit_fails() -> None:
    with pytest.raises(InvalidRequest):
        renew(explicit=H, elapsed=H + 1)
