"""verify/NAME(/ALG): HMAC verification (``hmac``)."""

from __future__ import annotations

from typing import Any

from strongroom.engines.transit.backend import TransitBackend, storage_of
from strongroom.engines.transit.misc import verify_hmac
from strongroom.errors import InvalidRequest
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response, name_regex

NAME = Field(FieldType.STRING, "Name of the key")


def paths() -> list[Path[TransitBackend]]:
    return [
        Path(
            "verify/" + name_regex("name") + r"(?:/(?P<urlalgorithm>.+))?",
            fields={"name": NAME,
                    "input": Field(FieldType.STRING, "The base64-encoded input data to verify"),
                    "context": Field(FieldType.STRING, "Base64 context for key derivation."),
                    "hmac": Field(FieldType.STRING, "The HMAC to verify (vault:vN:...)."),
                    "signature": Field(FieldType.STRING, "The signature to verify (vault:vN:...)."),
                    "algorithm": Field(FieldType.STRING, "Deprecated: use hash_algorithm.", default="sha2-256"),
                    "hash_algorithm": Field(FieldType.STRING, "Hash algorithm."),
                    "urlalgorithm": Field(FieldType.STRING, "Hash algorithm (URL)."),
                    "batch_input": Field(FieldType.ANY, "A list of items to verify in one request.")},
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
    raise InvalidRequest("signature verification is not supported")
