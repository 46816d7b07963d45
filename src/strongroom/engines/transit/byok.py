"""Bring your own key: wrapping_key, keys/NAME/import, keys/NAME/import_version (OpenBao's BYOK).

The client wraps its key for the mount's RSA-4096 wrapping key: ``ciphertext`` = base64(RSA-OAEP
(wrapping key, ``hash_function``, no label) of a fresh AES-256 key || AES-KWP (RFC 5649) of the
key material with that AES key). Key material: the raw bytes of a symmetric or hmac key, PKCS#8
DER of an asymmetric one. ``bao transit import`` does exactly this client side.

The wrapping key is made on first use and stored at ``import/wrapping-key`` (outside ``policy/``,
so it never shows in LIST keys).
"""

from __future__ import annotations

import asyncio
import copy
import os
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap_with_padding

from strongroom.durations import rfc3339_ns
from strongroom.engines.transit.aead import enc_key_size
from strongroom.engines.transit.backend import WRAPPING_KEY, TransitBackend, storage_of
from strongroom.engines.transit.gob64 import Base64Error, b64decode, b64encode
from strongroom.engines.transit.keyentry import KeyEntry, pem_public, rsa_to_go
from strongroom.engines.transit.keys import HOUR, check_create_options
from strongroom.engines.transit.keytypes import (
    ASYMMETRIC,
    CURVE_NAMES,
    CURVES,
    ECDSA,
    HMAC_MAX_KEY_SIZE,
    HMAC_MIN_KEY_SIZE,
    RSA,
    RSA_BITS,
    SYMMETRIC,
    TYPE_IDS,
    UserError,
)
from strongroom.engines.transit.policy import Policy
from strongroom.errors import InvalidRequest
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response, name_regex

ENCRYPTED_KEY_BYTES = 512  # an RSA-4096 OAEP block
OAEP_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA1": hashes.SHA1, "SHA224": hashes.SHA224, "SHA256": hashes.SHA256, "SHA384": hashes.SHA384,
    "SHA512": hashes.SHA512}

IMPORT_FIELDS = {
    "name": Field(FieldType.STRING, "Name of the key"),
    "ciphertext": Field(FieldType.STRING, "The wrapped key material, base64."),
    "public_key": Field(FieldType.STRING, "A PEM public key (not supported)."),
    "hash_function": Field(FieldType.STRING, "OAEP hash of the ephemeral key's wrapping.", default="SHA256"),
}


def paths() -> list[Path[TransitBackend]]:
    return [
        Path("wrapping_key", operations={Op.READ: read_wrapping_key},
             synopsis="Returns the public key to use for wrapping imported keys"),
        Path(
            "keys/" + name_regex("name") + "/import",
            fields={**IMPORT_FIELDS,
                    "type": Field(FieldType.STRING, "The type of key being imported.", default="aes256-gcm96"),
                    "allow_rotation": Field(FieldType.BOOL, "Whether the key may be rotated here."),
                    "derived": Field(FieldType.BOOL, "Enables key derivation mode."),
                    "exportable": Field(FieldType.BOOL, "Enables keys to be exportable."),
                    "allow_plaintext_backup": Field(FieldType.BOOL, "Enables a plaintext backup of the key."),
                    "auto_rotate_period": Field(FieldType.DURATION, "Rotate after this long (needs allow_rotation)."),
                    "context": Field(FieldType.STRING, "Base64 context for key derivation."),
                    "convergent_encryption": Field(FieldType.BOOL, "Not supported for imported keys.")},
            operations={Op.UPDATE: import_key},
            synopsis="Imports an externally-generated key into a new transit key",
        ),
        Path(
            "keys/" + name_regex("name") + "/import_version",
            fields={**IMPORT_FIELDS, "version": Field(FieldType.INT, "The public-only version to add the private key to.")},
            operations={Op.UPDATE: import_version},
            synopsis="Imports an externally-generated key into an existing imported key",
        ),
    ]


async def wrapping_key(b: TransitBackend, req: Request) -> rsa.RSAPrivateKey:
    """The mount's wrapping key: made on first use, then cached with the keys (``b.cache``)."""
    cached = b.cache.get(WRAPPING_KEY)
    if cached is None:
        storage = storage_of(req)
        async with b.lock(WRAPPING_KEY):
            raw = await storage.get(WRAPPING_KEY)
            if raw is None:
                cached = Policy(name="import/wrapping-key", type="rsa-4096")
                await asyncio.to_thread(cached.rotate, b.now_ns())
                await storage.put(WRAPPING_KEY, cached.serialize())
            else:
                cached = Policy.deserialize(raw)
            b.cache[WRAPPING_KEY] = cached
    return cached.entry(cached.latest_version).rsa_private()


async def read_wrapping_key(b: TransitBackend, req: Request, d: FieldData) -> Response | None:
    return Response(data={"public_key": pem_public(await wrapping_key(b, req))})


def is_private(d: FieldData) -> bool:
    """Whether the request imports a private key (``ciphertext``) or a public one (``public_key``)."""
    if d.has("ciphertext") and d.has("public_key"):
        raise InvalidRequest("only one of the following fields, ciphertext and public_key, can be set")
    return "ciphertext" in d.raw


async def key_material(b: TransitBackend, req: Request, d: FieldData, key_type: str) -> bytes:
    """OpenBao's extractKeyFromFields: the unwrapped private key material, or the PEM public key."""
    if is_private(d):
        return await unwrap(b, req, d)
    if key_type not in ASYMMETRIC:
        raise InvalidRequest("provided type does not support public_key import")
    return str(d.get("public_key")).encode()


async def unwrap(b: TransitBackend, req: Request, d: FieldData) -> bytes:
    """The key material of ``ciphertext``."""
    name = d.get("hash_function").upper()
    alg = OAEP_HASHES.get(name)
    if alg is None:
        raise InvalidRequest(f"unknown hash function: {d.get('hash_function')}")
    try:
        blob = b64decode(d.get("ciphertext"))
    except Base64Error as e:
        raise InvalidRequest(str(e)) from None
    if len(blob) <= ENCRYPTED_KEY_BYTES:
        raise InvalidRequest("provided ciphertext is too short")
    key = await wrapping_key(b, req)
    try:
        ephemeral = key.decrypt(blob[:ENCRYPTED_KEY_BYTES],
                                padding.OAEP(mgf=padding.MGF1(alg()), algorithm=alg(), label=None))
    except ValueError:
        raise InvalidRequest("crypto/rsa: decryption error") from None
    if len(ephemeral) != 32:
        raise InvalidRequest("expected ephemeral AES key to be 256-bit")
    try:
        return aes_key_unwrap_with_padding(ephemeral, blob[ENCRYPTED_KEY_BYTES:])
    except (InvalidUnwrap, ValueError):
        raise InvalidRequest("kwp: failed to unwrap key") from None


def entry_from_public(p: Policy, pem: bytes, now_ns: int) -> KeyEntry:
    """A version holding only an imported public key (PEM SubjectPublicKeyInfo)."""
    if p.type == "ed25519" and p.derived:
        raise UserError("unable to import only public key for derived Ed25519 key: imported key should not be an "
                        "Ed25519 key pair but is instead an HKDF key")
    entry = KeyEntry(time=rfc3339_ns(now_ns), creation_time=now_ns // 1_000_000_000, hmac_key=os.urandom(32))
    if b"-----BEGIN" not in pem:
        raise UserError("error parsing public key: not in PEM format")
    try:
        parsed: Any = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as e:
        raise UserError(f"error parsing public key: {e}") from None
    if isinstance(parsed, ec.EllipticCurvePublicKey):
        if p.type not in ECDSA:
            raise UserError(f"invalid key type: expected {p.type}, got *ecdsa.PublicKey")
        if not isinstance(parsed.curve, CURVES[p.type]):
            raise UserError(f"invalid curve: expected {CURVE_NAMES[p.type]}, got {parsed.curve.name}")
        nums = parsed.public_numbers()
        entry.ec_xyd = (nums.x, nums.y, None)
        entry.public_key = pem_public(parsed)
    elif isinstance(parsed, ed25519.Ed25519PublicKey):
        if p.type != "ed25519":
            raise UserError(f"invalid key type: expected {p.type}, got ed25519.PublicKey")
        entry.public_key = b64encode(parsed.public_bytes_raw())
    elif isinstance(parsed, rsa.RSAPublicKey):
        if p.type not in RSA:
            raise UserError(f"invalid key type: expected {p.type}, got *rsa.PublicKey")
        want, got = RSA_BITS[p.type] // 8, (parsed.key_size + 7) // 8
        if got != want:
            raise UserError(f"invalid key size: expected {want} bytes, got {got} bytes")
        nums_rsa = parsed.public_numbers()
        entry.rsa_pub = {"N": nums_rsa.n, "E": nums_rsa.e}
    else:
        raise UserError(f"invalid key type: expected {p.type}, got {type(parsed).__name__}")
    return entry


def new_entry_from(p: Policy, material: bytes, private: bool, now_ns: int) -> KeyEntry:
    return (entry_from_material if private else entry_from_public)(p, material, now_ns)


def add_private_to(p: Policy, version: int, material: bytes) -> None:
    """OpenBao's ImportPrivateKeyForVersion: the private key of a public-only version (same pair)."""
    entry = p.entry(version)
    full = entry_from_material(p, material, 0)
    if p.type in ECDSA:
        same = full.ec_xyd is not None and entry.ec_xyd is not None and full.ec_xyd[:2] == entry.ec_xyd[:2]
    elif p.type in RSA:
        public = entry.rsa_public().public_numbers()
        same = full.rsa_public().public_numbers() == public
    else:
        same = full.public_key == entry.public_key
    if not same:
        raise UserError("cannot import key, key pair does not match")
    entry.key, entry.ec_xyd, entry.rsa_go = full.key, full.ec_xyd, full.rsa_go
    entry._private = full._private


def entry_from_material(p: Policy, material: bytes, now_ns: int) -> KeyEntry:
    """A version holding imported ``material`` (keysutil's ImportPublicOrPrivate, private keys)."""
    entry = KeyEntry(time=rfc3339_ns(now_ns), creation_time=now_ns // 1_000_000_000)
    if p.type != "hmac":
        entry.hmac_key = os.urandom(32)
    if p.type in SYMMETRIC or p.type == "hmac":
        bad = (len(material) != enc_key_size(p.type) if p.type in SYMMETRIC
               else not HMAC_MIN_KEY_SIZE <= len(material) <= HMAC_MAX_KEY_SIZE)
        if bad:
            raise UserError(f"invalid key size {len(material)} bytes for key type {p.type}")
        entry.key = material
        if p.type == "hmac":
            p.key_size = len(material)
            entry.hmac_key = material
        return entry
    try:
        parsed: Any = serialization.load_der_private_key(material, None)
    except (ValueError, TypeError) as e:
        raise UserError(f"error parsing asymmetric key: {e}") from None
    if isinstance(parsed, ec.EllipticCurvePrivateKey):
        if p.type not in ECDSA:
            raise UserError(f"invalid key type: expected {p.type}, got *ecdsa.PrivateKey")
        if not isinstance(parsed.curve, CURVES[p.type]):
            raise UserError(f"invalid curve: expected {CURVE_NAMES[p.type]}, got {parsed.curve.name}")
        nums = parsed.private_numbers()
        entry.ec_xyd = (nums.public_numbers.x, nums.public_numbers.y, nums.private_value)
        entry.public_key = pem_public(parsed)
    elif isinstance(parsed, ed25519.Ed25519PrivateKey):
        if p.type != "ed25519":
            raise UserError(f"invalid key type: expected {p.type}, got ed25519.PrivateKey")
        pub = parsed.public_key().public_bytes_raw()
        entry.key = parsed.private_bytes_raw() + pub
        entry.public_key = b64encode(pub)
    elif isinstance(parsed, rsa.RSAPrivateKey):
        if p.type not in RSA:
            raise UserError(f"invalid key type: expected {p.type}, got *rsa.PrivateKey")
        want = RSA_BITS[p.type] // 8
        if (parsed.key_size + 7) // 8 != want:
            raise UserError(f"invalid key size: expected {want} bytes, got {(parsed.key_size + 7) // 8} bytes")
        entry.rsa_go = rsa_to_go(parsed)
    else:
        raise UserError(f"invalid key type: expected {p.type}, got {type(parsed).__name__}")
    entry._private = parsed
    return entry


async def import_key(b: TransitBackend, req: Request, d: FieldData) -> Response | None:
    name, key_type = d.get("name"), d.get("type").lower()
    period, allow_rotation = d.get("auto_rotate_period"), d.get("allow_rotation")
    if "convergent_encryption" in d.raw:
        raise InvalidRequest("import cannot be used on keys with convergent encryption enabled")
    if period > 0 and not allow_rotation:
        raise InvalidRequest("allow_rotation must be set to true if auto-rotation is enabled")
    if period and period < HOUR:
        raise InvalidRequest("auto rotate period must be 0 to disable or at least an hour")
    if key_type not in TYPE_IDS:
        raise InvalidRequest(f"unknown key type: {key_type}")
    check_create_options(key_type, d.get("derived"), False)
    storage = storage_of(req)
    if await b.load(storage, name) is not None:
        raise InvalidRequest("the import path cannot be used with an existing key; "
                             "use import-version to rotate an existing imported key")
    private = is_private(d)
    material = await key_material(b, req, d, key_type)
    p = Policy(name=name, type=key_type, derived=d.get("derived"), exportable=d.get("exportable"),
               allow_plaintext_backup=d.get("allow_plaintext_backup"), auto_rotate_period=period,
               imported=True, allow_imported_key_rotation=allow_rotation)
    try:  # off the event loop: parsing and checking an RSA key takes a fraction of a second
        entry = await asyncio.to_thread(new_entry_from, p, material, private, b.now_ns())
    except UserError as e:
        raise InvalidRequest(str(e)) from None
    p.latest_version, p.min_decryption_version = 1, 1
    p.keys[1] = entry
    async with b.lock(name):
        if await b.load(storage, name) is not None:
            raise InvalidRequest("the import path cannot be used with an existing key; "
                                 "use import-version to rotate an existing imported key")
        await b.store(storage, p)
    return None


async def import_version(b: TransitBackend, req: Request, d: FieldData) -> Response | None:
    name = d.get("name")
    storage = storage_of(req)
    missing = f"no key found with name {name}; to import a new key, use the import/ endpoint"
    existing = await b.load(storage, name)
    if existing is None:
        raise InvalidRequest(missing)
    if not existing.imported:
        raise InvalidRequest("the import_version endpoint can only be used with an imported key")
    if existing.convergent_encryption:
        raise InvalidRequest("import_version cannot be used on keys with convergent encryption enabled")
    private = is_private(d)
    material = await key_material(b, req, d, existing.type)
    async with b.editing(storage, name, missing) as p:
        p.keys = {v: copy.copy(e) for v, e in p.keys.items()}  # entries may change: not the cached ones
        try:
            p.check_usable()
            if d.has("version"):
                version = d.get("version")
                entry = p.entry(version)
                if p.type not in ASYMMETRIC:
                    raise UserError("provided type does not support importing key versions")
                if not entry.has_private(p.type) and not private:
                    raise UserError("cannot add a public key to a key version that already has a public key set")
                if entry.has_private(p.type):
                    raise UserError("private key imported, key version cannot be updated")
                await asyncio.to_thread(add_private_to, p, version, material)
            else:
                latest = p.keys.get(p.latest_version)
                filled = False
                if private and latest is not None and not latest.has_private(p.type):
                    try:  # the private half of the latest, public-only version, as OpenBao does
                        await asyncio.to_thread(add_private_to, p, p.latest_version, material)
                        filled = True
                    except UserError:
                        pass
                if not filled:
                    entry = await asyncio.to_thread(new_entry_from, p, material, private, b.now_ns())
                    p.latest_version += 1
                    p.keys[p.latest_version] = entry
        except UserError as e:
            raise InvalidRequest(str(e)) from None
        await b.store(storage, p)
    return None
