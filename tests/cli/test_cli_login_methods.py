"""``login -method=userpass|approle`` and ``write auth/approle/login``, as Vault users run them."""

from __future__ import annotations

import getpass
import io
import json
import re
import sys
from typing import Any

import pytest


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _userpass(cli: Any, name: str) -> None:
    cli.ok("auth", "enable", f"-path={name}", "userpass")
    cli.ok("write", f"auth/{name}/users/alice", "password=pw1", "token_policies=dev")


def test_login_userpass(cli: Any, name: str) -> None:
    _userpass(cli, name)
    cli.monkeypatch.delenv("VAULT_TOKEN")
    r = cli("login", "-method=userpass", f"-path={name}", "username=alice", "password=pw1")
    assert r.code == 0, r.err
    assert r.out.startswith("Success! You are now authenticated.")
    assert re.search(r'^token_policies\s+\["default" "dev"\]$', r.out, re.MULTILINE)
    assert re.search(r"^token_meta_username\s+alice$", r.out, re.MULTILINE)
    stored = (cli.home / ".vault-token").read_text()
    looked = json.loads(cli.ok("token", "lookup", "-format=json"))["data"]
    assert looked["id"] == stored and looked["display_name"] == f"{name}-alice"
    bad = cli("login", "-method=userpass", f"-path={name}", "username=alice", "password=wrong")
    assert bad.code == 2 and "invalid username or password" in bad.err
    assert (cli.home / ".vault-token").read_text() == stored


def test_login_userpass_prompts_for_the_password(cli: Any, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _userpass(cli, name)
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return "pw1"

    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    monkeypatch.setattr(sys, "stdin", _Terminal())
    token = cli.ok("login", "-method=userpass", f"-path={name}", "-token-only", "username=alice")
    assert token and prompts == ["Password (will be hidden): "]


def test_login_userpass_without_password_or_terminal_fails(cli: Any, name: str) -> None:
    _userpass(cli, name)
    r = cli("login", "-method=userpass", f"-path={name}", "username=alice", stdin="")
    assert r.code != 0 and "password" in r.err.lower()
    r = cli("login", "-method=userpass", f"-path={name}", "password=pw1")
    assert r.code != 0 and "username" in r.err


def test_login_approle_and_write_login(cli: Any, name: str) -> None:
    cli.ok("auth", "enable", f"-path={name}", "approle")
    cli.ok("write", f"auth/{name}/role/web", "token_policies=dev", "token_ttl=1h")
    role_id = cli.ok("read", "-field=role_id", f"auth/{name}/role/web/role-id").strip()
    secret_id = cli.ok("write", "-f", "-field=secret_id", f"auth/{name}/role/web/secret-id").strip()
    token = cli.ok("login", "-method=approle", f"-path={name}", "-token-only", f"role_id={role_id}",
                   f"secret_id={secret_id}")
    assert token.strip()
    secret_id = cli.ok("write", "-f", "-field=secret_id", f"auth/{name}/role/web/secret-id").strip()
    cli.monkeypatch.delenv("VAULT_TOKEN")
    out = cli.ok("write", f"auth/{name}/login", f"role_id={role_id}", f"secret_id={secret_id}")
    assert re.search(r"^token_duration\s+1h$", out, re.MULTILINE)
    assert re.search(r"^token_meta_role_name\s+web$", out, re.MULTILINE)
