"""sign/NAME(/ALG) and verify/NAME(/ALG): signatures (signing.py) and HMAC verification (misc.py).

Batches answer ``batch_results`` with per-item errors, as OpenBao. Where OpenBao answers a
caller's mistake with a 500 ("1 error occurred: ... version is higher than the latest key
version"), Strongroom answers 400 with the message alone.
"""

from __future__ import annotations

from typing import Any

from strongroom.engines.transit.backend import TransitBackend, storage_of
from strongroom.engines.transit import signing
from strongroom.engines.transit.gob64 import Base64Error, b64decode
from strongroom.engines.transit.keytypes import SIGNING, InternalError, UserError, go_atoi
from strongroom.engines.transit.misc import hmac_items, verify_hmac
from strongroom.engines.transit.policy import Policy
from strongroom.errors import InvalidRequest
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response, name_regex

NAME = Field(FieldType.STRING, "Name of the key")
SIGNING_FIELDS = {
    "name": NAME,
    "input": Field(FieldType.STRING, "The base64-encoded input data"),
    "context": Field(FieldType.STRING, "Base64 context for key derivation."),
    "algorithm": Field(FieldType.STRING, "Deprecated: use hash_algorithm.", default="sha2-256"),
    "hash_algorithm": Field(FieldType.STRING, "Hash algorithm."),
    "urlalgorithm": Field(FieldType.STRING, "Hash algorithm (URL)."),
    "prehashed": Field(FieldType.BOOL, "The input is already hashed."),
    "signature_algorithm": Field(FieldType.STRING, 'RSA: "pss" (default) or "pkcs1v15".'),
    "marshaling_algorithm": Field(FieldType.STRING, '"asn1" (default) or "jws".', default="asn1"),
    "salt_length": Field(FieldType.STRING, 'RSA PSS salt length: "auto", "hash" or an int.', default="auto"),
    "batch_input": Field(FieldType.ANY, "A list of items to process in one request."),
}


def paths() -> list[Path[TransitBackend]]:
    return [
        Path(
            "sign/" + name_regex("name") + r"(?:/(?P<urlalgorithm>.+))?",
            fields={**SIGNING_FIELDS,
                    "key_version": Field(FieldType.INT, "The version of the key to use (0: latest).")},
            operations={Op.UPDATE: sign},
            synopsis="Generate a signature for input data using the named key",
        ),
        Path(
            "verify/" + name_regex("name") + r"(?:/(?P<urlalgorithm>.+))?",
            fields={**SIGNING_FIELDS,
                    "hmac": Field(FieldType.STRING, "The HMAC to verify (vault:vN:...)."),
                    "signature": Field(FieldType.STRING, "The signature to verify (vault:vN:...).")},
            operations={Op.UPDATE: verify},
            synopsis="Verify a signature or HMAC for input data created using the named key",
        ),
    ]


def verify_kind(d: FieldData) -> str:
    """"hmac" or "signature": what the request asks to verify (OpenBao's checks and wording)."""
    batch = d.raw.get("batch_input")
    items: list[Any]
    if batch is not None:
        if not isinstance(batch, list):
            raise InvalidRequest("failed to parse batch input: source data must be an array or slice")
        if not batch:
            raise InvalidRequest("missing batch input to process")
        items = batch
    else:
        items = [{k: "" for k in ("signature", "hmac") if d.has(k)}]
    sig = any(isinstance(i, dict) and "signature" in i for i in items)
    mac = any(isinstance(i, dict) and "signature" not in i and "hmac" in i for i in items)
    missing = any(not isinstance(i, dict) or ("signature" not in i and "hmac" not in i) for i in items)
    if batch is None:
        # A signature wins over an hmac given with it, as in OpenBao.
        if not sig and not mac:
            raise InvalidRequest("neither a 'signature' nor an 'hmac' were given to verify")
    if sig and mac:
        raise InvalidRequest("elements of batch_input must all provide 'signature' or all provide 'hmac'")
    if missing and sig:
        raise InvalidRequest("some elements of batch_input are missing 'signature'")
    if missing and mac:
        raise InvalidRequest("some elements of batch_input are missing 'hmac'")
    if missing:
        raise InvalidRequest("no batch_input elements have 'signature' or 'hmac'")
    return "hmac" if mac else "signature"


async def verify(b: TransitBackend, req: Request, d: FieldData) -> Response | None:
    kind = verify_kind(d)
    p = await b.load(storage_of(req), d.get("name"))
    if kind == "hmac":
        algorithm = d.get("urlalgorithm") or d.get("hash_algorithm") or d.get("algorithm") or "sha2-256"
        if p is None:
            raise InvalidRequest("encryption key not found")
        return await verify_hmac(p, d, algorithm)
    opts = signing_options(d)
    if p is None:
        raise InvalidRequest("signature verification key not found")
    if p.type not in SIGNING:
        raise InvalidRequest(f"key type {p.type} does not support verification")
    check_none(opts)
    items, batch = hmac_items(d, {"input": d.get("input"), "signature": d.get("signature"),
                                  "context": d.get("context")})
    results: list[dict[str, Any]] = []
    for item in items:
        out: dict[str, Any] = {"valid": False}
        try:
            data, context = item_input(p, item, opts)
            if "signature" not in item:
                raise UserError("missing signature")
            out["valid"] = signing.verify(p, context, data, item["signature"], **opts.as_kwargs())
        except (UserError, InternalError) as e:
            out["error"] = str(e)
        out["reference"] = item.get("reference", "")
        results.append(out)
    if not batch:
        if "error" in results[0]:
            raise InvalidRequest(results[0]["error"])
        return Response(data={"valid": results[0]["valid"]})
    return Response(data={"batch_results": results})


class SigningOptions:
    __slots__ = ("hash_algorithm", "marshaling", "prehashed", "salt_length", "signature_algorithm")

    def __init__(self, hash_algorithm: str, marshaling: str, prehashed: bool, salt_length: int,
                 signature_algorithm: str) -> None:
        self.hash_algorithm = hash_algorithm
        self.marshaling = marshaling
        self.prehashed = prehashed
        self.salt_length = salt_length
        self.signature_algorithm = signature_algorithm

    def as_kwargs(self) -> dict[str, Any]:
        return {"hash_algorithm": self.hash_algorithm, "marshaling": self.marshaling,
                "salt_length": self.salt_length, "signature_algorithm": self.signature_algorithm}


def signing_options(d: FieldData) -> SigningOptions:
    """The request's hash/marshaling/salt options, checked with OpenBao's wording."""
    hash_algorithm = d.get("urlalgorithm") or d.get("hash_algorithm") or d.get("algorithm") or "sha2-256"
    if hash_algorithm not in signing.HASH_ALGORITHMS:
        raise InvalidRequest(f'invalid hash algorithm "{hash_algorithm}"')
    marshaling = d.get("marshaling_algorithm")
    if marshaling not in ("asn1", "jws"):
        raise InvalidRequest(f'invalid marshaling type "{marshaling}"')
    raw_salt = d.get("salt_length").lower()
    if raw_salt == "auto":
        salt = signing.SALT_AUTO
    elif raw_salt == "hash":
        salt = signing.SALT_HASH
    else:
        value = go_atoi(raw_salt)
        if value is None:
            raise InvalidRequest(f"salt length neither 'auto', 'hash', nor an int: {d.get('salt_length')}")
        if value < signing.SALT_HASH:
            raise InvalidRequest(f"salt length is invalid: {value}")
        salt = value
    return SigningOptions(hash_algorithm, marshaling, d.get("prehashed"), salt, d.get("signature_algorithm"))


def check_none(opts: SigningOptions) -> None:
    if opts.hash_algorithm == "none" and (not opts.prehashed or opts.signature_algorithm != "pkcs1v15"):
        raise InvalidRequest("hash_algorithm=none requires both prehashed=true and signature_algorithm=pkcs1v15")


def item_input(p: Policy, item: dict[str, Any], opts: SigningOptions) -> tuple[bytes, bytes]:
    """(the bytes to sign or verify, the decoded context) of one item."""
    if "input" not in item:
        raise UserError("missing input")
    try:
        data = b64decode(item["input"])
    except Base64Error as e:
        raise UserError(f"unable to decode input as base64: {e}") from None
    if p.type != "ed25519" and not opts.prehashed:
        data = signing.digest(opts.hash_algorithm, data)
    context = b""
    if item.get("context"):
        try:
            context = b64decode(item["context"])
        except Base64Error:
            raise UserError("failed to base64-decode context") from None
    return data, context


async def sign(b: TransitBackend, req: Request, d: FieldData) -> Response | None:
    opts = signing_options(d)
    p = await b.load(storage_of(req), d.get("name"))
    if p is None:
        raise InvalidRequest("signing key not found")
    if p.type not in SIGNING:
        raise InvalidRequest(f"key type {p.type} does not support signing")
    check_none(opts)
    items, batch = hmac_items(d, {"input": d.get("input"), "context": d.get("context")})
    version = d.get("key_version")
    results: list[dict[str, Any]] = []
    for item in items:
        out: dict[str, Any] = {}
        try:
            data, context = item_input(p, item, opts)
            sig, used, public = signing.sign(p, version, context, data, **opts.as_kwargs())
        except (UserError, InternalError) as e:
            out = {"key_version": 0, "error": str(e)}
        else:
            out = {"signature": sig, "key_version": used}
            if public:
                out["publickey"] = public
        out["reference"] = item.get("reference", "")
        results.append(out)
    if not batch:
        first = results[0]
        if "error" in first:
            raise InvalidRequest(first["error"])
        data_out = {"signature": first["signature"], "key_version": first["key_version"]}
        if "publickey" in first:
            data_out["public_key"] = first["publickey"]
        return Response(data=data_out)
    return Response(data={"batch_results": results})
