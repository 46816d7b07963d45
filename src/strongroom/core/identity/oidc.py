"""Identity tokens: the identity store as an OIDC provider of signed ID tokens (Vault's
identity/oidc/*). Keys sign, roles say which key and claims, a token of an entity asks
``oidc/token/ROLE`` for a JWT about itself; relying parties verify it with the keys published at
``oidc/.well-known/keys`` (found through ``oidc/.well-known/openid-configuration``) or ask
``oidc/introspect``.

Storage (the identity mount's own view, encrypted by the barrier)::

    oidc/config        {"issuer": ...}
    oidc/key/<name>    key settings and its signing keys (current first, older ones until they
                       stop verifying: verification_ttl after rotation)
    oidc/role/<name>   role settings

Signing uses `cryptography` (RS256/384/512, ES256/384/512, EdDSA). Keys rotate when a token is
issued after ``rotation_period`` or on ``key/<name>/rotate``.
"""

from __future__ import annotations

import base64
import re
import secrets
import string
import time
import uuid
from typing import TYPE_CHECKING, Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response, name_regex
from strongroom.logical import Storage

if TYPE_CHECKING:
    from strongroom.core.identity.backend import IdentityBackend

ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "EdDSA")
_HASH: dict[str, type[hashes.HashAlgorithm]] = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
_CURVE: dict[str, tuple[ec.EllipticCurve, int, str]] = {
    "ES256": (ec.SECP256R1(), 32, "P-256"), "ES384": (ec.SECP384R1(), 48, "P-384"),
    "ES512": (ec.SECP521R1(), 66, "P-521")}
DEFAULT_PERIOD = 86400
_RESERVED_CLAIMS = ("iat", "aud", "exp", "iss", "sub", "namespace", "nbf", "auth_time")


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def _int_b64(n: int, size: int = 0) -> str:
    return _b64(n.to_bytes(size or (n.bit_length() + 7) // 8, "big"))


# -- keys -----------------------------------------------------------------------------------------
def _generate(alg: str) -> bytes:
    key: Any
    if alg.startswith(("RS", "PS")):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif alg in _CURVE:
        key = ec.generate_private_key(_CURVE[alg][0])
    else:
        key = ed25519.Ed25519PrivateKey.generate()
    return bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))


def _load(pem: str) -> Any:
    return serialization.load_pem_private_key(pem.encode(), password=None)


def _sign(alg: str, pem: str, data: bytes) -> bytes:
    key = _load(pem)
    if alg.startswith("RS"):
        return bytes(key.sign(data, padding.PKCS1v15(), _HASH[alg[2:]]()))
    if alg in _CURVE:
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(_HASH[alg[2:]]())))
        size = _CURVE[alg][1]
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    return bytes(key.sign(data))


def _verify(alg: str, pem: str, data: bytes, sig: bytes) -> bool:
    pub = _load(pem).public_key()
    try:
        if alg.startswith("RS"):
            pub.verify(sig, data, padding.PKCS1v15(), _HASH[alg[2:]]())
        elif alg in _CURVE:
            size = _CURVE[alg][1]
            if len(sig) != 2 * size:
                return False
            der = encode_dss_signature(int.from_bytes(sig[:size], "big"), int.from_bytes(sig[size:], "big"))
            pub.verify(der, data, ec.ECDSA(_HASH[alg[2:]]()))
        else:
            pub.verify(sig, data)
    except InvalidSignature:
        return False
    return True


def _jwk(alg: str, kid: str, pem: str) -> dict[str, Any]:
    pub = _load(pem).public_key()
    out: dict[str, Any] = {"use": "sig", "kid": kid, "alg": alg}
    if isinstance(pub, rsa.RSAPublicKey):
        nums = pub.public_numbers()
        out.update(kty="RSA", n=_int_b64(nums.n), e=_int_b64(nums.e))
    elif isinstance(pub, ec.EllipticCurvePublicKey):
        _, size, crv = _CURVE[alg]
        pn = pub.public_numbers()
        out.update(kty="EC", crv=crv, x=_int_b64(pn.x, size), y=_int_b64(pn.y, size))
    else:
        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        out.update(kty="OKP", crv="Ed25519", x=_b64(raw))
    return out


async def _get(st: Storage, key: str) -> dict[str, Any] | None:
    raw = await st.get(key)
    return dict(orjson.loads(raw)) if raw is not None else None


async def _put(st: Storage, key: str, value: dict[str, Any]) -> None:
    await st.put(key, orjson.dumps(value))


def _storage(req: Request) -> Storage:
    if req.storage is None:
        raise InvalidRequest("no storage")
    return req.storage


def _new_signing_key(alg: str) -> dict[str, Any]:
    return {"kid": str(uuid.uuid4()), "pem": _generate(alg).decode(), "created": time.time(), "expires": 0.0}


def _rotate(key: dict[str, Any], now: float) -> None:
    for old in key["keys"]:
        if not old["expires"]:
            old["expires"] = now + key["verification_ttl"]
    key["keys"] = [_new_signing_key(key["algorithm"]), *[k for k in key["keys"] if k["expires"] > now]]


# -- handlers -------------------------------------------------------------------------------------
async def _issuer(b: IdentityBackend, st: Storage) -> str:
    cfg = await _get(st, "oidc/config") or {}
    base = cfg.get("issuer") or b.api_addr or "http://127.0.0.1:8200"
    return str(base).rstrip("/") + "/v1/identity/oidc"


async def read_config(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    cfg = await _get(_storage(req), "oidc/config") or {}
    return Response(data={"issuer": cfg.get("issuer", "")})


async def write_config(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    issuer = d.get("issuer") or ""
    if issuer and not issuer.startswith(("http://", "https://")):
        raise InvalidRequest("invalid issuer, which must include only a scheme, host, and optional port "
                             "(e.g. https://example.com:8200)")
    await _put(_storage(req), "oidc/config", {"issuer": issuer})
    return None


async def write_key(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    st = _storage(req)
    name = d.get("name")
    key = await _get(st, f"oidc/key/{name}") or {"algorithm": "RS256", "rotation_period": DEFAULT_PERIOD,
                                                "verification_ttl": DEFAULT_PERIOD, "allowed_client_ids": [],
                                                "keys": []}
    for f in ("rotation_period", "verification_ttl", "allowed_client_ids"):
        if d.has(f):
            key[f] = d.get(f)
    alg = d.get("algorithm") if d.has("algorithm") else key["algorithm"]
    if alg not in ALGORITHMS:
        raise InvalidRequest(f"unknown signing algorithm {alg!r}".replace("'", '"'))
    if key["rotation_period"] < 60:
        raise InvalidRequest("rotation_period must be at least one minute")
    if key["verification_ttl"] > 10 * key["rotation_period"]:
        raise InvalidRequest("verification_ttl cannot be longer than 10x rotation_period")
    if alg != key["algorithm"] or not key["keys"]:
        key["algorithm"] = alg
        _rotate(key, time.time())
    await _put(st, f"oidc/key/{name}", key)
    return None


async def read_key(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    key = await _get(_storage(req), f"oidc/key/{d.get('name')}")
    if key is None:
        raise NotFound()
    return Response(data={k: key[k] for k in ("algorithm", "allowed_client_ids", "rotation_period",
                                                "verification_ttl")})


async def delete_key(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    st = _storage(req)
    name = d.get("name")
    users = sorted([r for r in await st.list("oidc/role/")
                    if ((await _get(st, f"oidc/role/{r}")) or {}).get("key") == name])
    if users:
        raise InvalidRequest(f'unable to delete key "{name}" because it is currently referenced by these roles: '
                             + ", ".join(users))
    await st.delete(f"oidc/key/{name}")
    return None


async def rotate_key(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    st = _storage(req)
    key = await _get(st, f"oidc/key/{d.get('name')}")
    if key is None:
        raise NotFound()
    if d.has("verification_ttl"):
        key["verification_ttl"] = d.get("verification_ttl")
    _rotate(key, time.time())
    await _put(st, f"oidc/key/{d.get('name')}", key)
    return None


async def _list(st: Storage, prefix: str) -> Response:
    keys = sorted(await st.list(prefix))
    if not keys:
        raise NotFound()
    return Response(data={"keys": keys})


async def list_keys(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    return await _list(_storage(req), "oidc/key/")


async def list_roles(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    return await _list(_storage(req), "oidc/role/")


async def write_role(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    st = _storage(req)
    name = d.get("name")
    role = await _get(st, f"oidc/role/{name}") or {"key": "", "template": "", "ttl": DEFAULT_PERIOD,
                                                  "client_id": ""}
    for f in ("key", "template", "ttl", "client_id"):
        if d.has(f):
            role[f] = d.get(f)
    if not role["key"]:
        raise InvalidRequest("the key parameter is required")
    if await _get(st, f"oidc/key/{role['key']}") is None:
        raise InvalidRequest(f'key "{role["key"]}" does not exist')
    if role["template"]:
        _template_object(role["template"])
    if not role["client_id"]:
        role["client_id"] = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(26))
    await _put(st, f"oidc/role/{name}", role)
    return None


async def read_role(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    role = await _get(_storage(req), f"oidc/role/{d.get('name')}")
    if role is None:
        raise NotFound()
    return Response(data={"client_id": role["client_id"], "key": role["key"], "template": role["template"],
                          "ttl": role["ttl"]})


async def delete_role(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    await _storage(req).delete(f"oidc/role/{d.get('name')}")
    return None


_PLACEHOLDER = re.compile(r"\{\{\s*([\w.\-]+)\s*\}\}")


def _template_object(template: str, ctx: dict[str, Any] | None = None) -> dict[str, Any]:
    """The claims of a role's template (JSON with ``{{identity.entity.name}}``-style placeholders,
    each replaced by its JSON value, null when unknown; optionally base64-encoded)."""
    try:
        if not template.lstrip().startswith("{"):
            template = base64.b64decode(template, validate=True).decode()
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidRequest("error parsing template JSON: not JSON or base64-encoded JSON") from e

    def value(m: re.Match[str]) -> str:
        found: Any = ctx or {}
        for part in m.group(1).split("."):
            found = found.get(part) if isinstance(found, dict) else None
        return orjson.dumps(found).decode()

    try:
        obj = orjson.loads(_PLACEHOLDER.sub(value, template))
    except ValueError as e:
        raise InvalidRequest("error parsing template JSON: " + str(e).split("\n")[0]) from e
    if not isinstance(obj, dict):
        raise InvalidRequest("template must be a JSON object")
    bad = [k for k in obj if k in _RESERVED_CLAIMS]
    if bad:
        raise InvalidRequest(f'top level key "{bad[0]}" is reserved')
    return dict(obj)


async def issue_token(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    st = _storage(req)
    role_name = d.get("name")
    role = await _get(st, f"oidc/role/{role_name}")
    if role is None:
        raise InvalidRequest(f'role "{role_name}" not found')
    entity = b.store.resolve(req.entity_id) if req.entity_id else None
    if entity is None:
        raise InvalidRequest("no entity associated with the request's token")
    key = await _get(st, f"oidc/key/{role['key']}")
    if key is None:
        raise InvalidRequest(f'key "{role["key"]}" not found')
    allowed = key["allowed_client_ids"]
    if "*" not in allowed and role["client_id"] not in allowed:
        raise InvalidRequest(f'the key "{role["key"]}" does not list the client ID of the role "{role_name}" '
                             "as an allowed client ID")
    now = time.time()
    if now - key["keys"][0]["created"] >= key["rotation_period"]:
        _rotate(key, now)
        await _put(st, f"oidc/key/{role['key']}", key)
    signing = key["keys"][0]
    claims: dict[str, Any] = {"iss": await _issuer(b, st), "sub": entity.id, "aud": role["client_id"],
                              "iat": int(now), "exp": int(now) + int(role["ttl"]), "namespace": "root"}
    if role["template"]:
        groups = [g for gid in b.store.direct_groups(entity.id) + b.store.inherited_groups(entity.id)
                  if (g := b.store.groups.get(gid)) is not None]
        ctx = {"identity": {"entity": {"id": entity.id, "name": entity.name, "metadata": dict(entity.metadata),
                                       "groups": {"ids": [g.id for g in groups], "names": [g.name for g in groups]}}}}
        for k, v in _template_object(role["template"], ctx).items():
            if v is not None:
                claims[k] = v
    header = {"alg": key["algorithm"], "kid": signing["kid"]}
    signed = _b64(orjson.dumps(header)) + "." + _b64(orjson.dumps(claims))
    token = signed + "." + _b64(_sign(key["algorithm"], signing["pem"], signed.encode()))
    return Response(data={"client_id": role["client_id"], "token": token, "ttl": int(role["ttl"])})


async def _all_keys(st: Storage) -> list[tuple[str, dict[str, Any]]]:
    out = []
    now = time.time()
    for name in await st.list("oidc/key/"):
        key = await _get(st, f"oidc/key/{name}")
        if key is not None:
            out += [(key["algorithm"], k) for k in key["keys"] if not k["expires"] or k["expires"] > now]
    return out


async def introspect(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    st = _storage(req)
    token = d.get("token") or ""
    if not token:
        raise InvalidRequest("missing token")

    def inactive(why: str) -> Response:
        return _raw({"active": False, "error": why})

    try:
        head_b, body_b, sig_b = token.split(".")
        header, claims, sig = orjson.loads(_unb64(head_b)), orjson.loads(_unb64(body_b)), _unb64(sig_b)
    except (ValueError, TypeError):
        return inactive("error parsing token")
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return inactive("error parsing token")
    match = [(alg, k) for alg, k in await _all_keys(st) if k["kid"] == header.get("kid")]
    if not match or header.get("alg") != match[0][0] or not _verify(
            match[0][0], match[0][1]["pem"], f"{head_b}.{body_b}".encode(), sig):
        return inactive("error validating signature")
    if claims.get("iss") != await _issuer(b, st):
        return inactive("error validating claims: issuer mismatch")
    client_id = d.get("client_id") or ""
    if client_id and claims.get("aud") != client_id:
        return inactive("error validating claims: audience mismatch")
    if not isinstance(claims.get("exp"), int) or claims["exp"] < time.time():
        return inactive("error validating claims: token is expired")
    entity = b.store.resolve(str(claims.get("sub", "")))
    if entity is None or entity.disabled:
        return inactive("entity not found" if entity is None else "entity is disabled")
    return _raw({"active": True})


def _raw(body: dict[str, Any]) -> Response:
    """Vault answers introspection with the bare JSON object, not the usual envelope."""
    return Response(raw_status=200, raw_body=orjson.dumps(body), headers={"Cache-Control": "no-store"})


async def discovery(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    st = _storage(req)
    issuer = await _issuer(b, st)
    doc = {"issuer": issuer, "jwks_uri": issuer + "/.well-known/keys", "response_types_supported": ["id_token"],
           "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": list(ALGORITHMS)}
    return Response(raw_status=200, raw_body=orjson.dumps(doc), headers={"Cache-Control": "max-age=3600"})


async def jwks(b: IdentityBackend, req: Request, d: FieldData) -> Response | None:
    keys = [_jwk(alg, k["kid"], k["pem"]) for alg, k in await _all_keys(_storage(req))]
    return Response(raw_status=200, raw_body=orjson.dumps({"keys": keys}))


def paths() -> list[Path[IdentityBackend]]:
    name = {"name": Field(FieldType.STRING, "Name.")}
    key_fields = {**name,
                  "rotation_period": Field(FieldType.DURATION, "How often to generate a new keypair."),
                  "verification_ttl": Field(FieldType.DURATION, "How long a rotated public key stays published."),
                  "algorithm": Field(FieldType.STRING, "Signing algorithm."),
                  "allowed_client_ids": Field(FieldType.COMMA_STRING_SLICE, "Client IDs allowed to use the key.")}
    role_fields = {**name, "key": Field(FieldType.STRING, "The OIDC key to sign tokens with."),
                   "template": Field(FieldType.STRING, "Claims template (JSON, optionally base64)."),
                   "ttl": Field(FieldType.DURATION, "TTL of the tokens."),
                   "client_id": Field(FieldType.STRING, "The client ID (the audience); generated if absent.")}
    return [
        Path("oidc/config", fields={"issuer": Field(FieldType.STRING, "Issuer URL (scheme, host, port).")},
             operations={Op.READ: read_config, Op.UPDATE: write_config}, synopsis="OIDC provider configuration."),
        Path("oidc/key/?", operations={Op.LIST: list_keys}, synopsis="List OIDC keys."),
        Path(f"oidc/key/{name_regex('name')}", fields=key_fields,
             operations={Op.READ: read_key, Op.UPDATE: write_key, Op.DELETE: delete_key}, synopsis="An OIDC key."),
        Path(f"oidc/key/{name_regex('name')}/rotate", fields=key_fields, operations={Op.UPDATE: rotate_key},
             synopsis="Rotate an OIDC key."),
        Path("oidc/role/?", operations={Op.LIST: list_roles}, synopsis="List OIDC roles."),
        Path(f"oidc/role/{name_regex('name')}", fields=role_fields,
             operations={Op.READ: read_role, Op.UPDATE: write_role, Op.DELETE: delete_role}, synopsis="An OIDC role."),
        Path(f"oidc/token/{name_regex('name')}", fields=name, operations={Op.READ: issue_token},
             synopsis="Issue an identity token."),
        Path("oidc/introspect", fields={"token": Field(FieldType.STRING, "The token."),
                                        "client_id": Field(FieldType.STRING, "Optional client ID.")},
             operations={Op.UPDATE: introspect}, synopsis="Verify an identity token."),
        Path("oidc/.well-known/openid-configuration", operations={Op.READ: discovery}, unauthenticated=True,
             synopsis="OIDC discovery document."),
        Path("oidc/.well-known/keys", operations={Op.READ: jwks}, unauthenticated=True,
             synopsis="Public keys of the identity tokens."),
    ]


__all__ = ["paths"]
