"""export/TYPE/NAME(/VERSION), backup/NAME, restore(/NAME).

A backup is OpenBao's: base64 of ``{"policy": <keysutil Policy JSON>, "archived_keys": {"keys":
[entry per version from min_available_version]}}``, so backups move between OpenBao and
Strongroom both ways. A restore is checked whole (every version's key material decodes) before
anything is written; a key that exists is replaced only with ``force``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
from typing import Any

from cryptography.hazmat.primitives import serialization

from strongroom.durations import rfc3339_ns
from strongroom.engines.transit.backend import TransitBackend, storage_of
from strongroom.engines.transit.gob64 import Base64Error, b64decode, b64encode
from strongroom.engines.transit.keyentry import KeyEntry, chain_pem
from strongroom.engines.transit.keytypes import (
    ECDSA,
    ENCRYPTION,
    ERR_SOFT_DELETED,
    RSA,
    SIGNING,
    SYMMETRIC,
    UserError,
)
from strongroom.engines.transit.policy import Policy
from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response, name_regex

EXPORT_TYPES = ("encryption-key", "signing-key", "hmac-key", "public-key", "certificate-chain")
ZERO_TIME = "0001-01-01T00:00:00Z"
KEY_NAME = re.compile(r"\w(?:[\w\-.@]*\w)?")


def paths() -> list[Path[TransitBackend]]:
    return [
        Path(
            "export/" + name_regex("type") + "/" + name_regex("name") + r"(?:/(?P<version>.+))?",
            fields={"type": Field(FieldType.STRING, "Type of key to export."),
                    "name": Field(FieldType.STRING, "Name of the key"),
                    "version": Field(FieldType.STRING, "Version of the key"),
                    "format": Field(FieldType.STRING, '"", "raw", "der" or "pem".', query=True)},
            operations={Op.READ: export_key},
            synopsis="Export named encryption or signing key",
        ),
        Path("backup/" + name_regex("name"), fields={"name": Field(FieldType.STRING, "Name of the key")},
             operations={Op.READ: backup_key}, synopsis="Backup the named key"),
        Path(
            r"restore(?:/(?P<name>.+))?",
            fields={"backup": Field(FieldType.STRING, "Backed up key data to be restored."),
                    "name": Field(FieldType.STRING, "If set, this will be the name of the restored key."),
                    "force": Field(FieldType.BOOL, "Replace a key of the same name.")},
            operations={Op.UPDATE: restore_key},
            synopsis="Restore the named key",
        ),
    ]


# -- export --------------------------------------------------------------------------------------
def _pem(der: bytes, label: str, *, strip: bool) -> str:
    body = base64.encodebytes(der).decode().replace("\n", "")
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    text = f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"
    return text.strip() if strip else text


def _private_der(key: Any, pkcs8: bool) -> bytes:
    fmt = serialization.PrivateFormat.PKCS8 if pkcs8 else serialization.PrivateFormat.TraditionalOpenSSL
    der: bytes = key.private_bytes(serialization.Encoding.DER, fmt, serialization.NoEncryption())
    return der


def _public_der(key: Any) -> bytes:
    der: bytes = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return der


def export_value(p: Policy, entry: KeyEntry, kind: str, fmt: str) -> str:
    """One version's key material as OpenBao's export answers it."""
    if kind == "hmac-key":
        if fmt in ("der", "pem"):
            raise InvalidRequest("unknown format for HMAC key; supported values are `` or `raw`")
        return b64encode(entry.key if p.type == "hmac" else entry.hmac_key)
    if kind == "encryption-key" and p.type in SYMMETRIC:
        if fmt in ("der", "pem"):
            raise InvalidRequest("unknown format for HMAC key; supported values are `` or `raw`")
        return b64encode(entry.key)
    if p.type in RSA and kind in ("encryption-key", "signing-key", "public-key"):
        if fmt == "raw":
            raise InvalidRequest("unknown key format for rsa key; supported values are ``, `der`, or `pem`")
        if kind == "public-key":
            der = _public_der(entry.rsa_public())
            return b64encode(der) if fmt == "der" else _pem(der, "PUBLIC KEY", strip=False)
        if not entry.has_private(p.type):
            return ""
        der = _private_der(entry.rsa_private(), pkcs8=bool(fmt))
        if fmt == "der":
            return b64encode(der)
        return _pem(der, "PRIVATE KEY" if fmt else "RSA PRIVATE KEY", strip=False)
    if p.type in ECDSA and kind in ("signing-key", "public-key"):
        if fmt == "raw":
            raise InvalidRequest("unknown key format for ec key; supported values are ``, `der`, or `pem`")
        if kind == "public-key":
            der = _public_der(entry.ec_public(p.type))
            return b64encode(der) if fmt == "der" else _pem(der, "PUBLIC KEY", strip=True)
        if not entry.has_private(p.type):
            return ""
        der = _private_der(entry.ec_private(p.type), pkcs8=bool(fmt))
        if fmt == "der":
            return b64encode(der)
        return _pem(der, "PRIVATE KEY" if fmt else "EC PRIVATE KEY", strip=True)
    if p.type == "ed25519" and kind in ("signing-key", "public-key"):
        if kind == "public-key":
            if fmt in ("", "raw"):
                return entry.public_key.strip()
            der = _public_der(entry.ed25519_public())
        else:
            if not entry.key:
                return ""
            if fmt in ("", "raw"):
                return b64encode(entry.key)
            der = _private_der(entry.ed25519_private(), pkcs8=True)
        return b64encode(der) if fmt == "der" else _pem(der, kind == "public-key" and "PUBLIC KEY" or "PRIVATE KEY",
                                                         strip=True)
    if kind == "certificate-chain":
        if not entry.certificate_chain:
            raise InvalidRequest("selected key version does not have a certificate chain imported")
        return chain_pem(entry)
    raise InvalidRequest(f"unknown key type {p.type} for export type {kind}")


async def export_key(b: TransitBackend, req: Request, d: FieldData) -> Response | None:
    kind, name, version, fmt = d.get("type"), d.get("name"), d.get("version"), d.get("format")
    if kind not in EXPORT_TYPES:
        raise InvalidRequest(f"invalid export type: {kind}")
    if fmt not in ("", "raw", "der", "pem"):
        raise InvalidRequest(f"invalid format: {fmt}")
    p = await b.load(storage_of(req), name)
    if p is None:
        raise NotFound()
    if not p.exportable and kind not in ("public-key", "certificate-chain"):
        raise InvalidRequest("private key material is not exportable")
    if p.soft_deleted:
        raise InvalidRequest(ERR_SOFT_DELETED)
    if kind == "encryption-key" and p.type not in ENCRYPTION:
        raise InvalidRequest("encryption not supported for the key")
    if kind == "signing-key" and p.type not in SIGNING:
        raise InvalidRequest("signing not supported for the key")
    if kind == "certificate-chain" and p.type not in SIGNING:
        raise InvalidRequest("certificate chain not supported for keys that do not support signing")
    shown = {v: e for v, e in p.keys.items() if v >= p.min_decryption_version}
    if not version:
        keys = {str(v): export_value(p, e, kind, fmt) for v, e in sorted(shown.items())}
    else:
        if version == "latest":
            number = p.latest_version
        else:
            text = version[1:] if version.startswith("v") else version
            if not (text.isascii() and text.isdigit() and len(text) < 19):
                raise InvalidRequest("invalid key version")
            number = int(text)
        if number < p.min_decryption_version:
            raise InvalidRequest("version for export is below minimum decryption version")
        entry = shown.get(number)
        if entry is None:
            raise InvalidRequest("version does not exist or cannot be found")
        keys = {str(number): export_value(p, entry, kind, fmt)}
    return Response(data={"name": p.name, "type": p.type, "keys": keys})


# -- backup and restore --------------------------------------------------------------------------
def empty_entry() -> dict[str, Any]:
    e = KeyEntry(time=ZERO_TIME).to_json()
    return e


def backup_document(p: Policy) -> dict[str, Any]:
    """OpenBao's KeyData: the policy (versions from min_decryption_version) and the archive."""
    shown = {v: e for v, e in p.keys.items() if v >= p.min_decryption_version}
    archive = []
    for version in range(p.min_available_version, p.latest_version + 1):
        entry = p.keys.get(version)
        archive.append(entry.to_json() if entry is not None else empty_entry())
    return {"policy": p.to_json(shown), "archived_keys": {"keys": archive}}


async def backup_key(b: TransitBackend, req: Request, d: FieldData) -> Response | None:
    name = d.get("name")
    storage = storage_of(req)
    async with b.editing(storage, name, f'key "{name}" not found') as p:
        if p.soft_deleted:
            raise InvalidRequest(ERR_SOFT_DELETED)
        if not p.exportable:
            raise InvalidRequest("exporting is disallowed on the policy")
        if not p.allow_plaintext_backup:
            raise InvalidRequest("plaintext backup is disallowed on the policy")
        p.backup_info = {"time": rfc3339_ns(b.now_ns()), "version": p.latest_version}
        await b.store(storage, p)
    document = json.dumps(backup_document(p), separators=(",", ":")).encode()
    return Response(data={"backup": b64encode(document)})


def parse_backup(text: str, name: str) -> Policy:
    """The policy a backup holds, every version checked; InvalidRequest if anything is off."""
    try:
        raw = json.loads(b64decode(text))
        if not isinstance(raw, dict) or not isinstance(raw.get("policy"), dict):
            raise ValueError("no policy in the backup")
        archived = (raw.get("archived_keys") or {}).get("keys") or []
        if not isinstance(archived, list):
            raise ValueError("archived keys are not a list")
        p = Policy.from_json(raw["policy"], archived)
    except Base64Error as e:
        raise InvalidRequest(str(e)) from None
    except (ValueError, TypeError, KeyError, AttributeError, binascii.Error, UserError) as e:
        raise InvalidRequest(f"invalid backup: {e}") from None
    if name:
        p.name = name
    if "/" in p.name:
        raise InvalidRequest("key names cannot be paths")
    if not KEY_NAME.fullmatch(p.name):
        raise InvalidRequest("invalid key name")
    if p.latest_version < 1 or not 1 <= p.min_decryption_version <= p.latest_version:
        raise InvalidRequest("invalid backup: bad key versions")
    try:
        for version in range(max(p.min_decryption_version, p.min_available_version), p.latest_version + 1):
            entry = p.keys.get(version)
            if entry is None:
                raise ValueError(f"version {version} is missing")
            if p.type in SYMMETRIC or p.type == "hmac":
                if not entry.key:
                    raise ValueError(f"version {version} has no key")
            elif not entry.has_private(p.type):  # an imported public key
                if p.type in ECDSA:
                    entry.ec_public(p.type)
                elif p.type in RSA:
                    entry.rsa_public()
                else:
                    entry.ed25519_public()
            elif p.type in ECDSA:
                entry.ec_private(p.type)
            elif p.type in RSA:
                entry.rsa_private()
            else:
                entry.ed25519_private()
    except Exception as e:  # noqa: BLE001 - whatever a bad backup makes the decoders raise
        raise InvalidRequest(f"invalid backup: {e}") from None
    return p


async def restore_key(b: TransitBackend, req: Request, d: FieldData) -> Response | None:
    text = d.get("backup")
    if not text:
        raise InvalidRequest("'backup' must be supplied")
    name = d.get("name")
    if "/" in name:
        raise InvalidRequest("key names cannot be paths")
    # Off the event loop: checking RSA key material takes a fraction of a second per key.
    p = await asyncio.to_thread(parse_backup, text, name)
    storage = storage_of(req)
    async with b.lock(p.name):
        if await b.load(storage, p.name) is not None and not d.get("force"):
            raise InvalidRequest(f'key "{p.name}" already exists')
        p.restore_info = {"time": rfc3339_ns(b.now_ns()), "version": p.latest_version}
        await b.store(storage, p)
    return None

