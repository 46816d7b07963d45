"""The real ``bao`` CLI (OpenBao 2.7) drives both key ceremonies against a Strongroom server subprocess."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from tests.compat.conftest import RunningServer, sqlite_server_process


def _ok(server: RunningServer, *args: str, token: str | None = None) -> str:
    r = server.bao(*args, token=token)
    assert r.returncode == 0, f"bao {' '.join(args)}: {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r.stdout


def _json(server: RunningServer, *args: str, token: str | None = None) -> dict[str, object]:
    # Go's flag parsing stops at the first positional argument: -format goes right after the command.
    data: dict[str, object] = json.loads(_ok(server, *args[:2], "-format=json", *args[2:], token=token))
    return data


@pytest.fixture
def server(sqlite_server: RunningServer) -> RunningServer:
    init = json.loads(_ok(sqlite_server, "operator", "init", "-key-shares=5", "-key-threshold=3", "-format=json",
                          token=""))
    sqlite_server.keys = init["unseal_keys_b64"]
    sqlite_server.root_token = init["root_token"]
    for key in sqlite_server.keys[:3]:
        _ok(sqlite_server, "operator", "unseal", key)
    return sqlite_server


def _unseal_with(server: RunningServer, keys: list[str]) -> bool:
    """Seal (if unsealed), then unseal with ``keys``; True if the server ends up unsealed."""
    if server.bao("status").returncode == 0:
        _ok(server, "operator", "seal")
    _ok(server, "operator", "unseal", "-reset")
    for key in keys:
        if server.bao("operator", "unseal", key).returncode != 0:
            return False
    return server.bao("status").returncode == 0  # bao status exits 2 while sealed


def test_bao_operator_rekey(server: RunningServer) -> None:
    init = _ok(server, "operator", "rekey", "-init", "-key-shares=3", "-key-threshold=2", token="")
    assert "New Shares               3" in init and "Verification Required    false" in init
    status = _json(server, "operator", "rekey", "-status", token="")
    nonce = str(status["nonce"])
    assert status["started"] is True and status["required"] == 3 and (status["t"], status["n"]) == (2, 3)
    progress = _ok(server, "operator", "rekey", f"-nonce={nonce}", server.keys[0], token="")
    assert "Progress                 1/3" in progress
    _ok(server, "operator", "rekey", f"-nonce={nonce}", server.keys[1], token="")
    done = _ok(server, "operator", "rekey", f"-nonce={nonce}", server.keys[2], token="")
    new = re.findall(r"^Key \d+: (\S+)$", done, re.MULTILINE)
    assert len(new) == 3 and "rekeyed to 3 key shares and a key threshold of 2" in done
    assert not _unseal_with(server, server.keys[:3])
    assert _unseal_with(server, new[:2])


def test_bao_operator_rekey_with_verification(server: RunningServer) -> None:
    nonce = str(_json(server, "operator", "rekey", "-init", "-key-shares=2", "-key-threshold=2", "-verify")["nonce"])
    for key in server.keys[:2]:
        _ok(server, "operator", "rekey", f"-nonce={nonce}", key)
    done = _json(server, "operator", "rekey", f"-nonce={nonce}", server.keys[2])
    new = done["keys_base64"]
    assert isinstance(new, list) and done["verification_required"] is True
    vnonce = str(done["verification_nonce"])
    # Until verification completes the old shares stay in force.
    verify = _json(server, "operator", "rekey", "-verify", "-status")
    assert verify == {"nonce": vnonce, "started": True, "t": 2, "n": 2, "progress": 0}
    _ok(server, "operator", "rekey", "-verify", f"-nonce={vnonce}", new[0])
    out = _ok(server, "operator", "rekey", "-verify", f"-nonce={vnonce}", new[1])
    assert "Rekey verification successful" in out
    assert _unseal_with(server, new)


def test_bao_operator_rekey_cancel(server: RunningServer) -> None:
    _ok(server, "operator", "rekey", "-init", "-key-shares=3", "-key-threshold=2")
    assert "Canceled rekeying" in _ok(server, "operator", "rekey", "-cancel")
    assert _json(server, "operator", "rekey", "-status")["started"] is False


def test_bao_operator_generate_root(server: RunningServer) -> None:
    otp = _ok(server, "operator", "generate-root", "-generate-otp").strip()
    assert len(otp) == 28
    started = _json(server, "operator", "generate-root", "-init", f"-otp={otp}")
    nonce = str(started["nonce"])
    assert started["started"] is True and started["otp_length"] == 28 and started["required"] == 3
    table = _ok(server, "operator", "generate-root", f"-nonce={nonce}", server.keys[0])
    assert "Progress    1/3" in table
    _ok(server, "operator", "generate-root", f"-nonce={nonce}", server.keys[1])
    done = _json(server, "operator", "generate-root", f"-nonce={nonce}", server.keys[2])
    assert done["complete"] is True
    token = _ok(server, "operator", "generate-root", f"-decode={done['encoded_token']}", f"-otp={otp}").strip()
    assert token.startswith("hvs.") and len(token) == 28
    lookup = _json(server, "token", "lookup", token=token)
    assert lookup["data"]["policies"] == ["root"]  # type: ignore[index]


def test_bao_operator_generate_root_cancel_and_generated_otp(server: RunningServer) -> None:
    out = server.bao("operator", "generate-root", "-init")
    assert out.returncode == 0 and "OTP Length    28" in out.stdout
    assert "Root token generation canceled" in _ok(server, "operator", "generate-root", "-cancel")
    assert _json(server, "operator", "generate-root", "-status")["started"] is False


def test_listener_switch_turns_off_tokenless_rekey(tmp_path: Path) -> None:
    server = sqlite_server_process(tmp_path, listener="  disable_unauthed_rekey_endpoints = true\n")
    server.start()
    try:
        init = json.loads(_ok(server, "operator", "init", "-key-shares=1", "-key-threshold=1", "-format=json",
                              token=""))
        _ok(server, "operator", "unseal", init["unseal_keys_b64"][0])
        r = server.bao("operator", "rekey", "-status", token="")
        assert r.returncode == 2 and "Code: 405" in r.stderr
        assert httpx.get(f"{server.addr}/v1/sys/generate-root/attempt").status_code == 200
    finally:
        server.stop()
