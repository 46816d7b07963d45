"""encrypt/NAME, decrypt/NAME, rewrap/NAME: single values or ``batch_input`` with per-item errors.

As OpenBao: a batch answers ``batch_results`` in input order, each item with its own ``error``;
any failed item makes the status 400 (500 for a server-side failure) unless
``partial_failure_response_code`` is given and some item succeeded. ``encrypt`` on a missing key
creates it (CREATE capability) as a derived key when a context is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strongroom.engines.transit.backend import TransitBackend, storage_of
from strongroom.engines.transit.gob64 import Base64Error, b64decode, b64encode
from strongroom.engines.transit.keys import new_policy
from strongroom.engines.transit.keytypes import InternalError, UserError
from strongroom.engines.transit.policy import Policy
from strongroom.errors import Internal, InvalidRequest
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response, name_regex
from strongroom.logical import Operation

#: Most items one batch request may carry (OpenBao has no limit but the request size).
MAX_BATCH = 10_000

COMMON = {
    "name": Field(FieldType.STRING, "Name of the key"),
    "context": Field(FieldType.STRING, "Base64 encoded context for key derivation."),
    "associated_data": Field(FieldType.STRING, "Base64 associated data of an AEAD cipher."),
    "batch_input": Field(FieldType.ANY, "A list of items to process in one request."),
    "partial_failure_response_code": Field(FieldType.INT, "The status to answer when only some items fail."),
}


def paths() -> list[Path[TransitBackend]]:
    return [
        Path(
            "encrypt/" + name_regex("name"),
            fields={
                **COMMON,
                "plaintext": Field(FieldType.STRING, "Base64 encoded plaintext value to be encrypted."),
                "nonce": Field(FieldType.STRING, "Base64 nonce (ignored, as OpenBao does)."),
                "key_version": Field(FieldType.INT, "The version of the key to use (0: latest)."),
                "type": Field(FieldType.STRING, "The type of key to create on upsert.", default="aes256-gcm96"),
                "convergent_encryption": Field(FieldType.BOOL, "Create the key with convergent encryption."),
            },
            operations={Op.CREATE: encrypt, Op.UPDATE: encrypt},
            exists=key_exists,
            synopsis="Encrypt a plaintext value or a batch of plaintext blocks using a named key",
        ),
        Path(
            "decrypt/" + name_regex("name"),
            fields={**COMMON, "ciphertext": Field(FieldType.STRING, "The ciphertext to decrypt."),
                    "nonce": Field(FieldType.STRING, "Base64 nonce (ignored).")},
            operations={Op.UPDATE: decrypt},
            synopsis="Decrypt a ciphertext value using a named key",
        ),
        Path(
            "rewrap/" + name_regex("name"),
            fields={**COMMON, "ciphertext": Field(FieldType.STRING, "The ciphertext to rewrap."),
                    "key_version": Field(FieldType.INT, "The version of the key to use (0: latest)."),
                    "nonce": Field(FieldType.STRING, "Base64 nonce (ignored).")},
            operations={Op.UPDATE: rewrap},
            synopsis="Rewrap ciphertext",
        ),
    ]


async def key_exists(b: TransitBackend, req: Request, d: FieldData) -> bool:
    return await b.load(storage_of(req), d.get("name")) is not None


# -- batch input ---------------------------------------------------------------------------------
@dataclass(slots=True)
class Item:
    plaintext: str = ""
    ciphertext: str = ""
    context: str = ""
    key_version: int = 0
    associated_data: str = ""
    reference: str = ""
    decoded_context: bytes = b""
    error: str = ""
    internal: bool = False


def go_type(v: Any) -> str:
    """Go's %T of a decoded JSON value (Vault decodes numbers as json.Number)."""
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "json.Number"
    if isinstance(v, dict):
        return "map[string]interface {}"
    if isinstance(v, list):
        return "[]interface {}"
    return "string" if isinstance(v, str) else type(v).__name__


def parse_batch(raw: Any, *, need_plaintext: bool = False, need_ciphertext: bool = False) -> list[Item]:
    if not isinstance(raw, list):
        raise InvalidRequest(f"failed to parse batch input: source data must be an array or slice, got {go_type(raw)}")
    if len(raw) > MAX_BATCH:
        raise InvalidRequest(f"batch_input has {len(raw)} items; at most {MAX_BATCH} are accepted per request")
    items: list[Item] = []
    errs: list[str] = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise InvalidRequest(f"failed to parse batch input: [{i}] expected a map, got '{go_type(entry)}'")
        item = Item()
        for key in ("context", "ciphertext", "plaintext", "associated_data", "reference"):
            v = entry.get(key)
            if v is None:
                continue
            if isinstance(v, str):
                setattr(item, key, v)
            else:
                errs.append(f"'[{i}].{key}' expected type 'string', got unconvertible type '{go_type(v)}'")
        if need_ciphertext and "ciphertext" not in entry:
            errs.append(f"'[{i}].ciphertext' missing ciphertext to decrypt")
        if need_plaintext and "plaintext" not in entry:
            errs.append(f"'[{i}].plaintext' missing plaintext to encrypt")
        kv = entry.get("key_version")
        if kv is not None:
            if isinstance(kv, int) and not isinstance(kv, bool):
                item.key_version = kv
            elif isinstance(kv, str) and kv.lstrip("-").isdigit():
                item.key_version = int(kv)
            else:
                errs.append(f"'[{i}].key_version' expected type 'int', got unconvertible type '{go_type(kv)}'")
        items.append(item)
    if errs:
        raise InvalidRequest("failed to parse batch input: " + "\n".join(errs))
    return items


def decode_contexts(items: list[Item]) -> None:
    """Vault's rule: a context in all items or in none; decode each (an error is the item's)."""
    context_set = bool(items[0].context)
    for item in items:
        if bool(item.context) != context_set:
            raise InvalidRequest("context should be set either in all the request blocks or in none")
    for item in items:
        if item.context and not item.error:
            try:
                item.decoded_context = b64decode(item.context)
            except Base64Error as e:
                item.error = str(e)


def aad_of(p: Policy, item: Item, index: int) -> bytes | None:
    if not item.associated_data:
        return None
    if p.type not in ("aes128-gcm96", "aes256-gcm96", "chacha20-poly1305", "xchacha20-poly1305"):
        raise UserError(f"'[{index}].associated_data' provided for non-AEAD cipher suite {p.type}")
    try:
        return b64decode(item.associated_data)
    except Base64Error as e:
        raise UserError(f"unable to get associated_data/additional_data from factory[0]: {e}") from None


def fail(item: Item, e: UserError | InternalError) -> None:
    item.error = str(e)
    item.internal = isinstance(e, InternalError)


def batch_response(d: FieldData, items: list[Item], results: list[dict[str, Any]]) -> Response:
    """``batch_results`` with OpenBao's status: 400 (500) when an item failed, unless
    ``partial_failure_response_code`` is given and another item succeeded."""
    resp = Response(data={"batch_results": results})
    failed = [it for it in items if it.error]
    if failed:
        code = 400 if any(not it.internal for it in failed) else 500
        if d.has("partial_failure_response_code") and len(failed) < len(items):
            override = d.get("partial_failure_response_code")
            if 1 <= override <= 599:
                code = override
            else:
                resp.warnings.append("invalid HTTP response code override from partial_failure_response_code, "
                                     f"reverting to {code}")
        resp.status = code
    return resp


def single_error(item: Item) -> Exception:
    return Internal(item.error) if item.internal else InvalidRequest(item.error)


# -- encrypt -------------------------------------------------------------------------------------
ENCRYPT_UPSERT_TYPES = ("aes128-gcm96", "aes256-gcm96", "chacha20-poly1305", "xchacha20-poly1305")


async def encrypt(b: TransitBackend, req: Request, d: FieldData) -> Response | None:
    name = d.get("name")
    batch = d.raw.get("batch_input")
    if batch is not None:
        items = parse_batch(batch, need_plaintext=True)
        if not items:
            raise InvalidRequest("missing batch input to process")
    else:
        if not d.has("plaintext"):
            raise InvalidRequest("missing plaintext to encrypt")
        items = [Item(plaintext=d.get("plaintext"), context=d.get("context"), key_version=d.get("key_version"),
                      associated_data=d.get("associated_data"))]
    context_set = bool(items[0].context)
    plaintexts: list[bytes] = []
    for item in items:
        try:
            plaintexts.append(b64decode(item.plaintext))
        except Base64Error as e:
            item.error = str(e)
            plaintexts.append(b"")
    decode_contexts(items)

    storage = storage_of(req)
    p = await b.load(storage, name)
    if p is None and req.operation is Operation.CREATE and not await b.disable_upsert(storage):
        convergent = d.get("convergent_encryption")
        if convergent and not context_set:
            raise InvalidRequest("convergent encryption requires derivation to be enabled, so context is required")
        key_type = d.get("type")
        if key_type in ("ecdsa-p256", "ecdsa-p384", "ecdsa-p521"):
            raise InvalidRequest(f"key type {key_type} not supported for this operation")
        if key_type not in ENCRYPT_UPSERT_TYPES:
            raise InvalidRequest(f"unknown key type {key_type}")
        async with b.lock(name):
            p = await b.load(storage, name)
            if p is None:
                p = await new_policy(b, name, key_type, derived=context_set, convergent=convergent)
                await b.store(storage, p)
    if p is None:
        raise InvalidRequest("encryption key not found")

    results: list[dict[str, Any]] = []
    for i, (item, plaintext) in enumerate(zip(items, plaintexts, strict=True)):
        if not item.error:
            try:
                ct, version = p.encrypt(item.key_version, item.decoded_context, plaintext, aad_of(p, item, i))
            except (UserError, InternalError) as e:
                fail(item, e)
            else:
                results.append({"ciphertext": ct, "key_version": version, "reference": item.reference})
                continue
        results.append({"error": item.error, "reference": item.reference})
    if batch is None:
        if items[0].error:
            raise single_error(items[0])
        return Response(data={"ciphertext": results[0]["ciphertext"], "key_version": results[0]["key_version"]})
    return batch_response(d, items, results)


# -- decrypt -------------------------------------------------------------------------------------
def single_item(d: FieldData, *, with_version: bool = False) -> Item:
    ciphertext = d.get("ciphertext")
    if not ciphertext:
        raise InvalidRequest("missing ciphertext to decrypt")
    return Item(ciphertext=ciphertext, context=d.get("context"),
                key_version=d.get("key_version") if with_version else 0,
                associated_data=d.get("associated_data"))


async def _ciphertexts_key(b: TransitBackend, req: Request, d: FieldData, items: list[Item]) -> Policy:
    """Decrypt's and rewrap's first steps: an item without a ciphertext fails, contexts are decoded, and
    the key is loaded."""
    for item in items:
        if not item.ciphertext:
            item.error = "missing ciphertext to decrypt"
    decode_contexts(items)
    p = await b.load(storage_of(req), d.get("name"))
    if p is None:
        raise InvalidRequest("encryption key not found")
    return p


async def decrypt(b: TransitBackend, req: Request, d: FieldData) -> Response | None:
    batch = d.raw.get("batch_input")
    if batch is not None:
        items = parse_batch(batch, need_ciphertext=True)
        if not items:
            raise InvalidRequest("missing batch input to process")
    else:
        items = [single_item(d)]
    p = await _ciphertexts_key(b, req, d, items)
    results: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        plaintext = ""
        if not item.error:
            try:
                plaintext = b64encode(p.decrypt(item.decoded_context, item.ciphertext, aad_of(p, item, i)))
            except (UserError, InternalError) as e:
                fail(item, e)
        result = {"plaintext": plaintext, "reference": item.reference}
        if item.error:
            result["error"] = item.error
        results.append(result)
    if batch is None:
        if items[0].error:
            raise single_error(items[0])
        return Response(data={"plaintext": results[0]["plaintext"]})
    return batch_response(d, items, results)


# -- rewrap --------------------------------------------------------------------------------------
async def rewrap(b: TransitBackend, req: Request, d: FieldData) -> Response | None:
    batch = d.raw.get("batch_input")
    if batch is not None:
        items = parse_batch(batch)
        if not items:
            raise InvalidRequest("missing batch input to process")
    else:
        items = [single_item(d, with_version=True)]
    p = await _ciphertexts_key(b, req, d, items)
    results: list[dict[str, Any]] = []
    for item in items:
        if not item.error:
            try:
                plaintext = p.decrypt(item.decoded_context, item.ciphertext)
                ct, version = p.encrypt(item.key_version, item.decoded_context, plaintext)
            except UserError as e:
                item.error = str(e)
            except InternalError as e:
                raise Internal(str(e)) from None
            else:
                results.append({"ciphertext": ct, "key_version": version, "reference": item.reference})
                continue
        results.append({"error": item.error, "reference": item.reference})
    if batch is None:
        if items[0].error:
            raise InvalidRequest(items[0].error)
        return Response(data={"ciphertext": results[0]["ciphertext"], "key_version": results[0]["key_version"]})
    return Response(data={"batch_results": results})
