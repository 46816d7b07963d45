"""Go's RFC3339Nano formatting, as Vault prints timestamps."""

from strongroom.durations import rfc3339, rfc3339_ns, utc_seconds


def test_rfc3339_ns_drops_trailing_zeros_of_the_fraction() -> None:
    assert rfc3339_ns(1521685446945319214) == "2018-03-22T02:24:06.945319214Z"
    assert rfc3339_ns(1521685446100000000) == "2018-03-22T02:24:06.1Z"


def test_rfc3339_ns_without_a_fraction_has_none() -> None:
    assert rfc3339_ns(1521685446000000000) == "2018-03-22T02:24:06Z"


def test_utc_seconds_is_utc_and_agrees_with_rfc3339() -> None:
    assert utc_seconds(0) == "1970-01-01T00:00:00"
    assert rfc3339(1521685446.5) == rfc3339_ns(1521685446_500000000)
