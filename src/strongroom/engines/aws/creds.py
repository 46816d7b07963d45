"""creds/<name> and sts/<name>: issue credentials for a role; the access_keys secret type.

iam_user, in order (each step's failure is answered with Vault's "Error ...: <AWS error>"):

    1  put_wal("user", {"username"})      durable before anything exists in IAM
    2  CreateUser (Path, PermissionsBoundary)
    3  AttachUserPolicy per policy ARN, PutUserPolicy (the role's document, named after the role),
       AddUserToGroup per group, TagUser
    4  CreateAccessKey
    5  the response names the entry; core deletes it in the lease's own commit (framework/wal.py)

A failure in 3 or 4 deletes the user at once (delete_user) and then the entry; if the cleanup
fails too, the entry stays and the framework's rollback deletes the user later. A CreateUser that
AWS refused created nothing: its entry is deleted (and an existing user of that name, which is not
ours, is left alone). A CreateUser whose answer never came (timeout) may have created the user:
cleanup as in 3.

AWS errors: a 4xx answer is the caller's or the configuration's fault (bad policy document,
unknown policy ARN or group): 400. A 5xx answer or an unreachable endpoint: 500. Both name the
AWS error code and message, never a credential.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import unquote

import orjson

from strongroom.engines.aws.client import AWSClient, AWSError, AWSUnreachable, text
from strongroom.engines.aws.roles import load_role
from strongroom.engines.aws.store import ASSUMED_ROLE, FEDERATION_TOKEN, IAM_USER, Role
from strongroom.errors import Internal, InvalidRequest
from strongroom.framework import (
    Field, FieldData, FieldType, Op, Path, Request, Response, SecretType, UsernameTemplateError,
    compile_username_template, name_regex,
)
from strongroom.logical import LeaseInfo

if TYPE_CHECKING:
    from strongroom.engines.aws import AWSBackend

SECRET_TYPE = "access_keys"
#: STS lifetime when neither the request nor the role names one (Vault's default).
DEFAULT_STS_TTL = 3600
#: A revoke that finds no such user trusts it only for leases at least this old: right after
#: CreateUser, IAM's eventual consistency may not show the user yet (Vault's minAwsUserRollbackAge).
MIN_MISSING_AGE = 300.0

CREDS_FIELDS = {
    "name": Field(FieldType.STRING, "Name of the role"),
    "role_arn": Field(FieldType.STRING, "ARN of role to assume when credential_type is assumed_role"),
    "ttl": Field(FieldType.DURATION, "Lifetime of the returned credentials in seconds", default=DEFAULT_STS_TTL),
    "role_session_name": Field(FieldType.STRING, "Session name to use when assuming role. Max chars: 64"),
}


def paths() -> list[Path[AWSBackend]]:
    return [
        Path(rf"(?P<endpoint>creds|sts)/{name_regex('name')}",
             fields={**CREDS_FIELDS, "endpoint": Field(FieldType.STRING)},
             operations={Op.READ: issue, Op.UPDATE: issue},
             synopsis="Generate AWS credentials from a specific Vault role.",
             description="iam_user credentials carry a lease whose revocation deletes the IAM user; "
                         "STS credentials (assumed_role, federation_token) expire by themselves."),
    ]


def _fail(what: str, e: AWSError | AWSUnreachable) -> NoReturn:
    if isinstance(e, AWSError) and 400 <= e.status < 500:
        raise InvalidRequest(f"Error {what}: {e}") from None
    raise Internal(f"Error {what}: {e}") from None


async def issue(b: AWSBackend, req: Request, d: FieldData) -> Response:
    name = str(d.get("name"))
    role = await load_role(b, name)
    if role is None:
        raise InvalidRequest(f'Role "{name}" not found')
    ttl = int(d.get("ttl")) if d.has("ttl") else (role.default_sts_ttl or DEFAULT_STS_TTL)
    ttl = min(ttl, role.max_sts_ttl or b.system.lease_ttls()[1] or ttl)
    kind = _credential_type(role, str(d.get("endpoint")))
    root = await b.root_config()
    template = root.username_template if root is not None else ""
    client = await b.client()
    if kind == IAM_USER:
        return await _iam_user(b, client, req, name, role, template)
    if kind == ASSUMED_ROLE:
        return await _assume_role(b, client, req, name, role, template, ttl, str(d.get("role_arn") or ""),
                                  str(d.get("role_session_name") or ""))
    if kind == FEDERATION_TOKEN:
        return await _federation_token(b, client, name, role, template, ttl)
    raise InvalidRequest(f'unknown credential_type: "{kind}"')


def _credential_type(role: Role, endpoint: str) -> str:
    if len(role.credential_types) == 1:
        kind = role.credential_types[0]
    else:
        # Only legacy roles hold two types (iam_user and federation_token): the path decides.
        kind = IAM_USER if endpoint == "creds" else FEDERATION_TOKEN
        if kind not in role.credential_types:
            raise InvalidRequest(f'requested credential type "{kind}" not in allowed credential types '
                                 f"{role.credential_types}")
    # A legacy role's creds/ gives only IAM users, its sts/ only STS credentials (Vault #4229).
    if role.prohibit_flexible_cred_path:
        if kind == IAM_USER and endpoint == "sts":
            raise InvalidRequest("attempted to retrieve iam_user credentials through the sts path; this is not "
                                 "allowed for legacy roles")
        if kind != IAM_USER and endpoint == "creds":
            raise InvalidRequest(f"attempted to retrieve {kind} credentials through the creds path; this is not "
                                 "allowed for legacy roles")
    return kind


# -- usernames (Vault's aws username_template: the framework's template language over .Type, .DisplayName
# and .PolicyName, names normalised for IAM and bounded by IAM's and STS's length limits) ---------------
DEFAULT_TEMPLATE = (
    '{{ if (eq .Type "STS") }}{{ printf "vault-%s-%s"  (unix_time) (random 20) | truncate 32 }}'
    '{{ else }}{{ printf "vault-%s-%s-%s" (printf "%s-%s" (.DisplayName) (.PolicyName) | truncate 42) '
    '(unix_time) (random 20) | truncate 64 }}{{ end }}'
)
IAM_MAX = 64
STS_MAX = 32
_DISPLAY_BAD = re.compile(r"[^a-zA-Z0-9+=,.@_-]")


def normalize(name: str) -> str:
    """Vault's normalizeDisplayName: characters IAM does not take in names become "_"."""
    return _DISPLAY_BAD.sub("_", name)


def generate_username(template: str, kind: str, display_name: str = "", policy_name: str = "") -> str:
    """A username for ``kind`` "IAM" (at most 64 characters) or "STS" (at most 32);
    :class:`UsernameTemplateError` when the template fails or its name does not fit."""
    data = {"Type": kind, "DisplayName": normalize(display_name), "PolicyName": normalize(policy_name)}
    name = compile_username_template(template or DEFAULT_TEMPLATE).render(data)
    limit = IAM_MAX if kind == "IAM" else STS_MAX
    if len(name) > limit:
        raise UsernameTemplateError(f"the username generated by the template exceeds the {kind} username length "
                            f"limits of {limit} chars")
    if not name:
        raise UsernameTemplateError("the username template generated an empty username")
    return name


def _username(template: str, kind: str, display_name: str = "", policy_name: str = "") -> str:
    try:
        return generate_username(template, kind, display_name, policy_name)
    except UsernameTemplateError as e:
        raise InvalidRequest(f"failed to generate username: {e}") from None


# -- iam_user ------------------------------------------------------------------------------------
async def _iam_user(b: AWSBackend, client: AWSClient, req: Request, name: str, role: Role,
                    template: str) -> Response:
    username = _username(template, "IAM", req.display_name, name)
    wal_id = await b.put_wal("user", {"username": username})
    create = {"UserName": username, "Path": role.user_path or "/"}
    if role.permissions_boundary_arn:
        create["PermissionsBoundary"] = role.permissions_boundary_arn
    try:
        await client.iam_call("CreateUser", create, idempotent=False)
    except AWSError as e:
        # An answer refusing it: nothing was created, and a user of that name that already exists
        # (EntityAlreadyExists: a template without randomness) is someone else's, never touched.
        await b.delete_wal(wal_id)
        _fail("creating IAM user", e)
    except AWSUnreachable as e:
        # No answer: the user may exist (CreateUser is not retried, see client.py).
        await _cleanup(b, client, username, wal_id)
        _fail("creating IAM user", e)
    step = ""
    try:
        step = "attaching user policy"
        for arn in role.policy_arns:
            await client.iam_call("AttachUserPolicy", {"UserName": username, "PolicyArn": arn})
        if role.policy_document:
            step = "putting user policy"
            await client.iam_call("PutUserPolicy", {"UserName": username, "PolicyName": name,
                                                    "PolicyDocument": role.policy_document})
        step = "adding user to group"
        for group in role.iam_groups:
            await client.iam_call("AddUserToGroup", {"UserName": username, "GroupName": group})
        if role.iam_tags:
            step = "adding tags to user"
            tags = {"UserName": username}
            for i, (k, v) in enumerate(sorted(role.iam_tags.items()), 1):
                tags[f"Tags.member.{i}.Key"] = k
                tags[f"Tags.member.{i}.Value"] = v
            await client.iam_call("TagUser", tags)
        step = "creating access keys"
        result = await client.iam_call("CreateAccessKey", {"UserName": username})
    except (AWSError, AWSUnreachable) as e:
        await _cleanup(b, client, username, wal_id)
        _fail(step, e)
    access_key, secret_key = text(result, "AccessKey/AccessKeyId"), text(result, "AccessKey/SecretAccessKey")
    if not access_key or not secret_key:
        await _cleanup(b, client, username, wal_id)
        raise Internal("Error creating access keys: the answer holds no access key")
    lease = await b.lease_config()
    return ACCESS_KEYS.response(
        {"access_key": access_key, "secret_key": secret_key, "security_token": None},
        {"username": username, "policy": name, "is_sts": False, "issued_at": b.system.now()},
        ttl=lease.lease if lease else 0, max_ttl=lease.lease_max if lease else 0,
        wal_ids=[wal_id], system=b.system)


async def _cleanup(b: AWSBackend, client: AWSClient, username: str, wal_id: str) -> None:
    """Undo a half-created user now; the entry goes only once the user is gone."""
    try:
        await delete_user(client, username, missing_ok=False)
    except (AWSError, AWSUnreachable) as e:
        b.system.logger.warning("could not delete half-created IAM user %s (the rollback will retry): %s",
                                username, e)
        return
    await b.delete_wal(wal_id)


async def delete_user(client: AWSClient, username: str, *, missing_ok: bool = True) -> None:
    """Delete an IAM user and everything that keeps it from being deleted: access keys, attached
    and inline policies, group memberships (Vault's pathUserRollback). A user that does not exist
    is done when ``missing_ok``; otherwise AWSError NoSuchEntity is raised."""
    user = {"UserName": username}
    try:
        groups = await client.iam_list("ListGroupsForUser", user, "Groups/member")
    except AWSError as e:
        if e.code == "NoSuchEntity" and missing_ok:
            return
        raise
    # The reads, then the detaching calls, each at once (independent of one another); the user last.
    inline, attached, keys = await asyncio.gather(
        client.iam_list("ListUserPolicies", user, "PolicyNames/member"),
        client.iam_list("ListAttachedUserPolicies", user, "AttachedPolicies/member"),
        client.iam_list("ListAccessKeys", user, "AccessKeyMetadata/member"))
    await asyncio.gather(
        *(client.iam_call("DeleteAccessKey", {**user, "AccessKeyId": text(k, "AccessKeyId")}) for k in keys),
        *(client.iam_call("DetachUserPolicy", {**user, "PolicyArn": text(p, "PolicyArn")}) for p in attached),
        *(client.iam_call("DeleteUserPolicy", {**user, "PolicyName": p.text or ""}) for p in inline),
        *(client.iam_call("RemoveUserFromGroup", {**user, "GroupName": text(g, "GroupName")}) for g in groups))
    await client.iam_call("DeleteUser", user)


# -- STS -------------------------------------------------------------------------------------------
async def _group_policies(client: AWSClient, groups: list[str]) -> tuple[list[str], list[str]]:
    """Inline policy documents and managed policy ARNs of ``groups`` (Vault's getGroupPolicies)."""
    docs: list[str] = []
    arns: list[str] = []
    for group in groups:
        g = {"GroupName": group}
        for name_el in await client.iam_list("ListGroupPolicies", g, "PolicyNames/member"):
            result = await client.iam_call("GetGroupPolicy", {**g, "PolicyName": name_el.text or ""})
            docs.append(unquote(text(result, "PolicyDocument")))
        arns += [text(p, "PolicyArn") for p in
                 await client.iam_list("ListAttachedGroupPolicies", g, "AttachedPolicies/member")]
    return docs, arns


def _combine(docs: list[str]) -> str:
    """One policy document holding every statement of ``docs`` (Vault's combinePolicyDocuments)."""
    statements: list[Any] = []
    for doc in docs:
        if not doc:
            continue
        try:
            body = orjson.loads(doc)
        except orjson.JSONDecodeError:
            raise InvalidRequest(f"unable to parse policy document: {doc[:100]!r}") from None
        stmt = body.get("Statement", []) if isinstance(body, dict) else []
        statements += stmt if isinstance(stmt, list) else [stmt]
    return orjson.dumps({"Version": "2012-10-17", "Statement": statements}).decode() if statements else ""


async def _sts_policies(client: AWSClient, role: Role) -> tuple[str, list[str]]:
    policy, arns = role.policy_document, list(role.policy_arns)
    if role.iam_groups:
        try:
            docs, group_arns = await _group_policies(client, role.iam_groups)
        except (AWSError, AWSUnreachable) as e:
            _fail("reading IAM group policies", e)
        if docs:
            policy = _combine([*docs, policy])
        arns += group_arns
    return policy, arns


def _sts_params(params: dict[str, str], policy: str, arns: list[str]) -> dict[str, str]:
    if policy:
        params["Policy"] = policy
    for i, arn in enumerate(arns, 1):
        params[f"PolicyArns.member.{i}.arn"] = arn
    return params


def _sts_response(b: AWSBackend, result: Any, username: str, policy: str, extra: dict[str, Any]) -> Response:
    creds = result.find("Credentials")
    data: dict[str, Any] = {"access_key": text(creds, "AccessKeyId"), "secret_key": text(creds, "SecretAccessKey"),
                            "security_token": text(creds, "SessionToken"), **extra}
    if not data["access_key"]:
        raise Internal("the STS answer holds no credentials")
    ttl = DEFAULT_STS_TTL
    with contextlib.suppress(ValueError):
        expires = datetime.fromisoformat(text(creds, "Expiration").replace("Z", "+00:00"))
        ttl = max(1, int(expires.timestamp() - b.system.now()))
    # STS credentials cannot be renewed, and expire at AWS whatever happens to the lease.
    return ACCESS_KEYS.response(data, {"username": username, "policy": policy, "is_sts": True},
                                ttl=ttl, renewable=False, system=b.system)


async def _assume_role(b: AWSBackend, client: AWSClient, req: Request, name: str, role: Role, template: str,
                       ttl: int, role_arn: str, session_name: str) -> Response:
    if not role_arn:
        if len(role.role_arns) != 1:
            raise InvalidRequest("did not supply a role_arn parameter and unable to determine one")
        role_arn = role.role_arns[0]
    elif role_arn not in role.role_arns:
        raise InvalidRequest(f'role_arn "{role_arn}" not in allowed role arns for Vault role "{name}"')
    policy, arns = await _sts_policies(client, role)
    session_name = (normalize(session_name)[:64] if session_name
                    else _username(template, "IAM", req.display_name, name))
    params = _sts_params({"RoleArn": role_arn, "RoleSessionName": session_name, "DurationSeconds": str(ttl)},
                         policy, arns)
    if role.external_id:
        params["ExternalId"] = role.external_id
    for i, (k, v) in enumerate(sorted(role.session_tags.items()), 1):
        params[f"Tags.member.{i}.Key"] = k
        params[f"Tags.member.{i}.Value"] = v
    try:
        result = await client.sts_call("AssumeRole", params)
    except (AWSError, AWSUnreachable) as e:
        _fail("assuming role", e)
    arn = text(result, "AssumedRoleUser/Arn")
    return _sts_response(b, result, session_name, role_arn, {"arn": arn})


async def _federation_token(b: AWSBackend, client: AWSClient, name: str, role: Role, template: str,
                            ttl: int) -> Response:
    policy, arns = await _sts_policies(client, role)
    if not policy and not arns:
        # Without either, GetFederationToken would hand out the root credentials' own rights.
        raise InvalidRequest("must specify at least one of policy_arns or policy_document with "
                             "federation_token credential_type")
    username = _username(template, "STS")
    params = _sts_params({"Name": username, "DurationSeconds": str(ttl)}, policy, arns)
    try:
        result = await client.sts_call("GetFederationToken", params)
    except (AWSError, AWSUnreachable) as e:
        _fail("generating STS keys", e)
    return _sts_response(b, result, username, policy, {})


# -- the secret type -----------------------------------------------------------------------------
async def renew_keys(b: AWSBackend, req: Request, d: FieldData) -> Response | None:
    if d.raw.get("is_sts") is True:
        raise InvalidRequest("lease is not renewable")
    secret = req.secret
    assert secret is not None
    lease = await b.lease_config()
    ttl = lease.lease if lease and lease.lease else secret.ttl
    return Response(secret=LeaseInfo(ttl=ttl, max_ttl=lease.lease_max if lease else 0,
                                     internal_data=dict(secret.internal_data)))


async def revoke_keys(b: AWSBackend, req: Request, d: FieldData) -> None:
    is_sts = d.raw.get("is_sts")
    if is_sts is True:
        return None  # AWS expires STS credentials; there is nothing to delete
    if is_sts is not None and not isinstance(is_sts, bool):
        raise Internal("secret has is_sts but value could not be understood")
    username = d.raw.get("username")
    if not isinstance(username, str) or not username:
        raise Internal("secret is missing username internal data")
    issued = d.raw.get("issued_at")
    old = not isinstance(issued, (int, float)) or b.system.now() - issued >= MIN_MISSING_AGE
    try:
        await delete_user(await b.client(), username, missing_ok=old)
    except (AWSError, AWSUnreachable) as e:
        raise Internal(f"Error deleting IAM user {username}: {e}") from None
    return None


ACCESS_KEYS: SecretType[AWSBackend] = SecretType(SECRET_TYPE, renew=renew_keys, revoke=revoke_keys)
