"""login: an AWS identity in, a token out.

``iam`` (iam.py does the STS part): the login fields are decoded and checked, the role is the one
named or (as in Vault) the friendly name of the principal; the identity STS answers must be bound
by the role's ``bound_iam_principal_arn`` (exact canonical ARN, or a glob).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.auth.aws import ec2, iam
from strongroom.auth.aws.roles import login_role
from strongroom.auth.aws.store import AUTH_IAM, ClientConfig, Role, get_client_config, storage
from strongroom.errors import InvalidRequest
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response
from strongroom.framework.globs import glob_match
from strongroom.logical import Auth

if TYPE_CHECKING:
    from strongroom.auth.aws import AwsBackend


def paths() -> list[Path[AwsBackend]]:
    return [Path("login", fields={
        "role": Field(FieldType.STRING, "Name of the role against which the login is being attempted."),
        "iam_http_request_method": Field(FieldType.STRING, "HTTP method to use for the AWS request when auth_type "
                                         "is iam. This must match what has been signed in the presigned request."),
        "iam_request_url": Field(FieldType.STRING, "Base64-encoded full URL against which to make the AWS "
                                 "request when using iam auth_type."),
        "iam_request_body": Field(FieldType.STRING, "Base64-encoded request body when auth_type is iam.",
                                  sensitive=True),
        "iam_request_headers": Field(FieldType.ANY, "Key/value pairs of headers for use in the "
                                     "sts:GetCallerIdentity HTTP requests headers when auth_type is iam.",
                                     sensitive=True),
        "pkcs7": Field(FieldType.STRING, "PKCS7 signature of the identity document when using an auth_type of "
                       "ec2."),
        "nonce": Field(FieldType.STRING, "The nonce to be used for subsequent login requests when auth_type is "
                       "ec2.", sensitive=True),
        "identity": Field(FieldType.STRING, "Base64 encoded EC2 instance identity document."),
        "signature": Field(FieldType.STRING, "Base64 encoded SHA256 RSA signature of the instance identity "
                           "document."),
    }, operations={Op.UPDATE: login}, unauthenticated=True,
        synopsis="Authenticates an EC2 instance or IAM principal with Strongroom.")]


async def login(b: AwsBackend, req: Request, d: FieldData) -> Response | None:
    if d.get("iam_http_request_method") or d.get("iam_request_url"):
        return await login_iam(b, req, d)
    if d.get("pkcs7") or d.get("identity"):
        return await ec2.login_ec2(b, req, d, await get_client_config(storage(req)) or ClientConfig())
    raise InvalidRequest("didn't supply required authentication values")


def bound(role: Role, canonical: str, client_arn: str, unique_id: str) -> bool:
    """Vault's rule: with resolve_aws_unique_ids, an exact ARN binds the unique ID it was resolved to
    at role write (a recreated principal does not match); otherwise the canonical ARN. Globs match
    the canonical or the full ARN."""
    if role.resolve_aws_unique_ids and unique_id and unique_id in role.bound_iam_principal_id:
        return True
    for arn in role.bound_iam_principal_arn:
        if "*" in arn:
            if glob_match(arn, canonical) or glob_match(arn, client_arn):
                return True
        elif not role.resolve_aws_unique_ids and arn == canonical:
            return True
    return False


async def login_iam(b: AwsBackend, req: Request, d: FieldData) -> Response | None:
    method, url, body, headers = iam.decode_login(d.get("iam_http_request_method"), d.get("iam_request_url"),
                                                  d.get("iam_request_body"), d.get("iam_request_headers"))
    s = storage(req)
    config = await get_client_config(s) or ClientConfig()
    path = iam.check_request(config, method, url, body)
    if config.iam_server_id_header_value:
        iam.check_server_id(headers, config.iam_server_id_header_value)
    caller = await iam.get_caller_identity(b, config, url, headers, body, path)
    principal = iam.parse_arn(caller.arn)
    canonical = principal.canonical_arn()
    role_name: str = d.get("role") or principal.friendly_name
    addr = req.connection.remote_addr
    role = await login_role(s, role_name, AUTH_IAM, addr)
    unique_id = caller.user_id.split(":")[0]
    if not bound(role, canonical, caller.arn, unique_id):
        raise InvalidRequest(f"IAM Principal {caller.arn!r} does not belong to the role {role_name!r}")
    metadata = {"client_arn": caller.arn, "canonical_arn": canonical, "client_user_id": unique_id,
                "auth_type": AUTH_IAM, "inferred_entity_type": "", "inferred_entity_id": "",
                "inferred_aws_region": "", "account_id": principal.account, "role_id": role.role_id,
                "role": role.name}
    auth = role.token.fill_auth(Auth(metadata=metadata, display_name=principal.friendly_name,
                                     internal_data={"role_name": role.name, "role_id": role.role_id,
                                                    "canonical_arn": canonical, "client_arn": caller.arn,
                                                    "client_user_id": unique_id}), addr)
    return Response(auth=auth)
