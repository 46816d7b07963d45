"""Keyring: immutability, rotation, encoding, cached ciphers, no key bytes in repr."""

from __future__ import annotations

import base64
import re
from dataclasses import FrozenInstanceError

import orjson
import pytest

from strongroom.barrier.keyring import Key, Keyring
from strongroom.errors import Internal

ROOT = b"R" * 32


def test_new_keyring() -> None:
    keyring = Keyring.new(ROOT)
    assert keyring.active_term == 1
    assert list(keyring.keys) == [1]
    key = keyring.active_key
    assert len(key.value) == 32 and key.value != ROOT
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", key.install_time)


def test_add_key_returns_a_new_keyring() -> None:
    one = Keyring.new(ROOT)
    two = one.add_key()
    assert one.active_term == 1 and list(one.keys) == [1]
    assert two.active_term == 2 and sorted(two.keys) == [1, 2]
    assert two.keys[1] == one.keys[1]
    assert two.keys[2].value != two.keys[1].value
    assert two.root_key == ROOT
    assert two.add_key().active_term == 3


def test_immutable() -> None:
    keyring = Keyring.new(ROOT)
    with pytest.raises(FrozenInstanceError):
        keyring.active_term = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        keyring.keys[9] = keyring.active_key  # type: ignore[index]


def test_aead_is_cached_per_term() -> None:
    keyring = Keyring.new(ROOT).add_key()
    assert keyring.aead(1) is keyring.aead(1)
    assert keyring.aead(1) is not keyring.aead(2)
    nonce = b"\x00" * 12
    assert keyring.aead(2).encrypt(nonce, b"m", None) != keyring.aead(1).encrypt(nonce, b"m", None)
    with pytest.raises(Internal, match="no encryption key for term 3"):
        keyring.aead(3)


def test_json_roundtrip() -> None:
    keyring = Keyring.new(ROOT).add_key()
    raw = orjson.loads(keyring.to_json())
    assert raw["active_term"] == 2
    assert base64.b64decode(raw["root_key"]) == ROOT
    assert [k["term"] for k in raw["keys"]] == [1, 2]
    restored = Keyring.from_json(keyring.to_json())
    assert restored == keyring
    assert restored.keys[2].value == keyring.keys[2].value


def test_repr_never_shows_key_material() -> None:
    keyring = Keyring.new(ROOT)
    text = repr(keyring) + repr(keyring.active_key)
    assert "RRRR" not in text
    assert repr(keyring.active_key.value) not in text
    assert "active_term=1" in text


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"{}",
        b'{"root_key": "!!", "active_term": 1, "keys": []}',
        orjson.dumps({"root_key": base64.b64encode(ROOT).decode(), "active_term": 2, "keys": []}),
        orjson.dumps(
            {
                "root_key": base64.b64encode(ROOT).decode(),
                "active_term": 1,
                "keys": [{"term": 1, "value": base64.b64encode(b"short").decode(), "install_time": "t"}],
            }
        ),
        orjson.dumps(
            {
                "root_key": base64.b64encode(ROOT).decode(),
                "active_term": True,
                "keys": [{"term": 1, "value": base64.b64encode(b"k" * 32).decode(), "install_time": "t"}],
            }
        ),
    ],
)
def test_corrupt_json_is_refused(payload: bytes) -> None:
    with pytest.raises(Internal):
        Keyring.from_json(payload)


def test_duplicate_terms_refused() -> None:
    entry = {"term": 1, "value": base64.b64encode(b"k" * 32).decode(), "install_time": "t"}
    payload = orjson.dumps(
        {"root_key": base64.b64encode(ROOT).decode(), "active_term": 1, "keys": [entry, entry]}
    )
    with pytest.raises(Internal, match="twice"):
        Keyring.from_json(payload)


def test_key_validation() -> None:
    with pytest.raises(Internal):
        Key(term=0, value=b"k" * 32, install_time="t")
    with pytest.raises(Internal):
        Keyring(root_key=b"short", keys={1: Key(1, b"k" * 32, "t")}, active_term=1)
    with pytest.raises(Internal):
        Keyring(root_key=ROOT, keys={2: Key(1, b"k" * 32, "t")}, active_term=2)
