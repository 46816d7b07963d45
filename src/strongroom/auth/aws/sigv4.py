"""SigV4 for the few query-API calls this method makes (EC2 DescribeInstances, IAM GetUser...):
a form-encoded POST to ``/``, signed by the shared signer (``strongroom.sigv4``)."""

from __future__ import annotations

from datetime import datetime

from strongroom.sigv4 import Credentials, sign

CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"


def sign_post(*, host: str, body: bytes, access_key: str, secret_key: str, session_token: str, region: str,
              service: str, now: datetime) -> dict[str, str]:
    """The headers for a POST of ``body`` (application/x-www-form-urlencoded) to ``host`` path ``/``."""
    return sign(method="POST", host=host, path="/", query="", body=body, content_type=CONTENT_TYPE,
                creds=Credentials(access_key, secret_key, session_token), region=region, service=service,
                now=now)


__all__ = ["sign_post"]
