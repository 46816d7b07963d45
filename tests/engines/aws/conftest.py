"""A moto server (a real HTTP endpoint speaking the IAM and STS query APIs) for the aws engine's
tests, started once per test session on a free port; skipped with the reason when it cannot run."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.storage.services import end_process

ACCOUNT = "123456789012"  # moto's default account id
ROOT_KEY, ROOT_SECRET = "AKIAROOTROOTROOT", "root-secret-key"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_moto(**env: str) -> Iterator[str]:
    """A moto server of its own (``env``: extra environment, e.g. INITIAL_NO_AUTH_ACTION_COUNT to have
    it check signatures and IAM policies); its URL. Skips the test when it cannot run."""
    try:
        import moto.server  # noqa: F401
    except ImportError as e:
        pytest.skip(f"moto[server] is not installed ({e}): pip install -e '.[test]'")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, **env})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace")[-500:] if proc.stderr else ""
            pytest.skip(f"moto_server exited at start: {err}")
        try:
            httpx.get(f"{url}/moto-api/", timeout=1)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.skip("moto_server did not answer within 30 s")
            time.sleep(0.1)
    try:
        yield url
    finally:
        end_process(proc)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    with running_moto() as url:
        yield url


@pytest.fixture
def moto(moto_server: str) -> str:
    """The moto server's URL, emptied of everything earlier tests created."""
    httpx.post(f"{moto_server}/moto-api/reset", timeout=10).raise_for_status()
    return moto_server


def boto(service: str, url: str, key: str = ROOT_KEY, secret: str = ROOT_SECRET, token: str | None = None) -> Any:
    import boto3
    return boto3.client(service, endpoint_url=url, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=secret, aws_session_token=token)


@pytest.fixture
def iam(moto: str) -> Any:
    return boto("iam", moto)


def user_names(iam: Any) -> list[str]:
    return [u["UserName"] for u in iam.list_users()["Users"]]


def assume_role_policy() -> str:
    return ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},'
            '"Action":"sts:AssumeRole"}]}')


READ_S3 = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}'
