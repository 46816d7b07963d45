"""KeyedSha256 is HMAC-SHA256 exactly, for every key length (short, a full block, longer)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from strongroom.audit.chain import chain_mac
from strongroom.audit.mac import KeyedSha256


@pytest.mark.parametrize("size", [0, 1, 32, 63, 64, 65, 200])
def test_matches_the_standard_library(size: int) -> None:
    key = bytes(range(size))
    mac = KeyedSha256(key)
    for msg in (b"", b"x", b"hello world", bytes(range(256)) * 5):
        assert mac.digest(msg) == hmac.new(key, msg, hashlib.sha256).digest()
        assert mac.hexdigest(msg) == hmac.new(key, msg, hashlib.sha256).hexdigest()
    assert mac.hexdigest(b"a") == mac.hexdigest(b"a")  # no state carried from one message to the next


def test_chain_mac_is_the_same_with_a_keyed_object() -> None:
    key = b"k" * 32
    assert chain_mac(KeyedSha256(key), "prev", 42, b"{}") == chain_mac(key, "prev", 42, b"{}") == \
        hmac.new(key, b"prev\n42\n{}", hashlib.sha256).hexdigest()
