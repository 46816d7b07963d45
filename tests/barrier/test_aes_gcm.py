"""The envelope: layout, round trip, AAD binding to the storage path, tamper detection."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.barrier.aes_gcm import HEADER_SIZE, MIN_SIZE, open_value, seal_value, term_of
from strongroom.errors import Internal

KEY = AESGCM(bytes(range(32)))


def test_layout_and_roundtrip() -> None:
    blob = seal_value(7, KEY, "logical/abc/foo", b"hello")
    assert blob[:4] == (7).to_bytes(4, "big")
    assert blob[4] == 1  # version
    assert len(blob) == HEADER_SIZE + len(b"hello") + 16
    assert b"hello" not in blob
    assert term_of(blob) == 7
    assert open_value(KEY, "logical/abc/foo", blob) == b"hello"


def test_nonces_are_fresh() -> None:
    a = seal_value(1, KEY, "p", b"same")
    b = seal_value(1, KEY, "p", b"same")
    assert a[5:17] != b[5:17]
    assert a != b


def test_empty_plaintext() -> None:
    blob = seal_value(1, KEY, "p", b"")
    assert len(blob) == MIN_SIZE
    assert open_value(KEY, "p", blob) == b""


def test_ciphertext_is_bound_to_its_path() -> None:
    blob = seal_value(1, KEY, "logical/mount-a/secret", b"payload")
    with pytest.raises(Internal, match="moved from another storage path"):
        open_value(KEY, "logical/mount-b/secret", blob)


def test_wrong_key_fails() -> None:
    blob = seal_value(1, KEY, "p", b"payload")
    with pytest.raises(Internal, match="failed to decrypt"):
        open_value(AESGCM(b"\x01" * 32), "p", blob)


@pytest.mark.parametrize("position", [4, 5, 16, 17, 20, -1])
def test_any_flipped_bit_is_detected(position: int) -> None:
    # Version, nonce, ciphertext and tag. The term (bytes 0-3) is bound differently: it selects
    # the key, so a forged term decrypts with the wrong key (see test_forged_term_selects_wrong_key).
    blob = bytearray(seal_value(1, KEY, "p", b"payload bytes"))
    blob[position] ^= 0x01
    with pytest.raises(Internal, match="failed to decrypt"):
        open_value(KEY, "p", bytes(blob))


def test_truncated_and_unknown_version() -> None:
    blob = seal_value(1, KEY, "p", b"x")
    with pytest.raises(Internal, match="truncated"):
        open_value(KEY, "p", blob[: MIN_SIZE - 1])
    with pytest.raises(Internal, match="too short"):
        term_of(b"\x00\x00")
    with pytest.raises(Internal, match="version 9"):
        open_value(KEY, "p", blob[:4] + b"\x09" + blob[5:])


def test_term_range() -> None:
    with pytest.raises(Internal):
        seal_value(-1, KEY, "p", b"x")
    with pytest.raises(Internal):
        seal_value(2**32, KEY, "p", b"x")
    assert term_of(seal_value(2**32 - 1, KEY, "p", b"x")) == 2**32 - 1


def test_forged_term_selects_wrong_key() -> None:
    keys = {1: KEY, 2: AESGCM(b"\x02" * 32)}
    blob = bytearray(seal_value(1, keys[1], "p", b"payload"))
    blob[3] = 2
    with pytest.raises(Internal, match="failed to decrypt"):
        open_value(keys[term_of(bytes(blob))], "p", bytes(blob))


def test_a_caller_drawn_nonce_is_used_and_must_have_the_right_size() -> None:
    nonce = bytes(range(100, 112))
    blob = seal_value(1, KEY, "p", b"v", nonce)
    assert blob[5:17] == nonce
    assert open_value(KEY, "p", blob) == b"v"
    with pytest.raises(Internal, match="nonce"):
        seal_value(1, KEY, "p", b"v", nonce[:8])
