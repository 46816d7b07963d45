"""Response wrapping with the real OpenBao CLI against a Strongroom server process, and the tamper
alarm reaching a webhook receiver and sys/security/events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import RunningServer, json_receiver, sqlite_server_process
from .test_getting_started_bao import _init_and_unseal


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    with json_receiver("/events") as received:
        yield received


@pytest.fixture
def alarmed_server(tmp_path: Path, receiver: tuple[str, list[dict[str, Any]]]) -> Iterator[RunningServer]:
    server = sqlite_server_process(tmp_path, top=f'security {{\n  webhook_urls = ["{receiver[0]}"]\n'
                                                  '  revoke_on_tamper = true\n}\n')
    server.start()
    yield server
    if server.proc is not None and server.proc.poll() is None:
        server.stop()


def test_bao_wrap_unwrap_and_reuse_alarm(alarmed_server: RunningServer,
                                         receiver: tuple[str, list[dict[str, Any]]]) -> None:
    s = alarmed_server
    _init_and_unseal(s)
    assert s.bao("secrets", "enable", "-path=secret", "-version=2", "kv").returncode == 0
    assert s.bao("kv", "put", "secret/db", "password=hunter2").returncode == 0

    wrapped = s.bao("kv", "get", "-wrap-ttl=5m", "-format=json", "secret/db")
    assert wrapped.returncode == 0, wrapped.stderr
    info = json.loads(wrapped.stdout)["wrap_info"]
    assert info["ttl"] == 300 and info["creation_path"] == "secret/data/db"
    first = s.bao("unwrap", "-format=json", info["token"])
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["data"]["data"] == {"password": "hunter2"}

    again = s.bao("unwrap", info["token"])
    assert again.returncode == 2 and "wrapping token is not valid or does not exist" in again.stderr

    # A wrapped token: the interceptor unwraps first; the rightful recipient's attempt raises the
    # alarm, and with revoke_on_tamper the token the interceptor took stops working.
    token_info = json.loads(s.bao("token", "create", "-wrap-ttl=60", "-format=json").stdout)["wrap_info"]
    assert token_info["wrapped_accessor"]
    stolen = s.bao("unwrap", "-field=token", token_info["token"]).stdout.strip()
    assert s.bao("token", "lookup", token=stolen).returncode == 0
    assert s.bao("unwrap", token_info["token"]).returncode == 2
    assert s.bao("token", "lookup", token=stolen).returncode == 2

    events = json.loads(s.bao("read", "-format=json", "sys/security/events").stdout)["data"]
    assert events["counts"] == {"wrapping-token-reuse": 2}
    assert [e["accessor"] for e in events["events"]] == [info["accessor"], token_info["accessor"]]
    for _ in range(50):
        if len(receiver[1]) == 2:
            break
        __import__("time").sleep(0.1)
    assert sorted(e["accessor"] for e in receiver[1]) == sorted([info["accessor"], token_info["accessor"]])
    assert all(e["type"] == "wrapping-token-reuse" for e in receiver[1])


def test_bao_wrapping_commands(sqlite_server: RunningServer) -> None:
    s = sqlite_server
    _init_and_unseal(s)
    wrapped = s.bao("write", "-wrap-ttl=60", "-field=wrapping_token", "sys/wrapping/wrap", "a=b")
    assert wrapped.returncode == 0, wrapped.stderr
    token = wrapped.stdout.strip()
    look = json.loads(s.bao("write", "-format=json", "sys/wrapping/lookup", f"token={token}").stdout)
    assert look["data"]["creation_path"] == "sys/wrapping/wrap" and look["data"]["creation_ttl"] == 60
    rewrapped = json.loads(s.bao("write", "-format=json", "sys/wrapping/rewrap", f"token={token}").stdout)
    new = rewrapped["wrap_info"]["token"]
    assert s.bao("unwrap", "-field=a", new).stdout == "b"
    # unwrap with the wrapping token as the client token, as Vault Agent and apps do
    other = s.bao("write", "-wrap-ttl=60", "-field=wrapping_token", "sys/wrapping/wrap", "c=d").stdout.strip()
    assert s.bao("unwrap", "-field=c", token=other).stdout == "d"
