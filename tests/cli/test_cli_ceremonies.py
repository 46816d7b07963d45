"""Our CLI's ``operator rekey`` and ``operator generate-root`` against a server subprocess (3 shares, threshold 2).

Table output follows what ``bao operator rekey`` / ``generate-root`` print against the same server."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from strongroom.cli.ceremonies import xor_decode
from strongroom.cli.context import CLIError


@pytest.fixture
def ready(init_cli: Any) -> tuple[Any, list[str]]:
    cli = init_cli
    init = json.loads(cli.ok("operator", "init", "-key-shares=3", "-key-threshold=2", "-format=json"))
    for key in init["unseal_keys_b64"][:2]:
        cli.ok("operator", "unseal", key)
    cli.monkeypatch.setenv("VAULT_TOKEN", init["root_token"])
    return cli, init["unseal_keys_b64"]


def _unseals_with(cli: Any, keys: list[str]) -> bool:
    if cli("status").code == 0:
        cli.ok("operator", "seal")
    cli.ok("operator", "unseal", "-reset")
    for key in keys:
        if cli("operator", "unseal", key).code != 0:
            return False
    return bool(cli("status").code == 0)


def test_rekey(ready: tuple[Any, list[str]]) -> None:
    cli, keys = ready
    r = cli("operator", "rekey", "-nonce=x", keys[0])
    assert r.code == 1 and "No rekey is in progress" in r.err
    out = cli.ok("operator", "rekey", "-init", "-key-shares=2", "-key-threshold=2")
    assert "New Shares               2" in out and "Progress                 0/2" in out
    status = json.loads(cli.ok("operator", "rekey", "-status", "-format=json"))
    assert status["started"] is True and (status["n"], status["t"], status["required"]) == (2, 2, 2)
    nonce = status["nonce"]
    r = cli("operator", "rekey", "-nonce=wrong", keys[0])
    assert r.code == 2 and "incorrect nonce supplied" in r.err
    assert "Progress                 1/2" in cli.ok("operator", "rekey", f"-nonce={nonce}", keys[0])
    done = cli.ok("operator", "rekey", f"-nonce={nonce}", keys[1])
    new = re.findall(r"^Key \d+: (\S+)$", done, re.MULTILINE)
    assert len(new) == 2 and f"Operation nonce: {nonce}" in done
    assert "rekeyed to 2 key shares and a key threshold of 2" in done
    assert not _unseals_with(cli, keys[:2])
    assert _unseals_with(cli, new)


def test_rekey_with_verification_and_cancel(ready: tuple[Any, list[str]]) -> None:
    cli, keys = ready
    nonce = json.loads(cli.ok("operator", "rekey", "-init", "-verify", "-key-shares=3", "-key-threshold=2",
                              "-format=json"))["nonce"]
    cli.ok("operator", "rekey", f"-nonce={nonce}", keys[0])
    done = json.loads(cli.ok("operator", "rekey", "-format=json", f"-nonce={nonce}", keys[2]))
    assert done["complete"] is True and done["verification_required"] is True
    vnonce = done["verification_nonce"]
    verify = cli.ok("operator", "rekey", "-verify", "-status")
    assert f"Verification Nonce       {vnonce}" in verify and "Verification Progress    0/2" in verify
    assert "Canceled rekeying" in cli.ok("operator", "rekey", "-cancel")
    # Cancelled during verification: the new shares never took effect.
    assert not _unseals_with(cli, done["keys_base64"][:2])
    assert _unseals_with(cli, keys[1:])


def test_rekey_verification_completes(ready: tuple[Any, list[str]]) -> None:
    cli, keys = ready
    nonce = json.loads(cli.ok("operator", "rekey", "-init", "-verify", "-key-shares=2", "-key-threshold=2",
                              "-format=json"))["nonce"]
    cli.ok("operator", "rekey", f"-nonce={nonce}", keys[1])
    out = cli.ok("operator", "rekey", f"-nonce={nonce}", keys[2])
    new = re.findall(r"^Key \d+: (\S+)$", out, re.MULTILINE)
    assert "These will not be active until after verification is complete" in out
    vnonce = out.split("Verification Nonce", 1)[1].split()[0]
    cli.ok("operator", "rekey", "-verify", f"-nonce={vnonce}", new[0])
    assert "Rekey verification successful" in cli.ok("operator", "rekey", "-verify", f"-nonce={vnonce}", new[1])
    assert _unseals_with(cli, new)


def test_generate_root(ready: tuple[Any, list[str]]) -> None:
    cli, keys = ready
    otp = cli.ok("operator", "generate-root", "-generate-otp").strip()
    assert len(otp) == 28
    out = cli.ok("operator", "generate-root", "-init", f"-otp={otp}")
    assert "Started       true" in out and "OTP Length    28" in out
    nonce = json.loads(cli.ok("operator", "generate-root", "-status", "-format=json"))["nonce"]
    assert "Progress    1/2" in cli.ok("operator", "generate-root", f"-nonce={nonce}", keys[0])
    done = json.loads(cli.ok("operator", "generate-root", "-format=json", f"-nonce={nonce}", keys[2]))
    assert done["complete"] is True
    token = cli.ok("operator", "generate-root", f"-decode={done['encoded_token']}", f"-otp={otp}").strip()
    assert token.startswith("hvs.") and len(token) == 28
    cli.monkeypatch.setenv("VAULT_TOKEN", token)
    assert json.loads(cli.ok("token", "lookup", "-format=json"))["data"]["policies"] == ["root"]
    decoded = json.loads(cli.ok("operator", "generate-root", "-format=json", f"-decode={done['encoded_token']}",
                                f"-otp={otp}"))
    assert decoded == {"token": token}


def test_generate_root_generated_otp_and_cancel(ready: tuple[Any, list[str]]) -> None:
    cli, _ = ready
    r = cli("operator", "generate-root", "-init")
    assert r.code == 0 and "A One-Time-Password has been generated" in r.err
    otp_line = next(line for line in r.out.splitlines() if line.startswith("OTP "))
    assert len(otp_line.split()[-1]) == 28
    assert "canceled" in cli.ok("operator", "generate-root", "-cancel")
    r = cli("operator", "generate-root", "-nonce=x", "abcd")
    assert r.code == 1 and "No root generation is in progress" in r.err


def test_xor_decode_errors() -> None:
    with pytest.raises(CLIError, match="not equivalent"):
        xor_decode("AAAA", "toolongotp")
    assert xor_decode("AAE", "ab") == "ac"


def test_rekey_backup_flags(ready: tuple[Any, list[str]]) -> None:
    cli, _ = ready
    assert cli.ok("operator", "rekey", "-backup-delete").strip() == "Success! Deleted backed up keys (if they existed)"
    r = cli("operator", "rekey", "-backup-retrieve")
    assert r.code == 2 and "Error retrieving rekey backed up keys" in r.err and "no backed-up keys found" in r.err


def test_status_tables_print_empty_nonces_as_na(ready: tuple[Any, list[str]]) -> None:
    cli, _ = ready
    for args in (("operator", "rekey", "-status"), ("operator", "generate-root", "-status")):
        assert re.search(r"^Nonce\s+n/a$", cli.ok(*args), re.MULTILINE), args
    cli.ok("operator", "rekey", "-init", "-verify", "-key-shares=3", "-key-threshold=2")
    assert re.search(r"^Verification Nonce\s+n/a$", cli.ok("operator", "rekey", "-verify", "-status"), re.MULTILINE)
