"""The api client over a mock transport, the data-argument parser, and environment handling."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from strongroom.api import APIError, Client, TransportError, kv_path
from strongroom.cli.context import Context, UsageError, count_error, env, read_token_file, store_token
from strongroom.cli.input import parse_data


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def mock_client(handler: Any, **kw: Any) -> Client:
    return Client("http://vault.test:8200/", "tok", transport=httpx.MockTransport(handler), **kw)


def test_headers_and_body() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"data": {"ok": True}})

    async def go() -> Any:
        async with mock_client(handler, namespace="ns1", wrap_ttl="5m") as c:
            return await c.request("PUT", "secret/data/x", json={"data": {"a": "b"}})

    assert run(go()) == {"data": {"ok": True}}
    req = seen[0]
    assert req.method == "PUT"
    assert str(req.url) == "http://vault.test:8200/v1/secret/data/x"
    assert req.headers["X-Vault-Token"] == "tok"
    assert req.headers["X-Vault-Request"] == "true"
    assert req.headers["X-Vault-Namespace"] == "ns1"
    assert req.headers["X-Vault-Wrap-TTL"] == "5m"
    assert json.loads(req.content) == {"data": {"a": "b"}}


def test_list_is_get_with_list_true_and_204_is_none() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    async def go() -> Any:
        async with mock_client(handler) as c:
            return await c.request("LIST", "secret/metadata/")

    assert run(go()) is None
    assert seen[0].method == "GET"
    assert seen[0].url.params["list"] == "true"


def test_no_token_no_header() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    async def go() -> None:
        async with Client("http://x", None, transport=httpx.MockTransport(handler)) as c:
            await c.read("sys/health")

    run(go())
    assert "X-Vault-Token" not in seen[0].headers


def test_api_error_message() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"errors": ["permission denied"]})

    async def go() -> None:
        async with mock_client(handler) as c:
            await c.write("secret/data/x", {"data": {}})

    with pytest.raises(APIError) as e:
        run(go())
    assert e.value.status == 403
    assert e.value.errors == ["permission denied"]
    assert str(e.value) == ("Error making API request.\n\nURL: PUT http://vault.test:8200/v1/secret/data/x\n"
                            "Code: 403. Errors:\n\n* permission denied")


def test_api_error_raw_body_and_404() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, content=b"")

    async def go() -> Any:
        async with mock_client(handler) as c:
            assert await c.read_secret("x/y") is None
            await c.request("PATCH", "x/y", json={})

    with pytest.raises(APIError) as e:
        run(go())
    assert e.value.errors == []
    assert str(e.value).endswith("Code: 404. Raw Message:\n\n")


def test_read_secret_keeps_404_with_data() -> None:
    body = {"data": {"data": None, "metadata": {"version": 2}}, "warnings": None}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json=body)

    async def go() -> Any:
        async with mock_client(handler) as c:
            return await c.read_secret("secret/data/x")

    assert run(go()) == body


def test_transport_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    async def go() -> None:
        async with mock_client(handler) as c:
            await c.read("sys/seal-status")

    with pytest.raises(TransportError) as e:
        run(go())
    assert str(e.value).startswith('Get "http://vault.test:8200/v1/sys/seal-status": ')


@pytest.mark.parametrize(("path", "mount", "segment", "api"), [
    ("secret/foo", "secret/", "data", "secret/data/foo"),
    ("secret/a/b", "secret/", "metadata", "secret/metadata/a/b"),
    ("secret", "secret/", "metadata", "secret/metadata"),
    ("other/x", "secret/", "data", "other/x"),
    ("kv/x", "", "data", "kv/x"),
])
def test_kv_path(path: str, mount: str, segment: str, api: str) -> None:
    assert kv_path(path, mount, segment) == api


def test_parse_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    f = tmp_path / "v.txt"
    f.write_text("line\n")
    j = tmp_path / "d.json"
    j.write_text('{"x": {"y": 1}}')
    monkeypatch.setattr(sys, "stdin", io.StringIO("from stdin\n"))
    data = parse_data(["a=1", "a=2", "b=x=y", f"c=@{f}", "d=-", f"@{j}", "e="])
    assert data == {"a": ["1", "2"], "b": "x=y", "c": "line\n", "d": "from stdin\n", "x": {"y": 1}, "e": ""}


def test_parse_data_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    with pytest.raises(UsageError) as e:
        parse_data(["noequals"])
    assert e.value.message == 'Failed to parse K=V data: invalid key/value pair "noequals": format must be key=value'
    with pytest.raises(UsageError) as e:
        parse_data(["a=@/nonexistent/x"])
    assert e.value.message == ('Failed to parse K=V data: invalid key/value pair "a=@/nonexistent/x": '
                               "error reading file: open /nonexistent/x: no such file or directory")
    monkeypatch.setattr(sys, "stdin", io.StringIO("not json"))
    with pytest.raises(UsageError, match='invalid key/value pair "-"'):
        parse_data(["-"])


def test_count_error_wording() -> None:
    assert count_error([], 1, 1) == "Not enough arguments (expected 1, got 0)"
    assert count_error(["a", "b"], 1, 1) == "Too many arguments (expected 1, got 2)"
    assert count_error(["a", "b"], 0, 1) == "Too many arguments (expected 0-1, got 2)"
    assert count_error([], 1, None) == "Not enough arguments (expected at least 1, got 0)"
    assert count_error(["a"], 1, 2) is None


def test_env_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    for prefix in ("STRONGROOM_", "VAULT_", "BAO_"):
        monkeypatch.delenv(prefix + "ADDR", raising=False)
    monkeypatch.setenv("BAO_ADDR", "http://bao")
    assert env("ADDR") == "http://bao"
    monkeypatch.setenv("VAULT_ADDR", "http://vault")
    assert env("ADDR") == "http://vault"
    monkeypatch.setenv("STRONGROOM_ADDR", "http://strongroom")
    assert env("ADDR") == "http://strongroom"


def test_client_settings_from_flags_env_and_token_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("STRONGROOM_", "VAULT_", "BAO_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    ctx = Context("x", "")
    ctx.parse([])
    c = ctx.client()
    assert c.address == "https://127.0.0.1:8200" and c.token is None
    store_token("from-file")
    assert (tmp_path / ".vault-token").read_text() == "from-file"
    assert (tmp_path / ".vault-token").stat().st_mode & 0o777 == 0o600
    assert read_token_file() == "from-file"
    monkeypatch.setenv("VAULT_ADDR", "http://vault:1")
    monkeypatch.setenv("STRONGROOM_TOKEN", "from-env")
    ctx = Context("x", "")
    ctx.parse(["-address=http://flag:2"])
    c = ctx.client()
    assert (c.address, c.token) == ("http://flag:2", "from-env")
