"""The aws auth method's iam login over HTTP (in-process server), with moto as STS."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.auth.aws.conftest import ACCOUNT, boto, iam_login_body, make_user
from tests.auth.conftest import Vault


@pytest.fixture
async def aws(vault: Vault, moto: str) -> AsyncIterator[Vault]:
    await vault.done("POST", "sys/auth/aws", {"type": "aws"})
    await vault.done("POST", "auth/aws/config/client", {"sts_endpoint": moto, "sts_region": "us-east-1",
                                                         "iam_endpoint": moto, "access_key": "AKIAX",
                                                         "secret_key": "very-secret"})
    yield vault


async def test_config_client_roundtrip_hides_secret(aws: Vault, moto: str) -> None:
    data = (await aws.ok("GET", "auth/aws/config/client"))["data"]
    assert data["sts_endpoint"] == moto and data["access_key"] == "AKIAX" and "secret_key" not in data
    assert "very-secret" not in str(data)
    await aws.done("POST", "auth/aws/config/client", {"iam_server_id_header_value": "vault.example"})
    data = (await aws.ok("GET", "auth/aws/config/client"))["data"]
    assert data["sts_endpoint"] == moto and data["iam_server_id_header_value"] == "vault.example"  # merged
    await aws.fails(400, "POST", "auth/aws/config/client", {"sts_endpoint": "ftp://x"})
    await aws.done("DELETE", "auth/aws/config/client")
    await aws.fails(404, "GET", "auth/aws/config/client")


async def test_role_crud_and_validation(aws: Vault, iam: Any) -> None:
    arn = f"arn:aws:iam::{ACCOUNT}:user/alice"
    make_user(iam, "alice")
    await aws.done("POST", "auth/aws/role/Dev", {"auth_type": "iam", "bound_iam_principal_arn": [arn],
                                                  "token_policies": "dev", "token_ttl": "1h"})
    data = (await aws.ok("GET", "auth/aws/role/dev"))["data"]
    assert data["auth_type"] == "iam" and data["bound_iam_principal_arn"] == [arn]
    assert data["token_policies"] == ["dev"] and data["token_ttl"] == 3600 and data["resolve_aws_unique_ids"]
    assert data["role_id"] and data["bound_ami_id"] == []
    assert data["bound_iam_principal_id"] == [iam.get_user(UserName="alice")["User"]["UserId"]]
    ghost = f"arn:aws:iam::{ACCOUNT}:user/ghost"
    errs = await aws.fails(400, "POST", "auth/aws/role/ghost", {"bound_iam_principal_arn": ghost})
    assert errs == [f"unable to resolve ARN 'arn:aws:iam::{ACCOUNT}:user/ghost' to internal ID: NoSuchEntity"]
    await aws.fails(404, "GET", "auth/aws/role/ghost")
    await aws.done("POST", "auth/aws/role/ghost", {"bound_iam_principal_arn": f"arn:aws:iam::{ACCOUNT}:user/ghost",
                                                    "resolve_aws_unique_ids": False})
    errs = await aws.fails(400, "POST", "auth/aws/role/ghost", {"resolve_aws_unique_ids": True})
    assert errs == ["changing resolve_aws_unique_ids from false to true is not allowed"]
    await aws.done("DELETE", "auth/aws/role/ghost")
    assert (await aws.ok("LIST", "auth/aws/roles"))["data"]["keys"] == ["dev"]
    assert (await aws.ok("LIST", "auth/aws/role"))["data"]["keys"] == ["dev"]
    assert "changing auth_type" in (await aws.fails(400, "POST", "auth/aws/role/dev", {"auth_type": "ec2"}))[0]
    errs = await aws.fails(400, "POST", "auth/aws/role/x", {"auth_type": "iam"})
    assert errs == ["at least one bound parameter should be specified on the role"]
    errs = await aws.fails(400, "POST", "auth/aws/role/x", {"bound_iam_principal_arn": arn, "bound_ami_id": "ami-1"})
    assert errs == ["specified bound_ami_id but not specifying ec2 auth_type or inferring ec2_instance"]
    await aws.fails(400, "POST", "auth/aws/role/x", {"auth_type": "magic", "bound_iam_principal_arn": arn})
    await aws.fails(404, "GET", "auth/aws/role/x")
    await aws.done("DELETE", "auth/aws/role/dev")
    await aws.fails(404, "LIST", "auth/aws/roles")


async def test_iam_login_user(aws: Vault, iam: Any) -> None:
    arn, key, secret = make_user(iam, "alice", path="/team/")
    await aws.done("POST", "auth/aws/role/alice", {"bound_iam_principal_arn": f"arn:aws:iam::{ACCOUNT}:user/alice",
                                                    "token_policies": "dev", "token_ttl": 600})
    body = iam_login_body(key, secret)  # no role: the principal's friendly name is the role
    auth = (await aws.ok("POST", "auth/aws/login", body, token=None))["auth"]
    assert auth["policies"] == ["default", "dev"] and auth["lease_duration"] == 600
    md = auth["metadata"]
    assert md["client_arn"] == arn == f"arn:aws:iam::{ACCOUNT}:user/team/alice"
    assert md["canonical_arn"] == f"arn:aws:iam::{ACCOUNT}:user/alice" and md["auth_type"] == "iam"
    assert md["account_id"] == ACCOUNT and md["client_user_id"] == iam.get_user(UserName="alice")["User"]["UserId"]
    look = await aws.ok("GET", "auth/token/lookup-self", token=auth["client_token"])
    assert look["data"]["display_name"] == "aws-alice"


async def test_iam_login_wrong_principal_refused(aws: Vault, iam: Any) -> None:
    _, key, secret = make_user(iam, "bob")
    make_user(iam, "alice")
    await aws.done("POST", "auth/aws/role/app", {"bound_iam_principal_arn": f"arn:aws:iam::{ACCOUNT}:user/alice"})
    errs = await aws.fails(400, "POST", "auth/aws/login", iam_login_body(key, secret, role="app"), token=None)
    assert errs == [f"IAM Principal 'arn:aws:iam::{ACCOUNT}:user/bob' does not belong to the role 'app'"]
    errs = await aws.fails(400, "POST", "auth/aws/login", iam_login_body(key, secret), token=None)
    assert errs == ["entry for role bob not found"]


async def test_iam_login_wildcard_and_assumed_role(aws: Vault, iam: Any, moto: str) -> None:
    from tests.engines.aws.conftest import assume_role_policy
    role_arn = iam.create_role(RoleName="app-web", AssumeRolePolicyDocument=assume_role_policy())["Role"]["Arn"]
    creds = boto("sts", moto).assume_role(RoleArn=role_arn, RoleSessionName="i-123")["Credentials"]
    await aws.done("POST", "auth/aws/role/apps", {"bound_iam_principal_arn": f"arn:aws:iam::{ACCOUNT}:role/app-*",
                                                   "token_policies": "apps"})
    body = iam_login_body(creds["AccessKeyId"], creds["SecretAccessKey"], token=creds["SessionToken"], role="apps")
    auth = (await aws.ok("POST", "auth/aws/login", body, token=None))["auth"]
    assert auth["metadata"]["client_arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/app-web/i-123"
    assert auth["metadata"]["canonical_arn"] == role_arn and auth["policies"] == ["apps", "default"]
    await aws.done("POST", "auth/aws/role/apps", {"bound_iam_principal_arn": f"arn:aws:iam::{ACCOUNT}:role/db-*"})
    await aws.fails(400, "POST", "auth/aws/login", body, token=None)


async def test_iam_login_refuses_other_urls_and_actions(aws: Vault, iam: Any) -> None:
    _, key, secret = make_user(iam, "alice")
    await aws.done("POST", "auth/aws/role/alice", {"bound_iam_principal_arn": f"arn:aws:iam::{ACCOUNT}:user/alice"})
    for url in ("https://evil.example.com/", "https://sts.amazonaws.com.evil.example/", "https://sts.amazonaws.com/x",
                "https://sts.amazonaws.com/?Action=GetCallerIdentity", "file:///etc/passwd", "http://[::1"):
        signed = iam_login_body(key, secret, url=url) if url.startswith("https") else {
            **iam_login_body(key, secret), "iam_request_url": base64.b64encode(url.encode()).decode()}
        errs = await aws.fails(400, "POST", "auth/aws/login", signed, token=None)
        assert errs in (["iam_request_url must name the STS endpoint"], ["error parsing iam_request_url"]), url
    errs = await aws.fails(400, "POST", "auth/aws/login", iam_login_body(key, secret, body="Action=ListUsers"),
                           token=None)
    assert errs == ["iam_request_body must have 'Action=GetCallerIdentity'"]
    bad = iam_login_body(key, secret)
    await aws.fails(400, "POST", "auth/aws/login", {**bad, "iam_http_request_method": "GET"}, token=None)
    await aws.fails(400, "POST", "auth/aws/login", {**bad, "iam_request_url": "%%%"}, token=None)
    await aws.fails(400, "POST", "auth/aws/login", {**bad, "iam_request_headers": "bm90IGpzb24="}, token=None)
    await aws.fails(400, "POST", "auth/aws/login", {"role": "alice"}, token=None)
    errs = await aws.fails(400, "POST", "auth/aws/login", iam_login_body(key, secret, extra={"X-Evil": "a\r\nb"}),
                           token=None)
    assert errs == ["failed to parse iam_request_headers"]


async def test_iam_server_id_header(aws: Vault, iam: Any) -> None:
    _, key, secret = make_user(iam, "alice")
    await aws.done("POST", "auth/aws/role/alice", {"bound_iam_principal_arn": f"arn:aws:iam::{ACCOUNT}:user/alice"})
    await aws.done("POST", "auth/aws/config/client", {"iam_server_id_header_value": "vault.example.com"})
    prefix = "error validating X-Vault-AWS-IAM-Server-ID header: "
    errs = await aws.fails(400, "POST", "auth/aws/login", iam_login_body(key, secret), token=None)
    assert errs == [prefix + "missing header 'X-Vault-AWS-IAM-Server-ID'"]
    errs = await aws.fails(400, "POST", "auth/aws/login", iam_login_body(key, secret, server_id="other"), token=None)
    assert errs[0].startswith(prefix + "expected 'vault.example.com'")
    errs = await aws.fails(400, "POST", "auth/aws/login",
                           iam_login_body(key, secret, server_id="vault.example.com", sign_server_id=False), token=None)
    assert errs == [prefix + "vault header wasn't signed"]
    await aws.ok("POST", "auth/aws/login", iam_login_body(key, secret, server_id="vault.example.com"), token=None)


async def test_iam_login_sts_endpoint_url_and_sts_errors(aws: Vault, iam: Any, moto: str) -> None:
    _, key, secret = make_user(iam, "alice")
    await aws.done("POST", "auth/aws/role/alice", {"bound_iam_principal_arn": f"arn:aws:iam::{ACCOUNT}:user/alice"})
    # A client that signed for the configured endpoint itself is accepted too.
    await aws.ok("POST", "auth/aws/login", iam_login_body(key, secret, url=moto + "/"), token=None)
    await aws.done("POST", "auth/aws/config/client", {"sts_endpoint": "http://127.0.0.1:9"})  # nothing listens
    errs = await aws.fails(400, "POST", "auth/aws/login", iam_login_body(key, secret), token=None)
    assert errs[0].startswith("error making upstream request")


async def test_iam_recreated_user_not_accepted_with_unique_ids(aws: Vault, iam: Any) -> None:
    arn = f"arn:aws:iam::{ACCOUNT}:user/carol"
    _, key, secret = make_user(iam, "carol")
    await aws.done("POST", "auth/aws/role/strict", {"bound_iam_principal_arn": arn})
    await aws.done("POST", "auth/aws/role/loose", {"bound_iam_principal_arn": arn, "resolve_aws_unique_ids": False})
    await aws.ok("POST", "auth/aws/login", iam_login_body(key, secret, role="strict"), token=None)
    iam.delete_access_key(UserName="carol", AccessKeyId=key)
    iam.delete_user(UserName="carol")
    _, key2, secret2 = make_user(iam, "carol")  # same ARN, new unique ID
    errs = await aws.fails(400, "POST", "auth/aws/login", iam_login_body(key2, secret2, role="strict"), token=None)
    assert errs == [f"IAM Principal '{arn}' does not belong to the role 'strict'"]
    await aws.ok("POST", "auth/aws/login", iam_login_body(key2, secret2, role="loose"), token=None)


async def test_iam_renewal_rechecks_role(aws: Vault, iam: Any) -> None:
    _, key, secret = make_user(iam, "alice")
    make_user(iam, "bob")
    await aws.done("POST", "auth/aws/role/alice", {"bound_iam_principal_arn": f"arn:aws:iam::{ACCOUNT}:user/alice",
                                                    "token_policies": "dev"})
    token = (await aws.ok("POST", "auth/aws/login", iam_login_body(key, secret), token=None))["auth"]["client_token"]
    await aws.ok("POST", "auth/token/renew-self", {}, token=token)
    await aws.done("POST", "auth/aws/role/alice", {"token_policies": "dev,ops"})
    assert await aws.fails(400, "POST", "auth/token/renew-self", {}, token=token) == [
        "policies have changed, not renewing"]
    await aws.done("POST", "auth/aws/role/alice", {"token_policies": "dev",
                                                    "bound_iam_principal_arn": f"arn:aws:iam::{ACCOUNT}:user/bob"})
    assert await aws.fails(400, "POST", "auth/token/renew-self", {}, token=token) == [
        f"role no longer bound to ARN 'arn:aws:iam::{ACCOUNT}:user/alice'"]
    await aws.done("DELETE", "auth/aws/role/alice")
    assert await aws.fails(400, "POST", "auth/token/renew-self", {}, token=token) == ["role entry not found"]


async def test_iam_headers_as_json_object(aws: Vault, iam: Any) -> None:
    import json
    _, key, secret = make_user(iam, "alice")
    await aws.done("POST", "auth/aws/role/alice", {"bound_iam_principal_arn": f"arn:aws:iam::{ACCOUNT}:user/alice",
                                                    "resolve_aws_unique_ids": False})
    body = iam_login_body(key, secret)
    headers = json.loads(base64.b64decode(body["iam_request_headers"]))
    flat = {k: v[0] for k, v in headers.items()}  # single values instead of lists, as Vault accepts
    await aws.ok("POST", "auth/aws/login", {**body, "iam_request_headers": flat}, token=None)
    await aws.ok("POST", "auth/aws/login", {**body, "iam_request_headers": json.dumps(headers)}, token=None)
    await aws.fails(400, "POST", "auth/aws/login", {**body, "iam_request_headers": {"a": 1}}, token=None)
