"""Our SigV4 signature is byte for byte botocore's for the same request and time."""

from __future__ import annotations

from datetime import UTC, datetime
from unittest import mock

import pytest

from strongroom.engines.aws.sigv4 import Credentials, sign

botocore = pytest.importorskip("botocore")


@pytest.mark.parametrize(("service", "region", "host", "path", "query", "token"), [
    ("iam", "us-east-1", "iam.amazonaws.com", "/", "", ""),
    ("sts", "eu-west-1", "sts.eu-west-1.amazonaws.com", "/", "", "session-token-xyz"),
    ("iam", "us-east-1", "127.0.0.1:5000", "/some path/x", "b=2&a=1", ""),
])
def test_signature_matches_botocore(service: str, region: str, host: str, path: str, query: str,
                                    token: str) -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    now = datetime(2026, 12, 6, 19, 30, 5, tzinfo=UTC)
    body = b"Action=CreateUser&UserName=vault-x&Version=2010-05-08"
    ctype = "application/x-www-form-urlencoded; charset=utf-8"
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    ours = sign(method="POST", host=host, path=path.replace(" ", "%20"), query=query, body=body,
                content_type=ctype, creds=creds, region=region, service=service, now=now)

    url = f"http://{host}{path.replace(' ', '%20')}" + (f"?{query}" if query else "")
    req = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": ctype})
    with mock.patch("botocore.auth.get_current_datetime", return_value=now.replace(tzinfo=None)):
        SigV4Auth(BotoCredentials(creds.access_key, creds.secret_key, token or None), service, region).add_auth(req)
    assert ours["X-Amz-Date"] == req.headers["X-Amz-Date"]
    assert ours["Authorization"] == req.headers["Authorization"]


def test_credentials_repr_hides_the_secret() -> None:
    assert "secret" not in repr(Credentials("AKID", "secret"))
