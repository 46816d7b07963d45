"""AWS Signature Version 4 for the few query-API calls this method makes (EC2 DescribeInstances).
A form-encoded POST to ``/``; the auth packages may not import the aws secrets engine's signer."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

ALGORITHM = "AWS4-HMAC-SHA256"


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def sign_post(*, host: str, body: bytes, access_key: str, secret_key: str, session_token: str, region: str,
              service: str, now: datetime) -> dict[str, str]:
    """The headers for a POST of ``body`` (application/x-www-form-urlencoded) to ``host`` path ``/``."""
    amz_date = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    content_type = "application/x-www-form-urlencoded; charset=utf-8"
    headers = {"host": host, "content-type": content_type, "x-amz-date": amz_date}
    if session_token:
        headers["x-amz-security-token"] = session_token
    signed = sorted(headers)
    canonical = "\n".join(["POST", "/", "", "".join(f"{k}:{headers[k]}\n" for k in signed), ";".join(signed),
                           hashlib.sha256(body).hexdigest()])
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(("AWS4" + secret_key).encode(), date), region), service), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out = {"Host": host, "Content-Type": content_type, "X-Amz-Date": amz_date,
           "Authorization": f"{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={';'.join(signed)}, "
                            f"Signature={signature}"}
    if session_token:
        out["X-Amz-Security-Token"] = session_token
    return out
