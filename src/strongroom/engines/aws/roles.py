"""roles/<name> (create/update, read, delete) and LIST roles, with Vault's validation and words.

A write merges into the stored role: a field not sent keeps its value. The whole role is validated
before anything is stored (Vault's awsRoleEntry.validate, its messages joined)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import orjson

from strongroom.engines.aws.store import (
    ASSUMED_ROLE,
    CREDENTIAL_TYPES,
    FEDERATION_TOKEN,
    IAM_USER,
    ROLE_PREFIX,
    Role,
)
from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response, name_regex

if TYPE_CHECKING:
    from strongroom.engines.aws import AWSBackend

#: Vault's userPathRegex.
USER_PATH = re.compile(r"^/([\x21-\x7F]{0,510}/)?$")
_STS_TYPES = (ASSUMED_ROLE, FEDERATION_TOKEN)

ROLE_FIELDS = {
    "name": Field(FieldType.STRING, "Name of the role"),
    "credential_type": Field(FieldType.STRING, "Type of credential to retrieve. Must be one of assumed_role, "
                                               "iam_user, or federation_token"),
    "role_arns": Field(FieldType.COMMA_STRING_SLICE, "ARNs of AWS roles allowed to be assumed. Only valid when "
                                                     "credential_type is assumed_role"),
    "policy_arns": Field(FieldType.COMMA_STRING_SLICE, "ARNs of AWS policies: attached to iam_user users, a "
                                                       "filter on STS credentials."),
    "policy_document": Field(FieldType.STRING, "JSON-encoded IAM policy document."),
    "iam_groups": Field(FieldType.COMMA_STRING_SLICE, "Names of IAM groups that generated IAM users will be "
                                                      "added to."),
    "iam_tags": Field(FieldType.KV_PAIRS, "IAM tags to be set for any users created by this role."),
    "session_tags": Field(FieldType.KV_PAIRS, "Session tags to be set for assumed_role creds."),
    "external_id": Field(FieldType.STRING, "External ID to set when assuming the role."),
    "default_sts_ttl": Field(FieldType.DURATION, "Default TTL for assumed_role and federation_token credentials."),
    "max_sts_ttl": Field(FieldType.DURATION, "Max allowed TTL for assumed_role and federation_token credentials."),
    "user_path": Field(FieldType.STRING, "Path for IAM User. Only valid when credential_type is iam_user",
                       default="/"),
    "permissions_boundary_arn": Field(FieldType.STRING, "ARN of an IAM policy to attach as a permissions "
                                                        "boundary on IAM user credentials."),
    "policy": Field(FieldType.STRING, "Use policy_document instead."),
    "arn": Field(FieldType.STRING, "Use role_arns or policy_arns instead."),
}
# The parameters a legacy write (policy or arn) may not be mixed with, in Vault's order.
_NEW_PARAMS = ("role_arns", "policy_arns", "policy_document", "default_sts_ttl", "max_sts_ttl", "user_path",
               "permissions_boundary_arn")
LEGACY_WARNING = "Detected use of legacy role or policy parameter. Please upgrade to use the new parameters."


def paths() -> list[Path[AWSBackend]]:
    return [
        Path("roles/?", operations={Op.LIST: list_roles}, synopsis="List the existing roles in this backend"),
        Path(f"roles/{name_regex('name')}", fields=ROLE_FIELDS,
             operations={Op.READ: read_role, Op.CREATE: write_role, Op.UPDATE: write_role, Op.DELETE: delete_role},
             exists=role_exists,
             synopsis="Read, write and reference IAM policies that access keys can be made for."),
    ]


async def load_role(b: AWSBackend, name: str) -> Role | None:
    raw = await b.system.storage.get(ROLE_PREFIX + name)
    return Role.from_json(raw) if raw is not None else None


async def role_exists(b: AWSBackend, req: Request, d: FieldData) -> bool:
    return await b.system.storage.get(ROLE_PREFIX + str(d.get("name"))) is not None


async def list_roles(b: AWSBackend, req: Request, d: FieldData) -> Response:
    keys = [k for k in await b.system.storage.list(ROLE_PREFIX) if not k.endswith("/")]
    if not keys:
        raise NotFound()  # Vault answers an empty list with a 404
    return Response(data={"keys": sorted(keys)})


async def read_role(b: AWSBackend, req: Request, d: FieldData) -> Response | None:
    role = await load_role(b, str(d.get("name")))
    if role is None:
        raise NotFound()
    return Response(data=role.response())


async def delete_role(b: AWSBackend, req: Request, d: FieldData) -> None:
    async with b.roles_lock:
        await b.system.storage.delete(ROLE_PREFIX + str(d.get("name")))


def _compact_json(doc: str) -> str:
    try:
        return orjson.dumps(orjson.loads(doc)).decode()
    except orjson.JSONDecodeError:
        raise InvalidRequest(f"cannot parse policy document: {doc!r}") from None


def _arn_error(arn: str) -> str:
    """Vault's validateAWSManagedPolicy for the permissions boundary ("" when valid)."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return "arn: invalid prefix" if not arn.startswith("arn:") else "arn: not enough sections"
    if parts[2] != "iam":
        return f"expected a service of iam but got {parts[2]}"
    if not parts[5].startswith("policy/"):
        return f"expected a resource type of policy but got {parts[5]}"
    return ""


def validate(role: Role) -> list[str]:
    errs: list[str] = []
    types = role.credential_types
    if not types:
        errs.append("did not supply credential_type")
    errs += [f"unrecognized credential type: {t}" for t in types if t not in CREDENTIAL_TYPES]
    sts = any(t in _STS_TYPES for t in types)
    if role.default_sts_ttl and not sts:
        errs.append("default_sts_ttl parameter only valid for assumed_role and federation_token credential types")
    if role.max_sts_ttl and not sts:
        errs.append("max_sts_ttl parameter only valid for assumed_role and federation_token credential types")
    if role.max_sts_ttl > 0 and role.default_sts_ttl > role.max_sts_ttl:
        errs.append('"default_sts_ttl" value must be less than or equal to "max_sts_ttl" value')
    if role.user_path:
        if IAM_USER not in types:
            errs.append("user_path parameter only valid for iam_user credential type")
        if not USER_PATH.match(role.user_path):
            errs.append(f'the specified value for user_path is invalid. It must match "{USER_PATH.pattern}" regexp')
    if role.permissions_boundary_arn:
        if IAM_USER not in types:
            errs.append("cannot supply permissions_boundary_arn when credential_type isn't iam_user")
        problem = _arn_error(role.permissions_boundary_arn)
        if problem:
            errs.append(f"invalid permissions_boundary_arn parameter: {problem}")
    if role.role_arns and ASSUMED_ROLE not in types:
        errs.append("cannot supply role_arns when credential_type isn't assumed_role")
    if role.session_tags and ASSUMED_ROLE not in types:
        errs.append("cannot supply session_tags when credential_type isn't assumed_role")
    if role.external_id and ASSUMED_ROLE not in types:
        errs.append("cannot supply external_id when credential_type isn't assumed_role")
    return errs


async def write_role(b: AWSBackend, req: Request, d: FieldData) -> Response | None:
    name = str(d.get("name") or "")
    if not name:
        raise InvalidRequest("missing role name")
    legacy = _legacy_value(d)
    if legacy:
        if d.has("credential_type"):
            raise InvalidRequest("cannot supply deprecated role or policy parameters with an explicit credential_type")
        for key in _NEW_PARAMS:
            if d.has(key):
                raise InvalidRequest(f"cannot supply deprecated role or policy parameters with {key}")
    async with b.roles_lock:
        role = await load_role(b, name) or Role()
        if legacy:
            role = _legacy_role(legacy)  # replaces the stored role, as Vault does
        else:
            role.prohibit_flexible_cred_path = False
            if d.has("credential_type"):
                role.credential_types = [str(d.get("credential_type"))]
        for key in ("role_arns", "policy_arns", "iam_groups"):
            if d.has(key):
                setattr(role, key, [s for s in d.get(key) if s])
        if d.has("policy_document"):
            doc = str(d.get("policy_document") or "")
            role.policy_document = _compact_json(doc) if doc else ""
        for key in ("default_sts_ttl", "max_sts_ttl"):
            if d.has(key):
                setattr(role, key, int(d.get(key)))
        for key in ("user_path", "permissions_boundary_arn", "external_id"):
            if d.has(key):
                setattr(role, key, str(d.get(key) or ""))
        for key in ("iam_tags", "session_tags"):
            if d.has(key):
                setattr(role, key, dict(d.get(key) or {}))
        errs = validate(role)
        if errs:
            # Vault's words exactly: a go-multierror list, quoted with Go's %q.
            points = "\n\t".join(f"* {e}" for e in errs)
            listed = f"{len(errs)} error{'s' if len(errs) > 1 else ''} occurred:\n\t{points}\n\n"
            raise InvalidRequest(f"error(s) validating supplied role data: {json.dumps(listed)}")
        await b.system.storage.put(ROLE_PREFIX + name, role.to_json())
    return Response(warnings=[LEGACY_WARNING]) if legacy else None


def _legacy_value(d: FieldData) -> str:
    policy, arn = str(d.get("policy") or ""), str(d.get("arn") or "")
    if policy and arn:
        raise InvalidRequest("only one of policy or arn should be provided")
    return policy or arn


def _legacy_role(value: str) -> Role:
    """Vault's upgradeLegacyPolicyEntry: a role ARN -> assumed_role, a policy ARN -> iam_user, a JSON
    document -> iam_user or federation_token (the path decides); anything else is refused."""
    invalid = InvalidRequest(f"unable to parse supplied data: {json.dumps(value)}")
    if value.startswith("arn:"):
        parts = value.split(":", 5)
        if len(parts) != 6:
            raise invalid
        kind = parts[5].split("/", 1)[0]
        if kind == "role":
            return Role(credential_types=[ASSUMED_ROLE], role_arns=[value], prohibit_flexible_cred_path=True)
        if kind == "policy":
            return Role(credential_types=[IAM_USER], policy_arns=[value], prohibit_flexible_cred_path=True)
        raise invalid
    try:
        doc = orjson.dumps(orjson.loads(value)).decode()
    except orjson.JSONDecodeError:
        raise invalid from None
    return Role(credential_types=[IAM_USER, FEDERATION_TOKEN], policy_document=doc, prohibit_flexible_cred_path=True)
