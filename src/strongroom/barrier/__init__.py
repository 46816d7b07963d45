"""The barrier: everything between plaintext and physical storage.

:class:`Barrier` implements :class:`strongroom.logical.Storage` by encrypting every value with the
keyring's active term (see :mod:`strongroom.barrier.aes_gcm`) and decrypting by the term found in
the stored blob. While sealed it holds no key material and every Storage call raises ``Sealed``.

Key hierarchy::

    unseal key (32 B; what the Shamir shares combine to; never stored)
      └─ encrypts the root key               -> core/root-key
           └─ encrypts the keyring           -> core/keyring
                └─ term keys encrypt every other value

All physical values are ciphertext except ``core/seal-config``.
"""

from __future__ import annotations

import asyncio
import hmac
import os
from typing import NamedTuple

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.barrier.aes_gcm import open_value, seal_value, term_of
from strongroom.barrier.keyring import KEY_SIZE, Key, Keyring
from strongroom.barrier.seal import SealConfig
from strongroom.errors import Internal, InvalidRequest, Sealed
from strongroom.logical import Storage

# Storage paths owned by the barrier (a compatibility contract: changing one orphans existing data).
#: The keyring JSON, encrypted with the ROOT key in a term-0 envelope (AAD = this path).
KEYRING_PATH = "core/keyring"
#: The root key, encrypted with the UNSEAL key in a term-0 envelope (AAD = this path).
ROOT_KEY_PATH = "core/root-key"
#: SealConfig JSON in PLAINTEXT: not secret, and it must be readable while sealed (seal-status).
#: Written last by initialize(), so its presence marks a completed initialization.
SEAL_CONFIG_PATH = "core/seal-config"

_RESERVED = frozenset({KEYRING_PATH, ROOT_KEY_PATH, SEAL_CONFIG_PATH})
_ROOT_TERM = 0  # envelope term for values encrypted outside the keyring
UNSEAL_KEY_SIZE = 32


class KeyStatus(NamedTuple):
    term: int
    install_time: str
    encryptions: int


class Barrier:
    """Encrypting Storage over an untrusted physical store, plus initialize/unseal/seal/rotate."""

    __slots__ = ("_encryptions", "_keyring", "_lock", "_physical", "_seal_generation")

    def __init__(self, physical: Storage) -> None:
        self._physical = physical
        self._keyring: Keyring | None = None
        self._encryptions = 0  # values encrypted under the active term since unseal/rotation
        # Serializes initialize/unseal/rotate/rekey: each reads, then writes, the key hierarchy.
        self._lock = asyncio.Lock()
        # Bumped by seal(); an unseal or rotation that was in flight when the barrier got sealed
        # sees the change and does not install a keyring (sealing always wins).
        self._seal_generation = 0

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def sealed(self) -> bool:
        return self._keyring is None

    async def initialized(self) -> bool:
        """True once initialize() completed (works while sealed)."""
        return await self._physical.get(SEAL_CONFIG_PATH) is not None

    async def seal_config(self) -> SealConfig | None:
        """The stored seal configuration, or None before initialization (works while sealed)."""
        raw = await self._physical.get(SEAL_CONFIG_PATH)
        return None if raw is None else SealConfig.from_json(raw)

    async def initialize(self, seal_config: SealConfig) -> bytes:
        """Create the key hierarchy and return the unseal key. The barrier stays sealed.

        The caller splits the returned key into ``seal_config.secret_shares`` shares; the unseal
        key itself is never stored.
        """
        async with self._lock:
            if await self.initialized():
                raise InvalidRequest("Vault is already initialized")
            unseal_key = os.urandom(UNSEAL_KEY_SIZE)
            root_key = os.urandom(KEY_SIZE)
            keyring = Keyring.new(root_key)
            await self._physical.put(
                KEYRING_PATH, seal_value(_ROOT_TERM, AESGCM(root_key), KEYRING_PATH, keyring.to_json())
            )
            await self._physical.put(
                ROOT_KEY_PATH, seal_value(_ROOT_TERM, AESGCM(unseal_key), ROOT_KEY_PATH, root_key)
            )
            # Last: a crash before this line leaves the store "not initialized", so init can rerun.
            await self._physical.put(SEAL_CONFIG_PATH, seal_config.to_json())
            return unseal_key

    async def unseal(self, unseal_key: bytes) -> None:
        """Load the keyring using ``unseal_key``; a wrong key raises InvalidRequest and stays sealed."""
        async with self._lock:
            if not self.sealed:
                return
            generation = self._seal_generation
            wrapped_root = await self._physical.get(ROOT_KEY_PATH)
            if wrapped_root is None or not await self.initialized():
                raise InvalidRequest("Vault is not initialized")
            if len(unseal_key) != UNSEAL_KEY_SIZE:
                raise InvalidRequest("failed to unseal: the unseal key is wrong")
            try:
                root_key = _open_root_envelope(AESGCM(unseal_key), ROOT_KEY_PATH, wrapped_root)
            except Internal:
                # GCM authentication is the only check we need: a wrong key (or too few / wrong
                # shares combined into one) cannot produce a valid tag.
                raise InvalidRequest("failed to unseal: the unseal key is wrong") from None
            wrapped_keyring = await self._physical.get(KEYRING_PATH)
            if wrapped_keyring is None:
                raise Internal("barrier keyring is missing from storage")
            keyring = Keyring.from_json(_open_root_envelope(AESGCM(root_key), KEYRING_PATH, wrapped_keyring))
            # SECURITY: constant-time compare; the keyring must belong to this root key.
            if not hmac.compare_digest(keyring.root_key, root_key):
                raise Internal("barrier keyring does not match the root key")
            if generation == self._seal_generation:
                self._encryptions = 0
                self._keyring = keyring

    def seal(self) -> None:
        """Drop all key material from memory. Works at any time and always wins over in-flight unseals."""
        self._seal_generation += 1
        self._keyring = None
        self._encryptions = 0

    async def rotate(self) -> Key:
        """Install a new term key; new writes use it, older values keep decrypting with theirs."""
        async with self._lock:
            current = self._require()
            rotated = current.add_key()
            # Persist BEFORE use: no value may be encrypted under a term that is not durable, or a
            # crash would leave ciphertext nobody can decrypt.
            await self._write_keyring(rotated)
            if self._keyring is current:  # not sealed (or replaced) while we were writing
                self._keyring = rotated
                self._encryptions = 0
            return rotated.active_key

    def key_status(self) -> KeyStatus:
        keyring = self._require()
        key = keyring.active_key
        return KeyStatus(term=key.term, install_time=key.install_time, encryptions=self._encryptions)

    async def rekey_unseal_key(self, new_unseal_key: bytes, seal_config: SealConfig | None = None) -> None:
        """Re-encrypt the root key under a new unseal key (and optionally store a new seal config)."""
        if len(new_unseal_key) != UNSEAL_KEY_SIZE:
            raise InvalidRequest(f"unseal key must be {UNSEAL_KEY_SIZE} bytes")
        async with self._lock:
            keyring = self._require()
            await self._physical.put(
                ROOT_KEY_PATH,
                seal_value(_ROOT_TERM, AESGCM(new_unseal_key), ROOT_KEY_PATH, keyring.root_key),
            )
            if seal_config is not None:
                await self._physical.put(SEAL_CONFIG_PATH, seal_config.to_json())

    # -- Storage -----------------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        keyring = self._require()
        blob = await self._physical.get(key)
        if blob is None:
            return None
        # The term is read from unauthenticated bytes, but it only selects a key: a forged term
        # selects the wrong key (or none) and authentication fails.
        return open_value(keyring.aead(term_of(blob)), key, blob)

    async def put(self, key: str, value: bytes) -> None:
        keyring = self._require()
        _refuse_reserved(key)
        term = keyring.active_term
        blob = seal_value(term, keyring.aead(term), key, value)
        self._encryptions += 1
        await self._physical.put(key, blob)

    async def delete(self, key: str) -> None:
        self._require()
        _refuse_reserved(key)
        await self._physical.delete(key)

    async def list(self, prefix: str) -> list[str]:
        self._require()
        return await self._physical.list(prefix)

    # -- internals ---------------------------------------------------------------------------

    def _require(self) -> Keyring:
        keyring = self._keyring
        if keyring is None:
            raise Sealed()
        return keyring

    async def _write_keyring(self, keyring: Keyring) -> None:
        blob = seal_value(_ROOT_TERM, AESGCM(keyring.root_key), KEYRING_PATH, keyring.to_json())
        await self._physical.put(KEYRING_PATH, blob)


def _open_root_envelope(aead: AESGCM, path: str, blob: bytes) -> bytes:
    # The term is not part of the AAD; for keyring values it is bound by selecting the key. Here
    # the key is fixed, so insist on the reserved term explicitly and accept no other header.
    if term_of(blob) != _ROOT_TERM:
        raise Internal(f"failed to decrypt {path}: unexpected key term")
    return open_value(aead, path, blob)


def _refuse_reserved(key: str) -> None:
    # SECURITY/integrity: the key hierarchy is written only by the barrier's own methods. Letting a
    # Storage caller overwrite or delete these would make the store impossible to unseal.
    if key in _RESERVED:
        raise InvalidRequest(f"{key} is reserved for the barrier")


__all__ = [
    "KEYRING_PATH",
    "ROOT_KEY_PATH",
    "SEAL_CONFIG_PATH",
    "UNSEAL_KEY_SIZE",
    "Barrier",
    "KeyStatus",
]
