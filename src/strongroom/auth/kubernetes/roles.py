"""role/<name>: which service accounts (names, namespaces, audience) may log in, and the token
they get. Names are case-insensitive (stored lower-case). Writes merge: a field not sent keeps its
stored value; the whole role is validated before anything is stored.

Bindings are glob patterns as in Vault: ``*`` alone matches everything (and cannot be mixed with
other values), ``prefix*``, ``*suffix`` and ``a*b`` match as they read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.auth.kubernetes.selector import parse_selector
from strongroom.auth.kubernetes.store import ALIAS_SOURCES, ROLE_PREFIX, Role, get_role, put_role, storage
from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response, name_regex, token_fields
from strongroom.framework.globs import glob_match

if TYPE_CHECKING:
    from strongroom.auth.kubernetes import KubernetesBackend

_FIELDS: dict[str, Field] = {
    "name": Field(FieldType.STRING, "Name of the role."),
    "bound_service_account_names": Field(
        FieldType.COMMA_STRING_SLICE, 'List of service account names able to access this role. If set to "*" '
        'all names are allowed.'),
    "bound_service_account_namespaces": Field(
        FieldType.COMMA_STRING_SLICE, 'List of namespaces allowed to access this role. If set to "*" all '
        'namespaces are allowed.'),
    "bound_service_account_namespace_selector": Field(
        FieldType.STRING, "A label selector for Kubernetes namespaces which are allowed to access this role, "
        "in JSON (matchLabels, matchExpressions)."),
    "audience": Field(FieldType.STRING, "Optional Audience claim to verify in the jwt."),
    "alias_name_source": Field(FieldType.STRING, 'Source to use when deriving the Alias name. valid choices: '
                               '"serviceaccount_uid" : <token.uid> e.g. 474b11b5-0f20-4f9d-8ca5-65715ab325e0 '
                               '(most secure choice) "serviceaccount_name" : <namespace>/<serviceaccount> '
                               'e.g. vault/vault-agent default: "serviceaccount_uid"'),
    **token_fields(legacy=("policies", "ttl", "max_ttl", "period", "num_uses", "bound_cidrs")),
}


def paths() -> list[Path[KubernetesBackend]]:
    return [
        Path("role/?", operations={Op.LIST: list_roles}, synopsis="Lists all the roles registered with the backend."),
        Path(f"role/{name_regex('name')}", fields=_FIELDS,
             operations={Op.READ: read_role, Op.CREATE: write_role, Op.UPDATE: write_role, Op.DELETE: delete_role},
             exists=role_exists, synopsis="Register an role with the backend."),
    ]




def allowed(patterns: list[str], value: str) -> bool:
    return any(glob_match(p, value) for p in patterns)


def _apply(role: Role, d: FieldData) -> None:
    role.token.update(d)
    if d.has("bound_service_account_names"):
        role.bound_service_account_names = [n.strip() for n in d.get("bound_service_account_names") if n.strip()]
    names = role.bound_service_account_names
    if not names:
        raise InvalidRequest('"bound_service_account_names" can not be empty')
    if len(names) > 1 and "*" in names:
        raise InvalidRequest('can not mix "*" with values')
    if d.has("bound_service_account_namespaces"):
        role.bound_service_account_namespaces = [
            n.strip() for n in d.get("bound_service_account_namespaces") if n.strip()]
    if d.has("bound_service_account_namespace_selector"):
        role.bound_service_account_namespace_selector = d.get("bound_service_account_namespace_selector").strip()
    if role.bound_service_account_namespace_selector:
        parse_selector(role.bound_service_account_namespace_selector)
    spaces = role.bound_service_account_namespaces
    if not spaces and not role.bound_service_account_namespace_selector:
        raise InvalidRequest('"bound_service_account_namespaces" can not be empty if '
                             '"bound_service_account_namespace_selector" is not set')
    if len(spaces) > 1 and "*" in spaces:
        raise InvalidRequest('can not mix "*" with values')
    if d.has("audience"):
        role.audience = d.get("audience")
    if d.has("alias_name_source"):
        role.alias_name_source = d.get("alias_name_source") or role.alias_name_source
    if role.alias_name_source not in ALIAS_SOURCES:
        raise InvalidRequest("invalid alias_name_source, must be one of: " + ", ".join(ALIAS_SOURCES))


async def list_roles(b: KubernetesBackend, req: Request, d: FieldData) -> Response | None:
    keys = await storage(req).list(ROLE_PREFIX)
    if not keys:
        raise NotFound()
    return Response(data={"keys": keys})


async def role_exists(b: KubernetesBackend, req: Request, d: FieldData) -> bool:
    return await get_role(storage(req), d.get("name")) is not None


async def read_role(b: KubernetesBackend, req: Request, d: FieldData) -> Response | None:
    role = await get_role(storage(req), d.get("name"))
    if role is None:
        raise NotFound()
    return Response(data=role.to_response())


async def write_role(b: KubernetesBackend, req: Request, d: FieldData) -> Response | None:
    name: str = d.get("name").lower()
    s = storage(req)
    role = await get_role(s, name) or Role(name=name)
    _apply(role, d)
    await put_role(s, role)
    return None


async def delete_role(b: KubernetesBackend, req: Request, d: FieldData) -> Response | None:
    await storage(req).delete(ROLE_PREFIX + d.get("name").lower())
    return None
