"""Shamir over GF(2^8): field facts, property-based round trips, and input validation."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.barrier import shamir
from strongroom.errors import InvalidRequest


def test_field_matches_the_aes_field() -> None:
    # Worked examples from the AES specification (FIPS-197, section 4.2).
    assert shamir._mul(0x57, 0x83) == 0xC1
    assert shamir._mul(0x57, 0x13) == 0xFE
    # {53} and {CA} are multiplicative inverses in GF(2^8) mod 0x11B.
    assert shamir._mul(0x53, 0xCA) == 0x01
    assert shamir._div(0x01, 0x53) == 0xCA


def test_field_axioms_exhaustively_for_zero_and_inverses() -> None:
    for a in range(256):
        assert shamir._mul(a, 0) == 0
        assert shamir._mul(0, a) == 0
        assert shamir._mul(a, 1) == a
        if a:
            assert shamir._mul(a, shamir._div(1, a)) == 1
            assert shamir._div(a, a) == 1


def _slow_mul(a: int, b: int) -> int:
    """Carry-less multiply then reduce by 0x11B: an independent reference for the table version."""
    product = 0
    while b:
        if b & 1:
            product ^= a
        a <<= 1
        if a & 0x100:
            a ^= 0x11B
        b >>= 1
    return product


@given(st.integers(0, 255), st.integers(0, 255))
def test_table_multiplication_matches_reference(a: int, b: int) -> None:
    assert shamir._mul(a, b) == _slow_mul(a, b)


@settings(max_examples=150, deadline=None)
@given(
    secret=st.binary(min_size=1, max_size=64),
    shape=st.integers(2, 8).flatmap(lambda parts: st.tuples(st.just(parts), st.integers(2, parts))),
    data=st.data(),
)
def test_any_threshold_subset_recovers(secret: bytes, shape: tuple[int, int], data: st.DataObject) -> None:
    parts, threshold = shape
    shares = shamir.split(secret, parts, threshold)
    assert len(shares) == parts
    assert all(len(s) == len(secret) + 1 for s in shares)
    xs = [s[-1] for s in shares]
    assert len(set(xs)) == parts and 0 not in xs
    size = data.draw(st.integers(threshold, parts), label="subset size")
    subset = data.draw(st.permutations(shares), label="order")[:size]
    assert shamir.combine(subset) == secret


def test_every_subset_of_a_5_of_3_split() -> None:
    secret = b"the unseal key is 32 bytes long!"
    shares = shamir.split(secret, 5, 3)
    for triple in itertools.combinations(shares, 3):
        assert shamir.combine(list(triple)) == secret
    for pair in itertools.combinations(shares, 2):
        # 2^-256 chance of an accidental match: below threshold reveals nothing useful.
        assert shamir.combine(list(pair)) != secret


@settings(max_examples=100, deadline=None)
@given(
    secret=st.binary(min_size=16, max_size=48),
    shape=st.integers(3, 8).flatmap(lambda parts: st.tuples(st.just(parts), st.integers(3, parts))),
)
def test_fewer_than_threshold_does_not_recover(secret: bytes, shape: tuple[int, int]) -> None:
    parts, threshold = shape
    shares = shamir.split(secret, parts, threshold)
    # >= 16 bytes: the chance that threshold-1 shares interpolate to the secret is <= 2^-128.
    assert shamir.combine(shares[: threshold - 1]) != secret


def test_shares_differ_between_splits() -> None:
    secret = b"\x00" * 32
    assert shamir.split(secret, 3, 2) != shamir.split(secret, 3, 2)
    # A zero secret must not produce shares whose y-values are all zero (coefficients are random).
    assert any(any(share[:-1]) for share in shamir.split(secret, 3, 2))


def test_max_parts() -> None:
    secret = b"k" * 8
    shares = shamir.split(secret, 255, 2)
    assert sorted(s[-1] for s in shares) == list(range(1, 256))
    assert shamir.combine([shares[0], shares[254]]) == secret


@pytest.mark.parametrize(
    ("secret", "parts", "threshold", "message"),
    [
        (b"s", 1, 1, "parts"),
        (b"s", 256, 2, "parts"),
        (b"s", 3, 1, "threshold"),
        (b"s", 3, 4, "threshold"),
        (b"", 3, 2, "empty"),
    ],
)
def test_split_validation(secret: bytes, parts: int, threshold: int, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        shamir.split(secret, parts, threshold)


def test_combine_validation() -> None:
    shares = shamir.split(b"secret", 3, 2)
    with pytest.raises(InvalidRequest, match="at least two shares"):
        shamir.combine(shares[:1])
    with pytest.raises(InvalidRequest, match="same length"):
        shamir.combine([shares[0], shares[1][1:]])
    with pytest.raises(InvalidRequest, match="two bytes"):
        shamir.combine([b"\x01", b"\x02"])
    with pytest.raises(InvalidRequest, match="duplicate"):
        shamir.combine([shares[0], shares[0]])
    with pytest.raises(InvalidRequest, match="duplicate"):
        shamir.combine([shares[0], b"\x00" * 6 + shares[0][-1:]])
