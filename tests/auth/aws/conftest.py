"""The aws auth method's tests: a moto server (real HTTP endpoint speaking IAM, STS and EC2), and
a helper that signs sts:GetCallerIdentity the way hvac and the Vault CLI do (with botocore)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from tests.engines.aws.conftest import ACCOUNT, boto, moto, moto_server

__all__ = ["ACCOUNT", "boto", "iam_login_body", "moto", "moto_server"]

STS_URL = "https://sts.amazonaws.com/"
BODY = "Action=GetCallerIdentity&Version=2011-06-15"


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def iam_login_body(key: str, secret: str, *, token: str | None = None, url: str = STS_URL, body: str = BODY,
                   server_id: str | None = None, role: str | None = None, sign_server_id: bool = True,
                   extra: dict[str, str] | None = None) -> dict[str, Any]:
    """The login fields for credentials (key, secret[, token]), signed with botocore's SigV4."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    if server_id is not None and sign_server_id:
        headers["X-Vault-AWS-IAM-Server-ID"] = server_id
    req = AWSRequest(method="POST", url=url, data=body, headers=headers)
    SigV4Auth(Credentials(key, secret, token), "sts", "us-east-1").add_auth(req)
    sent = {k: [v] for k, v in req.headers.items()}
    if server_id is not None and not sign_server_id:
        sent["X-Vault-AWS-IAM-Server-ID"] = [server_id]
    for k, v in (extra or {}).items():
        sent[k] = [v]
    out: dict[str, Any] = {"iam_http_request_method": "POST", "iam_request_url": _b64(url),
                           "iam_request_body": _b64(body), "iam_request_headers": _b64(json.dumps(sent))}
    if role is not None:
        out["role"] = role
    return out


@pytest.fixture
def iam(moto: str) -> Any:
    return boto("iam", moto)


def make_user(iam: Any, name: str, path: str = "/") -> tuple[str, str, str]:
    """(arn, access key, secret key) of a new IAM user."""
    arn = iam.create_user(UserName=name, Path=path)["User"]["Arn"]
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return arn, key["AccessKeyId"], key["SecretAccessKey"]
