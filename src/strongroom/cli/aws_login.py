"""``login -method=aws``: the login fields of the aws auth method's ``iam`` login, as Vault's CLI
builds them (its ``GenerateLoginData``).

The CLI signs an ``sts:GetCallerIdentity`` request with the user's own AWS credentials (SigV4, the
shared signer in ``strongroom.sigv4``) and hands the server the request's method, URL, body and
headers, base64-encoded; the server replays it to STS and trusts the identity STS answers. The
request is never sent to AWS from here.

Credentials are looked for in Vault's order: explicit ``aws_access_key_id=``/``aws_secret_access_key=``
(``aws_security_token=``) arguments, the standard environment variables (``AWS_ACCESS_KEY_ID`` or
``AWS_ACCESS_KEY``, ``AWS_SECRET_ACCESS_KEY`` or ``AWS_SECRET_KEY``, ``AWS_SESSION_TOKEN``), then the
shared credentials file (``AWS_SHARED_CREDENTIALS_FILE``, else ``~/.aws/credentials``; profile
``AWS_PROFILE``, else ``default``). Instance-profile, container and web-identity credentials are
not fetched.

Imported only by the aws branch of ``login`` (standard library and ``strongroom.sigv4`` only).

SECURITY: the secret key only enters the HMAC of the signature; it is in no field sent, no error
message and no output. The signature is bound to the time and, with ``header_value=``, to the
server's ``X-Vault-AWS-IAM-Server-ID``, so a captured login cannot be replayed against another server.
"""

from __future__ import annotations

import base64
import configparser
import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from strongroom.cli.context import CLIError, UsageError, err
from strongroom.sigv4 import Credentials, sign

DEFAULT_REGION = "us-east-1"
GLOBAL_STS = "https://sts.amazonaws.com/"
BODY = "Action=GetCallerIdentity&Version=2011-06-15"
CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
SERVER_ID_HEADER = "X-Vault-AWS-IAM-Server-ID"
KNOWN = ("role", "mount", "header_value", "region", "sts_endpoint", "aws_access_key_id",
         "aws_secret_access_key", "aws_security_token")


def _text(fields: Mapping[str, Any], key: str) -> str:
    value = fields.get(key, "")
    if not isinstance(value, str):
        raise UsageError(f"{key} must be given once")
    return value.strip()


def _shared_file(env: Mapping[str, str]) -> Credentials | None:
    home = Path(env.get("HOME") or Path.home())
    path = env.get("AWS_SHARED_CREDENTIALS_FILE") or str(home / ".aws" / "credentials")
    profile = env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE") or "default"
    parser = configparser.RawConfigParser(default_section="\0")  # no section is a default for the others
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as f:
            parser.read_file(f)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, configparser.Error) as e:
        raise CLIError(f"Error authenticating: error reading the shared credentials file {path}: "
                       f"{type(e).__name__}") from None
    if not parser.has_section(profile):
        return None
    section = parser[profile]
    key = section.get("aws_access_key_id", "").strip()
    secret = section.get("aws_secret_access_key", "").strip()
    if not key or not secret:
        raise CLIError(f"Error authenticating: the profile {profile!r} in {path} has no aws_access_key_id "
                       "and aws_secret_access_key")
    token = (section.get("aws_session_token") or section.get("aws_security_token") or "").strip()
    return Credentials(key, secret, token)


def find_credentials(fields: Mapping[str, Any], env: Mapping[str, str]) -> Credentials:
    """The first credentials found: arguments, environment, shared credentials file."""
    key, secret = _text(fields, "aws_access_key_id"), _text(fields, "aws_secret_access_key")
    if key or secret:
        if not (key and secret):
            raise UsageError("static AWS client credentials haven't been properly configured (the access "
                             "key or secret key were provided but not both)")
        return Credentials(key, secret, _text(fields, "aws_security_token"))
    key = env.get("AWS_ACCESS_KEY_ID") or env.get("AWS_ACCESS_KEY") or ""
    secret = env.get("AWS_SECRET_ACCESS_KEY") or env.get("AWS_SECRET_KEY") or ""
    if key and secret:
        return Credentials(key, secret, env.get("AWS_SESSION_TOKEN", ""))
    found = _shared_file(env)
    if found is None:
        raise CLIError("Error authenticating: no AWS credentials found: give aws_access_key_id= and "
                       "aws_secret_access_key=, set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or add "
                       "them to ~/.aws/credentials (profile AWS_PROFILE, else default)")
    return found


def sts_url(region: str, endpoint: str) -> str:
    """The URL to sign for: ``endpoint`` if given, else the region's STS endpoint."""
    if endpoint:
        try:
            parts = urlsplit(endpoint)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise UsageError(f"invalid sts_endpoint: {endpoint!r}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise UsageError(f"invalid sts_endpoint: {endpoint!r} (an http or https URL is needed)")
        return endpoint if parts.path else endpoint + "/"
    if region == DEFAULT_REGION:
        return GLOBAL_STS
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://sts.{region}.{suffix}/"


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def iam_login_data(creds: Credentials, *, url: str, region: str, header_value: str,
                   now: datetime) -> dict[str, str]:
    """The iam login fields for a GetCallerIdentity request to ``url`` signed with ``creds``."""
    parts = urlsplit(url)
    extra = {SERVER_ID_HEADER: header_value} if header_value else None
    signed = sign(method="POST", host=parts.netloc, path=parts.path or "/", query=parts.query,
                  body=BODY.encode(), content_type=CONTENT_TYPE, creds=creds, region=region,
                  service="sts", now=now, extra=extra)
    # Like Go's http.Header (what Vault's CLI sends): values in lists, no Host (the server takes it
    # from the URL, which is what was signed).
    headers = {k: [v] for k, v in signed.items() if k.lower() != "host"}
    return {"iam_http_request_method": "POST", "iam_request_url": _b64(url), "iam_request_body": _b64(BODY),
            "iam_request_headers": _b64(json.dumps(headers, separators=(",", ":")))}


def login_fields(fields: Mapping[str, Any], env: Mapping[str, str] | None = None,
                 now: datetime | None = None) -> tuple[dict[str, str], str]:
    """The body of ``auth/<mount>/login`` for the K=V arguments given, and the ``mount=`` argument
    (empty if none)."""
    env = os.environ if env is None else env
    unknown = sorted(set(fields) - set(KNOWN))
    if unknown:
        err(f"WARNING! Ignoring unknown aws login argument(s): {', '.join(unknown)}\n")
    region = _text(fields, "region") or DEFAULT_REGION
    url = sts_url(region, _text(fields, "sts_endpoint"))
    creds = find_credentials(fields, env)
    body = iam_login_data(creds, url=url, region=region, header_value=_text(fields, "header_value"),
                          now=now or datetime.now(UTC))
    body["role"] = _text(fields, "role")
    return body, _text(fields, "mount").strip("/")
