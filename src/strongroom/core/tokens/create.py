"""auth/token/create, create-orphan and create/<role>: who may mint what.

The rules, each checked against OpenBao's answers:
  - Policies default to the caller's (copied as they are); asked-for policies get "default" added
    unless no_default_policy, or unless a plain caller's own token lacks it.
  - A caller that is neither root nor sudo may only hand out a subset of its own policies, may not
    pick the token id, make a periodic token, or set no_parent. create-orphan needs no sudo.
  - Only a root token can create another root token.
  - A token with a limited number of uses creates no tokens at all: a child (or orphan) would
    escape the count.
  - A role's allow-lists replace the subset rule; its disallow-lists always apply; its orphan,
    period, explicit max, num_uses, bound CIDRs and renewable settings override the request.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from strongroom.core.tokens.entry import (
    TOKEN_TYPE_SERVICE,
    TokenEntry,
    display_name_for,
    sanitize_policies,
)
from strongroom.core.tokens.roles import TokenRole
from strongroom.core.tokens.ttl import creation_ttl
from strongroom.durations import parse_duration
from strongroom.errors import InvalidRequest, PermissionDenied
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response, name_regex

if TYPE_CHECKING:
    from strongroom.core.tokens.paths import TokenBackend


def paths() -> list[Path[TokenBackend]]:
    return [
        Path("create-orphan", fields=_CREATE_FIELDS, operations={Op.UPDATE: create_token},
             synopsis="Create a token with no parent (no sudo needed)."),
        Path(f"create/{name_regex('role_name')}",
             fields={**_CREATE_FIELDS, "role_name": Field(FieldType.STRING, "Role to create the token against.")},
             operations={Op.UPDATE: create_token}, synopsis="Create a token against a role."),
        Path("create", fields=_CREATE_FIELDS, operations={Op.UPDATE: create_token},
             synopsis="Create a token, by default a child of the calling token."),
    ]


_CREATE_FIELDS: dict[str, Field] = {
    "id": Field(FieldType.STRING, "The token itself (root or sudo callers only)."),
    "policies": Field(FieldType.STRING_SLICE, "Policies of the token; defaults to the caller's."),
    "meta": Field(FieldType.KV_PAIRS, "Metadata passed through to audit devices."),
    "no_parent": Field(FieldType.BOOL, "Create an orphan (root or sudo callers only)."),
    "no_default_policy": Field(FieldType.BOOL, 'Do not add the "default" policy.'),
    "renewable": Field(FieldType.BOOL, "Whether the token may be renewed.", default=True),
    # Durations are parsed by hand so that negative values get Vault's wording.
    "ttl": Field(FieldType.STRING, "Initial TTL; defaults to the mount's default TTL."),
    "lease": Field(FieldType.STRING, "Deprecated: use ttl."),
    "explicit_max_ttl": Field(FieldType.STRING, "Hard cap on the token's lifetime."),
    "period": Field(FieldType.STRING, "Make the token periodic (root or sudo callers only)."),
    "type": Field(FieldType.STRING, 'Token type; only "service" is supported.'),
    "display_name": Field(FieldType.STRING, "Display name; the token's shows as token-<name>."),
    "num_uses": Field(FieldType.INT, "Number of uses; 0 is unlimited."),
    "entity_alias": Field(FieldType.STRING, "Entity alias (not supported)."),
}


async def create_token(b: TokenBackend, req: Request, d: FieldData) -> Response | None:
    parent = caller_entry(req)
    # SECURITY: the caller's use was counted before this handler runs (tokens.use): a count still
    # above zero means uses remain, below zero means this request is its last. Either way it is
    # limited, and Vault refuses both (the last use as a parent that no longer exists).
    if parent.num_uses > 0:
        raise InvalidRequest("restricted use token cannot generate child tokens")
    if parent.num_uses < 0:
        raise InvalidRequest("parent token lookup failed: no parent found")
    is_root = "root" in parent.policies
    sudo = is_root or req.sudo
    role = await _role(b, d)
    if d.get("entity_alias"):
        if role is None:
            raise InvalidRequest("'entity_alias' is only allowed in combination with token role")
        raise InvalidRequest("entity aliases are not supported yet")
    kind: str = d.get("type")
    if kind == "batch":
        raise InvalidRequest("batch tokens are not supported yet")
    if kind not in ("", TOKEN_TYPE_SERVICE):
        raise InvalidRequest("invalid 'token_type' value")
    num_uses: int = d.get("num_uses")
    if num_uses < 0:
        raise InvalidRequest("number of uses cannot be negative")
    token_id: str = d.get("id")
    if token_id and not sudo:
        raise InvalidRequest("root or sudo privileges required to specify token id")
    orphan = req.path == "create-orphan" or (role is not None and role.orphan)
    if d.get("no_parent"):
        if not sudo:
            raise InvalidRequest("root or sudo privileges required to create orphan token")
        orphan = True
    ttl = _duration(d, "ttl") or _duration(d, "lease")
    explicit = _duration(d, "explicit_max_ttl")
    period = _duration(d, "period")
    role_period = role.token_period if role is not None else 0
    if period and not role_period and not sudo:
        raise InvalidRequest("root or sudo privileges required to create periodic token")

    policies = resolve_policies(parent, role, d.get("policies"), d.get("no_default_policy"),
                                sudo=sudo, is_root=is_root)
    warnings: list[str] = []
    # Role period and explicit max act on the token without being written into it: renewal reads
    # them from the role again, so lookup shows only what the caller asked for (as Vault does).
    limit = explicit
    if role is not None and role.token_explicit_max_ttl and (not limit or role.token_explicit_max_ttl < limit):
        limit = role.token_explicit_max_ttl
    ttl, capped = creation_ttl(ttl=ttl, period=role_period or period, explicit_max_ttl=limit,
                               default_ttl=b.store.default_ttl(), max_ttl=b.store.max_ttl(),
                               root_only=policies == ["root"])
    warnings += capped
    if role is not None and role.token_num_uses and (num_uses == 0 or role.token_num_uses < num_uses):
        num_uses = role.token_num_uses

    mount = req.mount_point or b.config.mount_path or "auth/token/"
    path = mount + req.path
    if role is not None and role.path_suffix:
        path += "/" + role.path_suffix
    token, entry = await b.store.create(
        policies=policies,
        no_default_policy=True,  # resolved above
        path=path,
        parent=None if orphan else parent,
        display_name=display_name_for(d.get("display_name")),
        meta=d.get("meta"),
        ttl=ttl,
        explicit_max_ttl=explicit,
        period=0 if role_period else period,
        renewable=d.get("renewable") and (role is None or role.renewable),
        num_uses=num_uses,
        entity_id=parent.entity_id,
        role=role.name if role is not None else "",
        bound_cidrs=role.token_bound_cidrs if role is not None else [],
        token_id=token_id or None,
        source_addr=req.connection.remote_addr,
        creator=parent.accessor,
    )
    warnings += await b.missing_policy_warnings(entry.policies)
    return Response(auth=entry.to_auth(token), warnings=warnings)


def caller_entry(req: Request) -> TokenEntry:
    """The caller's token entry, which core's authenticate step put on the request."""
    entry = req.token_entry
    if not isinstance(entry, TokenEntry):
        raise PermissionDenied()
    return entry


async def _role(b: TokenBackend, d: FieldData) -> TokenRole | None:
    name = d.get("role_name") if "role_name" in d.schema else ""
    if not name:
        return None
    role = await b.store.get_role(name)
    if role is None:
        raise InvalidRequest(f"unknown role {name}")
    return role


def _duration(d: FieldData, name: str) -> int:
    raw: str = d.get(name)
    if raw.strip().startswith("-"):
        raise InvalidRequest(f"{name} must be positive")
    return parse_duration(raw, name=name)


def resolve_policies(
    parent: TokenEntry,
    role: TokenRole | None,
    requested: list[str],
    no_default: bool,
    *,
    sudo: bool,
    is_root: bool,
) -> list[str]:
    """The new token's policies, or InvalidRequest explaining which rule refused them."""
    if role is not None and role.token_no_default_policy:
        no_default = True
    # "default" is added automatically unless refused by the caller, the role, or (for a plain
    # caller) by its own token lacking it, which would fail the subset rule below anyway.
    add_default = not no_default and not (role is not None and role.disallows("default"))
    if role is not None and role.restricts_policies:
        allowed = sanitize_policies(role.allowed_policies, add_default=add_default)
        if not requested:
            policies = allowed
        else:
            policies = sanitize_policies(requested, add_default=add_default, no_default=no_default)
            if not all(p in allowed or role.allows(p) for p in policies):
                raise InvalidRequest(
                    f"token policies ({_go_list(policies)}) must be subset of the role's allowed policies "
                    f"({_go_list(allowed)}) or glob policies ({_go_list(role.allowed_policies_glob)})")
    else:
        if not requested:
            policies = sanitize_policies(parent.policies, add_default=False, no_default=no_default)
        else:
            add_default = add_default and (sudo or "default" in parent.policies)
            policies = sanitize_policies(requested, add_default=add_default, no_default=no_default)
        # SECURITY: without a role vouching for them, a plain caller can only delegate a subset
        # of what it already holds.
        if not sudo and not set(policies) <= set(parent.policies):
            raise InvalidRequest("child policies must be subset of parent")
    if "root" in policies and not is_root:
        raise InvalidRequest("root tokens may not be created without parent token being root")
    if role is not None:
        for p in policies:
            if role.disallows(p):
                raise InvalidRequest(f'token policy "{p}" is disallowed by this role')
    return policies


def _go_list(items: list[str]) -> str:
    """A list as Go's %q prints it, which is how Vault's role errors show policies."""
    return "[" + " ".join(json.dumps(i) for i in items) + "]"
