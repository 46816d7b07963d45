"""role/<name>: what a token must carry to log in (audiences, subject, claims) and what the issued
Strongroom token gets (token_* fields, metadata from claim_mappings). Role names are
case-insensitive. Writes merge into the stored role and are validated whole before storing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from strongroom.auth.jwt.store import Role
from strongroom.durations import parse_duration
from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import (
    Field,
    FieldData,
    FieldType,
    Op,
    Path,
    Request,
    Response,
    name_regex,
    token_fields,
)

if TYPE_CHECKING:
    from strongroom.auth.jwt import JWTBackend

RESERVED_METADATA = ("role",)

_FIELDS: dict[str, Field] = {
    "name": Field(FieldType.LOWERCASE_STRING, "Name of the role."),
    "role_type": Field(FieldType.STRING, "Type of the role, either 'jwt' or 'oidc'."),
    "bound_audiences": Field(FieldType.COMMA_STRING_SLICE, "Comma-separated list of 'aud' claims that are valid."),
    "bound_subject": Field(FieldType.STRING, "The 'sub' claim that is valid for login. Optional."),
    "bound_claims_type": Field(FieldType.STRING, "How to interpret values in bound_claims: 'string' or 'glob'.",
                               default="string"),
    "bound_claims": Field(FieldType.MAP, "Map of claims/values which must match for login."),
    "claim_mappings": Field(FieldType.KV_PAIRS, "Mappings of claims (key) that will be copied to a metadata "
                            "field (value)."),
    "user_claim": Field(FieldType.STRING, "The claim to use for the Identity entity alias name."),
    "user_claim_json_pointer": Field(FieldType.BOOL, "If true, the user_claim value will be used as a JSON pointer."),
    "groups_claim": Field(FieldType.STRING, "The claim to use for the Identity group alias names."),
    "allowed_redirect_uris": Field(FieldType.COMMA_STRING_SLICE, "Comma-separated list of allowed values for "
                                   "redirect_uri."),
    "oidc_scopes": Field(FieldType.COMMA_STRING_SLICE, "Comma-separated list of OIDC scopes."),
    "clock_skew_leeway": Field(FieldType.ANY, "Duration in seconds of leeway when validating all claims to "
                               "account for clock skew. Defaults to 60 (1 minute) if set to 0 and can be disabled "
                               "if set to -1."),
    "expiration_leeway": Field(FieldType.ANY, "Duration in seconds of leeway when validating expiration of a "
                               "token. Defaults to 150 if set to 0 and can be disabled if set to -1."),
    "not_before_leeway": Field(FieldType.ANY, "Duration in seconds of leeway when validating not before "
                               "values of a token. Defaults to 150 if set to 0 and can be disabled if set to -1."),
    "max_age": Field(FieldType.DURATION, "Allowed elapsed time in seconds since the last time the user was "
                     "actively authenticated."),
    "verbose_oidc_logging": Field(FieldType.BOOL, "Log received OIDC tokens and claims when debug-level logging "
                                  "is active. Not recommended in production."),
    **token_fields(legacy=("policies", "ttl", "max_ttl", "period", "bound_cidrs", "num_uses")),
}
_SIGNED = ("clock_skew_leeway", "expiration_leeway", "not_before_leeway")
_ATTRS = ("bound_audiences", "bound_subject", "bound_claims", "claim_mappings", "user_claim",
          "user_claim_json_pointer", "groups_claim", "allowed_redirect_uris", "oidc_scopes", "clock_skew_leeway",
          "expiration_leeway", "not_before_leeway", "max_age", "verbose_oidc_logging")


def paths() -> list[Path[JWTBackend]]:
    return [
        Path("role/?", operations={Op.LIST: list_roles}, synopsis="Lists all the roles registered with the backend."),
        Path(f"role/{name_regex('name')}", fields=_FIELDS,
             operations={Op.READ: read_role, Op.CREATE: write_role, Op.UPDATE: write_role, Op.DELETE: delete_role},
             exists=role_exists, synopsis="Register an role with the backend."),
    ]


def signed_duration(value: Any, name: str) -> int:
    """Vault's TypeSignedDurationSecond: seconds or "1m"-style text, and negative values (-1 turns a
    leeway off)."""
    if isinstance(value, str) and value.strip().startswith("-"):
        return -parse_duration(value.strip()[1:], name=name)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
        return -parse_duration(-value, name=name)
    return parse_duration(value, name=name)


def _is_scalar_list(raw: Any) -> list[Any] | None:
    if isinstance(raw, list):
        return raw
    if isinstance(raw, (str, bool, int, float)):
        return [raw]
    return None


def apply_fields(role: Role, d: FieldData) -> None:
    """Merge a write into ``role`` and validate it (InvalidRequest, Vault's wording)."""
    # As in OpenBao, every write states the type: one that does not is an oidc role (so updating a
    # jwt role without role_type=jwt fails on allowed_redirect_uris).
    role_type = d.get("role_type") or "oidc"
    if role_type not in ("jwt", "oidc"):
        raise InvalidRequest(f"invalid 'role_type': {role_type}")
    role.role_type = role_type
    role.token.update(d)
    for key in _ATTRS:
        if d.has(key):
            value = d.get(key)
            setattr(role, key, signed_duration(value, key) if key in _SIGNED else value)
    claims_type = d.get("bound_claims_type")  # likewise: not sent means "string"
    if claims_type not in ("string", "glob"):
        raise InvalidRequest(f"invalid 'bound_claims_type': {claims_type}")
    role.bound_claims_type = claims_type
    for values in role.bound_claims.values():
        items = _is_scalar_list(values)
        if claims_type == "glob":
            if items is None:
                raise InvalidRequest(f"claim is not a string or list: {values}")
            for v in items:
                if not isinstance(v, str):
                    raise InvalidRequest(f"claim is not a string: {v}")
    targets: set[str] = set()
    for target in role.claim_mappings.values():
        if target in RESERVED_METADATA:
            raise InvalidRequest(f'metadata key "{target}" is reserved and may not be a mapping destination')
        if target in targets:
            raise InvalidRequest(f'multiple keys are mapped to metadata key "{target}"')
        targets.add(target)
    role.bound_audiences = [a for a in role.bound_audiences if a]
    role.allowed_redirect_uris = [u for u in role.allowed_redirect_uris if u]
    if not role.user_claim:
        raise InvalidRequest("a user claim must be defined on the role")
    if role.role_type == "oidc" and not role.allowed_redirect_uris:
        raise InvalidRequest("'allowed_redirect_uris' must be set if 'role_type' is 'oidc' or unspecified.")
    if role.role_type != "oidc" and not (role.bound_audiences or role.token.token_bound_cidrs or role.bound_subject
                                          or role.bound_claims):
        raise InvalidRequest("must have at least one bound constraint when creating/updating a role")


async def list_roles(b: JWTBackend, req: Request, d: FieldData) -> Response | None:
    names = await (await b.store(req)).role_names()
    if not names:
        raise NotFound()
    return Response(data={"keys": names})


async def role_exists(b: JWTBackend, req: Request, d: FieldData) -> bool:
    return await (await b.store(req)).role(d.get("name")) is not None


async def read_role(b: JWTBackend, req: Request, d: FieldData) -> Response | None:
    role = await (await b.store(req)).role(d.get("name"))
    if role is None:
        raise NotFound()
    return Response(data=role.to_response())


async def write_role(b: JWTBackend, req: Request, d: FieldData) -> Response | None:
    store = await b.store(req)
    name: str = d.get("name")
    role = await store.role(name) or Role(name=name)
    apply_fields(role, d)
    await store.put_role(role)
    return None


async def delete_role(b: JWTBackend, req: Request, d: FieldData) -> Response | None:
    await (await b.store(req)).delete_role(d.get("name"))
    return None
