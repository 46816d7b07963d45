"""A named transit key (Vault's ``keysutil.Policy``): its versions, settings and cryptography.

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
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from strongroom.engines.transit.gob64 import Base64Error, b64decode, b64encode

# keysutil's numeric key types (their order is Vault's iota; stored as numbers).
TYPE_IDS: dict[str, int] = {
    "aes256-gcm96": 0,
    "ecdsa-p256": 1,
    "ed25519": 2,
    "rsa-2048": 3,
    "rsa-4096": 4,
    "chacha20-poly1305": 5,
    "ecdsa-p384": 6,
    "ecdsa-p521": 7,
    "aes128-gcm96": 8,
    "rsa-3072": 9,
    "hmac": 10,
    "xchacha20-poly1305": 11,
}
TYPE_NAMES = {v: k for k, v in TYPE_IDS.items()}

SYMMETRIC = frozenset({"aes128-gcm96", "aes256-gcm96", "chacha20-poly1305", "xchacha20-poly1305"})
ECDSA = frozenset({"ecdsa-p256", "ecdsa-p384", "ecdsa-p521"})
RSA = frozenset({"rsa-2048", "rsa-3072", "rsa-4096"})
ASYMMETRIC = ECDSA | RSA | {"ed25519"}
ENCRYPTION = SYMMETRIC | RSA
SIGNING = ASYMMETRIC
DERIVATION = SYMMETRIC | {"ed25519"}

RSA_BITS = {"rsa-2048": 2048, "rsa-3072": 3072, "rsa-4096": 4096}
CURVES: dict[str, type[ec.EllipticCurve]] = {"ecdsa-p256": ec.SECP256R1, "ecdsa-p384": ec.SECP384R1,
                                              "ecdsa-p521": ec.SECP521R1}
CURVE_NAMES = {"ecdsa-p256": "P-256", "ecdsa-p384": "P-384", "ecdsa-p521": "P-521"}

KDF_HKDF_SHA256 = 1
CURRENT_CONVERGENT_VERSION = 3
HMAC_MIN_KEY_SIZE = 32
HMAC_MAX_KEY_SIZE = 512

ERR_TOO_OLD = "ciphertext or signature version is disallowed by policy (too old)"
ERR_SOFT_DELETED = "refusing to use soft-deleted key"
ERR_MISSING_CONTEXT = (
    "missing 'context' for key derivation; the key was created using a derived key, which means additional, "
    "per-request information must be included in order to perform operations with the key"
)
VERSION_PREFIX = "vault:v"


class UserError(Exception):
    """The caller's mistake (Vault's errutil.UserError): a 400 with this message."""


class InternalError(Exception):
    """Not the caller's mistake (errutil.InternalError): a 500."""


def rfc3339_nano(ns: int) -> str:
    """Go's time.Time JSON form (RFC 3339 with nanoseconds, trailing zeros trimmed), UTC."""
    secs, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    return f"{base}.{frac:09d}".rstrip("0").rstrip(".") + "Z"


# -- XChaCha20-Poly1305: HChaCha20 subkey, then ChaCha20-Poly1305 (draft-irtf-cfrg-xchacha) --------
_SIGMA = struct.unpack("<4I", b"expand 32-byte k")


def hchacha20(key: bytes, nonce16: bytes) -> bytes:
    """HChaCha20: the ChaCha20 state after its 20 rounds, words 0-3 and 12-15. ``cryptography``'s
    ChaCha20 keystream block is that state plus the input state; the input state is known
    (constants, key, the 16 input bytes as counter||nonce), so subtracting it leaves the rounds."""
    block = Cipher(algorithms.ChaCha20(key, nonce16), mode=None).encryptor().update(bytes(64))
    out = struct.unpack("<16I", block)
    init = (*_SIGMA, *struct.unpack("<8I", key), *struct.unpack("<4I", nonce16))
    words = [(out[i] - init[i]) & 0xFFFFFFFF for i in (0, 1, 2, 3, 12, 13, 14, 15)]
    return struct.pack("<8I", *words)


class XChaCha20Poly1305:
    """The AEAD interface of ``cryptography``'s ciphers, for a 24-byte nonce."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("XChaCha20-Poly1305 key must be 32 bytes")
        self._key = key

    def _inner(self, nonce: bytes) -> tuple[ChaCha20Poly1305, bytes]:
        if len(nonce) != 24:
            raise ValueError("XChaCha20-Poly1305 nonce must be 24 bytes")
        return ChaCha20Poly1305(hchacha20(self._key, nonce[:16])), b"\x00\x00\x00\x00" + nonce[16:]

    def encrypt(self, nonce: bytes, data: bytes, aad: bytes | None) -> bytes:
        aead, n = self._inner(nonce)
        return aead.encrypt(n, data, aad)

    def decrypt(self, nonce: bytes, data: bytes, aad: bytes | None) -> bytes:
        aead, n = self._inner(nonce)
        return aead.decrypt(n, data, aad)


AEAD = AESGCM | ChaCha20Poly1305 | XChaCha20Poly1305


def aead_for(key_type: str, key: bytes) -> AEAD:
    if key_type in ("aes128-gcm96", "aes256-gcm96"):
        return AESGCM(key)
    if key_type == "chacha20-poly1305":
        return ChaCha20Poly1305(key)
    return XChaCha20Poly1305(key)


def nonce_size(key_type: str) -> int:
    return 24 if key_type == "xchacha20-poly1305" else 12


def enc_key_size(key_type: str) -> int:
    return 16 if key_type == "aes128-gcm96" else 32


def hkdf(ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(ikm)


# -- key entries ---------------------------------------------------------------------------------
@dataclass
class KeyEntry:
    """One version of a key (keysutil.KeyEntry), with its decoded private key kept in memory."""

    key: bytes = b""
    hmac_key: bytes = b""
    time: str = ""
    creation_time: int = 0
    public_key: str = ""
    convergent_version: int = 0
    ec_xyd: tuple[int, int, int | None] | None = None  # (x, y, d); d None: an imported public key
    rsa_go: dict[str, Any] | None = None  # Go's rsa.PrivateKey JSON
    rsa_pub: dict[str, Any] | None = None  # Go's rsa.PublicKey JSON (an imported public key)
    certificate_chain: list[bytes] = field(default_factory=list)  # DER, leaf first
    # Read from our own storage (written by us, authenticated by the barrier): RSA keys are not
    # validated again on load (that costs ~0.1 s for rsa-4096). Backups and imports are.
    trusted: bool = field(default=False, repr=False, compare=False)
    _private: Any = field(default=None, repr=False, compare=False)

    # -- Vault's JSON --
    def to_json(self) -> dict[str, Any]:
        return {
            "key": b64encode(self.key) if self.key else None,
            "hmac_key": b64encode(self.hmac_key) if self.hmac_key else None,
            "time": self.time,
            "ec_x": self.ec_xyd[0] if self.ec_xyd else None,
            "ec_y": self.ec_xyd[1] if self.ec_xyd else None,
            "ec_d": self.ec_xyd[2] if self.ec_xyd else None,
            "rsa_key": self.rsa_go,
            "rsa_public_key": self.rsa_pub,
            "public_key": self.public_key,
            "convergent_version": self.convergent_version,
            "creation_time": self.creation_time,
            "certificate_chain": [b64encode(c) for c in self.certificate_chain] or None,
            "external_key_ref": "",
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any], trusted: bool = False) -> KeyEntry:
        ec_xyd = None
        if raw.get("ec_x") is not None:
            d = raw.get("ec_d")
            ec_xyd = (int(raw["ec_x"]), int(raw["ec_y"]), None if d is None else int(d))
        return cls(
            key=b64decode(raw["key"]) if raw.get("key") else b"",
            hmac_key=b64decode(raw["hmac_key"]) if raw.get("hmac_key") else b"",
            time=str(raw.get("time") or ""),
            creation_time=int(raw.get("creation_time") or 0),
            public_key=str(raw.get("public_key") or ""),
            convergent_version=int(raw.get("convergent_version") or 0),
            ec_xyd=ec_xyd,
            rsa_go=raw.get("rsa_key"),
            rsa_pub=raw.get("rsa_public_key"),
            certificate_chain=[b64decode(c) for c in raw.get("certificate_chain") or []],
            trusted=trusted,
        )

    # -- decoded keys (the private one cached on the entry) --
    def has_private(self, key_type: str) -> bool:
        """Whether this version can sign/decrypt (not only an imported public key)."""
        if key_type in ECDSA:
            return self.ec_xyd is not None and self.ec_xyd[2] is not None
        if key_type in RSA:
            return bool(self.rsa_go)
        return bool(self.key)

    def ec_public(self, key_type: str) -> ec.EllipticCurvePublicKey:
        if self.ec_xyd is None:
            raise InternalError("key version has no EC key")
        return ec.EllipticCurvePublicNumbers(self.ec_xyd[0], self.ec_xyd[1], CURVES[key_type]()).public_key()

    def rsa_public(self) -> rsa.RSAPublicKey:
        if self.rsa_go:
            return self.rsa_private().public_key()
        if not self.rsa_pub:
            raise InternalError("key version has no RSA key")
        return rsa.RSAPublicNumbers(int(self.rsa_pub["E"]), int(self.rsa_pub["N"])).public_key()

    def ed25519_public(self) -> ed25519.Ed25519PublicKey:
        return ed25519.Ed25519PublicKey.from_public_bytes(b64decode(self.public_key))

    def ec_private(self, key_type: str) -> ec.EllipticCurvePrivateKey:
        if self._private is None:
            x, y, d = self.ec_xyd or (0, 0, None)
            if d is None:
                raise InternalError("key version has no EC private key")
            pub = ec.EllipticCurvePublicNumbers(x, y, CURVES[key_type]())
            self._private = ec.EllipticCurvePrivateNumbers(d, pub).private_key()
        key: ec.EllipticCurvePrivateKey = self._private
        return key

    def rsa_private(self) -> rsa.RSAPrivateKey:
        if self._private is None:
            g = self.rsa_go
            if not g:
                raise InternalError("key version has no RSA private key")
            p, q = int(g["Primes"][0]), int(g["Primes"][1])
            d = int(g["D"])
            pub = rsa.RSAPublicNumbers(int(g["E"]), int(g["N"]))
            numbers = rsa.RSAPrivateNumbers(p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q),
                                            rsa.rsa_crt_iqmp(p, q), pub)
            self._private = numbers.private_key(unsafe_skip_rsa_key_validation=self.trusted)
        key: rsa.RSAPrivateKey = self._private
        return key

    def ed25519_private(self) -> ed25519.Ed25519PrivateKey:
        if self._private is None:
            self._private = ed25519.Ed25519PrivateKey.from_private_bytes(self.key[:32])
        key: ed25519.Ed25519PrivateKey = self._private
        return key


def chain_pem(entry: KeyEntry) -> str:
    """A version's certificate chain as OpenBao shows it: PEM blocks joined by newlines."""
    from cryptography import x509

    return "\n".join(x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM).decode().strip()
                     for der in entry.certificate_chain)


def rsa_to_go(key: rsa.RSAPrivateKey) -> dict[str, Any]:
    n = key.private_numbers()
    return {"N": n.public_numbers.n, "E": n.public_numbers.e, "D": n.d, "Primes": [n.p, n.q],
            "Precomputed": {"Dp": n.dmp1, "Dq": n.dmq1, "Qinv": n.iqmp, "CRTValues": []}}


def pem_public(key: Any) -> str:
    """PEM SubjectPublicKeyInfo of a private key's public half, or of a public key."""
    public = key.public_key() if hasattr(key, "private_bytes") else key
    return public.public_bytes(serialization.Encoding.PEM,  # type: ignore[no-any-return]
                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def new_entry(key_type: str, key_size: int, convergent: bool, now_ns: int) -> KeyEntry:
    """A fresh version of a key of ``key_type`` (keysutil's RotateInMemory)."""
    entry = KeyEntry(time=rfc3339_nano(now_ns), creation_time=now_ns // 1_000_000_000,
                     hmac_key=os.urandom(32))
    if key_type in SYMMETRIC:
        entry.key = os.urandom(enc_key_size(key_type))
    elif key_type == "hmac":
        entry.key = os.urandom(key_size)
        entry.hmac_key = entry.key
    elif key_type in ECDSA:
        priv = ec.generate_private_key(CURVES[key_type]())
        nums = priv.private_numbers()
        entry.ec_xyd = (nums.public_numbers.x, nums.public_numbers.y, nums.private_value)
        entry.public_key = pem_public(priv)
        entry._private = priv
    elif key_type == "ed25519":
        priv_ed = ed25519.Ed25519PrivateKey.generate()
        seed = priv_ed.private_bytes_raw()
        pub = priv_ed.public_key().public_bytes_raw()
        entry.key = seed + pub
        entry.public_key = b64encode(pub)
        entry._private = priv_ed
    elif key_type in RSA:
        priv_rsa = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS[key_type])
        entry.rsa_go = rsa_to_go(priv_rsa)
        entry._private = priv_rsa
    else:
        raise InternalError(f"unsupported key type {key_type}")
    if convergent:
        entry.convergent_version = CURRENT_CONVERGENT_VERSION
    return entry


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


def go_atoi(text: str) -> int | None:
    """Go's strconv.Atoi: optional sign, ASCII digits, int64 range."""
    body = text[1:] if text[:1] in ("+", "-") else text
    if not body or not body.isascii() or not body.isdigit():
        return None
    value = int(text)
    return value if -(2**63) <= value < 2**63 else None
