"""role/<name>: which AWS principals may log in (auth_type ``iam``: bound IAM principal ARNs;
``ec2``: bound AMI, account, region, ... of the instance), and the token they get. Names are
case-insensitive (stored lower-case). Writes merge: a field not sent keeps its stored value; the
whole role is validated before anything is stored. The auth_type of a role cannot change.

Bound principal ARNs are globs as in Vault: ``*`` matches any run of characters
(``arn:aws:iam::123456789012:role/app-*``)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from strongroom.auth.aws import awsapi
from strongroom.auth.aws.store import (
    AUTH_EC2,
    AUTH_IAM,
    ROLE_PREFIX,
    ClientConfig,
    Role,
    get_client_config,
    get_role,
    put_role,
    storage,
)
from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response, name_regex, token_fields
from strongroom.logical import Storage

if TYPE_CHECKING:
    from strongroom.auth.aws import AwsBackend

_S = FieldType.COMMA_STRING_SLICE

EC2_BINDS = ("bound_ami_id", "bound_account_id", "bound_region", "bound_vpc_id", "bound_subnet_id",
             "bound_iam_role_arn", "bound_iam_instance_profile_arn", "bound_ec2_instance_id")

_FIELDS: dict[str, Field] = {
    "role": Field(FieldType.STRING, "Name of the role."),
    "auth_type": Field(FieldType.STRING, 'The auth_type permitted to authenticate to this role. Must be one of '
                       'iam or ec2 and cannot be changed after role creation.'),
    "bound_iam_principal_arn": Field(_S, "ARN of the IAM principals to bind to this role. Only applicable when "
                                     "auth_type is iam."),
    "resolve_aws_unique_ids": Field(FieldType.BOOL, "If set, resolve all AWS IAM ARNs into AWS's internal unique "
                                    "IDs.", default=True),
    "inferred_entity_type": Field(FieldType.STRING, "When auth_type is iam, the AWS entity type to infer from "
                                  "the authenticated principal."),
    "inferred_aws_region": Field(FieldType.STRING, "When auth_type is iam and inferred_entity_type is set, the "
                                 "region to assume the inferred entity exists in."),
    "bound_ami_id": Field(_S, "If set, defines a constraint on the EC2 instances that they should be using one "
                          "of the AMI IDs specified by this parameter."),
    "bound_account_id": Field(_S, "If set, defines a constraint on the EC2 instances that the account ID in its "
                              "identity document to match one of the IDs specified by this parameter."),
    "bound_region": Field(_S, "If set, defines a constraint on the EC2 instances that the region in its identity "
                          "document match one of the regions specified by this parameter."),
    "bound_vpc_id": Field(_S, "If set, defines a constraint on the EC2 instance to be associated with a VPC ID "
                          "that matches one of the value specified by this parameter."),
    "bound_subnet_id": Field(_S, "If set, defines a constraint on the EC2 instance to be associated with the "
                             "subnet ID that matches one of the values specified by this parameter."),
    "bound_iam_role_arn": Field(_S, "If set, defines a constraint on the authenticating EC2 instance that it "
                                "must match one of the IAM role ARNs specified by this parameter."),
    "bound_iam_instance_profile_arn": Field(_S, "If set, defines a constraint on the EC2 instances to be "
                                            "associated with an IAM instance profile ARN which has a prefix "
                                            "that matches one of the values specified by this parameter."),
    "bound_ec2_instance_id": Field(_S, "If set, defines a constraint on the EC2 instances to have one of the "
                                   "given instance IDs."),
    "role_tag": Field(FieldType.STRING, "If set, enables the role tags for this role."),
    "allow_instance_migration": Field(FieldType.BOOL, "If set, allows migration of the underlying instance "
                                      "where the client resides."),
    "disallow_reauthentication": Field(FieldType.BOOL, "If set, only allows a single token to be granted per "
                                       "instance ID."),
    **token_fields(legacy=("policies", "ttl", "max_ttl", "period", "num_uses", "bound_cidrs")),
}


def paths() -> list[Path[AwsBackend]]:
    return [
        Path("roles?/?", operations={Op.LIST: list_roles}, synopsis="Lists all the roles that are registered "
             "with Vault."),
        Path(f"role/{name_regex('role')}", fields=_FIELDS,
             operations={Op.READ: read_role, Op.CREATE: write_role, Op.UPDATE: write_role, Op.DELETE: delete_role},
             exists=role_exists, synopsis="Create a role and associate policies to it."),
    ]




def _clean(values: list[str]) -> list[str]:
    return [v.strip() for v in values if v.strip()]


def _apply(role: Role, d: FieldData, creating: bool) -> None:
    if d.has("auth_type"):
        auth_type = d.get("auth_type").strip()
        if auth_type not in (AUTH_IAM, AUTH_EC2):
            raise InvalidRequest(f"unrecognized auth_type: {auth_type}")
        if not creating and auth_type != role.auth_type:
            raise InvalidRequest("changing auth_type on a role is not allowed")
        role.auth_type = auth_type
    role.token.update(d)
    for name in ("bound_iam_principal_arn", *EC2_BINDS):
        if d.has(name):
            setattr(role, name, _clean(d.get(name)))
    if d.has("resolve_aws_unique_ids"):
        new = bool(d.get("resolve_aws_unique_ids"))
        if not creating and new and not role.resolve_aws_unique_ids:
            raise InvalidRequest("changing resolve_aws_unique_ids from false to true is not allowed")
        role.resolve_aws_unique_ids = new
    for name in ("inferred_entity_type", "inferred_aws_region", "role_tag"):
        if d.has(name):
            setattr(role, name, d.get(name).strip())
    for name in ("allow_instance_migration", "disallow_reauthentication"):
        if d.has(name):
            setattr(role, name, bool(d.get(name)))
    if role.inferred_entity_type:
        # Inference (ec2_instance) needs an EC2 lookup per login that Strongroom does not make.
        raise InvalidRequest(f"inferred_entity_type {role.inferred_entity_type!r} is not supported")
    for name in ("bound_iam_role_arn", "role_tag"):
        if getattr(role, name):  # would need IAM instance-profile lookups / role-tag signing
            raise InvalidRequest(f"{name} is not supported by this server")
    if role.auth_type == AUTH_IAM:
        for name in EC2_BINDS:
            if getattr(role, name):
                raise InvalidRequest(f"specified {name} but not specifying ec2 auth_type or inferring "
                                     "ec2_instance")
        for name in ("role_tag", "allow_instance_migration", "disallow_reauthentication"):
            if getattr(role, name):
                raise InvalidRequest(f"specified {name} but not allowing ec2 auth_type")
        if not role.bound_iam_principal_arn:
            raise InvalidRequest("at least one bound parameter should be specified on the role")
        for arn in role.bound_iam_principal_arn:
            if not arn.startswith("arn:") and arn != "*":
                raise InvalidRequest(f"unrecognized arn: contains {len(arn.split(':'))} colon-separated parts, "
                                     "expected 6 or more")
    else:
        if role.bound_iam_principal_arn:
            raise InvalidRequest("specified bound_iam_principal_arn but not specifying iam auth_type")
        if not any(getattr(role, name) for name in EC2_BINDS):
            raise InvalidRequest("at least one bound parameter should be specified on the role")


async def _resolve_ids(b: AwsBackend, req: Request, role: Role) -> list[str]:
    """The unique IDs (AIDA.../AROA...) of the role's non-wildcard user and role ARNs, asked of IAM,
    so a principal deleted and recreated under the same ARN is not the one that was bound."""
    config = await get_client_config(storage(req)) or ClientConfig()
    endpoint = config.iam_endpoint or "https://iam.amazonaws.com"
    ids: list[str] = []
    for arn in role.bound_iam_principal_arn:
        if "*" in arn:
            continue
        resource = arn.split(":", 5)[-1]
        kind, _, rest = resource.partition("/")
        name = rest.rsplit("/", 1)[-1]
        if kind not in ("user", "role") or not name:
            raise InvalidRequest(f"unable to resolve ARN {arn!r} to internal ID: unrecognized entity type {kind!r}")
        action, tag = ("GetUser", "UserId") if kind == "user" else ("GetRole", "RoleId")
        params = {"Action": action, "Version": "2010-05-08", ("UserName" if kind == "user" else "RoleName"): name}
        try:
            root = await awsapi.call(b, config, endpoint, "us-east-1", "iam", params)
        except awsapi.AwsCallError as e:
            raise InvalidRequest(f"unable to resolve ARN {arn!r} to internal ID: {e}") from None
        found = awsapi.find_text(root, tag)
        if not found:
            raise InvalidRequest(f"unable to resolve ARN {arn!r} to internal ID: no {tag} in the answer")
        ids.append(found)
    return ids


async def list_roles(b: AwsBackend, req: Request, d: FieldData) -> Response | None:
    keys = await storage(req).list(ROLE_PREFIX)
    if not keys:
        raise NotFound()
    return Response(data={"keys": keys})


async def role_exists(b: AwsBackend, req: Request, d: FieldData) -> bool:
    return await get_role(storage(req), d.get("role")) is not None


async def read_role(b: AwsBackend, req: Request, d: FieldData) -> Response | None:
    role = await get_role(storage(req), d.get("role"))
    if role is None:
        raise NotFound()
    return Response(data=role.to_response())


async def write_role(b: AwsBackend, req: Request, d: FieldData) -> Response | None:
    name: str = d.get("role").lower()
    s = storage(req)
    existing = await get_role(s, name)
    role = existing or Role(name=name, role_id=str(uuid.uuid4()))
    _apply(role, d, creating=existing is None)
    if role.auth_type == AUTH_IAM and (d.has("bound_iam_principal_arn") or existing is None):
        role.bound_iam_principal_id = await _resolve_ids(b, req, role) if role.resolve_aws_unique_ids else []
    await put_role(s, role)
    return None


async def delete_role(b: AwsBackend, req: Request, d: FieldData) -> Response | None:
    await storage(req).delete(ROLE_PREFIX + d.get("role").lower())
    return None


async def login_role(s: Storage, name: str, auth_type: str, remote_addr: str) -> Role:
    """The role an ``auth_type`` login names, once it is a role of that type and admits the caller's
    address (its token_bound_cidrs)."""
    role = await get_role(s, name)
    if role is None:
        raise InvalidRequest(f"entry for role {name} not found")
    if role.auth_type != auth_type:
        raise InvalidRequest(f"auth method {auth_type} not allowed for role {name}")
    role.token.check_source(remote_addr)
    return role
