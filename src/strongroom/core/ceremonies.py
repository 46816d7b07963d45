"""Key ceremonies: rekey (new unseal key shares) and root token generation.

Both collect a threshold of the CURRENT unseal key shares, tied together by a nonce, like unseal
does. State lives only in memory: a restart or a seal abandons a ceremony, and the old shares stay
in force until a rekey completes (see :meth:`strongroom.barrier.Barrier.rekey_unseal_key` for the
atomic switch).

Rekey: ``init`` fixes the new shares/threshold; ``update`` collects current shares; at the
threshold the combined key is checked against the barrier and a new unseal key is split into the
new shares. Without verification the switch happens at once. With ``require_verification`` the new
key stays in memory (never stored) until ``verify`` has collected a threshold of the NEW shares and
they combine to it; only then is it installed.

Root generation: ``init`` takes the client's one-time password (OTP); at the threshold a new root
token is minted and returned as base64 (no padding) of token XOR OTP, so it never crosses the wire
in the clear. The OTP length equals the length of a root token.

The methods return the wire bodies (plain dicts), as :meth:`Core.seal_status` does.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import os
import string
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from strongroom.barrier import UNSEAL_KEY_SIZE, Barrier
from strongroom.barrier.seal import SealConfig, combine_unseal_key, split_unseal_key
from strongroom.errors import InvalidRequest, Sealed, StrongroomError

#: The length of our root tokens ("hvs." + 24 base62 characters), hence of a generate-root OTP.
ROOT_TOKEN_LENGTH = 28
# Bounds on a submitted share: a share is the 32-byte key plus Shamir's one-byte x coordinate.
MIN_KEY_LENGTH = 16
MAX_KEY_LENGTH = UNSEAL_KEY_SIZE + 1


def _nonce() -> str:
    return str(uuid.uuid4())


def check_key_length(key: bytes, prefix: str = "") -> None:
    if len(key) < MIN_KEY_LENGTH:
        raise InvalidRequest(f"{prefix}key is shorter than minimum {MIN_KEY_LENGTH} bytes")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidRequest(f"{prefix}key is longer than maximum {MAX_KEY_LENGTH} bytes")


@dataclass(slots=True)
class Shares:
    """Shares submitted so far. SECURITY: never in a repr; duplicates found with compare_digest."""

    _keys: list[bytes] = field(default_factory=list, repr=False)

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: bytes, operation: str) -> None:
        duplicate = False
        for earlier in self._keys:  # no early exit: timing does not reveal which share matched
            duplicate |= hmac.compare_digest(earlier, key)
        if duplicate:
            raise InvalidRequest(f"given key has already been provided during this {operation} operation")
        self._keys.append(key)

    def take(self) -> bytes:
        """The combined key; the shares are cleared whatever the outcome."""
        try:
            return combine_unseal_key(self._keys)
        except StrongroomError as e:
            raise InvalidRequest(f"failed to compute root key: {e}") from None
        finally:
            self._keys.clear()


@dataclass(slots=True)
class Rekey:
    config: SealConfig
    require_verification: bool
    nonce: str = field(default_factory=_nonce)
    progress: Shares = field(default_factory=Shares)
    verification_nonce: str = ""
    verification_key: bytes | None = field(default=None, repr=False)  # SECURITY: the pending unseal key
    verification_progress: Shares = field(default_factory=Shares)


@dataclass(slots=True)
class RootGeneration:
    otp: str = field(repr=False)
    nonce: str = field(default_factory=_nonce)
    progress: Shares = field(default_factory=Shares)


def encode_token(token: str, otp: str) -> str:
    """Vault's OTP encoding: base64 without padding of the bytes of ``token`` XOR ``otp``."""
    a, b = token.encode(), otp.encode()
    if len(a) != len(b):
        raise InvalidRequest("OTP string has incorrect length")
    return base64.b64encode(bytes(x ^ y for x, y in zip(a, b, strict=True))).decode().rstrip("=")


def decode_token(encoded: str, otp: str) -> str:
    """Inverse of :func:`encode_token` (what ``operator generate-root -decode`` does).

    Decodes like Go's unpadded standard base64, as Vault does: "=" is refused, line breaks are
    skipped, and errors name the offending input byte, so messages match Vault's.
    """
    try:
        raw = raw_b64decode(encoded)
    except ValueError as e:
        raise InvalidRequest(f"error decoding base64'd token: {e}") from None
    pad = otp.encode()
    if len(raw) != len(pad):
        raise InvalidRequest(f"error xoring token: length of byte slices is not equivalent: {len(raw)} != {len(pad)}")
    return bytes(x ^ y for x, y in zip(raw, pad, strict=True)).decode(errors="replace")


_B64_ALPHABET = frozenset(string.ascii_letters + string.digits + "+/")


def raw_b64decode(text: str) -> bytes:
    """Unpadded standard base64 with Go's error positions ("illegal base64 data at input byte N")."""
    chars: list[tuple[int, str]] = []
    for i, ch in enumerate(text):
        if ch in "\r\n":
            continue
        if ch not in _B64_ALPHABET:
            raise ValueError(f"illegal base64 data at input byte {i}")
        chars.append((i, ch))
    if len(chars) % 4 == 1:  # a lone trailing character cannot encode a byte
        raise ValueError(f"illegal base64 data at input byte {chars[-1][0]}")
    data = "".join(ch for _, ch in chars)
    return base64.b64decode(data + "=" * (-len(data) % 4))


class Ceremonies:
    """The in-memory state of the rekey and root generation ceremonies of one core."""

    def __init__(self, barrier: Barrier, mint_root: Callable[[], Awaitable[str]],
                 sealed: Callable[[], bool]) -> None:
        """``sealed``: the core's request gate (Core.sealed), not the barrier's: a ceremony must not
        start or advance while post-unseal is still setting up."""
        self._barrier = barrier
        self._mint_root = mint_root
        self._sealed = sealed
        self._lock = asyncio.Lock()  # one step of one ceremony at a time (each awaits the barrier)
        self.rekey: Rekey | None = None
        self.root: RootGeneration | None = None

    def reset(self) -> None:
        """Abandon both ceremonies (on seal): the pending unseal key leaves memory."""
        self.rekey = None
        self.root = None

    async def _current(self) -> SealConfig:
        if self._sealed():
            raise Sealed()
        config = await self._barrier.seal_config()
        if config is None:
            raise InvalidRequest("Vault is not initialized")
        return config

    # -- rekey -------------------------------------------------------------------------------
    async def rekey_status(self) -> dict[str, Any]:
        current = await self._current()
        body: dict[str, Any] = {"nonce": "", "started": False, "t": 0, "n": 0, "progress": 0,
                                "required": current.secret_threshold, "pgp_fingerprints": None,
                                "backup": False, "verification_required": False}
        r = self.rekey
        if r is not None:
            body.update(nonce=r.nonce, started=True, t=r.config.secret_threshold, n=r.config.secret_shares,
                        progress=len(r.progress), verification_required=r.require_verification)
            if r.verification_nonce:
                body["verification_nonce"] = r.verification_nonce
        return body

    async def rekey_init(self, shares: int, threshold: int, require_verification: bool) -> dict[str, Any]:
        await self._current()
        try:
            config = SealConfig(secret_shares=shares, secret_threshold=threshold)
        except InvalidRequest as e:
            raise InvalidRequest(f"invalid rekey seal configuration: {e}") from None
        async with self._lock:
            if self.rekey is not None:
                raise InvalidRequest("rekey already in progress")
            self.rekey = Rekey(config, require_verification)
        return await self.rekey_status()

    async def rekey_cancel(self) -> None:
        await self._current()
        async with self._lock:  # not in the middle of an update's switch
            self.rekey = None

    async def rekey_update(self, key: bytes, nonce: str) -> dict[str, Any] | None:
        """Add one current share; at the threshold return the new shares (the "complete" body)."""
        current = await self._current()
        check_key_length(key)
        async with self._lock:
            r = self.rekey
            if r is None:
                raise InvalidRequest("no barrier rekey in progress")
            if r.verification_key is not None:
                raise InvalidRequest("rekey operation already finished; verification must be performed; "
                                     f'nonce for the verification operation is "{r.verification_nonce}"')
            if not hmac.compare_digest(nonce.encode(), r.nonce.encode()):
                raise InvalidRequest(f'incorrect nonce supplied; nonce for this rekey operation is "{r.nonce}"')
            # Vault's message says "generation" here too; kept byte-identical for clients.
            r.progress.add(key, "generation")
            if len(r.progress) < current.secret_threshold:
                return None
            if not await self._barrier.verify_unseal_key(r.progress.take()):
                raise InvalidRequest("root key verification failed: the given key shares are wrong")
            new_key = os.urandom(UNSEAL_KEY_SIZE)
            new_shares = split_unseal_key(new_key, r.config.secret_shares, r.config.secret_threshold)
            body: dict[str, Any] = {"nonce": r.nonce, "complete": True, "keys": [k.hex() for k in new_shares],
                                    "keys_base64": [base64.b64encode(k).decode() for k in new_shares],
                                    "pgp_fingerprints": None, "backup": False,
                                    "verification_required": r.require_verification}
            if r.require_verification:
                # The new key is NOT installed: the old shares stay in force until verification.
                r.verification_key = new_key
                r.verification_nonce = _nonce()
                body["verification_nonce"] = r.verification_nonce
                return body
            await self._barrier.rekey_unseal_key(new_key, r.config)
            self.rekey = None
            return body

    def _verifying(self) -> Rekey:
        if self.rekey is None:
            raise InvalidRequest("no rekey configuration found")
        return self.rekey

    async def verify_status(self) -> dict[str, Any]:
        await self._current()
        r = self._verifying()
        return {"nonce": r.verification_nonce, "started": r.verification_key is not None,
                "t": r.config.secret_threshold, "n": r.config.secret_shares, "progress": len(r.verification_progress)}

    async def verify_restart(self) -> dict[str, Any]:
        await self._current()
        async with self._lock:
            r = self._verifying()
            r.verification_progress = Shares()
            r.verification_nonce = _nonce()
        return await self.verify_status()

    async def rekey_verify(self, key: bytes, nonce: str) -> dict[str, Any] | None:
        """Add one NEW share; at the threshold check them against the pending key and switch."""
        await self._current()
        check_key_length(key)
        async with self._lock:
            r = self.rekey
            if r is None:
                raise InvalidRequest("no rekey in progress")
            pending = r.verification_key
            if pending is None:
                raise InvalidRequest("no rekey verification in progress")
            if not hmac.compare_digest(nonce.encode(), r.verification_nonce.encode()):
                raise InvalidRequest("incorrect nonce supplied; nonce for this verify operation is "
                                     f'"{r.verification_nonce}"')
            r.verification_progress.add(key, "verify")
            if len(r.verification_progress) < r.config.secret_threshold:
                return None
            try:
                combined = r.verification_progress.take()
            except InvalidRequest:
                r.verification_nonce = _nonce()
                raise
            # SECURITY: constant-time comparison of key material.
            if not hmac.compare_digest(combined, pending):
                r.verification_nonce = _nonce()
                raise InvalidRequest("rekey verification failed; incorrect key shares supplied")
            await self._barrier.rekey_unseal_key(pending, r.config)
            self.rekey = None
            return {"nonce": r.verification_nonce, "complete": True}

    # -- root token generation ---------------------------------------------------------------
    async def root_status(self, otp: str = "") -> dict[str, Any]:
        current = await self._current()
        g = self.root
        return {"nonce": g.nonce if g else "", "started": g is not None, "progress": len(g.progress) if g else 0,
                "required": current.secret_threshold, "complete": False, "encoded_token": "",
                "encoded_root_token": "", "pgp_fingerprint": "", "otp": otp, "otp_length": ROOT_TOKEN_LENGTH}

    async def root_init(self, otp: str) -> None:
        await self._current()
        if len(otp.encode()) != ROOT_TOKEN_LENGTH:
            raise InvalidRequest("OTP string has incorrect length")
        async with self._lock:
            if self.root is not None:
                raise InvalidRequest("root generation already in progress for this namespace")
            self.root = RootGeneration(otp)

    async def root_cancel(self) -> None:
        await self._current()
        async with self._lock:
            self.root = None

    async def root_update(self, key: bytes, nonce: str) -> dict[str, Any]:
        current = await self._current()
        check_key_length(key, "invalid key: ")
        async with self._lock:
            g = self.root
            if g is None:
                raise InvalidRequest("no root generation in progress")
            if not hmac.compare_digest(nonce.encode(), g.nonce.encode()):
                raise InvalidRequest(f'incorrect nonce supplied; nonce for this root generation operation is "{g.nonce}"')
            g.progress.add(key, "generation")
            progress = len(g.progress)
            body: dict[str, Any] = {"nonce": g.nonce, "started": True, "progress": progress,
                                    "required": current.secret_threshold, "complete": False, "encoded_token": "",
                                    "encoded_root_token": "", "pgp_fingerprint": "", "otp": "", "otp_length": 0}
            if progress < current.secret_threshold:
                return body
            try:
                combined = g.progress.take()
            except InvalidRequest as e:
                raise InvalidRequest(f"root generation aborted: {e}") from None
            if not await self._barrier.verify_unseal_key(combined):
                raise InvalidRequest("root generation aborted: unable to authenticate: the given key shares are wrong")
            token = await self._mint_root()
            encoded = encode_token(token, g.otp)
            self.root = None
            body.update(complete=True, encoded_token=encoded, encoded_root_token=encoded)
            return body


__all__ = ["ROOT_TOKEN_LENGTH", "Ceremonies", "decode_token", "encode_token"]
