"""sys/generate-root-token/* and sys/decode-token: OpenBao's authenticated root token generation.

The same ceremony as the unauthenticated sys/generate-root/* (http/ceremonies.py) and the same
state (:class:`strongroom.core.ceremonies.Ceremonies`), reached through the pipeline so it takes a
token, ACL checks and audit. The ``bao operator generate-root`` command of OpenBao 2.x uses these.
"""

from __future__ import annotations

import secrets
import string
from typing import TYPE_CHECKING, Any

from strongroom.barrier.seal import parse_key_share
from strongroom.core.ceremonies import ROOT_TOKEN_LENGTH, decode_token
from strongroom.errors import InvalidRequest
from strongroom.framework import Field, FieldData, FieldType, Op, Path
from strongroom.logical import Request, Response

if TYPE_CHECKING:
    from strongroom.core.system import SystemBackend

_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_STATUS_KEYS = ("complete", "otp", "otp_length", "progress", "required", "started")
_UPDATE_KEYS = ("complete", "encoded_token", "nonce", "pgp_fingerprint", "progress", "required", "started")


def paths() -> list[Path[SystemBackend]]:
    return [
        Path("generate-root-token/attempt",
             fields={"otp": Field(FieldType.STRING, "One-time password the new token is XORed with."),
                     "pgp_key": Field(FieldType.STRING, "PGP key to encrypt the token with (not supported yet).")},
             operations={Op.READ: status, Op.UPDATE: init, Op.DELETE: cancel},
             synopsis="Reads status, initializes, or cancels a root token generation."),
        Path("generate-root-token/update",
             fields={"key": Field(FieldType.STRING, "One unseal key share."),
                     "nonce": Field(FieldType.STRING, "Nonce of the attempt.")},
             operations={Op.UPDATE: update}, synopsis="Provide one unseal key share."),
        Path("decode-token",
             fields={"encoded_token": Field(FieldType.STRING, "The encoded token."),
                     "otp": Field(FieldType.STRING, "The OTP used for encoding.")},
             operations={Op.UPDATE: decode}, unauthenticated=True,
             synopsis="Decode an encoded root token with its OTP."),
    ]


def _status_body(full: dict[str, Any]) -> dict[str, Any]:
    body = {k: full[k] for k in _STATUS_KEYS}
    if full["started"]:
        body["nonce"] = full["nonce"]
        body["pgp_fingerprint"] = full["pgp_fingerprint"]
    return body


async def status(b: SystemBackend, req: Request, d: FieldData) -> Response:
    return Response(data=_status_body(await b.parts.ceremonies.root_status()))


async def init(b: SystemBackend, req: Request, d: FieldData) -> Response:
    otp, generated = d.get("otp") or "", ""
    if not otp:
        if d.get("pgp_key"):
            raise InvalidRequest("PGP-encrypted root tokens are not supported yet")
        otp = generated = "".join(secrets.choice(_BASE62) for _ in range(ROOT_TOKEN_LENGTH))
    await b.parts.ceremonies.root_init(otp)
    return Response(data=_status_body(await b.parts.ceremonies.root_status(generated)))


async def cancel(b: SystemBackend, req: Request, d: FieldData) -> None:
    await b.parts.ceremonies.root_cancel()


async def update(b: SystemBackend, req: Request, d: FieldData) -> Response:
    nonce, key = d.get("nonce") or "", d.get("key") or ""
    if not nonce:
        raise InvalidRequest("nonce is required")
    if not key:
        raise InvalidRequest("key is required")
    full = await b.parts.ceremonies.root_update(parse_key_share(key), nonce)
    return Response(data={k: full[k] for k in _UPDATE_KEYS})


async def decode(b: SystemBackend, req: Request, d: FieldData) -> Response:
    encoded, otp = d.get("encoded_token") or "", d.get("otp") or ""
    if not encoded or not otp:
        raise InvalidRequest("provided 'encoded_token' or 'otp' is empty")
    return Response(data={"token": decode_token(encoded, otp)})
