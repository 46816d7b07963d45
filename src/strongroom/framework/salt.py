"""Salts: a random secret made once per mount (or per core subsystem) and kept in its storage.

A backend that must look records up by a secret without storing the secret (AppRole's secret ids,
the token store's ids) keys its storage by an HMAC of it under such a salt. The salt is drawn from
the OS CSPRNG on first use and stored at ``key`` in the storage given, which must be
barrier-encrypted (a mount's view is): the HMACs are only as safe as the salt.

    salt = Salt("salt")                 # in the backend's __init__
    await salt.load(self.system.storage)  # in setup(): made on the first unseal, read afterwards
    key = "role_id/" + salt.hmac(role_id)
    salt.forget()                       # in deactivate(): nothing of it stays in memory sealed

``encoding="hex"`` stores the salt as hex text rather than raw bytes (AppRole's existing layout);
the bytes the HMAC is keyed with are the same either way.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from typing import Literal

from strongroom.errors import Internal
from strongroom.logical import Storage

Encoding = Literal["raw", "hex"]


async def load_or_create_secret(storage: Storage, key: str, size: int = 32, *, encoding: Encoding = "raw") -> bytes:
    """The random secret at ``key``, made from the OS CSPRNG and stored on first use.

    Not atomic against a second writer of the same key: callers make it once per store from a
    single place (setup, under :class:`Salt`'s lock)."""
    raw = await storage.get(key)
    if raw is None:
        value = secrets.token_bytes(size)
        await storage.put(key, value.hex().encode() if encoding == "hex" else value)
        return value
    if encoding == "hex":
        try:
            return bytes.fromhex(raw.decode())
        except (UnicodeDecodeError, ValueError):
            raise Internal(f"the salt at {key!r} is not hex") from None
    return raw


class Salt:
    """One salt, loaded once (concurrent loads share the first) and kept until :meth:`forget`."""

    __slots__ = ("_encoding", "_key", "_lock", "_size", "_value")

    def __init__(self, key: str = "salt", *, size: int = 32, encoding: Encoding = "raw") -> None:
        self._key, self._size, self._encoding = key, size, encoding
        self._value: bytes | None = None
        self._lock = asyncio.Lock()

    @property
    def loaded(self) -> bool:
        return self._value is not None

    async def load(self, storage: Storage) -> bytes:
        """The salt's bytes, read from (or made in) ``storage`` the first time."""
        if self._value is None:
            async with self._lock:
                if self._value is None:
                    self._value = await load_or_create_secret(storage, self._key, self._size,
                                                              encoding=self._encoding)
        return self._value

    @property
    def value(self) -> bytes:
        if self._value is None:
            raise Internal("salt used before it was loaded")
        return self._value

    def hmac(self, message: str | bytes) -> str:
        """Hex HMAC-SHA256 of ``message`` under the salt."""
        data = message.encode() if isinstance(message, str) else message
        return hmac.new(self.value, data, hashlib.sha256).hexdigest()

    def forget(self) -> None:
        self._value = None


__all__ = ["Salt", "load_or_create_secret"]
