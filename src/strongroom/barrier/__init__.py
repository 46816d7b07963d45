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

Rekeying (a new unseal key) is an atomic switch: the root key is first written under the new unseal
key at a NEW path (``core/root-key.<generation>``), and only then does one write of the seal
configuration, which names the generation in force, commit the change. A crash before that write
leaves the old configuration and the old envelope, so the old shares keep working; a crash after it
leaves a stale old envelope that the next unseal deletes.
"""

from __future__ import annotations

import asyncio
import hmac
import os
from collections.abc import Callable, Sequence
from typing import NamedTuple

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from strongroom.barrier.aes_gcm import NONCE_SIZE, open_value, seal_value, term_of
from strongroom.barrier.keyring import KEY_SIZE, Key, Keyring
from strongroom.barrier.seal import SealConfig
from strongroom.errors import Internal, InvalidRequest, Sealed
from strongroom.logical import Storage, WriteOp, apply_writes

# Storage paths owned by the barrier (a compatibility contract: changing one orphans existing data).
#: The keyring JSON, encrypted with the ROOT key in a term-0 envelope (AAD = this path).
KEYRING_PATH = "core/keyring"
#: The root key, encrypted with the UNSEAL key in a term-0 envelope (AAD = this path).
ROOT_KEY_PATH = "core/root-key"
#: SealConfig JSON in PLAINTEXT: not secret, and it must be readable while sealed (seal-status).
#: Written last by initialize(), so its presence marks a completed initialization.
SEAL_CONFIG_PATH = "core/seal-config"

#: Field of the stored seal configuration naming the root-key envelope in force (absent: 0).
_GENERATION_FIELD = "root_key_generation"

_RESERVED = frozenset({KEYRING_PATH, ROOT_KEY_PATH, SEAL_CONFIG_PATH})
_ROOT_TERM = 0  # envelope term for values encrypted outside the keyring
UNSEAL_KEY_SIZE = 32


class KeyStatus(NamedTuple):
    term: int
    install_time: str
    encryptions: int


class Barrier:
    """Encrypting Storage over an untrusted physical store, plus initialize/unseal/seal/rotate."""

    __slots__ = ("_encryptions", "_keyring", "_lock", "_on_limit", "_physical", "_seal_generation", "_watch_limit",
                 "generation")

    def __init__(self, physical: Storage) -> None:
        self._physical = physical
        self._keyring: Keyring | None = None
        self._encryptions = 0  # values encrypted under the active term since unseal/rotation
        # Serializes initialize/unseal/rotate/rekey: each reads, then writes, the key hierarchy.
        self._lock = asyncio.Lock()
        # Bumped by seal(); an unseal or rotation that was in flight when the barrier got sealed
        # sees the change and does not install a keyring (sealing always wins).
        self._seal_generation = 0
        # Auto-rotation hook (core/rotation.py): called by put() once the active term has performed
        # ``_watch_limit`` encryptions. A counter compare is its whole per-write cost.
        self._watch_limit: int | None = None
        self._on_limit: Callable[[], None] | None = None
        # Moves on every write (before it starts and after it ends, failed or not), seal and unseal:
        # what a cached answer read through the barrier is checked against (core/readcache.py).
        self.generation = 0

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

    async def _generation(self) -> int:
        """Which root-key envelope is in force (see the module docstring); 0 before any rekey."""
        raw = await self._physical.get(SEAL_CONFIG_PATH)
        if raw is None:
            return 0
        try:
            generation = orjson.loads(raw).get(_GENERATION_FIELD, 0)
        except (orjson.JSONDecodeError, AttributeError):
            raise Internal("seal configuration is corrupt") from None
        if not isinstance(generation, int) or isinstance(generation, bool) or generation < 0:
            raise Internal("seal configuration is corrupt (bad root key generation)")
        return generation

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
            if not await self.initialized():
                raise InvalidRequest("Vault is not initialized")
            root_generation = await self._generation()
            root_key = await self._open_root_key(unseal_key, root_generation)
            if root_key is None:
                # GCM authentication is the only check we need: a wrong key (or too few / wrong
                # shares combined into one) cannot produce a valid tag.
                raise InvalidRequest("failed to unseal: the unseal key is wrong")
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
                self.generation += 1
            if root_generation > 0:
                # SECURITY: a rekey that crashed after its commit left the envelope under the OLD
                # unseal key behind; remove it so the replaced shares open nothing.
                await self._physical.delete(_root_key_path(root_generation - 1))

    async def reload_keyring(self) -> None:
        """Re-read the keyring from storage with the root key held in memory: another node (the HA
        active) may have rotated it since this one unsealed. Not in effect if sealed meanwhile."""
        async with self._lock:
            current = self._require()
            generation = self._seal_generation
            wrapped_keyring = await self._physical.get(KEYRING_PATH)
            if wrapped_keyring is None:
                raise Internal("barrier keyring is missing from storage")
            keyring = Keyring.from_json(_open_root_envelope(AESGCM(current.root_key), KEYRING_PATH, wrapped_keyring))
            # SECURITY: constant-time compare; the keyring must belong to this root key.
            if not hmac.compare_digest(keyring.root_key, current.root_key):
                raise Internal("barrier keyring does not match the root key")
            if generation == self._seal_generation and self._keyring is current:
                if keyring.active_term != current.active_term:
                    self._encryptions = 0
                self._keyring = keyring
                self.generation += 1

    def seal_detached(self, name: str, value: bytes) -> bytes:
        """``value`` encrypted as if stored at ``name`` (AAD), never stored: a snapshot's sealed
        checksums, which only this barrier's keyring opens. Sealed raises."""
        return self._seal(self._require(), name, value)

    def open_detached(self, name: str, blob: bytes) -> bytes | None:
        """What :meth:`seal_detached` sealed under ``name``; None when this barrier's keyring does not
        open it (another barrier, a term it never had, tampering). Sealed raises."""
        keyring = self._require()
        try:
            return open_value(keyring.aead(term_of(blob)), name, blob)
        except Exception:  # noqa: BLE001 - any failure (no such term, tag) means "not ours"
            return None

    def seal(self) -> None:
        """Drop all key material from memory. Works at any time and always wins over in-flight unseals."""
        self._seal_generation += 1
        self._keyring = None
        self._encryptions = 0
        self.generation += 1

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

    def watch_encryptions(self, limit: int | None, on_limit: Callable[[], None] | None) -> None:
        """Call ``on_limit`` from put() whenever the active term's encryption count is >= ``limit``.

        ``on_limit`` must be cheap and must not block (it schedules a rotation); None disables it.
        """
        self._watch_limit = limit if on_limit is not None else None
        self._on_limit = on_limit

    def add_encryptions(self, term: int, count: int) -> None:
        """Carry over an encryption count persisted before a restart, if ``term`` is still active.

        The count itself lives in memory (a put costs no extra write); core/rotation.py persists it
        now and then so that the auto-rotation limit also holds across restarts.
        """
        keyring = self._require()
        if term == keyring.active_term and count > 0:
            self._encryptions += count

    def key_status(self) -> KeyStatus:
        keyring = self._require()
        key = keyring.active_key
        return KeyStatus(term=key.term, install_time=key.install_time, encryptions=self._encryptions)

    def derive_key(self, purpose: bytes) -> bytes:
        """A 32-byte key for ``purpose`` (a distinct label per use), derived from the root key with
        HKDF-SHA256: the same on every node unsealed with this root key, unchanged by rotation
        (new terms) and rekey (new unseal key), gone on seal. Used to authenticate the HA request
        forwarding hop (http/forwarding.py). Raises Sealed while sealed."""
        # SECURITY: domain separation by ``info``; the root key itself never leaves the barrier.
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"strongroom/" + purpose).derive(
            self._require().root_key)

    async def verify_unseal_key(self, unseal_key: bytes) -> bool:
        """Whether ``unseal_key`` is the unseal key in force (for rekey and root generation).

        The barrier must be unsealed: the stored root key is opened with ``unseal_key`` and
        compared, in constant time, with the root key in memory.
        """
        async with self._lock:
            keyring = self._require()
            root_key = await self._open_root_key(unseal_key, await self._generation())
            # SECURITY: constant-time compare of key material.
            return root_key is not None and hmac.compare_digest(root_key, keyring.root_key)

    async def rekey_unseal_key(self, new_unseal_key: bytes, seal_config: SealConfig | None = None) -> None:
        """Re-encrypt the root key under a new unseal key (and optionally store a new seal config).

        Atomic (see the module docstring): until the single write of the seal configuration the old
        unseal key stays in force; after it only the new one opens the root key.
        """
        if len(new_unseal_key) != UNSEAL_KEY_SIZE:
            raise InvalidRequest(f"unseal key must be {UNSEAL_KEY_SIZE} bytes")
        async with self._lock:
            keyring = self._require()
            config = seal_config or await self.seal_config()
            if config is None:
                raise InvalidRequest("Vault is not initialized")
            old = await self._generation()
            new = old + 1
            path = _root_key_path(new)
            await self._physical.put(path, seal_value(_ROOT_TERM, AESGCM(new_unseal_key), path, keyring.root_key))
            record = orjson.loads(config.to_json())
            record[_GENERATION_FIELD] = new
            await self._physical.put(SEAL_CONFIG_PATH, orjson.dumps(record))  # the commit point
            # SECURITY: the old envelope would let the replaced shares open the root key.
            await self._physical.delete(_root_key_path(old))

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
        blob = self._seal(keyring, key, value)
        self.generation += 1
        try:
            await self._physical.put(key, blob)
        finally:
            self.generation += 1

    async def write_batch(self, ops: Sequence[WriteOp]) -> None:
        """Encrypt every value, then hand the whole batch to physical storage as one write
        (atomic where it supports it, see :func:`strongroom.logical.apply_writes`)."""
        keyring = self._require()
        for key, _ in ops:
            _refuse_reserved(key)  # all checked before anything is written
        # SECURITY: one CSPRNG read for all the batch's nonces (each read is a syscall that drops
        # the GIL); every encryption still gets its own fresh slice, used once, never kept.
        nonces = os.urandom(NONCE_SIZE * len(ops))
        sealed = [(key, None if value is None else
                   self._seal(keyring, key, value, nonces[i * NONCE_SIZE:(i + 1) * NONCE_SIZE]))
                  for i, (key, value) in enumerate(ops)]
        self.generation += 1
        try:
            await apply_writes(self._physical, sealed)
        finally:
            self.generation += 1

    async def delete(self, key: str) -> None:
        self._require()
        _refuse_reserved(key)
        self.generation += 1
        try:
            await self._physical.delete(key)
        finally:
            self.generation += 1

    async def list(self, prefix: str) -> list[str]:
        self._require()
        return await self._physical.list(prefix)

    # -- internals ---------------------------------------------------------------------------

    def _seal(self, keyring: Keyring, key: str, value: bytes, nonce: bytes | None = None) -> bytes:
        """``value`` encrypted under the active term (AAD = ``key``), counted for auto-rotation."""
        term = keyring.active_term
        blob = seal_value(term, keyring.aead(term), key, value, nonce)
        self._encryptions += 1
        limit = self._watch_limit
        if limit is not None and self._encryptions >= limit and self._on_limit is not None:
            self._on_limit()
        return blob

    def _require(self) -> Keyring:
        keyring = self._keyring
        if keyring is None:
            raise Sealed()
        return keyring

    async def _open_root_key(self, unseal_key: bytes, generation: int) -> bytes | None:
        """The root key opened with ``unseal_key``, or None when the key is wrong."""
        path = _root_key_path(generation)
        wrapped_root = await self._physical.get(path)
        if wrapped_root is None:
            raise Internal("barrier root key is missing from storage")
        if len(unseal_key) != UNSEAL_KEY_SIZE:
            return None
        try:
            return _open_root_envelope(AESGCM(unseal_key), path, wrapped_root)
        except Internal:
            return None

    async def _write_keyring(self, keyring: Keyring) -> None:
        blob = seal_value(_ROOT_TERM, AESGCM(keyring.root_key), KEYRING_PATH, keyring.to_json())
        await self._physical.put(KEYRING_PATH, blob)


def _open_root_envelope(aead: AESGCM, path: str, blob: bytes) -> bytes:
    # The term is not part of the AAD; for keyring values it is bound by selecting the key. Here
    # the key is fixed, so insist on the reserved term explicitly and accept no other header.
    if term_of(blob) != _ROOT_TERM:
        raise Internal(f"failed to decrypt {path}: unexpected key term")
    return open_value(aead, path, blob)


def _root_key_path(generation: int) -> str:
    """Where the root-key envelope of ``generation`` lives (0: the path written by initialize)."""
    return ROOT_KEY_PATH if generation == 0 else f"{ROOT_KEY_PATH}.{generation}"


def _refuse_reserved(key: str) -> None:
    # SECURITY/integrity: the key hierarchy is written only by the barrier's own methods. Letting a
    # Storage caller overwrite or delete these would make the store impossible to unseal.
    if key in _RESERVED or key.startswith(ROOT_KEY_PATH + "."):
        raise InvalidRequest(f"{key} is reserved for the barrier")


__all__ = [
    "KEYRING_PATH",
    "ROOT_KEY_PATH",
    "SEAL_CONFIG_PATH",
    "UNSEAL_KEY_SIZE",
    "Barrier",
    "KeyStatus",
]
