"""A named transit key (Vault's ``keysutil.Policy``): its versions, settings and cryptography.

Its versions are :class:`~strongroom.engines.transit.keyentry.KeyEntry` (keyentry.py), the AEADs and HKDF are
in aead.py, the key types, limits and errors in keytypes.py.

Stored as Vault stores it (the JSON of keysutil's Policy: ``keys`` map of version -> entry with
``key``/``hmac_key`` base64, ``ec_x``/``ec_y``/``ec_d`` and the Go ``rsa_key`` structure, the
numeric ``type``), so a backup taken here restores into OpenBao and back. Python's ``json`` is
used for (de)serialising: EC and RSA numbers are larger than 64 bits.

Wire layouts, as OpenBao's keysutil:
- symmetric ciphertext: ``vault:v<N>:`` + base64(nonce || AEAD ciphertext+tag); nonce 12 bytes
  (AES-GCM, ChaCha20-Poly1305) or 24 (XChaCha20-Poly1305);
- derived keys: HKDF-SHA256(ikm=version key, salt=none, info=context);
- convergent encryption (version 3): HKDF output is encryption key || 32-byte HMAC key and the
  nonce is HMAC-SHA256(hmac key, plaintext) truncated to the nonce size;
- RSA encryption: OAEP with SHA-256 (MGF1 SHA-256, no label).

Errors a caller caused raise :class:`UserError` (400), others :class:`InternalError` (500).
"""

from __future__ import annotations

import hashlib
import hmac as _hmac
import json
import os
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from strongroom.engines.transit.aead import AEAD, aead_for, enc_key_size, hkdf, nonce_size
from strongroom.engines.transit.gob64 import Base64Error, b64decode, b64encode
from strongroom.engines.transit.keyentry import KeyEntry, new_entry
from strongroom.engines.transit.keytypes import (
    CURRENT_CONVERGENT_VERSION,
    DERIVATION,
    ENCRYPTION,
    ERR_MISSING_CONTEXT,
    ERR_SOFT_DELETED,
    ERR_TOO_OLD,
    KDF_HKDF_SHA256,
    RSA,
    TYPE_IDS,
    TYPE_NAMES,
    VERSION_PREFIX,
    InternalError,
    UserError,
    go_atoi,
)


# -- the policy ----------------------------------------------------------------------------------
@dataclass
class Policy:
    name: str
    type: str
    keys: dict[int, KeyEntry] = field(default_factory=dict)
    derived: bool = False
    kdf: int = KDF_HKDF_SHA256
    convergent_encryption: bool = False
    convergent_version: int = 0
    exportable: bool = False
    deletion_allowed: bool = False
    allow_plaintext_backup: bool = False
    latest_version: int = 0
    min_decryption_version: int = 0
    min_encryption_version: int = 0
    min_available_version: int = 0
    auto_rotate_period: int = 0  # seconds (stored as Go nanoseconds)
    key_size: int = 0
    soft_deleted: bool = False
    imported: bool = False
    allow_imported_key_rotation: bool = False
    backup_info: dict[str, Any] | None = None
    restore_info: dict[str, Any] | None = None
    # Decoded AEADs of non-derived symmetric versions (not stored).
    _aeads: dict[int, AEAD] = field(default_factory=dict, repr=False, compare=False)

    # -- storage --
    def to_json(self, keys: dict[int, KeyEntry] | None = None) -> dict[str, Any]:
        entries = self.keys if keys is None else keys
        return {
            "name": self.name,
            "key_size": self.key_size,
            "keys": {str(v): e.to_json() for v, e in sorted(entries.items())},
            "derived": self.derived,
            "kdf": self.kdf,
            "convergent_encryption": self.convergent_encryption,
            "exportable": self.exportable,
            "min_decryption_version": self.min_decryption_version,
            "min_encryption_version": self.min_encryption_version,
            "latest_version": self.latest_version,
            "archive_version": self.latest_version,
            "archive_min_version": self.min_available_version,
            "min_available_version": self.min_available_version,
            "deletion_allowed": self.deletion_allowed,
            "convergent_version": self.convergent_version,
            "type": TYPE_IDS[self.type],
            "backup_info": self.backup_info,
            "restore_info": self.restore_info,
            "allow_plaintext_backup": self.allow_plaintext_backup,
            "version_template": "",
            "storage_prefix": "",
            "auto_rotate_period": self.auto_rotate_period * 1_000_000_000,
            "soft_deleted": self.soft_deleted,
            # keysutil declares these two without JSON tags: Go writes the field names.
            "Imported": self.imported,
            "AllowImportedKeyRotation": self.allow_imported_key_rotation,
        }

    def serialize(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: dict[str, Any], archived: list[dict[str, Any]] | None = None,
                  trusted: bool = False) -> Policy:
        """A policy from Vault's JSON; ``archived``: the archive's key list (index = version -
        min_available_version), whose entries fill versions the policy's ``keys`` lacks."""
        type_id = raw.get("type", 0)
        if type_id not in TYPE_NAMES:
            raise UserError(f"unsupported key type {type_id}")
        keys = {int(v): KeyEntry.from_json(e, trusted) for v, e in (raw.get("keys") or {}).items()}
        min_avail = int(raw.get("min_available_version") or 0)
        for i, e in enumerate(archived or []):
            version = i + min_avail
            if version >= 1 and version not in keys and e and (e.get("key") or e.get("ec_d") is not None
                                                               or e.get("rsa_key")):
                keys[version] = KeyEntry.from_json(e, trusted)
        return cls(
            name=str(raw.get("name") or ""),
            type=TYPE_NAMES[type_id],
            keys=keys,
            derived=bool(raw.get("derived")),
            kdf=int(raw.get("kdf") or 0),
            convergent_encryption=bool(raw.get("convergent_encryption")),
            convergent_version=int(raw.get("convergent_version") or 0),
            exportable=bool(raw.get("exportable")),
            deletion_allowed=bool(raw.get("deletion_allowed")),
            allow_plaintext_backup=bool(raw.get("allow_plaintext_backup")),
            latest_version=int(raw.get("latest_version") or 0),
            min_decryption_version=int(raw.get("min_decryption_version") or 0),
            min_encryption_version=int(raw.get("min_encryption_version") or 0),
            min_available_version=min_avail,
            auto_rotate_period=int(raw.get("auto_rotate_period") or 0) // 1_000_000_000,
            key_size=int(raw.get("key_size") or 0),
            soft_deleted=bool(raw.get("soft_deleted")),
            imported=bool(raw.get("Imported")),
            allow_imported_key_rotation=bool(raw.get("AllowImportedKeyRotation")),
            backup_info=raw.get("backup_info"),
            restore_info=raw.get("restore_info"),
        )

    @classmethod
    def deserialize(cls, data: bytes) -> Policy:
        """A key as this backend stored it (trusted: see KeyEntry.trusted)."""
        return cls.from_json(json.loads(data), trusted=True)

    # -- lifecycle --
    def check_usable(self) -> None:
        """A soft-deleted key is kept but does nothing (OpenBao's soft-delete)."""
        if self.soft_deleted:
            raise UserError(ERR_SOFT_DELETED)

    def rotate(self, now_ns: int) -> None:
        """Add a version (keysutil's Rotate). Expensive for RSA: call it off the loop."""
        self.check_usable()
        if self.imported and not self.allow_imported_key_rotation:
            raise UserError(f"imported key {self.name} does not allow rotation within Vault")
        entry = new_entry(self.type, self.key_size, self.convergent_encryption, now_ns)
        self.latest_version += 1
        self.keys[self.latest_version] = entry
        if self.min_decryption_version == 0:
            self.min_decryption_version = 1
        self.imported = False  # as keysutil: the newest version is no longer an imported one

    def trim(self, min_available: int) -> None:
        self.min_available_version = min_available
        for v in [v for v in self.keys if v < min_available]:
            del self.keys[v]
            self._aeads.pop(v, None)

    def entry(self, version: int) -> KeyEntry:
        e = self.keys.get(version)
        if e is None:
            raise UserError("no such key version")
        return e

    # -- symmetric key material --
    def derive_key(self, context: bytes, version: int, length: int) -> bytes:
        self.check_usable()
        if self.type not in DERIVATION:
            raise UserError(f"derivation not supported for key type {self.type}")
        if version <= 0 or version > self.latest_version:
            raise UserError("invalid key version")
        if not context:
            raise UserError(ERR_MISSING_CONTEXT)
        entry = self.entry(version)
        if self.kdf != KDF_HKDF_SHA256:
            raise InternalError("unsupported key derivation mode")
        return hkdf(entry.key, context, length)

    def get_key(self, context: bytes, version: int, length: int) -> bytes:
        if not self.derived:
            return self.entry(version).key
        return self.derive_key(context, version, length)

    def _aead(self, version: int, context: bytes, length: int) -> tuple[AEAD, bytes]:
        """The AEAD of ``version`` (derived from ``context`` when the key is derived) and the
        derived HMAC key of convergent encryption (b"" otherwise)."""
        if not self.derived:
            aead = self._aeads.get(version)
            if aead is None:
                aead = self._aeads[version] = aead_for(self.type, self.entry(version).key)
            return aead, b""
        size = enc_key_size(self.type)
        key = self.derive_key(context, version, length)
        return aead_for(self.type, key[:size]), key[size:]

    def convergent(self, version: int) -> bool:
        """Whether ``version`` encrypts convergently (keysutil's convergentVersion): only version 3
        exists here; a restored key of an older scheme is refused, as OpenBao refuses it."""
        if not self.convergent_encryption:
            return False
        cv = self.convergent_version or 1
        entry = self.keys.get(version)
        if entry is not None and entry.convergent_version:
            cv = entry.convergent_version
        if 0 < cv < CURRENT_CONVERGENT_VERSION:
            raise UserError(f"refusing to support decryption with old convergent encryption key: version {cv}")
        return True

    def _encryption_version(self, version: int) -> int:
        if version == 0:
            return self.latest_version
        if version < 0:
            raise UserError("requested version for encryption is negative")
        if version > self.latest_version:
            raise UserError("requested version for encryption is higher than the latest key version")
        if version < self.min_encryption_version:
            raise UserError("requested version for encryption is less than the minimum encryption key version")
        return version

    def encrypt(self, version: int, context: bytes, plaintext: bytes, aad: bytes | None = None) -> tuple[str, int]:
        """(``vault:vN:...``, N) for ``plaintext`` (already base64-decoded)."""
        self.check_usable()
        if self.type not in ENCRYPTION:
            raise UserError(f"message encryption not supported for key type {self.type}")
        version = self._encryption_version(version)
        if self.type in RSA:
            pub = self.entry(version).rsa_public()
            try:
                ct = pub.encrypt(plaintext, _oaep())
            except ValueError:
                raise UserError("failed to RSA encrypt the plaintext: crypto/rsa: message too long for RSA key size"
                                ) from None
            return f"{VERSION_PREFIX}{version}:{b64encode(ct)}", version
        convergent = self.convergent(version)
        size = enc_key_size(self.type)
        aead, hmac_key = self._aead(version, context, size + (32 if convergent else 0))
        if convergent:
            nonce = _hmac.new(hmac_key, plaintext, hashlib.sha256).digest()[:nonce_size(self.type)]
        else:
            nonce = os.urandom(nonce_size(self.type))
        ct = aead.encrypt(nonce, plaintext, aad)
        return f"{VERSION_PREFIX}{version}:{b64encode(nonce + ct)}", version

    def decrypt(self, context: bytes, value: str, aad: bytes | None = None) -> bytes:
        self.check_usable()
        if self.type not in ENCRYPTION:
            raise UserError(f"message decryption not supported for key type {self.type}")
        version, decoded = self.parse_ciphertext(value)
        if self.type in RSA:
            entry = self.entry(version)
            if not entry.has_private(self.type):
                raise UserError("cannot decrypt ciphertext, key version does not have a private counterpart")
            try:
                return entry.rsa_private().decrypt(decoded, _oaep())
            except ValueError:
                raise UserError("failed to RSA decrypt the ciphertext: crypto/rsa: decryption error") from None
        convergent = self.convergent(version)
        size = enc_key_size(self.type)
        aead, _ = self._aead(version, context, size + (32 if convergent else 0))
        n = nonce_size(self.type)
        if len(decoded) < n:
            raise UserError("invalid ciphertext length")
        try:
            return aead.decrypt(decoded[:n], decoded[n:], aad)
        except (InvalidTag, ValueError):
            raise UserError("cipher: message authentication failed") from None

    def parse_ciphertext(self, value: str) -> tuple[int, bytes]:
        """(version, raw bytes) of ``vault:vN:base64``, checked against min_decryption_version."""
        if not value.startswith(VERSION_PREFIX):
            raise UserError("invalid ciphertext: no prefix")
        ver_text, sep, body = value[len(VERSION_PREFIX):].partition(":")
        if not sep:
            raise UserError("invalid ciphertext: wrong number of fields")
        version = go_atoi(ver_text)
        if version is None:
            raise UserError("invalid ciphertext: version number could not be decoded")
        if version == 0:
            version = 1
        if version > self.latest_version:
            raise UserError("invalid ciphertext: version is too new")
        if self.min_decryption_version > 0 and version < self.min_decryption_version:
            raise UserError(ERR_TOO_OLD)
        try:
            decoded = b64decode(body)
        except Base64Error:
            raise UserError("invalid ciphertext: could not decode base64") from None
        return version, decoded

    def hmac_key(self, version: int) -> bytes:
        if version < self.min_decryption_version:
            raise UserError("key version is disallowed by policy (minimum decryption version is "
                            f"{self.min_decryption_version})")
        e = self.keys.get(version)
        if e is None:
            raise UserError("no such key version")
        key = e.key if self.type == "hmac" else e.hmac_key
        if not key:
            raise InternalError("no HMAC key exists for that key version")
        return key


def _oaep() -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
