"""Creating keys and issuers, shared by new_issuers.py and keys.py: the name checks, the key a generate call
uses (an existing one or a new one), and storing key and issuer entries with the defaults they become (the
first key or issuer, or the newest issuer when the default follows the latest).

Callers hold the backend's write lock and drop the mount's decoded cache after writing (state.py).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from cryptography import x509

from strongroom.engines.pki import crypto
from strongroom.engines.pki.state import Snapshot
from strongroom.engines.pki.store import (
    ISSUER_PREFIX,
    ISSUERS_CONFIG,
    KEY_PREFIX,
    KEYS_CONFIG,
    IssuerEntry,
    KeyEntry,
    new_id,
    put_json,
)
from strongroom.errors import InvalidRequest
from strongroom.framework import FieldData, Request

if TYPE_CHECKING:
    from strongroom.engines.pki import PkiBackend


def check_names(snap: Snapshot, issuer_name: str, key_name: str, exclude: str = "") -> None:
    if issuer_name:
        if issuer_name == "default":
            raise InvalidRequest("reserved name: default")
        if any(i.entry.name == issuer_name and i.id != exclude for i in snap.issuers.values()):
            raise InvalidRequest("issuer name already in use")
    if key_name:
        if key_name == "default":
            raise InvalidRequest("reserved name: default")
        if any(k.entry.name == key_name for k in snap.keys.values()):
            raise InvalidRequest("key name already in use")


async def new_key(b: PkiBackend, d: FieldData, snap: Snapshot, mode: str) -> tuple[crypto.PrivateKey, str, bool]:
    """(key, key id, is new): the key a generate call uses."""
    if mode == "existing":
        lk = snap.key(d.get("key_ref") or "default")
        return lk.key, lk.entry.id, False
    if mode == "kms":
        raise InvalidRequest("kms managed keys are not supported")
    key_type = d.get("key_type")
    crypto.validate_key(key_type, d.get("key_bits"))
    key = await asyncio.to_thread(crypto.generate_key, key_type, d.get("key_bits"))
    return key, new_id(), True


async def store_key(b: PkiBackend, req: Request, snap: Snapshot, key: crypto.PrivateKey, key_id: str,
                     name: str) -> None:
    st = b.storage(req)
    entry = KeyEntry(key_id, name, crypto.key_type_of(key), crypto.key_to_pem(key, "pkcs8"))
    await st.put(KEY_PREFIX + key_id, entry.to_json())
    if not snap.default_key or snap.default_key not in snap.keys:
        await put_json(st, KEYS_CONFIG, {"default": key_id})


async def store_issuer(b: PkiBackend, req: Request, snap: Snapshot, cert: x509.Certificate, key_id: str,
                        name: str, key: crypto.PrivateKey | None) -> IssuerEntry:
    st = b.storage(req)
    entry = IssuerEntry(new_id(), name, key_id, crypto.cert_pem(cert) + "\n",
                        serial_number=crypto.format_serial(cert.serial_number))
    if key is not None:
        entry.revocation_signature_algorithm = crypto.sig_alg_name(key)
    await st.put(ISSUER_PREFIX + entry.id, entry.to_json())
    if (not snap.default_issuer or snap.default_issuer not in snap.issuers
            or snap.default_follows_latest_issuer) and key is not None:
        await put_json(st, ISSUERS_CONFIG, {"default": entry.id,
                                            "default_follows_latest_issuer": snap.default_follows_latest_issuer})
    return entry
