"""login: a signed JWT and a role in, a token with the role's policies out.

Order of checks (Vault's): config exists; role (or default_role) exists and is a jwt role; token
present; caller within token_bound_cidrs (403); algorithm allowed (never none/HS*); signature by a
configured key (PEM keys, or the JWKS with refetch on an unknown kid); iss/sub/aud/exp/nbf/iat;
no audience in the token when the role binds none; user claim, groups claim, claim mappings;
bound claims. Every failure is a 400 "error validating token: ..." or "error validating claims: ..."
as Vault words it, and nothing is stored by a login.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from strongroom.auth.jwt.keys import FetchError, static_keys
from strongroom.auth.jwt.store import Config, JWTStore, Role
from strongroom.auth.jwt.verify import (
    Expected,
    ParsedToken,
    TokenError,
    audiences,
    check_alg,
    extract_metadata,
    get_claim,
    parse,
    validate_bound_claims,
    validate_claims,
    verify_signature,
)
from strongroom.errors import InvalidRequest
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response
from strongroom.logical import Alias, Auth

if TYPE_CHECKING:
    from strongroom.auth.jwt import JWTBackend

NO_STATIC_KEY = "no known key successfully validated the token signature"
NO_REMOTE_KEY = "failed to verify id token signature"


def paths() -> list[Path[JWTBackend]]:
    return [
        Path("login", fields={
            "role": Field(FieldType.LOWERCASE_STRING, "The role to log in against."),
            "jwt": Field(FieldType.STRING, "The signed JWT to validate.", sensitive=True),
            "distributed_claim_access_token": Field(FieldType.STRING, "An optional token used to fetch group "
                                                    "memberships.", sensitive=True),
        }, operations={Op.UPDATE: login}, unauthenticated=True,
            synopsis="Authenticates to Strongroom using a JWT (or OIDC) token."),
    ]


async def load_config(store: JWTStore, message: str = "could not load configuration") -> Config:
    config = await store.config()
    if config is None:
        raise InvalidRequest(message)
    return config


def check_cidrs(req: Request, role: Role) -> None:
    role.token.check_source(req.connection.remote_addr)


async def verify_jwt(b: JWTBackend, config: Config, token: str, expected: Expected) -> dict[str, Any]:
    """The verified claims of ``token`` (TokenError with cap's wording otherwise)."""
    tok: ParsedToken = parse(token)
    # SECURITY: the algorithm is checked before any key is touched: none and HS* never verify.
    check_alg(tok, config.jwt_supported_algs, NO_STATIC_KEY if config.jwt_validation_pubkeys else NO_REMOTE_KEY)
    if config.jwt_validation_pubkeys:
        if not verify_signature(tok, static_keys(config)):
            raise TokenError(f"error verifying token signature: {NO_STATIC_KEY}")
    else:
        try:
            url, ca = await b.keys.jwks_location(config)
            ok = await b.keys.verify_remote(tok, url, ca)
        except FetchError as e:
            raise TokenError(f"error verifying token signature: fetching keys: {e}") from None
        if not ok:
            raise TokenError(f"error verifying token signature: {NO_REMOTE_KEY}")
    validate_claims(tok.claims, expected)
    return tok.claims


def role_expected(config: Config, role: Role) -> Expected:
    return Expected(issuer=config.bound_issuer, subject=role.bound_subject, audiences=role.bound_audiences,
                    clock_skew_leeway=role.clock_skew_leeway, expiration_leeway=role.expiration_leeway,
                    not_before_leeway=role.not_before_leeway)


def issue(req: Request, role: Role, claims: dict[str, Any]) -> Response:
    """The Auth for verified ``claims`` under ``role`` (claims checks that need the role run here)."""
    user_claim = role.user_claim
    name = get_claim(claims, user_claim) if role.user_claim_json_pointer else claims.get(user_claim)
    if name is None:
        raise InvalidRequest(f'claim "{user_claim}" not found in token')
    if not isinstance(name, str):
        raise InvalidRequest(f'claim "{user_claim}" could not be converted to string')
    group_aliases: list[str] | None = None
    if role.groups_claim:
        groups = get_claim(claims, role.groups_claim)
        if groups is None:
            raise InvalidRequest(f'"{role.groups_claim}" claim not found in token')
        if isinstance(groups, str):
            groups = [groups]
        if not isinstance(groups, list):
            raise InvalidRequest(f'"{role.groups_claim}" claim could not be converted to string list')
        for g in groups:
            if not isinstance(g, str):
                raise InvalidRequest(f"value {g} in groups claim could not be parsed as string")
        # As Vault: the claim's groups are the entity's external groups on this mount.
        group_aliases = list(dict.fromkeys(g for g in groups if g))
    try:
        metadata = extract_metadata(claims, role.claim_mappings)
        validate_bound_claims(role.bound_claims, role.bound_claims_type == "glob", claims)
    except TokenError as e:
        msg = str(e)
        raise InvalidRequest(msg if msg.startswith("error converting") else f"error validating claims: {msg}") from None
    metadata["role"] = role.name
    # The user claim names the entity alias (Vault's), with the metadata as its metadata.
    auth = role.token.fill_auth(Auth(metadata=metadata, display_name=name, internal_data={"role": role.name},
                                     alias=Alias(name=name, metadata=dict(metadata)), group_aliases=group_aliases),
                                req.connection.remote_addr)
    return Response(auth=auth)


async def login(b: JWTBackend, req: Request, d: FieldData) -> Response | None:
    store = await b.store(req)
    config = await load_config(store)
    role_name: str = d.get("role") or config.default_role
    if not role_name:
        raise InvalidRequest("missing role")
    role = await store.role(role_name)
    if role is None:
        raise InvalidRequest(f'role "{role_name}" could not be found')
    if role.role_type == "oidc":
        raise InvalidRequest("role with oidc role_type is not allowed")
    token: str = d.get("jwt")
    if not token:
        raise InvalidRequest("missing token")
    check_cidrs(req, role)
    try:
        claims = await verify_jwt(b, config, token, role_expected(config, role))
        if not role.bound_audiences and audiences(claims):
            raise InvalidRequest("audience claim found in JWT but no audiences bound to the role")
    except TokenError as e:
        raise InvalidRequest(f"error validating token: {e}") from None
    return issue(req, role, claims)
