"""``login -method=aws``: the CLI signs sts:GetCallerIdentity as Vault's CLI does, the server replays it.

End to end against a moto server of its own that checks signatures (INITIAL_NO_AUTH_ACTION_COUNT: after
the first few set-up calls every request must be signed by a known key, so a wrong secret is refused
by "STS" exactly as AWS would), with ``python -m strongroom login`` as a child process; and the
signature compared byte for byte with botocore's.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from tests.cli.conftest import CLI, REFERENCE, Server, clean_env, run_process
from tests.engines.aws.conftest import ACCOUNT, boto, running_moto

from strongroom.cli.aws_login import find_credentials, iam_login_data, login_fields, sts_url
from strongroom.cli.context import CLIError, UsageError
from strongroom.sigv4 import Credentials

ADMIN_POLICY = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
TRUST_ANYONE = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},'
                '"Action":"sts:AssumeRole"}]}')


@pytest.fixture(scope="module")
def signed_moto() -> Iterator[tuple[str, str, str]]:
    """A moto server checking signatures and IAM policies, and an admin's (key, secret) on it."""
    with running_moto(INITIAL_NO_AUTH_ACTION_COUNT="3") as url:
        iam = boto("iam", url)  # the three unauthenticated calls: an admin user, its key, its policy
        iam.create_user(UserName="admin")
        key = iam.create_access_key(UserName="admin")["AccessKey"]
        iam.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=ADMIN_POLICY)
        yield url, key["AccessKeyId"], key["SecretAccessKey"]


@pytest.fixture
def aws(cli: CLI, name: str, signed_moto: tuple[str, str, str]) -> tuple[CLI, str, Any]:
    """The aws auth method at auth/<name>, its STS and IAM the signing moto; the admin's IAM client
    (the server's credentials too)."""
    if REFERENCE == "bao":
        pytest.skip("OpenBao has no aws auth method (plugin not found in the catalog: aws)")
    url, key, secret = signed_moto
    cli.ok("auth", "enable", f"-path={name}", "aws")
    cli.ok("write", f"auth/{name}/config/client", f"sts_endpoint={url}", "sts_region=us-east-1",
           f"iam_endpoint={url}", f"access_key={key}", f"secret_key={secret}")
    return cli, url, boto("iam", url, key, secret)


def _admin_sts(signed_moto: tuple[str, str, str]) -> Any:
    url, key, secret = signed_moto
    return boto("sts", url, key, secret)


def _user(iam: Any, user: str) -> tuple[str, str]:
    iam.create_user(UserName=user)
    k = iam.create_access_key(UserName=user)["AccessKey"]
    return k["AccessKeyId"], k["SecretAccessKey"]


def _run(server: Server, home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m strongroom ARGS`` with no AWS_* variables but those given, and no token."""
    environ = {k: v for k, v in clean_env(home).items() if not k.startswith("AWS_")}
    environ.update({"VAULT_ADDR": server.addr, **env})
    return run_process(list(args), environ)


def test_login_aws_with_environment_credentials(aws: tuple[CLI, str, Any], name: str, tmp_path: Path) -> None:
    cli, url, iam = aws
    key, secret = _user(iam, f"{name}-alice")
    arn = f"arn:aws:iam::{ACCOUNT}:user/{name}-alice"
    cli.ok("write", f"auth/{name}/role/dev", "auth_type=iam", f"bound_iam_principal_arn={arn}",
           "token_policies=dev,ops", "token_ttl=10m")
    p = _run(cli.server, tmp_path, "login", "-method=aws", f"-path={name}", "role=dev", f"sts_endpoint={url}",
             AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("Success! You are now authenticated.")
    assert re.search(r'^token_policies\s+\["default" "dev" "ops"\]$', p.stdout, re.MULTILINE)
    assert re.search(rf"^token_meta_client_arn\s+{re.escape(arn)}$", p.stdout, re.MULTILINE)
    assert secret not in p.stdout + p.stderr
    # The stored token works: token lookup (no VAULT_TOKEN) shows the role's policies.
    p = _run(cli.server, tmp_path, "token", "lookup", "-format=json")
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)["data"]
    assert data["policies"] == ["default", "dev", "ops"] and data["display_name"] == f"{name}-{name}-alice"
    assert data["id"] == (tmp_path / ".vault-token").read_text() and data["meta"]["client_arn"] == arn


def test_login_aws_shared_credentials_file_args_and_mount(aws: tuple[CLI, str, Any], name: str,
                                                          tmp_path: Path) -> None:
    cli, url, iam = aws
    key, secret = _user(iam, f"{name}-bob")
    cli.ok("write", f"auth/{name}/role/{name}-bob", "auth_type=iam", "token_policies=dev",
           f"bound_iam_principal_arn=arn:aws:iam::{ACCOUNT}:user/{name}-bob")
    creds = tmp_path / "creds"
    creds.write_text(f"[default]\naws_access_key_id = AKIANOPE\naws_secret_access_key = nope\n\n"
                     f"[work]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n")
    # No role=: the principal's name is the role. mount= takes precedence over -path.
    p = _run(cli.server, tmp_path, "login", "-method=aws", "-path=elsewhere", "-token-only", f"mount={name}",
             f"sts_endpoint={url}", AWS_SHARED_CREDENTIALS_FILE=str(creds), AWS_PROFILE="work")
    assert p.returncode == 0, p.stderr
    token = p.stdout.strip()
    p = _run(cli.server, tmp_path, "token", "lookup", "-format=json", VAULT_TOKEN=token)
    assert json.loads(p.stdout)["data"]["policies"] == ["default", "dev"]
    # Explicit arguments come before the environment (whose keys are wrong here).
    p = _run(cli.server, tmp_path, "login", "-method=aws", f"-path={name}", "-token-only", f"sts_endpoint={url}",
             f"aws_access_key_id={key}", f"aws_secret_access_key={secret}",
             AWS_ACCESS_KEY_ID="AKIANOPE", AWS_SECRET_ACCESS_KEY="nope")
    assert p.returncode == 0, p.stderr


def test_login_aws_session_credentials_of_an_assumed_role(aws: tuple[CLI, str, Any], name: str, tmp_path: Path,
                                                         signed_moto: tuple[str, str, str]) -> None:
    cli, url, iam = aws
    role_arn = iam.create_role(RoleName=f"{name}-app", AssumeRolePolicyDocument=TRUST_ANYONE)["Role"]["Arn"]
    cli.ok("write", f"auth/{name}/role/app", "auth_type=iam", f"bound_iam_principal_arn={role_arn}",
           "token_policies=app")
    c = _admin_sts(signed_moto).assume_role(RoleArn=role_arn, RoleSessionName="i-123")["Credentials"]
    p = _run(cli.server, tmp_path, "login", "-method=aws", f"-path={name}", "-format=json", "role=app",
             f"sts_endpoint={url}", f"aws_access_key_id={c['AccessKeyId']}",
             f"aws_secret_access_key={c['SecretAccessKey']}", f"aws_security_token={c['SessionToken']}")
    assert p.returncode == 0, p.stderr
    auth = json.loads(p.stdout)["auth"]
    assert sorted(auth["policies"]) == ["app", "default"]
    assert auth["metadata"]["canonical_arn"] == role_arn
    # The same keys without their session token: STS does not know them.
    p = _run(cli.server, tmp_path, "login", "-method=aws", f"-path={name}", "role=app", f"sts_endpoint={url}",
             AWS_ACCESS_KEY_ID=c["AccessKeyId"], AWS_SECRET_ACCESS_KEY=c["SecretAccessKey"])
    assert p.returncode == 2 and p.stderr.startswith("Error authenticating: ")


def test_login_aws_bad_credentials_fail_with_exit_2(aws: tuple[CLI, str, Any], name: str, tmp_path: Path) -> None:
    cli, url, iam = aws
    key, secret = _user(iam, f"{name}-carol")
    cli.ok("write", f"auth/{name}/role/dev", "auth_type=iam", "token_policies=dev",
           f"bound_iam_principal_arn=arn:aws:iam::{ACCOUNT}:user/{name}-carol")
    (tmp_path / ".vault-token").write_text("previous")
    for env in ({"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret[:-1] + "x"},  # wrong secret
                {"AWS_ACCESS_KEY_ID": "AKIAUNKNOWNUNKNOWN", "AWS_SECRET_ACCESS_KEY": secret}):  # unknown key
        p = _run(cli.server, tmp_path, "login", "-method=aws", f"-path={name}", "role=dev",
                 f"sts_endpoint={url}", **env)
        assert p.returncode == 2, p.stderr
        assert p.stdout == "" and p.stderr.startswith("Error authenticating: ")
        assert "received error code 403 from STS" in p.stderr, p.stderr
        assert secret not in p.stderr and secret[:-1] not in p.stderr
    # Good credentials, but not the role's principal.
    other, other_secret = _user(iam, f"{name}-dave")
    p = _run(cli.server, tmp_path, "login", "-method=aws", f"-path={name}", "role=dev", f"sts_endpoint={url}",
             AWS_ACCESS_KEY_ID=other, AWS_SECRET_ACCESS_KEY=other_secret)
    assert p.returncode == 2 and f"user/{name}-dave' does not belong to the role 'dev'" in p.stderr
    # No credentials at all (HOME has no ~/.aws): a clear local error, nothing sent.
    p = _run(cli.server, tmp_path, "login", "-method=aws", f"-path={name}", "role=dev", f"sts_endpoint={url}")
    assert p.returncode == 2 and p.stderr.startswith("Error authenticating: no AWS credentials found")
    p = _run(cli.server, tmp_path, "login", "-method=aws", f"-path={name}", "aws_access_key_id=AKIA")
    assert p.returncode == 1 and "provided but not both" in p.stderr
    assert (tmp_path / ".vault-token").read_text() == "previous"


def test_login_aws_server_id_header(aws: tuple[CLI, str, Any], name: str, tmp_path: Path) -> None:
    cli, url, iam = aws
    key, secret = _user(iam, f"{name}-erin")
    cli.ok("write", f"auth/{name}/config/client", "iam_server_id_header_value=vault.example.com")
    cli.ok("write", f"auth/{name}/role/dev", "auth_type=iam", "token_policies=dev",
           f"bound_iam_principal_arn=arn:aws:iam::{ACCOUNT}:user/{name}-erin")
    env = {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}
    args = ("login", "-method=aws", f"-path={name}", "-token-only", "role=dev", f"sts_endpoint={url}")
    p = _run(cli.server, tmp_path, *args, **env)
    assert p.returncode == 2 and "missing header 'X-Vault-AWS-IAM-Server-ID'" in p.stderr
    p = _run(cli.server, tmp_path, *args, "header_value=other.example.com", **env)
    assert p.returncode == 2 and "expected 'vault.example.com' but got 'other.example.com'" in p.stderr
    p = _run(cli.server, tmp_path, *args, "header_value=vault.example.com", **env)
    assert p.returncode == 0 and p.stdout.strip(), p.stderr


# The pure parts.

@pytest.mark.parametrize(("region", "server_id", "token"), [
    ("us-east-1", "", ""), ("eu-west-1", "vault.example.com", "session-token-xyz")])
def test_signature_matches_botocore(region: str, server_id: str, token: str) -> None:
    botocore = pytest.importorskip("botocore")
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    assert botocore
    now = datetime(2026, 12, 7, 1, 2, 3, tzinfo=UTC)
    url = sts_url(region, "")
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    data = iam_login_data(creds, url=url, region=region, header_value=server_id, now=now)
    assert base64.b64decode(data["iam_request_url"]).decode() == url
    body = base64.b64decode(data["iam_request_body"]).decode()
    assert body == "Action=GetCallerIdentity&Version=2011-06-15" and data["iam_http_request_method"] == "POST"
    ours = json.loads(base64.b64decode(data["iam_request_headers"]))

    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    if server_id:
        headers["X-Vault-AWS-IAM-Server-ID"] = server_id
    req = AWSRequest(method="POST", url=url, data=body, headers=headers)
    with mock.patch("botocore.auth.get_current_datetime", return_value=now.replace(tzinfo=None)):
        SigV4Auth(BotoCredentials(creds.access_key, creds.secret_key, token or None), "sts", region).add_auth(req)
    assert ours == {k: [v] for k, v in req.headers.items()}
    assert creds.secret_key not in json.dumps(data)


def test_sts_url() -> None:
    assert sts_url("us-east-1", "") == "https://sts.amazonaws.com/"
    assert sts_url("eu-west-1", "") == "https://sts.eu-west-1.amazonaws.com/"
    assert sts_url("cn-north-1", "") == "https://sts.cn-north-1.amazonaws.com.cn/"
    assert sts_url("eu-west-1", "http://127.0.0.1:5000") == "http://127.0.0.1:5000/"
    for bad in ("ftp://x", "sts.amazonaws.com", "https://x:port/", "https://x/?a=1"):
        with pytest.raises(UsageError):
            sts_url("us-east-1", bad)


def test_credentials_order(tmp_path: Path) -> None:
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "credentials").write_text(
        "[default]\naws_access_key_id=AKFILE\naws_secret_access_key=sfile\naws_session_token=tfile\n"
        "[p2]\naws_access_key_id=AKP2\naws_secret_access_key=sp2\n[broken]\naws_access_key_id=AKB\n")
    env = {"HOME": str(tmp_path), "AWS_ACCESS_KEY_ID": "AKENV", "AWS_SECRET_ACCESS_KEY": "senv",
           "AWS_SESSION_TOKEN": "tenv"}
    args = {"aws_access_key_id": "AKARG", "aws_secret_access_key": "sarg"}
    assert find_credentials(args, env) == Credentials("AKARG", "sarg", "")
    assert find_credentials({}, env) == Credentials("AKENV", "senv", "tenv")
    assert find_credentials({}, {"HOME": str(tmp_path), "AWS_ACCESS_KEY": "AKOLD", "AWS_SECRET_KEY": "sold"}) \
        == Credentials("AKOLD", "sold", "")
    assert find_credentials({}, {"HOME": str(tmp_path), "AWS_ACCESS_KEY_ID": "AKENV"}) \
        == Credentials("AKFILE", "sfile", "tfile")  # half an environment pair: on to the file
    assert find_credentials({}, {"HOME": str(tmp_path), "AWS_PROFILE": "p2"}) == Credentials("AKP2", "sp2", "")
    with pytest.raises(CLIError, match="has no aws_access_key_id"):
        find_credentials({}, {"HOME": str(tmp_path), "AWS_PROFILE": "broken"})
    with pytest.raises(CLIError, match="no AWS credentials found"):
        find_credentials({}, {"HOME": str(tmp_path), "AWS_PROFILE": "missing"})
    with pytest.raises(CLIError, match="no AWS credentials found"):
        find_credentials({}, {"HOME": str(tmp_path / "nothing")})
    with pytest.raises(UsageError, match="not both"):
        find_credentials({"aws_secret_access_key": "s"}, env)
    assert "sarg" not in repr(find_credentials(args, env))


def test_login_fields(capsys: pytest.CaptureFixture[str]) -> None:
    env = {"AWS_ACCESS_KEY_ID": "AKENV", "AWS_SECRET_ACCESS_KEY": "senv"}
    body, mount = login_fields({"role": "dev", "mount": "/aws2/", "header_value": "v", "typo": "1"}, env)
    assert mount == "aws2" and body["role"] == "dev"
    assert set(body) == {"role", "iam_http_request_method", "iam_request_url", "iam_request_body",
                         "iam_request_headers"}
    headers = json.loads(base64.b64decode(body["iam_request_headers"]))
    assert headers["X-Vault-AWS-IAM-Server-ID"] == ["v"] and "Host" not in headers
    assert "x-vault-aws-iam-server-id" in headers["Authorization"][0]
    assert "Ignoring unknown aws login argument(s): typo" in capsys.readouterr().err
    body, mount = login_fields({}, env)
    assert body["role"] == "" and mount == ""  # as Vault: an empty role is sent


def test_login_aws_does_not_load_http_client_before_use() -> None:
    """The aws login module is light: standard library and the signer only."""
    import sys
    code = "import sys, json; import strongroom.cli.aws_login; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert not set(json.loads(out.stdout)) & {"botocore", "boto3", "cryptography", "httpx"}
