"""Renewal re-checks (core asks before renewing a token this mount issued; raising refuses), as
Vault's pathLoginRenew: the role still exists with the same auth_type and policies; for iam the
principal is still bound by the role; for ec2 the instance is still running (DescribeInstances)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.auth.aws import ec2
from strongroom.auth.aws.login import bound
from strongroom.auth.aws.store import AUTH_EC2, AUTH_IAM, ClientConfig, get_client_config, get_role
from strongroom.errors import InvalidRequest
from strongroom.logical import Auth, Storage

if TYPE_CHECKING:
    from strongroom.auth.aws import AwsBackend


async def renew_auth(b: AwsBackend, st: Storage, auth: Auth) -> None:
    md = auth.metadata
    role = await get_role(st, md.get("role", ""))
    if role is None:
        raise InvalidRequest("role entry not found")
    auth_type = md.get("auth_type", "")
    if role.auth_type != auth_type:
        raise InvalidRequest("auth type of the role changed, not renewing")
    if set(role.token.token_policies) - {"default"} != set(auth.policies) - {"default"}:
        raise InvalidRequest("policies have changed, not renewing")
    if auth_type == AUTH_IAM:
        if not bound(role, md.get("canonical_arn", ""), md.get("client_arn", ""), md.get("client_user_id", "")):
            raise InvalidRequest(f"role no longer bound to ARN {md.get('canonical_arn', '')!r}")
    elif auth_type == AUTH_EC2:
        config = await get_client_config(st) or ClientConfig()
        doc = ec2.IdentityDocument(md.get("instance_id", ""), md.get("ami_id", ""), md.get("account_id", ""),
                                   md.get("region", ""), "")
        instance = await ec2.describe_instance(b, config, doc)
        if instance.state != "running":
            raise InvalidRequest("instance is not in 'running' state")
