"""Shamir seal bookkeeping: the seal configuration and the progress of an unseal attempt.

No cryptography happens here beyond Shamir splitting/combining; deciding whether a combined key is
right is the barrier's job (authenticated decryption of the root key).

``SealConfig`` is stored in plaintext at ``core/seal-config`` (see :mod:`strongroom.barrier`):
it is not secret, and ``sys/seal-status`` must be able to report it while sealed.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from strongroom.barrier import shamir
from strongroom.errors import Internal, InvalidRequest

SEAL_TYPE = "shamir"


@dataclass(slots=True, frozen=True)
class SealConfig:
    """How many unseal key shares exist and how many unseal the barrier.

    ``secret_shares == 1`` (with threshold 1) means the single key IS the unseal key; otherwise the
    threshold must be at least 2, since a threshold of 1 over several shares would hand every
    holder the whole key.
    """

    secret_shares: int
    secret_threshold: int

    def __post_init__(self) -> None:
        shares, threshold = self.secret_shares, self.secret_threshold
        if shares < 1:
            raise InvalidRequest("shares must be at least one")
        if threshold < 1:
            raise InvalidRequest("threshold must be at least one")
        if shares > 1 and threshold == 1:
            raise InvalidRequest("threshold must be greater than one for multiple shares")
        if shares > shamir.MAX_PARTS:
            raise InvalidRequest(f"shares must be less than {shamir.MAX_PARTS + 1}")
        if threshold > shares:
            raise InvalidRequest("threshold cannot be larger than shares")

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "type": SEAL_TYPE,
                "secret_shares": self.secret_shares,
                "secret_threshold": self.secret_threshold,
            }
        )

    @classmethod
    def from_json(cls, data: bytes) -> SealConfig:
        try:
            raw: Any = orjson.loads(data)
            shares, threshold = raw["secret_shares"], raw["secret_threshold"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise Internal(f"seal configuration is corrupt ({type(exc).__name__})") from None
        if raw.get("type", SEAL_TYPE) != SEAL_TYPE:
            raise Internal(f"unsupported seal type {raw.get('type')!r}")
        if not isinstance(shares, int) or not isinstance(threshold, int):
            raise Internal("seal configuration is corrupt (non-integer shares or threshold)")
        return cls(secret_shares=shares, secret_threshold=threshold)


def _new_nonce() -> str:
    return str(uuid.uuid4())


@dataclass(slots=True)
class UnsealProgress:
    """Key shares submitted so far in the current unseal attempt.

    ``nonce`` identifies the attempt (``sys/seal-status`` reports it); it changes on every reset so
    a client can tell that its earlier submissions were discarded.
    """

    nonce: str = field(default_factory=_new_nonce)
    _keys: list[bytes] = field(default_factory=list, repr=False)  # SECURITY: never in a repr

    @property
    def progress(self) -> int:
        return len(self._keys)

    def submit(self, key: bytes, threshold: int) -> bytes | None:
        """Add one share; at ``threshold`` shares return the combined unseal key and reset.

        A share already submitted in this attempt changes nothing (None; OpenBao's answer too).
        The returned key may still be wrong: the barrier decides that.
        """
        if threshold < 1:
            raise InvalidRequest("threshold must be at least one")
        if not key:
            raise InvalidRequest("key must not be empty")
        # SECURITY: compare against every earlier share with compare_digest and no early exit, so
        # the time taken does not reveal which (or how much of a) stored share matched.
        duplicate = False
        for earlier in self._keys:
            duplicate |= hmac.compare_digest(earlier, key)
        if duplicate:
            return None
        self._keys.append(key)
        if len(self._keys) < threshold:
            return None
        try:
            return combine_unseal_key(self._keys)
        finally:
            # Whatever the outcome (a key, or malformed shares), the next share starts a new attempt.
            self.reset()

    def reset(self) -> None:
        self._keys.clear()
        self.nonce = _new_nonce()


# The size of a share OpenBao accepts: a key of 16 to 32 bytes, and one byte more for a share's
# x coordinate. Checked before a share counts, so a malformed one leaves the attempt as it was.
MIN_SHARE_BYTES, MAX_SHARE_BYTES = 16, 33


def check_share_length(key: bytes) -> None:
    if len(key) < MIN_SHARE_BYTES:
        raise InvalidRequest(f"invalid key: key is shorter than minimum {MIN_SHARE_BYTES} bytes")
    if len(key) > MAX_SHARE_BYTES:
        raise InvalidRequest(f"invalid key: key is longer than maximum {MAX_SHARE_BYTES} bytes")


def split_unseal_key(key: bytes, shares: int, threshold: int) -> list[bytes]:
    """Shares to hand to operators; with a single share the unseal key itself is the share."""
    SealConfig(shares, threshold)  # validates the combination
    if shares == 1:
        return [key]
    return shamir.split(key, shares, threshold)


def combine_unseal_key(shares: Sequence[bytes]) -> bytes:
    """Inverse of :func:`split_unseal_key`."""
    if not shares:
        raise InvalidRequest("no key shares given")
    if len(shares) == 1:
        return shares[0]
    return shamir.combine(shares)


__all__ = ["SEAL_TYPE", "SealConfig", "UnsealProgress", "combine_unseal_key", "split_unseal_key"]


def parse_key_share(value: str) -> bytes:
    """An unseal key share as Vault accepts it (sys/unseal, rekey, generate-root): hex first, then base64."""
    value = value.strip()
    try:
        return bytes.fromhex(value)
    except ValueError:
        pass
    try:
        raw = base64.b64decode(value, validate=True)
        if raw:
            return raw
    except (binascii.Error, ValueError):
        pass
    raise InvalidRequest("'key' must be a valid hex or base64 string")
