"""Seal bookkeeping: SealConfig validation/encoding, unseal progress, unseal key split/combine."""

from __future__ import annotations

import uuid

import orjson
import pytest

from strongroom.barrier.seal import SealConfig, UnsealProgress, combine_unseal_key, split_unseal_key
from strongroom.errors import Internal, InvalidRequest

KEY = bytes(range(32))


@pytest.mark.parametrize(("shares", "threshold"), [(1, 1), (2, 2), (5, 3), (255, 255), (255, 2)])
def test_valid_configs(shares: int, threshold: int) -> None:
    config = SealConfig(shares, threshold)
    assert SealConfig.from_json(config.to_json()) == config


@pytest.mark.parametrize(
    ("shares", "threshold", "message"),
    [
        (0, 1, "shares must be at least one"),
        (1, 0, "threshold must be at least one"),
        (3, 1, "greater than one"),
        (256, 2, "less than 256"),
        (3, 4, "cannot be larger"),
    ],
)
def test_invalid_configs(shares: int, threshold: int, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        SealConfig(shares, threshold)


def test_json_shape_and_corruption() -> None:
    assert orjson.loads(SealConfig(5, 3).to_json()) == {
        "type": "shamir",
        "secret_shares": 5,
        "secret_threshold": 3,
    }
    for bad in (b"[]", b"nope", b'{"secret_shares": "5", "secret_threshold": 3}'):
        with pytest.raises(Internal):
            SealConfig.from_json(bad)
    with pytest.raises(Internal, match="unsupported seal type"):
        SealConfig.from_json(b'{"type": "awskms", "secret_shares": 1, "secret_threshold": 1}')


def test_split_and_combine_unseal_key() -> None:
    assert split_unseal_key(KEY, 1, 1) == [KEY]
    assert combine_unseal_key([KEY]) == KEY
    shares = split_unseal_key(KEY, 5, 3)
    assert len(shares) == 5 and KEY not in shares
    assert combine_unseal_key(shares[1:4]) == KEY
    with pytest.raises(InvalidRequest):
        split_unseal_key(KEY, 3, 1)
    with pytest.raises(InvalidRequest):
        combine_unseal_key([])


def test_progress_reaches_threshold_and_resets() -> None:
    shares = split_unseal_key(KEY, 5, 3)
    progress = UnsealProgress()
    first_nonce = progress.nonce
    uuid.UUID(first_nonce)  # a real uuid4 string
    assert progress.submit(shares[4], 3) is None
    assert progress.submit(shares[0], 3) is None
    assert progress.progress == 2
    assert progress.nonce == first_nonce
    assert progress.submit(shares[2], 3) == KEY
    assert progress.progress == 0
    assert progress.nonce != first_nonce


def test_single_share_config_returns_key_itself() -> None:
    progress = UnsealProgress()
    assert progress.submit(KEY, 1) == KEY
    assert progress.progress == 0


def test_duplicate_share_changes_nothing_and_attempt_continues() -> None:
    shares = split_unseal_key(KEY, 3, 2)
    progress = UnsealProgress()
    progress.submit(shares[0], 2)
    nonce = progress.nonce
    assert progress.submit(bytes(shares[0]), 2) is None
    assert (progress.progress, progress.nonce) == (1, nonce)
    assert progress.submit(shares[1], 2) == KEY


def test_reset_discards_progress() -> None:
    progress = UnsealProgress()
    progress.submit(b"share-one", 3)
    nonce = progress.nonce
    progress.reset()
    assert progress.progress == 0
    assert progress.nonce != nonce
    # The discarded share may be submitted again in the new attempt.
    assert progress.submit(b"share-one", 3) is None


def test_malformed_shares_reset_the_attempt() -> None:
    progress = UnsealProgress()
    progress.submit(b"abc", 2)
    with pytest.raises(InvalidRequest, match="same length"):
        progress.submit(b"abcdef", 2)
    assert progress.progress == 0


def test_repr_hides_submitted_shares() -> None:
    progress = UnsealProgress()
    progress.submit(b"very-secret-share", 3)
    assert "very-secret-share" not in repr(progress)
