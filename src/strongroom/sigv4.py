"""AWS Signature Version 4 for the IAM, STS and EC2 query APIs (pure: no I/O, no clock of its own).

The one signer, shared (a top-level module, importing nothing of Strongroom) by the aws secrets
engine, the aws auth method (EC2/IAM calls) and the CLI's ``login -method=aws`` (which signs
sts:GetCallerIdentity for the server to replay).

Only what a form-encoded POST to a query API needs: the canonical request over the method, the
path, the query string, the signed headers (``host``, ``content-type``, ``x-amz-date``, with
session credentials ``x-amz-security-token``, and any extra headers the caller adds, such as
``X-Vault-AWS-IAM-Server-ID``) and the SHA-256 of the body; the string to sign over the credential
scope; the signing key derived date -> region -> service -> "aws4_request".
tests/engines/aws/test_sigv4.py and tests/cli/test_cli_login_aws.py check the result against
botocore's own signer.

SECURITY: the secret key only ever enters HMAC-SHA256 (``hmac``/``hashlib``); it is never put in
a header, a log line or an error message.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

ALGORITHM = "AWS4-HMAC-SHA256"


@dataclass(frozen=True, slots=True)
class Credentials:
    access_key: str
    secret_key: str
    session_token: str = ""

    def __repr__(self) -> str:  # never show the secret
        return f"Credentials(access_key={self.access_key!r})"


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    k = _hmac(("AWS4" + secret_key).encode(), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


def _uri_encode(s: str, *, slash: bool) -> str:
    return quote(s, safe="-_.~" + ("/" if not slash else ""))


def canonical_query(query: str) -> str:
    if not query:
        return ""
    pairs = []
    for part in query.split("&"):
        k, _, v = part.partition("=")
        pairs.append((_uri_encode(k, slash=True), _uri_encode(v, slash=True)))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def sign(*, method: str, host: str, path: str, query: str, body: bytes, content_type: str,
         creds: Credentials, region: str, service: str, now: datetime,
         extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The headers to send with the request (``Host`` included: it must be exactly what was
    signed). ``path`` is the URL path as sent (already percent-encoded), ``query`` its raw query.
    ``extra`` headers are signed too, and returned under the names given."""
    now = now.astimezone(UTC)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    headers = {"host": host, "content-type": content_type, "x-amz-date": amz_date}
    if creds.session_token:
        headers["x-amz-security-token"] = creds.session_token
    for name, value in (extra or {}).items():
        if name.lower() in headers:
            raise ValueError(f"header {name!r} is set by the signer")
        headers[name.lower()] = value
    signed = sorted(headers)
    canonical_headers = "".join(f"{k}:{' '.join(headers[k].split())}\n" for k in signed)
    signed_headers = ";".join(signed)
    canonical = "\n".join([
        method.upper(),
        # Every service but S3 encodes the (already encoded) path once more: "%20" -> "%2520".
        _uri_encode(path or "/", slash=False),
        canonical_query(query),
        canonical_headers,
        signed_headers,
        hashlib.sha256(body).hexdigest(),
    ])
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    signature = hmac.new(signing_key(creds.secret_key, date, region, service), to_sign.encode(),
                         hashlib.sha256).hexdigest()
    out = {"Host": host, "Content-Type": content_type, "X-Amz-Date": amz_date,
           "Authorization": f"{ALGORITHM} Credential={creds.access_key}/{scope}, "
                            f"SignedHeaders={signed_headers}, Signature={signature}"}
    if creds.session_token:
        out["X-Amz-Security-Token"] = creds.session_token
    out.update(extra or {})
    return out


__all__ = ["ALGORITHM", "Credentials", "canonical_query", "sign", "signing_key"]
