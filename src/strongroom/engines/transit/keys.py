"""keys/, keys/NAME, keys/NAME/config, keys/NAME/rotate, keys/NAME/trim: managing named keys."""

from __future__ import annotations

import asyncio
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from strongroom.engines.transit.backend import MIN_CACHE_SIZE, TransitBackend, storage_of
from strongroom.engines.transit.gob64 import Base64Error, b64decode, b64encode
from strongroom.engines.transit.keyentry import chain_pem, pem_public
from strongroom.engines.transit.keytypes import (
    ASYMMETRIC,
    CURVE_NAMES,
    DERIVATION,
    ENCRYPTION,
    HMAC_MAX_KEY_SIZE,
    HMAC_MIN_KEY_SIZE,
    RSA,
    SIGNING,
    SYMMETRIC,
    TYPE_IDS,
    InternalError,
    UserError,
)
from strongroom.engines.transit.policy import Policy
from strongroom.errors import Internal, InvalidRequest, NotFound
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response, name_regex

NAME = {"name": Field(FieldType.STRING, "Name of the key")}
HOUR = 3600


def paths() -> list[Path[TransitBackend]]:
    return [
        Path(r"cache-config", operations={Op.READ: read_cache_config, Op.UPDATE: write_cache_config},
             fields={"size": Field(FieldType.INT, "Most keys kept decoded in memory; 0: no limit.")},
             synopsis="Configure caching strategy"),
        Path(r"config/keys", operations={Op.READ: read_config_keys, Op.UPDATE: write_config_keys},
             fields={"disable_upsert": Field(FieldType.BOOL, "Whether encrypt may not create missing keys.")},
             synopsis="Configuration common across all keys"),
        Path(r"keys/?", operations={Op.LIST: list_keys},
             fields={"after": Field(FieldType.STRING, "Entry to list after."),
                     "limit": Field(FieldType.INT, "Number of entries to return.")},
             synopsis="Managed named encryption keys"),
        Path(
            "keys/" + name_regex("name"),
            fields={
                **NAME,
                "type": Field(FieldType.STRING, "The type of key to create.", default="aes256-gcm96"),
                "derived": Field(FieldType.BOOL, "Enables key derivation mode."),
                "convergent_encryption": Field(FieldType.BOOL, "Whether to support convergent encryption."),
                "exportable": Field(FieldType.BOOL, "Enables keys to be exportable."),
                "allow_plaintext_backup": Field(FieldType.BOOL, "Enables a plaintext backup of the key."),
                "context": Field(FieldType.STRING, "Base64 context: the public key derived for it.", query=True),
                "auto_rotate_period": Field(FieldType.DURATION, "Rotate the key after this long (0: never)."),
                "key_size": Field(FieldType.INT, "The key size in bytes (hmac keys only)."),
            },
            operations={Op.UPDATE: write_key, Op.READ: read_key, Op.DELETE: delete_key},
            synopsis="Managed named encryption keys",
        ),
        Path(
            "keys/" + name_regex("name") + "/config",
            fields={
                **NAME,
                "min_decryption_version": Field(FieldType.INT, "Minimum key version that may decrypt."),
                "min_encryption_version": Field(FieldType.INT, "Minimum key version that may encrypt."),
                "deletion_allowed": Field(FieldType.BOOL, "Whether to allow deletion of the key."),
                "exportable": Field(FieldType.BOOL, "Enables export (cannot be disabled once set)."),
                "allow_plaintext_backup": Field(FieldType.BOOL, "Enables plaintext backup (cannot be disabled)."),
                "auto_rotate_period": Field(FieldType.DURATION, "Rotate the key after this long (0: never)."),
            },
            operations={Op.UPDATE: config_key},
            synopsis="Configure a named encryption key",
        ),
        Path("keys/" + name_regex("name") + "/soft-delete", fields=NAME, operations={Op.DELETE: soft_delete},
             synopsis="Soft-delete a key: kept, but unusable until restored"),
        Path("keys/" + name_regex("name") + "/soft-delete-restore", fields=NAME,
             operations={Op.UPDATE: soft_delete_restore}, synopsis="Restore a soft-deleted key"),
        Path("keys/" + name_regex("name") + "/rotate", fields=NAME, operations={Op.UPDATE: rotate_key},
             synopsis="Rotate named encryption key"),
        Path("keys/" + name_regex("name") + "/trim",
             fields={**NAME, "min_available_version": Field(FieldType.INT, "The minimum version to keep.")},
             operations={Op.UPDATE: trim_key}, synopsis="Trim key versions of a named key"),
    ]


async def read_cache_config(b: TransitBackend, req: Request, d: FieldData) -> Response | None:
    return Response(data={"size": await b.cache_size(storage_of(req))})


async def write_cache_config(b: TransitBackend, req: Request, d: FieldData) -> Response | None:
    size = d.get("size")
    if size != 0 and size < MIN_CACHE_SIZE:
        raise InvalidRequest(f"size must be 0 or a value greater or equal to {MIN_CACHE_SIZE}")
    await b.set_cache_size(storage_of(req), size)
    return Response(data={"size": size})


async def read_config_keys(b: TransitBackend, req: Request, d: FieldData) -> Response | None:
    return Response(data={"disable_upsert": await b.disable_upsert(storage_of(req))})


async def write_config_keys(b: TransitBackend, req: Request, d: FieldData) -> Response | None:
    storage = storage_of(req)
    if d.has("disable_upsert"):
        await b.set_disable_upsert(storage, d.get("disable_upsert"))
    return Response(data={"disable_upsert": await b.disable_upsert(storage)})


def key_view(p: Policy, context: bytes = b"") -> dict[str, Any]:
    """Vault's answer to reading a key (formatKeyPolicy)."""
    data: dict[str, Any] = {
        "name": p.name,
        "type": p.type,
        "derived": p.derived,
        "deletion_allowed": p.deletion_allowed,
        "min_available_version": p.min_available_version,
        "min_decryption_version": p.min_decryption_version,
        "min_encryption_version": p.min_encryption_version,
        "latest_version": p.latest_version,
        "exportable": p.exportable,
        "allow_plaintext_backup": p.allow_plaintext_backup,
        "supports_encryption": p.type in ENCRYPTION,
        "supports_decryption": p.type in ENCRYPTION,
        "supports_signing": p.type in SIGNING,
        "supports_derivation": p.type in DERIVATION,
        "auto_rotate_period": p.auto_rotate_period,
        "imported_key": p.imported,
        "soft_deleted": p.soft_deleted,
    }
    if p.imported:
        data["imported_key_allow_rotation"] = p.allow_imported_key_rotation
    if p.key_size:
        data["key_size"] = p.key_size
    if p.backup_info is not None:
        data["backup_info"] = p.backup_info
    if p.restore_info is not None:
        data["restore_info"] = p.restore_info
    if p.derived:
        data["kdf"] = "hkdf_sha256"
        data["convergent_encryption"] = p.convergent_encryption
        if p.convergent_encryption:
            data["convergent_encryption_version"] = p.convergent_version
    shown = {v: e for v, e in sorted(p.keys.items()) if v >= p.min_decryption_version}
    if p.type in SYMMETRIC:
        data["keys"] = {str(v): e.creation_time for v, e in shown.items()}
    elif p.type in ASYMMETRIC:
        out: dict[str, Any] = {}
        for v, e in shown.items():
            public = e.public_key
            if p.type == "ed25519":
                name = "ed25519"
                if p.derived:
                    public = ""
                    if context:
                        seed = p.derive_key(context, v, 32)
                        pub = ed25519.Ed25519PrivateKey.from_private_bytes(seed).public_key()
                        public = b64encode(pub.public_bytes_raw())
            elif p.type in RSA:
                name = p.type
                public = pem_public(e.rsa_public())
            else:
                name = CURVE_NAMES[p.type]
            out[str(v)] = {"certificate_chain": chain_pem(e) if e.certificate_chain else "",
                           "creation_time": e.time, "name": name, "public_key": public}
        data["keys"] = out
    return data


async def list_keys(b: TransitBackend, req: Request, d: FieldData) -> Response | None:
    keys = await storage_of(req).list("policy/")
    after, limit = d.get("after"), d.get("limit")
    if after:
        keys = [k for k in keys if k > after]
    if limit > 0:
        keys = keys[:limit]
    if not keys:
        raise NotFound()
    return Response(data={"keys": keys})


def check_create_options(key_type: str, derived: bool, convergent: bool) -> None:
    if key_type not in TYPE_IDS:
        raise InvalidRequest(f"unknown key type {key_type}")
    if key_type in SYMMETRIC:
        if convergent and not derived:
            raise InvalidRequest("convergent encryption requires derivation to be enabled")
    elif key_type == "ed25519":
        if convergent:
            raise InvalidRequest(f"convergent encryption not supported for keys of type {key_type}")
    elif derived or convergent:
        raise InvalidRequest(f"key derivation and convergent encryption not supported for keys of type {key_type}")


async def new_policy(b: TransitBackend, name: str, key_type: str, *, derived: bool = False,
                     convergent: bool = False, exportable: bool = False, allow_plaintext_backup: bool = False,
                     auto_rotate_period: int = 0, key_size: int = 0) -> Policy:
    check_create_options(key_type, derived, convergent)
    if key_type == "hmac" and not key_size:
        key_size = 32
    p = Policy(name=name, type=key_type, derived=derived, convergent_encryption=convergent,
               convergent_version=-1 if convergent else 0, exportable=exportable,
               allow_plaintext_backup=allow_plaintext_backup, auto_rotate_period=auto_rotate_period,
               key_size=key_size if key_type == "hmac" else 0)
    now = b.now_ns()
    if key_type in RSA:
        await asyncio.to_thread(p.rotate, now)  # seconds of CPU for rsa-4096: off the event loop
    else:
        p.rotate(now)
    return p


async def write_key(b: TransitBackend, req: Request, d: FieldData) -> Response | None:
    name = d.get("name")
    key_type = d.get("type")
    derived, convergent = d.get("derived"), d.get("convergent_encryption")
    period = d.get("auto_rotate_period")
    if period and period < HOUR:
        raise InvalidRequest("auto rotate period must be 0 to disable or at least an hour")
    if not derived and convergent:
        raise InvalidRequest("convergent encryption requires derivation to be enabled")
    if key_type not in TYPE_IDS:
        raise InvalidRequest(f"unknown key type {key_type}")
    key_size = d.get("key_size")
    if key_size:
        if key_type != "hmac":
            raise InvalidRequest(f"key_size is not valid for algorithm {key_type}")
        if not HMAC_MIN_KEY_SIZE <= key_size <= HMAC_MAX_KEY_SIZE:
            raise InvalidRequest(f"invalid key_size {key_size}")
    storage = storage_of(req)
    async with b.lock(name):
        existing = await b.load(storage, name)
        if existing is not None:
            return Response(data=key_view(existing))
        p = await new_policy(b, name, key_type, derived=derived, convergent=convergent,
                             exportable=d.get("exportable"), allow_plaintext_backup=d.get("allow_plaintext_backup"),
                             auto_rotate_period=period, key_size=key_size)
        await b.store(storage, p)
    return Response(data=key_view(p))


def context_param(d: FieldData) -> bytes:
    """The request's base64 ``context`` (b"" when absent)."""
    if not d.get("context"):
        return b""
    try:
        return b64decode(d.get("context"))
    except Base64Error:
        raise InvalidRequest("failed to base64-decode context") from None


async def read_key(b: TransitBackend, req: Request, d: FieldData) -> Response | None:
    p = await b.load(storage_of(req), d.get("name"))
    if p is None:
        raise NotFound()
    context = context_param(d)
    try:
        return Response(data=key_view(p, context))
    except (UserError, InternalError) as e:
        raise Internal(f"failed to derive key to return public component: {e}") from None


async def delete_key(b: TransitBackend, req: Request, d: FieldData) -> Response | None:
    name = d.get("name")
    storage = storage_of(req)
    async with b.lock(name):
        p = await b.load(storage, name)
        if p is None:
            raise InvalidRequest(f"error deleting policy {name}: could not delete key; not found")
        if not p.deletion_allowed:
            raise InvalidRequest(f"error deleting policy {name}: deletion is not allowed for this key")
        await b.delete(storage, name)
    return None


async def config_key(b: TransitBackend, req: Request, d: FieldData) -> Response | None:
    name = d.get("name")
    storage = storage_of(req)
    async with b.editing(storage, name, f"no existing key named {name} could be found") as p:
        warnings: list[str] = []
        persist = False
        if d.has("min_decryption_version"):
            v = d.get("min_decryption_version")
            if v < 0:
                raise InvalidRequest("min decryption version cannot be negative")
            if v == 0:
                v = 1
                warnings.append("since Vault 0.3 (prior to the OpenBao fork), transit key numbering starts at 1; "
                                "forcing minimum to 1")
            if v != p.min_decryption_version:
                if v > p.latest_version:
                    raise InvalidRequest(f"cannot set min decryption version of {v}, "
                                         f"latest key version is {p.latest_version}")
                p.min_decryption_version, persist = v, True
        if d.has("min_encryption_version"):
            v = d.get("min_encryption_version")
            if v < 0:
                raise InvalidRequest("min encryption version cannot be negative")
            if v != p.min_encryption_version:
                if v > p.latest_version:
                    raise InvalidRequest(f"cannot set min encryption version of {v}, "
                                         f"latest key version is {p.latest_version}")
                p.min_encryption_version, persist = v, True
        if 0 < p.min_encryption_version < p.min_decryption_version:
            raise InvalidRequest(
                "cannot set min encryption/decryption values; min encryption version of "
                f"{p.min_encryption_version} must be greater than or equal to min decryption version of "
                f"{p.min_decryption_version}")
        if d.has("deletion_allowed") and d.get("deletion_allowed") != p.deletion_allowed:
            p.deletion_allowed, persist = d.get("deletion_allowed"), True
        if d.get("exportable") and not p.exportable:
            p.exportable, persist = True, True
        if d.get("allow_plaintext_backup") and not p.allow_plaintext_backup:
            p.allow_plaintext_backup, persist = True, True
        if d.has("auto_rotate_period"):
            period = d.get("auto_rotate_period")
            if period and period < HOUR:
                raise InvalidRequest("auto rotate period must be 0 to disable or at least an hour")
            if period != p.auto_rotate_period:
                p.auto_rotate_period, persist = period, True
        if persist:
            if p.min_available_version > p.min_encryption_version:
                raise InvalidRequest("min encryption version should not be less than min available version")
            if p.min_available_version > p.min_decryption_version:
                raise InvalidRequest("min decryption version should not be less then min available version")
            await b.store(storage, p)
    return Response(data=key_view(p), warnings=warnings)


async def rotate_key(b: TransitBackend, req: Request, d: FieldData) -> Response | None:
    storage = storage_of(req)
    async with b.editing(storage, d.get("name"), "key not found") as p:
        await rotate_policy(b, p)
        await b.store(storage, p)
    return Response(data=key_view(p))


async def set_soft_deleted(b: TransitBackend, req: Request, name: str, value: bool, warning: str) -> Response | None:
    storage = storage_of(req)
    async with b.lock(name):
        p = await b.load_copy(storage, name)
        if p is None:
            return None
        changed = p.soft_deleted != value
        if changed:
            p.soft_deleted = value
            await b.store(storage, p)
    return Response(data=key_view(p), warnings=[] if changed else [warning])


async def soft_delete(b: TransitBackend, req: Request, d: FieldData) -> Response | None:
    return await set_soft_deleted(b, req, d.get("name"), True, "key was already marked as soft deleted")


async def soft_delete_restore(b: TransitBackend, req: Request, d: FieldData) -> Response | None:
    return await set_soft_deleted(b, req, d.get("name"), False, "key was already restored")


async def rotate_policy(b: TransitBackend, p: Policy) -> None:
    try:
        if p.type in RSA:
            await asyncio.to_thread(p.rotate, b.now_ns())
        else:
            p.rotate(b.now_ns())
    except UserError as e:
        raise InvalidRequest(str(e)) from None


async def trim_key(b: TransitBackend, req: Request, d: FieldData) -> Response | None:
    storage = storage_of(req)
    async with b.editing(storage, d.get("name"), "invalid key name") as p:
        if not d.has("min_available_version"):
            raise InvalidRequest("missing min_available_version")
        v = d.get("min_available_version")
        if v < p.min_available_version:
            raise InvalidRequest("minimum available version cannot be decremented")
        if p.min_encryption_version == 0:
            raise InvalidRequest("minimum available version cannot be set when minimum encryption version is not set")
        if p.min_decryption_version == 0:
            raise InvalidRequest("minimum available version cannot be set when minimum decryption version is not set")
        if v > p.min_encryption_version:
            raise InvalidRequest("minimum available version cannot be greater than minmum encryption version")
        if v > p.min_decryption_version:
            raise InvalidRequest("minimum available version cannot be greater than minimum decryption version")
        if v < 0:
            raise InvalidRequest("minimum available version cannot be negative")
        if v == 0:
            raise InvalidRequest("minimum available version should be positive")
        p.trim(v)
        await b.store(storage, p)
    return Response(data=key_view(p))
