"""The barrier keyring: the root key plus one AES-256 key per term.

A :class:`Keyring` is immutable. Rotation builds a new keyring with one more term
(:meth:`Keyring.add_key`); the barrier persists it and only then swaps it in, so no value is ever
encrypted under a term that is not yet durable.

Encoding (a storage contract; the barrier stores it encrypted under the root key)::

    {"root_key": "<base64>", "active_term": 2,
     "keys": [{"term": 1, "value": "<base64>", "install_time": "2024-05-01T12:00:00.000000Z"}, ...]}
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import orjson
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.errors import Internal

KEY_SIZE = 32  # AES-256


def utc_now() -> str:
    """ISO 8601 / RFC 3339 timestamp in UTC with a 'Z' suffix, as Vault prints install times."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(slots=True, frozen=True)
class Key:
    """One data-encryption key. ``value`` is excluded from repr so it can never reach a log line."""

    term: int
    value: bytes = field(repr=False)
    install_time: str

    def __post_init__(self) -> None:
        if len(self.value) != KEY_SIZE:
            raise Internal(f"keyring key for term {self.term} must be {KEY_SIZE} bytes")
        if self.term < 1:
            raise Internal("keyring terms start at 1 (term 0 is reserved for the root key envelope)")


@dataclass(slots=True, frozen=True)
class Keyring:
    # SECURITY: repr=False on every field that holds key material.
    root_key: bytes = field(repr=False)
    keys: Mapping[int, Key] = field(repr=False)
    active_term: int
    # Cache of AESGCM objects per term (building one costs more than an encryption). It lives
    # outside equality and repr; mutating the dict does not change the keyring's value, and the
    # objects are stateless, so sharing them between keyrings and threads is safe.
    _aeads: dict[int, AESGCM] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.root_key) != KEY_SIZE:
            raise Internal(f"root key must be {KEY_SIZE} bytes")
        if self.active_term not in self.keys:
            raise Internal(f"keyring has no key for its active term {self.active_term}")
        for term, key in self.keys.items():
            if key.term != term:
                raise Internal(f"keyring entry {term} holds the key of term {key.term}")
        # Freeze the mapping too: a frozen dataclass alone would still let callers mutate the dict.
        if not isinstance(self.keys, MappingProxyType):
            object.__setattr__(self, "keys", MappingProxyType(dict(self.keys)))

    @classmethod
    def new(cls, root_key: bytes) -> Keyring:
        """A fresh keyring whose first data key (term 1) comes from the OS CSPRNG."""
        first = Key(term=1, value=_random_key(), install_time=utc_now())
        return cls(root_key=root_key, keys={1: first}, active_term=1)

    @property
    def active_key(self) -> Key:
        return self.keys[self.active_term]

    def add_key(self) -> Keyring:
        """A NEW keyring with a fresh key at term ``active_term + 1``, which becomes active."""
        term = max(self.keys) + 1
        key = Key(term=term, value=_random_key(), install_time=utc_now())
        return Keyring(
            root_key=self.root_key,
            keys={**self.keys, term: key},
            active_term=term,
            _aeads=dict(self._aeads),
        )

    def aead(self, term: int) -> AESGCM:
        """The (cached) cipher for ``term``; an unknown term means the value cannot be decrypted."""
        cipher = self._aeads.get(term)
        if cipher is None:
            key = self.keys.get(term)
            if key is None:
                raise Internal(f"no encryption key for term {term}")
            cipher = AESGCM(key.value)
            self._aeads[term] = cipher
        return cipher

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "root_key": _b64(self.root_key),
                "active_term": self.active_term,
                "keys": [
                    {"term": k.term, "value": _b64(k.value), "install_time": k.install_time}
                    for k in sorted(self.keys.values(), key=lambda k: k.term)
                ],
            }
        )

    @classmethod
    def from_json(cls, data: bytes) -> Keyring:
        try:
            raw: Any = orjson.loads(data)
            keys: dict[int, Key] = {}
            for entry in raw["keys"]:
                key = Key(
                    term=_int(entry["term"]),
                    value=_unb64(entry["value"]),
                    install_time=str(entry["install_time"]),
                )
                if key.term in keys:
                    raise Internal(f"keyring lists term {key.term} twice")
                keys[key.term] = key
            return cls(root_key=_unb64(raw["root_key"]), keys=keys, active_term=_int(raw["active_term"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, binascii.Error) as exc:
            # The message names the failure class only: the payload is key material.
            raise Internal(f"keyring is corrupt ({type(exc).__name__})") from None


def _random_key() -> bytes:
    return AESGCM.generate_key(bit_length=KEY_SIZE * 8)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise TypeError("expected a base64 string")
    return base64.b64decode(text, validate=True)


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("expected an integer")
    return value


__all__ = ["KEY_SIZE", "Key", "Keyring", "utc_now"]
