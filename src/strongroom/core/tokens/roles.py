"""Token roles: auth/token/roles/<name>. A role lets a caller mint tokens it otherwise could not
(other policies, orphans, periods) within limits an operator fixed in advance.

Writes merge into the existing role, as Vault's do: a field not sent keeps its stored value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from strongroom.core.tokens.entry import normalize_cidrs, sanitize_policies
from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response, name_regex

if TYPE_CHECKING:
    from strongroom.core.tokens.paths import TokenBackend

_SUFFIX = re.compile(r"\w[\w\-.]+\w")
# Role token types we accept. Batch tokens do not exist here yet, so neither do batch roles.
_ROLE_TOKEN_TYPES = ("service", "default-service")


def paths() -> list[Path[TokenBackend]]:
    return [
        Path("roles/?", operations={Op.LIST: list_roles}, synopsis="List the token roles."),
        Path(
            f"roles/{name_regex('role_name')}",
            fields=_ROLE_FIELDS,
            operations={Op.READ: read_role, Op.CREATE: write_role, Op.UPDATE: write_role,
                        Op.DELETE: delete_role},
            exists=role_exists,
            synopsis="Create, read, update or delete a token role.",
        ),
    ]


_ROLE_FIELDS: dict[str, Field] = {
    "role_name": Field(FieldType.STRING, "Name of the role.", required=True),
    "allowed_policies": Field(FieldType.COMMA_STRING_SLICE, "Policies tokens of this role may have."),
    "disallowed_policies": Field(FieldType.COMMA_STRING_SLICE, "Policies tokens of this role may not have."),
    "allowed_policies_glob": Field(FieldType.COMMA_STRING_SLICE, "Globs of policies tokens may have."),
    "disallowed_policies_glob": Field(FieldType.COMMA_STRING_SLICE, "Globs of policies tokens may not have."),
    "orphan": Field(FieldType.BOOL, "Tokens of this role have no parent."),
    "renewable": Field(FieldType.BOOL, "Tokens of this role may be renewed.", default=True),
    "path_suffix": Field(FieldType.STRING, "Suffix appended to the token path (for revoke-prefix)."),
    "token_period": Field(FieldType.DURATION, "Tokens of this role are periodic with this period."),
    "period": Field(FieldType.DURATION, "Deprecated: use token_period."),
    "token_explicit_max_ttl": Field(FieldType.DURATION, "Hard cap on the lifetime of tokens of this role."),
    "explicit_max_ttl": Field(FieldType.DURATION, "Deprecated: use token_explicit_max_ttl."),
    "token_type": Field(FieldType.STRING, 'Token type: "service" or "default-service".'),
    "token_bound_cidrs": Field(FieldType.COMMA_STRING_SLICE, "CIDR blocks tokens may be used from."),
    "token_no_default_policy": Field(FieldType.BOOL, 'Do not add the "default" policy.'),
    "token_num_uses": Field(FieldType.INT, "Uses per token; 0 is unlimited."),
}


@dataclass(slots=True)
class TokenRole:
    name: str
    allowed_policies: list[str] = field(default_factory=list)
    disallowed_policies: list[str] = field(default_factory=list)
    allowed_policies_glob: list[str] = field(default_factory=list)
    disallowed_policies_glob: list[str] = field(default_factory=list)
    orphan: bool = False
    renewable: bool = True
    path_suffix: str = ""
    token_period: int = 0
    period: int = 0  # deprecated spelling, kept as the client wrote it (role read shows both)
    token_explicit_max_ttl: int = 0
    explicit_max_ttl: int = 0  # deprecated spelling, as above
    token_type: str = "default-service"
    token_bound_cidrs: list[str] = field(default_factory=list)
    token_no_default_policy: bool = False
    token_num_uses: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "allowed_policies": self.allowed_policies,
            "disallowed_policies": self.disallowed_policies,
            "allowed_policies_glob": self.allowed_policies_glob,
            "disallowed_policies_glob": self.disallowed_policies_glob,
            "orphan": self.orphan,
            "renewable": self.renewable,
            "path_suffix": self.path_suffix,
            "token_period": self.token_period,
            "period": self.period,
            "token_explicit_max_ttl": self.token_explicit_max_ttl,
            "explicit_max_ttl": self.explicit_max_ttl,
            "token_type": self.token_type,
            "token_bound_cidrs": self.token_bound_cidrs,
            "token_no_default_policy": self.token_no_default_policy,
            "token_num_uses": self.token_num_uses,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TokenRole:
        def strs(key: str) -> list[str]:
            return [str(v) for v in d.get(key) or []]

        return cls(
            name=str(d["name"]),
            allowed_policies=strs("allowed_policies"),
            disallowed_policies=strs("disallowed_policies"),
            allowed_policies_glob=strs("allowed_policies_glob"),
            disallowed_policies_glob=strs("disallowed_policies_glob"),
            orphan=bool(d.get("orphan", False)),
            renewable=bool(d.get("renewable", True)),
            path_suffix=str(d.get("path_suffix", "")),
            token_period=int(d.get("token_period", 0)),
            period=int(d.get("period", 0)),
            token_explicit_max_ttl=int(d.get("token_explicit_max_ttl", 0)),
            explicit_max_ttl=int(d.get("explicit_max_ttl", 0)),
            token_type=str(d.get("token_type", "default-service")),
            token_bound_cidrs=strs("token_bound_cidrs"),
            token_no_default_policy=bool(d.get("token_no_default_policy", False)),
            token_num_uses=int(d.get("token_num_uses", 0)),
        )

    def to_response(self) -> dict[str, Any]:
        data = self.to_json()
        data["allowed_entity_aliases"] = None  # entity aliases are not supported
        # Like Vault, the two optional token_* fields appear only once set.
        if not self.token_bound_cidrs:
            del data["token_bound_cidrs"]
        if not self.token_num_uses:
            del data["token_num_uses"]
        return dict(sorted(data.items()))

    # -- policy rules applied when a token is created against this role -------------------------
    @property
    def restricts_policies(self) -> bool:
        """True when the role's allow-lists replace the "subset of the parent" rule."""
        return bool(self.allowed_policies or self.allowed_policies_glob)

    def allows(self, policy: str) -> bool:
        return policy in self.allowed_policies or any(glob_match(g, policy) for g in self.allowed_policies_glob)

    def disallows(self, policy: str) -> bool:
        return policy in self.disallowed_policies or any(
            glob_match(g, policy) for g in self.disallowed_policies_glob)


def glob_match(pattern: str, value: str) -> bool:
    """Vault's policy globs: ``*`` matches any run of characters; nothing else is special."""
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, value) is not None


# -- handlers -----------------------------------------------------------------------------------
async def list_roles(b: TokenBackend, req: Request, d: FieldData) -> Response | None:
    names = await b.store.list_roles()
    if not names:
        raise NotFound()
    return Response(data={"keys": names})


async def role_exists(b: TokenBackend, req: Request, d: FieldData) -> bool:
    return await b.store.get_role(d.get("role_name")) is not None


async def read_role(b: TokenBackend, req: Request, d: FieldData) -> Response | None:
    role = await b.store.get_role(d.get("role_name"))
    if role is None:
        raise NotFound()
    return Response(data=role.to_response())


async def delete_role(b: TokenBackend, req: Request, d: FieldData) -> Response | None:
    await b.store.delete_role(d.get("role_name"))
    return None


async def write_role(b: TokenBackend, req: Request, d: FieldData) -> Response | None:
    name: str = d.get("role_name")
    role = await b.store.get_role(name) or TokenRole(name=name)
    warnings: list[str] = []
    for key in ("allowed_policies", "disallowed_policies"):
        if d.has(key):
            setattr(role, key, sanitize_policies(d.get(key), add_default=False))
    for key in ("allowed_policies_glob", "disallowed_policies_glob"):
        if d.has(key):
            setattr(role, key, sorted(set(d.get(key))))
    for key in ("orphan", "renewable", "token_no_default_policy"):
        if d.has(key):
            setattr(role, key, d.get(key))
    if d.has("path_suffix"):
        suffix: str = d.get("path_suffix")
        if suffix and _SUFFIX.fullmatch(suffix) is None:
            raise InvalidRequest(
                "given role path suffix contains invalid characters; must match \\w[\\w-.]+\\w")
        role.path_suffix = suffix
    _merge_deprecated(role, d, "token_period", "period", warnings)
    _merge_deprecated(role, d, "token_explicit_max_ttl", "explicit_max_ttl", warnings)
    if d.has("token_type"):
        kind: str = d.get("token_type")
        if kind in ("batch", "default-batch"):
            raise InvalidRequest("batch tokens are not supported yet")
        if kind not in _ROLE_TOKEN_TYPES:
            raise InvalidRequest(f"invalid 'token_type' value \"{kind}\"")
        role.token_type = kind
    if d.has("token_bound_cidrs"):
        role.token_bound_cidrs = normalize_cidrs(d.get("token_bound_cidrs"))
    if d.has("token_num_uses"):
        uses: int = d.get("token_num_uses")
        if uses < 0:
            raise InvalidRequest("error parsing role fields: 'token_num_uses' cannot be negative")
        role.token_num_uses = uses
    await b.store.put_role(role)
    return Response(warnings=warnings) if warnings else None


def _merge_deprecated(role: TokenRole, d: FieldData, new: str, old: str, warnings: list[str]) -> None:
    """``token_period`` vs ``period`` (and the explicit max pair): the new name wins; the old one
    alone sets both, so a role read shows it under either name, as Vault's does."""
    if d.has(new):
        setattr(role, new, d.get(new))
        if d.has(old):
            warnings.append(f"Both '{new}' and deprecated '{old}' value supplied, ignoring the deprecated value")
    elif d.has(old):
        setattr(role, new, d.get(old))
        setattr(role, old, d.get(old))
