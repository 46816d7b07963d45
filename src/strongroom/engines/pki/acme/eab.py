"""External account binding (RFC 8555 §7.3.4) as Vault manages it.

An operator creates a binding with ``[issuer/REF/][roles/ROLE/]acme/new-eab`` (authenticated): an
id and an HMAC key (``vault-eab-0-`` + 32 random bytes, base64url; the whole string, base64url
decoded, is the HMAC key, as in Vault), bound to that one directory. ``LIST eab`` shows them
without keys, ``DELETE eab/ID`` removes one. A client creating an account passes
``externalAccountBinding``: a JWS (HS256/384/512) whose kid is the id, url the new-account URL and
payload the account's JWK. A binding is used once: it is deleted when the account is created.

``eab_policy``: ``not-required`` (a binding given is still checked), ``new-account-required``
(new accounts need one), ``always-required`` (also every request of an account created without).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from typing import TYPE_CHECKING, Any

import orjson

from strongroom.engines.pki.acme import jws as jwslib
from strongroom.engines.pki.acme import store
from strongroom.engines.pki.acme.problems import AcmeProblem, malformed, unauthorized
from strongroom.errors import NotFound
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response

if TYPE_CHECKING:
    from strongroom.engines.pki.acme.ca import AcmeCA
    from strongroom.logical import Storage

EAB = "acme/eab/"
KEY_PREFIX = "vault-eab-0-"
_HMAC = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
_NAME = r"\w(?:[\w\-.@]*\w)?"
_SCOPE_PREFIXES = ["", f"roles/(?P<role>{_NAME})/", f"issuer/(?P<issuer_ref>{_NAME})/",
                   f"issuer/(?P<issuer_ref>{_NAME})/roles/(?P<role>{_NAME})/"]


def _info(entry: dict[str, Any]) -> dict[str, Any]:
    return {"acme_directory": entry["acme_directory"], "created_on": entry["created_on"],
            "key_type": entry["key_type"]}


async def new_eab(b: AcmeCA, req: Request, d: FieldData) -> Response:
    assert req.storage is not None
    eab_id = str(uuid.uuid4())
    entry = {"id": eab_id, "key_type": "hs", "key": KEY_PREFIX + jwslib.b64e(secrets.token_bytes(32)),
             "acme_directory": req.path.removesuffix("new-eab") + "directory",
             "created_on": store.rfc3339(time.time())}
    await store.put(req.storage, EAB + eab_id, entry)
    return Response(data={"id": eab_id, "key_type": "hs", "key": entry["key"],
                          "acme_directory": entry["acme_directory"], "created_on": entry["created_on"]})


async def list_eab(b: AcmeCA, req: Request, d: FieldData) -> Response:
    assert req.storage is not None
    keys = sorted(await req.storage.list(EAB))
    info = {}
    for k in keys:
        entry = await store.get(req.storage, EAB + k)
        if entry is not None:
            info[k] = _info(entry)
    if not info:
        raise NotFound()  # an empty LIST answers 404, as in Vault
    return Response(data={"keys": list(info), "key_info": info})


async def delete_eab(b: AcmeCA, req: Request, d: FieldData) -> Response | None:
    assert req.storage is not None
    key = EAB + str(d.get("key_id"))
    if await req.storage.get(key) is None:
        raise NotFound()
    await req.storage.delete(key)
    return None


def eab_paths() -> list[Path[AcmeCA]]:
    return [
        *(Path(f"{prefix}acme/new-eab", operations={Op.UPDATE: new_eab},
               fields={"role": Field(FieldType.STRING), "issuer_ref": Field(FieldType.STRING)},
               synopsis="Create an external account binding for this ACME directory.")
          for prefix in _SCOPE_PREFIXES),
        Path("eab/?", operations={Op.LIST: list_eab}, synopsis="External account bindings not yet used."),
        Path(f"eab/(?P<key_id>{_NAME})", operations={Op.DELETE: delete_eab},
             fields={"key_id": Field(FieldType.STRING)}, synopsis="Delete an unused external account binding."),
    ]


async def check_binding(storage: Storage, binding: Any, *, url: str, directory: str,
                        account_jwk: dict[str, str]) -> str:
    """Verify an ``externalAccountBinding`` JWS for a new account; the binding's id. The caller
    deletes the binding once the account exists."""
    inner = _parse(binding)
    header = inner["header"]
    eab_id = header.get("kid")
    if not isinstance(eab_id, str) or "/" in eab_id or not eab_id:
        raise malformed("externalAccountBinding has no kid")
    if header.get("url") != url:
        raise malformed("externalAccountBinding url is not the new-account URL")
    if "nonce" in header or "jwk" in header:
        raise malformed("externalAccountBinding must carry no nonce and no jwk")
    entry = await store.get(storage, EAB + eab_id)
    if entry is None:
        raise unauthorized("unknown or already used external account binding")
    if entry["acme_directory"] != directory + "directory":
        raise unauthorized("the external account binding belongs to another ACME directory")
    key = jwslib.b64d(entry["key"], "eab key")
    expected = hmac.new(key, f"{inner['protected']}.{inner['payload']}".encode(), _HMAC[header["alg"]]).digest()
    if not hmac.compare_digest(expected, inner["signature"]):
        raise unauthorized("externalAccountBinding signature is invalid")
    bound = jwslib.canonical_jwk(inner["body"])
    if jwslib.thumbprint(bound) != jwslib.thumbprint(account_jwk):
        raise unauthorized("externalAccountBinding does not bind this account key")
    return eab_id


def _parse(binding: Any) -> dict[str, Any]:
    if not isinstance(binding, dict) or set(binding) != {"protected", "payload", "signature"}:
        raise malformed("externalAccountBinding is not a flattened JWS")
    if not all(isinstance(binding[k], str) for k in binding):
        raise malformed("externalAccountBinding is not a flattened JWS")
    try:
        header = orjson.loads(jwslib.b64d(binding["protected"], "externalAccountBinding header"))
        body = orjson.loads(jwslib.b64d(binding["payload"], "externalAccountBinding payload"))
    except orjson.JSONDecodeError:
        raise malformed("externalAccountBinding is not JSON") from None
    if not isinstance(header, dict) or header.get("alg") not in _HMAC:
        raise AcmeProblem("badSignatureAlgorithm", "externalAccountBinding must use HS256, HS384 or HS512",
                          algorithms=list(_HMAC))
    return {"header": header, "body": body, "protected": binding["protected"], "payload": binding["payload"],
            "signature": jwslib.b64d(binding["signature"], "externalAccountBinding signature")}
