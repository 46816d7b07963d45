"""datakey/plaintext|wrapped/NAME, random(/SOURCE)(/BYTES), hash(/ALG), hmac/NAME(/ALG).

``verify/NAME`` lives in sign.py; it checks HMACs with the functions here when given ``hmac``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from typing import Any

from strongroom.engines.transit.backend import TransitBackend, storage_of
from strongroom.engines.transit.crypt import go_type
from strongroom.engines.transit.gob64 import Base64Error, b64decode, b64encode
from strongroom.engines.transit.keys import context_param
from strongroom.engines.transit.keytypes import InternalError, UserError, go_atoi
from strongroom.engines.transit.policy import Policy
from strongroom.errors import Internal, InvalidRequest
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response, name_regex

RANDOM_MAX_BYTES = 128 * 1024

#: keysutil's HashFuncMap (hashlib constructors); "none" has no function.
HASHES: dict[str, Callable[..., Any] | None] = {
    "none": None,
    "sha1": hashlib.sha1,
    "sha2-224": hashlib.sha224,
    "sha2-256": hashlib.sha256,
    "sha2-384": hashlib.sha384,
    "sha2-512": hashlib.sha512,
    "sha3-224": hashlib.sha3_224,
    "sha3-256": hashlib.sha3_256,
    "sha3-384": hashlib.sha3_384,
    "sha3-512": hashlib.sha3_512,
}
NAME = Field(FieldType.STRING, "Name of the key")


def paths() -> list[Path[TransitBackend]]:
    return [
        Path(
            "datakey/" + name_regex("plaintext") + "/" + name_regex("name"),
            fields={"name": NAME,
                    "plaintext": Field(FieldType.STRING, '"plaintext" or "wrapped"'),
                    "context": Field(FieldType.STRING, "Base64 context for key derivation."),
                    "nonce": Field(FieldType.STRING, "Base64 nonce (ignored)."),
                    "bits": Field(FieldType.INT, "Bits of the data key: 128, 256 or 512.", default=256),
                    "key_version": Field(FieldType.INT, "The version of the key to use (0: latest)."),
                    "associated_data": Field(FieldType.STRING, "Base64 associated data of an AEAD cipher.")},
            operations={Op.UPDATE: datakey},
            synopsis="Generate a data key",
        ),
        Path(
            r"random(?:/" + name_regex("source") + r")?(?:/(?P<urlbytes>.+))?",
            fields={"urlbytes": Field(FieldType.STRING, "The number of bytes to generate (URL)."),
                    "bytes": Field(FieldType.INT, "The number of bytes to generate.", default=32),
                    "format": Field(FieldType.STRING, '"hex" or "base64".', default="base64"),
                    "source": Field(FieldType.STRING, '"platform", "seal" or "all".', default="platform")},
            operations={Op.UPDATE: random_bytes},
            synopsis="Generate random bytes",
        ),
        Path(
            r"hash(?:/(?P<urlalgorithm>.+))?",
            fields={"input": Field(FieldType.STRING, "The base64-encoded input data"),
                    "algorithm": Field(FieldType.STRING, "Hash algorithm.", default="sha2-256"),
                    "urlalgorithm": Field(FieldType.STRING, "Hash algorithm (URL)."),
                    "format": Field(FieldType.STRING, '"hex" or "base64".', default="hex")},
            operations={Op.UPDATE: hash_input},
            synopsis="Generate a hash sum for input data",
        ),
        Path(
            "hmac/" + name_regex("name") + r"(?:/(?P<urlalgorithm>.+))?",
            fields={"name": NAME,
                    "input": Field(FieldType.STRING, "The base64-encoded input data"),
                    "algorithm": Field(FieldType.STRING, "Hash algorithm.", default="sha2-256"),
                    "urlalgorithm": Field(FieldType.STRING, "Hash algorithm (URL)."),
                    "key_version": Field(FieldType.INT, "The version of the key to use (0: latest)."),
                    "batch_input": Field(FieldType.ANY, "A list of items to HMAC in one request.")},
            operations={Op.UPDATE: hmac_input},
            synopsis="Generate an HMAC for input data using the named key",
        ),
    ]


def url_groups(b: TransitBackend, req: Request) -> dict[str, str]:
    hit = b.route(req.path)
    return hit[1] if hit is not None else {}


# -- datakey -------------------------------------------------------------------------------------
async def datakey(b: TransitBackend, req: Request, d: FieldData) -> Response | None:
    kind = d.get("plaintext")
    if kind not in ("plaintext", "wrapped"):
        raise InvalidRequest("Invalid path, must be 'plaintext' or 'wrapped'")
    context = context_param(d)
    p = await b.load(storage_of(req), d.get("name"))
    if p is None:
        raise InvalidRequest("encryption key not found")
    bits = d.get("bits")
    if bits not in (128, 256, 512):
        raise InvalidRequest("invalid bit length")
    new_key = os.urandom(bits // 8)
    aad = None
    if d.get("associated_data"):
        if p.type not in ("aes128-gcm96", "aes256-gcm96", "chacha20-poly1305", "xchacha20-poly1305"):
            raise InvalidRequest(f"'associated_data' provided for non-AEAD cipher suite {p.type}")
        try:
            aad = b64decode(d.get("associated_data"))
        except Base64Error as e:
            raise InvalidRequest(f"unable to get associated_data/additional_data from factory[0]: {e}") from None
    try:
        ciphertext, version = p.encrypt(d.get("key_version"), context, new_key, aad)
    except UserError as e:
        raise InvalidRequest(str(e)) from None
    except InternalError as e:
        raise Internal(str(e)) from None
    data: dict[str, Any] = {"ciphertext": ciphertext, "key_version": version}
    if kind == "plaintext":
        data["plaintext"] = b64encode(new_key)
    return Response(data=data)


# -- random --------------------------------------------------------------------------------------
def go_atoi_error(text: str) -> str:
    reason = "value out of range" if text.lstrip("+-").isdigit() else "invalid syntax"
    return f'strconv.Atoi: parsing "{text}": {reason}'


def parse_count(text: str) -> int:
    n = go_atoi(text)
    if n is None:
        raise InvalidRequest(f"error parsing url-set byte count: {go_atoi_error(text)}")
    return n


async def random_bytes(b: TransitBackend, req: Request, d: FieldData) -> Response | None:
    groups = url_groups(b, req)
    url_source, url_bytes = groups.get("source", ""), groups.get("urlbytes", "")
    source = "platform"
    if not url_source:
        count = d.get("bytes")
    elif not url_bytes and url_source in ("", "platform", "seal", "all"):
        source, count = url_source, d.get("bytes")
    elif not url_bytes:
        count = parse_count(url_source)
    else:
        source, count = url_source, parse_count(url_bytes)
    fmt = d.get("format")
    if count < 1:
        raise InvalidRequest("'bytes' cannot be less than 1")
    if count > RANDOM_MAX_BYTES:
        raise InvalidRequest(f"'bytes' should be less than {RANDOM_MAX_BYTES}")
    if fmt not in ("hex", "base64"):
        raise InvalidRequest(f'unsupported encoding format "{fmt}"; must be "hex" or "base64"')
    warnings = []
    if source == "seal":
        warnings.append("no seal/entropy augmentation available, using platform entropy source")
    elif source not in ("", "platform", "all"):
        raise InvalidRequest(f'unsupported entropy source "{source}"; must be "platform" or "seal", or "all"')
    raw = os.urandom(count)
    return Response(data={"random_bytes": raw.hex() if fmt == "hex" else b64encode(raw)}, warnings=warnings)


# -- hash ----------------------------------------------------------------------------------------
async def hash_input(b: TransitBackend, req: Request, d: FieldData) -> Response | None:
    if not d.has("input"):
        raise InvalidRequest("input missing")
    fmt = d.get("format")
    algorithm = d.get("urlalgorithm") or d.get("algorithm")
    try:
        data = b64decode(d.get("input"))
    except Base64Error as e:
        raise InvalidRequest(f"unable to decode input as base64: {e}") from None
    if fmt not in ("hex", "base64"):
        raise InvalidRequest(f'unsupported encoding format {fmt}; must be "hex" or "base64"')
    fn = HASHES.get(algorithm) if algorithm not in ("none", "sha1") else None
    if fn is None:
        raise InvalidRequest(f"unsupported algorithm {algorithm}")
    digest: bytes = fn(data).digest()
    return Response(data={"sum": digest.hex() if fmt == "hex" else b64encode(digest)})


# -- hmac ----------------------------------------------------------------------------------------
def hmac_key(p: Policy, version: int) -> bytes:
    """keysutil's HMACKey: the version's HMAC key (an hmac key's own key)."""
    p.check_usable()
    if version < 0:
        raise UserError("key version does not exist (cannot be negative)")
    if version > p.latest_version:
        raise UserError(f"key version does not exist; latest key version is {p.latest_version}")
    entry = p.keys.get(version)
    if entry is None or version < p.min_decryption_version:
        raise UserError("no such key version")
    key = entry.key if p.type == "hmac" else entry.hmac_key
    if not key:
        raise UserError("no HMAC key exists for that key version")
    return key


def hmac_items(d: FieldData, single: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """(items, is_batch): ``batch_input`` as a list of maps, or the one item made of the fields."""
    raw = d.raw.get("batch_input")
    if raw is None:
        return [single], False
    if not isinstance(raw, list):
        raise InvalidRequest(f"failed to parse batch input: source data must be an array or slice, got {go_type(raw)}")
    from strongroom.engines.transit.crypt import MAX_BATCH

    if len(raw) > MAX_BATCH:
        raise InvalidRequest(f"batch_input has {len(raw)} items; at most {MAX_BATCH} are accepted per request")
    if not raw:
        raise InvalidRequest("missing batch input to process")
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not all(isinstance(v, str) for v in item.values()):
            raise InvalidRequest(f"failed to parse batch input: [{i}] expected a map of strings")
    return raw, True


async def hmac_input(b: TransitBackend, req: Request, d: FieldData) -> Response | None:
    version = d.get("key_version")
    algorithm = d.get("urlalgorithm") or d.get("algorithm")
    p = await b.load(storage_of(req), d.get("name"))
    if p is None:
        raise InvalidRequest("encryption key not found")
    if version == 0:
        version = p.latest_version
    elif version != p.latest_version and 0 < version < p.min_encryption_version:
        raise InvalidRequest("cannot generate HMAC: version is too old (disallowed by policy)")
    try:
        key = hmac_key(p, version)
    except UserError as e:
        raise InvalidRequest(str(e)) from None
    fn = HASHES.get(algorithm)
    if fn is None:
        raise InvalidRequest(f'unsupported algorithm "{algorithm}"')
    if d.raw.get("batch_input") is None and not d.has("input"):
        raise InvalidRequest("missing input for HMAC")
    items, batch = hmac_items(d, {"input": d.get("input")})
    results: list[dict[str, Any]] = []
    for item in items:
        out: dict[str, Any] = {}
        if "input" not in item:
            out["error"] = "missing input for HMAC"
        else:
            try:
                data = b64decode(item["input"])
            except Base64Error as e:
                out["error"] = f"unable to decode input as base64: {e}"
            else:
                mac = hmac.new(key, data, fn).digest()
                out["hmac"] = f"vault:v{version}:{b64encode(mac)}"
        out["reference"] = item.get("reference", "")
        results.append(out)
    if not batch:
        if "error" in results[0]:
            raise InvalidRequest(results[0]["error"])
        return Response(data={"hmac": results[0]["hmac"]})
    return Response(data={"batch_results": results})


def verify_hmac_item(p: Policy, fn: Callable[..., Any], item: dict[str, Any]) -> dict[str, Any]:
    """One HMAC verification (OpenBao's pathHMACVerify loop body): {"valid": True} or {"error": ...}."""
    if "input" not in item:
        return {"error": "missing input"}
    try:
        data = b64decode(item["input"])
    except Base64Error as e:
        return {"error": f"unable to decode input as base64: {e}"}
    mac = item.get("hmac")
    if mac is None:
        return {"error": "missing hmac"}
    if not mac.startswith("vault:v"):
        return {"error": "invalid HMAC to verify: no prefix"}
    ver_text, sep, body = mac[len("vault:v"):].partition(":")
    if not sep:
        return {"error": "invalid HMAC: wrong number of fields"}
    version = go_atoi(ver_text)
    if version is None:
        return {"error": "invalid HMAC: version number could not be decoded"}
    try:
        expected = b64decode(body)
    except Base64Error as e:
        return {"error": f"unable to decode verification HMAC as base64: {e}"}
    if version > p.latest_version:
        return {"error": "invalid HMAC: version is too new"}
    if p.min_decryption_version > 0 and version < p.min_decryption_version:
        return {"error": "cannot verify HMAC: version is too old (disallowed by policy)"}
    try:
        key = hmac_key(p, version)
    except UserError as e:
        return {"error": str(e)}
    valid = hmac.compare_digest(hmac.new(key, data, fn).digest(), expected)
    return {"valid": True} if valid else {}


async def verify_hmac(p: Policy, d: FieldData, algorithm: str) -> Response:
    fn = HASHES.get(algorithm)
    if fn is None:
        raise InvalidRequest(f'invalid hash algorithm "{algorithm}"')
    items, batch = hmac_items(d, {"input": d.get("input"), "hmac": d.get("hmac")})
    results = []
    for item in items:
        out = verify_hmac_item(p, fn, item)
        out["reference"] = item.get("reference", "")
        results.append(out)
    if not batch:
        if "error" in results[0]:
            raise InvalidRequest(results[0]["error"])
        return Response(data={"valid": bool(results[0].get("valid"))})
    return Response(data={"batch_results": results})
