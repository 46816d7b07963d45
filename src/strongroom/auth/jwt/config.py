"""config: how tokens are verified (PEM keys, a JWKS URL, or OIDC discovery) and the OIDC client.

A write is validated whole before it is stored: exactly one key source, PEM keys that parse, the
discovery document or JWKS reachable (Vault checks them at write time too), supported algorithms.
oidc_client_secret is stored (through the barrier) and never returned by a read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.auth.jwt.keys import FetchError
from strongroom.auth.jwt.store import Config
from strongroom.auth.jwt.verify import SUPPORTED_ALGS, load_pem_public_key
from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response

if TYPE_CHECKING:
    from strongroom.auth.jwt import JWTBackend

_FIELDS: dict[str, Field] = {
    "oidc_discovery_url": Field(FieldType.STRING, "OIDC Discovery URL, without any .well-known component."),
    "oidc_discovery_ca_pem": Field(FieldType.STRING, "CA certificate or chain, in PEM format, for the discovery URL."),
    "oidc_client_id": Field(FieldType.STRING, "The OAuth Client ID configured with your OIDC provider."),
    "oidc_client_secret": Field(FieldType.STRING, "The OAuth Client Secret configured with your OIDC provider.",
                                sensitive=True),
    "oidc_response_mode": Field(FieldType.STRING, "The response mode to be used in the OAuth2 request."),
    "oidc_response_types": Field(FieldType.COMMA_STRING_SLICE, "The response types to request."),
    "jwks_url": Field(FieldType.STRING, "JWKS URL to use to authenticate signatures."),
    "jwks_ca_pem": Field(FieldType.STRING, "CA certificate or chain, in PEM format, for the JWKS URL."),
    "default_role": Field(FieldType.LOWERCASE_STRING, "The default role to use if none is provided during login."),
    "jwt_validation_pubkeys": Field(FieldType.COMMA_STRING_SLICE,
                                    "A list of PEM-encoded public keys to use to authenticate signatures locally."),
    "jwt_supported_algs": Field(FieldType.COMMA_STRING_SLICE, "A list of supported signing algorithms."),
    "bound_issuer": Field(FieldType.STRING, "The value against which to match the 'iss' claim in a JWT."),
    "namespace_in_state": Field(FieldType.BOOL, "Pass namespace in the OIDC state parameter.", default=True),
}


def paths() -> list[Path[JWTBackend]]:
    return [Path("config", fields=_FIELDS, operations={Op.READ: read_config, Op.UPDATE: write_config},
                 synopsis="Configure the JWT authentication backend.")]


async def read_config(b: JWTBackend, req: Request, d: FieldData) -> Response | None:
    config = await (await b.store(req)).config()
    if config is None:
        raise NotFound()
    return Response(data=config.to_response())


async def write_config(b: JWTBackend, req: Request, d: FieldData) -> Response | None:
    c = Config(**{k: d.get(k) for k in _FIELDS})
    c.oidc_response_types = [t for t in c.oidc_response_types if t]
    c.jwt_validation_pubkeys = [k for k in c.jwt_validation_pubkeys if k.strip()]
    sources = sum(bool(x) for x in (c.jwt_validation_pubkeys, c.jwks_url, c.oidc_discovery_url))
    if sources != 1:
        raise InvalidRequest("exactly one of 'jwt_validation_pubkeys', 'jwks_url', 'jwks_pairs', "
                             "'oidc_discovery_url', or 'provider_config' must be set")
    if bool(c.oidc_client_id) != bool(c.oidc_client_secret):
        raise InvalidRequest("both 'oidc_client_id' and 'oidc_client_secret' must be set for OIDC")
    for alg in c.jwt_supported_algs:
        if alg not in SUPPORTED_ALGS:
            raise InvalidRequest(f'invalid jwt_supported_algs: unsupported signing algorithm "{alg}"')
    for t in c.oidc_response_types:
        if t not in ("code", "id_token"):
            raise InvalidRequest(f"invalid response_types {c.oidc_response_types}. 'code' and 'id_token' are allowed")
    if "id_token" in c.oidc_response_types:
        raise InvalidRequest("the id_token response type (implicit flow) is not supported")
    if c.oidc_response_mode not in ("", "query", "form_post"):
        raise InvalidRequest(f'invalid response_mode: "{c.oidc_response_mode}"')
    for pem in c.jwt_validation_pubkeys:
        try:
            load_pem_public_key(pem)
        except (ValueError, TypeError):
            raise InvalidRequest("error parsing public key: data does not contain any valid public keys") from None
    b.keys.reset()
    try:
        if c.oidc_discovery_url:
            await b.keys.discovery(c)
        elif c.jwks_url:
            url, ca = await b.keys.jwks_location(c)
            await b.keys.get_json(url, ca)
    except FetchError as e:
        if "CA PEM" in str(e):
            raise InvalidRequest("error checking oidc_discovery_ca_pem" if c.oidc_discovery_url
                                 else "error checking jwks_ca_pem") from None
        if c.oidc_discovery_url:
            raise InvalidRequest(f"error checking oidc discovery URL: {e}") from None
        raise InvalidRequest("error checking jwks URL") from None
    finally:
        b.keys.reset()
    await (await b.store(req)).put_config(c)
    return None
