"""The key ceremonies' HTTP endpoints: sys/rekey/{init,update,verify} and
sys/generate-root/{attempt,update}.

Like sys/unseal they take no token: the authority is the threshold of unseal key shares. They need
an unsealed server (503 "Vault is sealed" otherwise). The state machines are
:mod:`strongroom.core.ceremonies`; these handlers parse, check the method and pick the body.
"""

from __future__ import annotations

import secrets
import string
from typing import TYPE_CHECKING, Any

from strongroom.barrier.seal import parse_key_share
from strongroom.core.ceremonies import ROOT_TOKEN_LENGTH
from strongroom.errors import InvalidRequest, UnsupportedOperation
from strongroom.framework.fields import Field, FieldData, FieldType
from strongroom.http.logical import parse_body
from strongroom.http.sys import Handler

if TYPE_CHECKING:
    from strongroom.core import Core

_WRITE = ("PUT", "POST")
_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_KEY_FIELDS = {"key": Field(FieldType.STRING), "nonce": Field(FieldType.STRING)}


def _key_and_nonce(body: bytes) -> tuple[bytes, str]:
    d = FieldData(parse_body(body), _KEY_FIELDS)
    key = d.get("key") or ""
    if not key:
        raise InvalidRequest("'key' must be specified in request body as JSON")
    return parse_key_share(key), d.get("nonce") or ""


# -- rekey ---------------------------------------------------------------------------------------

async def rekey_init(core: Core, method: str, query: dict[str, str], headers: dict[str, str],
                     body: bytes) -> tuple[int, Any]:
    c = core.ceremonies
    if method == "GET":
        return 200, await c.rekey_status()
    if method == "DELETE":
        await c.rekey_cancel()
        return 204, None
    if method not in _WRITE:
        raise UnsupportedOperation()
    d = FieldData(parse_body(body), {
        "secret_shares": Field(FieldType.INT), "secret_threshold": Field(FieldType.INT),
        "pgp_keys": Field(FieldType.COMMA_STRING_SLICE), "backup": Field(FieldType.BOOL),
        "require_verification": Field(FieldType.BOOL),
    })
    pgp_keys = d.get("pgp_keys") or []
    if d.get("backup") and not pgp_keys:
        raise InvalidRequest("cannot request a backup of the new keys without providing PGP keys for encryption")
    if pgp_keys and len(pgp_keys) != d.get("secret_shares"):
        raise InvalidRequest("incorrect number of PGP keys for rekey")
    if pgp_keys:
        raise InvalidRequest("PGP-encrypted key shares are not supported yet")
    return 200, await c.rekey_init(d.get("secret_shares"), d.get("secret_threshold"),
                                   d.get("require_verification"))


async def rekey_update(core: Core, method: str, query: dict[str, str], headers: dict[str, str],
                       body: bytes) -> tuple[int, Any]:
    core.require_unsealed()
    key, nonce = _key_and_nonce(body)
    done = await core.ceremonies.rekey_update(key, nonce)
    return 200, done if done is not None else await core.ceremonies.rekey_status()


async def rekey_verify(core: Core, method: str, query: dict[str, str], headers: dict[str, str],
                       body: bytes) -> tuple[int, Any]:
    c = core.ceremonies
    if method == "GET":
        return 200, await c.verify_status()
    if method == "DELETE":
        return 200, await c.verify_restart()
    if method not in _WRITE:
        raise UnsupportedOperation()
    core.require_unsealed()
    key, nonce = _key_and_nonce(body)
    done = await c.rekey_verify(key, nonce)
    return 200, done if done is not None else await c.verify_status()


# -- root token generation -----------------------------------------------------------------------

async def generate_root_attempt(core: Core, method: str, query: dict[str, str], headers: dict[str, str],
                                body: bytes) -> tuple[int, Any]:
    c = core.ceremonies
    if method == "GET":
        return 200, await c.root_status()
    if method == "DELETE":
        await c.root_cancel()
        return 204, None
    if method not in _WRITE:
        raise UnsupportedOperation()
    d = FieldData(parse_body(body), {"otp": Field(FieldType.STRING), "pgp_key": Field(FieldType.STRING)})
    otp, generated = d.get("otp") or "", ""
    if not otp:
        if d.get("pgp_key"):
            raise InvalidRequest("PGP-encrypted root tokens are not supported yet")
        # No OTP given: make one and hand it back in this response only (Vault does the same).
        otp = generated = "".join(secrets.choice(_BASE62) for _ in range(ROOT_TOKEN_LENGTH))
    await c.root_init(otp)
    return 200, await c.root_status(generated)


async def generate_root_update(core: Core, method: str, query: dict[str, str], headers: dict[str, str],
                               body: bytes) -> tuple[int, Any]:
    core.require_unsealed()
    key, nonce = _key_and_nonce(body)
    return 200, await core.ceremonies.root_update(key, nonce)


REKEY: dict[str, Handler] = {
    "sys/rekey/init": rekey_init,
    "sys/rekey/update": rekey_update,
    "sys/rekey/verify": rekey_verify,
}
GENERATE_ROOT: dict[str, Handler] = {
    "sys/generate-root/attempt": generate_root_attempt,
    "sys/generate-root/update": generate_root_update,
}
ROUTES: dict[str, Handler] = {**REKEY, **GENERATE_ROOT}
#: What the listener switches disable_unauthed_{rekey,generate_root}_endpoints turn off.
REKEY_ROUTES = frozenset(REKEY)
GENERATE_ROOT_ROUTES = frozenset(GENERATE_ROOT)
