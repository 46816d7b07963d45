"""``unwrap`` and ``-wrap-ttl`` of our CLI against a running server."""

from __future__ import annotations

import json
import re
from typing import Any


def test_write_wrap_ttl_and_unwrap(cli: Any, name: str) -> None:
    out = cli.ok("write", "-wrap-ttl=2m", "sys/wrapping/wrap", f"owner={name}")
    rows = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in out.splitlines()[2:])
    assert list(rows)[:5] == ["wrapping_token:", "wrapping_accessor:", "wrapping_token_ttl:",
                              "wrapping_token_creation_time:", "wrapping_token_creation_path:"]
    assert rows["wrapping_token_ttl:"] == "2m" and rows["wrapping_token_creation_path:"] == "sys/wrapping/wrap"
    token = rows["wrapping_token:"]
    assert cli.ok("unwrap", "-field=owner", token) == name
    r = cli("unwrap", token)
    assert r.code == 2 and "wrapping token is not valid or does not exist" in r.err


def test_unwrap_formats_and_client_token(cli: Any, name: str) -> None:
    token = cli.ok("write", "-wrap-ttl=60", "-field=wrapping_token", "sys/wrapping/wrap", "k=v")
    doc = json.loads(cli.ok("unwrap", "-format=json", token))
    assert doc["data"] == {"k": "v"}
    token = cli.ok("write", "-wrap-ttl=60", "-field=wrapping_token", "sys/wrapping/wrap", "k=w")
    cli.monkeypatch.setenv("VAULT_TOKEN", token)
    out = cli.ok("unwrap")
    assert [line.split() for line in out.splitlines()] == [["Key", "Value"], ["---", "-----"], ["k", "w"]]


def test_wrapped_token_create_unwraps_to_a_token_table(cli: Any) -> None:
    token = cli.ok("token", "create", "-wrap-ttl=60", "-field=wrapping_token")
    out = cli.ok("unwrap", token)
    keys = [line.split(None, 1)[0] for line in out.splitlines()[2:]]
    assert keys[:4] == ["token", "token_accessor", "token_duration", "token_renewable"]
    r = cli("unwrap", "a", "b")
    assert r.code == 1
