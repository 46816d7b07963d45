"""The CLI against a running dev server, in-process through ``main(argv)``."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path
from typing import Any

import pytest

from strongroom import __version__


def test_version(cli: Any) -> None:
    assert cli.ok("version") == f"Strongroom v{__version__}\n"
    assert cli.ok("-version").splitlines()[0] == "Strongroom v0.1.0"
    assert cli.ok("--version").splitlines()[0] == "Strongroom v0.1.0"


def test_status_unsealed(cli: Any) -> None:
    out = cli.ok("status")
    lines = out.splitlines()
    assert lines[:2] == ["Key             Value", "---             -----"] or lines[0].split() == ["Key", "Value"]
    rows = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in lines[2:])
    assert rows["Initialized"] == "true"
    assert rows["Sealed"] == "false"
    assert rows["Total Shares"] == "1" and rows["Threshold"] == "1"
    assert list(rows)[:5] == ["Seal Type", "Initialized", "Sealed", "Total Shares", "Threshold"]
    assert "Unseal Progress" not in rows and "HA Enabled" in rows
    data = json.loads(cli.ok("status", "-format=json"))
    assert data["sealed"] is False and data["initialized"] is True
    assert list(data)[:5] == ["type", "initialized", "sealed", "t", "n"]


def test_status_unreachable_is_exit_1(cli: Any) -> None:
    r = cli("status", "-address=http://127.0.0.1:1")
    assert r.code == 1
    assert r.err.startswith('Error checking seal status: Get "http://127.0.0.1:1/v1/sys/seal-status": ')


def test_usage_errors_exit_1(cli: Any) -> None:
    r = cli("kv", "get")
    assert (r.code, r.err) == (1, "Not enough arguments (expected 1, got 0)\n")
    r = cli("kv", "get", "a", "b")
    assert (r.code, r.err) == (1, "Too many arguments (expected 1, got 2)\n")
    r = cli("kv", "put", "-bogus", "secret/x", "a=1")
    assert (r.code, r.err) == (1, "flag provided but not defined: -bogus\n")
    r = cli("read", "-format=xml", "secret/data/x")
    assert (r.code, r.err) == (1, "Invalid output format: xml\n")
    r = cli("write", "cubbyhole/x")
    assert (r.code, r.err) == (1, "Must supply data or use -force\n")
    r = cli("nonexistent-command")
    assert r.code == 127 and "Usage: strongroom <command>" in r.err
    r = cli("kv")
    assert r.code == 1 and "metadata" in r.err


def test_help_exits_0(cli: Any) -> None:
    r = cli("kv", "get", "-h")
    assert r.code == 0
    assert r.out.startswith("Usage: strongroom kv get [options] KEY")
    assert "-mount=<string>" in r.out and "-format=<string>" in r.out


def test_kv_v2_lifecycle(cli: Any, name: str) -> None:
    path = f"secret/{name}"
    out = cli.ok("kv", "put", path, "a=b", "c=d")
    api_path = f"secret/data/{name}"
    lines = out.splitlines()
    assert lines[1] == api_path
    assert re.fullmatch(r"=+ Secret Path =+", lines[0])
    assert re.fullmatch(r"=+ Metadata =+", lines[3])
    assert re.fullmatch(r"version\s+1", lines[-1])

    out = cli.ok("kv", "put", "-mount=secret", name, "a=b2")
    assert re.search(r"^version\s+2$", out, re.MULTILINE)

    out = cli.ok("kv", "get", path)
    assert "== Data ==\nKey    Value\n---    -----\na      b2\n" in out
    assert re.search(r"^deletion_time\s+n/a$", out, re.MULTILINE)
    assert cli.ok("kv", "get", "-field=a", path) == "b2"

    old = cli.ok("kv", "get", "-version=1", path)
    assert "a      b\nc      d\n" in old

    doc = json.loads(cli.ok("kv", "get", "-format=json", path))
    assert list(doc)[:6] == ["request_id", "lease_id", "lease_duration", "renewable", "data", "warnings"]
    assert doc["data"]["data"] == {"a": "b2"}
    assert doc["data"]["metadata"]["version"] == 2

    cli.ok("kv", "patch", path, "c=3")
    assert json.loads(cli.ok("kv", "get", "-format=json", path))["data"]["data"] == {"a": "b2", "c": "3"}
    cli.ok("kv", "patch", "-method=rw", path, "d=4")
    assert json.loads(cli.ok("kv", "get", "-format=json", path))["data"]["data"] == {"a": "b2", "c": "3", "d": "4"}

    r = cli("kv", "put", "-cas=1", path, "a=1")
    assert r.code == 2
    assert f"Error writing data to {api_path}: Error making API request." in r.err
    assert "Code: 400." in r.err and "check-and-set" in r.err
    assert re.search(r"^version\s+5$", cli.ok("kv", "put", "-cas=4", path, "a=1"), re.MULTILINE)

    meta = cli.ok("kv", "metadata", "get", path)
    assert re.match(rf"=+ Metadata Path =+\nsecret/metadata/{name}\n\n=+ Metadata =+\n", meta)
    assert re.search(r"^current_version\s+5$", meta, re.MULTILINE)
    assert "====== Version 1 ======" in meta and "====== Version 5 ======" in meta

    assert cli.ok("kv", "delete", path) == f"Success! Data deleted (if it existed) at: {api_path}\n"
    deleted = cli.ok("kv", "get", path)
    assert "== Data ==" not in deleted
    assert not re.search(r"^deletion_time\s+n/a$", deleted, re.MULTILINE)
    r = cli("kv", "get", "-field=a", path)
    assert (r.code, r.err) == (2, f"No data found at {api_path}\n")

    r = cli("kv", "undelete", path)
    assert r.code == 1 and '"-versions"' in r.err
    assert cli.ok("kv", "undelete", "-versions=5", path) == f"Success! Data written to: secret/undelete/{name}\n"
    assert cli.ok("kv", "get", "-field=a", path) == "1"

    assert cli.ok("kv", "destroy", "-versions=1", path) == f"Success! Data written to: secret/destroy/{name}\n"
    assert re.search(r"^destroyed\s+true$", cli.ok("kv", "get", "-version=1", path), re.MULTILINE)
    cli.ok("kv", "delete", "-versions=2", path)
    assert json.loads(cli.ok("kv", "get", "-format=json", "-version=2", path))["data"]["data"] is None

    assert cli.ok("kv", "metadata", "put", "-max-versions=3", "-custom-metadata=owner=me", path) == (
        f"Success! Data written to: secret/metadata/{name}\n")
    meta = cli.ok("kv", "metadata", "get", path)
    assert re.search(r"^max_versions\s+3$", meta, re.MULTILINE)
    assert re.search(r"^custom_metadata\s+map\[owner:me\]$", meta, re.MULTILINE)

    listed = cli.ok("kv", "list", "secret")
    assert listed.startswith("Keys\n----\n") and f"\n{name}\n" in listed
    assert name in json.loads(cli.ok("kv", "list", "-format=json", "-mount=secret"))

    rolled = cli.ok("kv", "rollback", "-version=4", path)
    assert re.search(r"^version\s+6$", rolled, re.MULTILINE)
    assert json.loads(cli.ok("kv", "get", "-format=json", path))["data"]["data"] == {"a": "b2", "c": "3", "d": "4"}

    assert cli.ok("kv", "metadata", "delete", path) == (
        f"Success! Data deleted (if it existed) at: secret/metadata/{name}\n")
    r = cli("kv", "get", path)
    assert (r.code, r.out, r.err) == (2, "", f"No value found at {api_path}\n")


def test_kv_v1(cli: Any, name: str) -> None:
    assert cli.ok("secrets", "enable", f"-path={name}", "kv") == (
        f"Success! Enabled the kv secrets engine at: {name}/\n")
    assert cli.ok("kv", "put", f"{name}/foo", "a=b") == f"Success! Data written to: {name}/foo\n"
    assert cli.ok("kv", "get", f"{name}/foo") == "== Data ==\nKey    Value\n---    -----\na      b\n"
    assert cli.ok("kv", "get", f"-mount={name}", "foo") == "== Data ==\nKey    Value\n---    -----\na      b\n"
    assert json.loads(cli.ok("kv", "get", "-format=json", f"{name}/foo"))["data"] == {"a": "b"}
    r = cli("kv", "patch", f"{name}/foo", "a=1")
    assert (r.code, r.err) == (2, "K/V engine mount must be version 2 for patch support\n")
    r = cli("kv", "metadata", "get", f"{name}/foo")
    assert (r.code, r.err) == (1, "Metadata not supported on KV Version 1\n")
    assert cli.ok("kv", "list", name) == "Keys\n----\nfoo\n"
    assert cli.ok("kv", "delete", f"{name}/foo") == f"Success! Data deleted (if it existed) at: {name}/foo\n"
    cli.ok("secrets", "disable", name)


def test_generic_read_write_list_delete(cli: Any, name: str) -> None:
    cli.ok("secrets", "enable", f"-path={name}", "kv")
    assert cli.ok("write", f"{name}/foo", "a=b", "n=5", "l=x", "l=y") == f"Success! Data written to: {name}/foo\n"
    out = cli.ok("read", f"{name}/foo")
    lines = out.splitlines()
    assert lines[0].split() == ["Key", "Value"]
    assert re.fullmatch(r"refresh_interval\s+768h", lines[2])
    assert [line.split(None, 1) for line in lines[3:]] == [["a", "b"], ["l", "[x y]"], ["n", "5"]]
    assert cli.ok("read", "-field=a", f"{name}/foo") == "b"
    r = cli("read", "-field=zz", f"{name}/foo")
    assert (r.code, r.err) == (1, 'Field "zz" not present in secret\n')
    doc = json.loads(cli.ok("read", "-format=json", f"{name}/foo"))
    assert doc["data"] == {"a": "b", "l": ["x", "y"], "n": "5"}
    cli.ok("write", f"{name}/bar", "-", stdin='{"nested": {"k": 1}}')
    assert cli.ok("read", "-field=nested", f"{name}/bar") == "map[k:1]"
    assert cli.ok("list", name) == "Keys\n----\nbar\nfoo\n"
    leader = json.loads(cli.ok("read", "-format=json", "sys/leader"))  # bare fields are shown as data
    assert leader["data"]["ha_enabled"] is False
    assert json.loads(cli.ok("list", "-format=json", name)) == ["bar", "foo"]
    assert cli.ok("delete", f"{name}/foo") == f"Success! Data deleted (if it existed) at: {name}/foo\n"
    assert cli.ok("delete", "-format=json", f"{name}/bar") == ""  # success lines are for tables only
    assert cli.ok("write", "-format=json", f"{name}/bar", "x=1") == ""
    r = cli("read", f"{name}/foo")
    assert (r.code, r.out, r.err) == (2, "", f"No value found at {name}/foo\n")
    r = cli("list", f"{name}/nothing")
    assert (r.code, r.err) == (2, f"No value found at {name}/nothing\n")
    cli.ok("secrets", "disable", name)


def test_token_with_policy_then_permission_denied(cli: Any, name: str) -> None:
    policy = f'path "secret/data/{name}-ok" {{\n  capabilities = ["read", "create", "update"]\n}}\n'
    assert cli.ok("policy", "write", name, "-", stdin=policy) == f"Success! Uploaded policy: {name}\n"
    out = cli.ok("token", "create", f"-policy={name}", "-ttl=1h", "-metadata=team=x")
    rows = {line.split(None, 1)[0]: line.split(None, 1)[1] for line in out.splitlines()[2:]}
    assert list(rows)[:7] == ["token", "token_accessor", "token_duration", "token_renewable", "token_policies",
                              "identity_policies", "policies"]
    assert rows["token_duration"] == "1h"
    assert rows["token_policies"] == f'["default" "{name}"]'
    assert rows["token_meta_team"] == "x"
    token = cli.ok("token", "create", "-field=token", f"-policy={name}")
    assert token and "\n" not in token

    auth = json.loads(cli.ok("token", "create", "-format=json", f"-policy={name}"))["auth"]
    assert auth["policies"] == ["default", name]
    assert list(auth)[:2] == ["client_token", "accessor"]

    cli.monkeypatch.setenv("VAULT_TOKEN", token)
    cli.ok("kv", "put", f"secret/{name}-ok", "a=1")
    r = cli("kv", "put", f"secret/{name}-denied", "a=1")
    assert r.code == 2 and r.out == ""
    assert r.err.startswith(f"Error writing data to secret/data/{name}-denied: Error making API request.\n\n"
                            f"URL: PUT {cli.server.addr}/v1/secret/data/{name}-denied\nCode: 403. Errors:\n\n* ")
    assert "permission denied" in r.err
    r = cli("read", f"secret/data/{name}-denied")
    assert r.code == 2 and "Code: 403" in r.err and r.err.startswith(f"Error reading secret/data/{name}-denied: ")

    assert cli.ok("token", "capabilities", f"secret/data/{name}-ok") == "create, read, update\n"
    looked = cli.ok("token", "lookup")
    assert re.search(rf"^policies\s+\[default {name}\]$", looked, re.MULTILINE)
    cli.monkeypatch.setenv("VAULT_TOKEN", "root")
    assert json.loads(cli.ok("token", "capabilities", "-format=json", token, f"secret/data/{name}-ok")) == [
        "create", "read", "update"]
    renewed = cli.ok("token", "renew", "-increment=30m", token)
    assert re.search(r"^token_duration\s+30m$", renewed, re.MULTILINE)
    accessor = json.loads(cli.ok("token", "lookup", "-format=json", token))["data"]["accessor"]
    assert json.loads(cli.ok("token", "lookup", "-format=json", "-accessor", accessor))["data"]["accessor"] == accessor
    assert cli.ok("token", "revoke", token) == "Success! Revoked token (if it existed)\n"
    r = cli("token", "lookup", token)
    assert r.code == 2 and r.err.startswith("Error looking up token: Error making API request.")
    r = cli("token", "revoke")
    assert (r.code, r.err) == (1, "Not enough arguments (expected 1 or -self, got 0)\n")
    r = cli("token", "revoke", "-self", "-mode=orphan")
    assert (r.code, r.err) == (1, "Cannot use -self with -mode!\n")


def test_policy_commands(cli: Any, name: str, tmp_path: Path) -> None:
    text = f'path "secret/data/{name}" {{\n  capabilities = ["read"]\n}}\n'
    f = tmp_path / "p.hcl"
    f.write_text(text)
    assert cli.ok("policy", "write", name, str(f)) == f"Success! Uploaded policy: {name}\n"
    assert cli.ok("policy", "read", name) == text
    assert json.loads(cli.ok("policy", "read", "-format=json", name)) == {"policy": text}
    names = cli.ok("policy", "list").splitlines()
    assert name in names and "default" in names and "root" in names
    assert name in json.loads(cli.ok("policy", "list", "-format=json"))
    r = cli("policy", "write", "-", str(tmp_path / "missing.hcl"))
    assert r.code == 2 and "Error opening policy file: open " in r.err
    assert cli.ok("policy", "delete", name) == f"Success! Deleted policy: {name}\n"
    r = cli("policy", "read", name)
    assert (r.code, r.err) == (2, f"No policy named: {name}\n")
    r = cli("policy", "delete", "root")
    assert r.code == 2 and r.err.startswith("Error deleting root: Error making API request.")


def test_policy_fmt(cli: Any, tmp_path: Path) -> None:
    f = tmp_path / "p.hcl"
    f.write_text('path "a/*" {\ncapabilities=["read","list"]\n}\n')
    assert cli.ok("policy", "fmt", str(f)) == f"Success! Formatted policy: {f}\n"
    assert f.read_text() == 'path "a/*" {\n  capabilities = ["read", "list"]\n}\n'
    f.write_text('path "a" {')
    r = cli("policy", "fmt", str(f))
    assert r.code == 1 and r.err.startswith("failed to parse policy: At 1:")


def test_secrets_engines(cli: Any, name: str) -> None:
    out = cli.ok("secrets", "enable", f"-path={name}", "-description=hello there", "-version=2",
                 "-default-lease-ttl=1h", "-max-lease-ttl=2h", "kv")
    assert out == f"Success! Enabled the kv secrets engine at: {name}/\n"
    r = cli("secrets", "enable", f"-path={name}", "kv")
    assert r.code == 2 and r.err.startswith(f"Error enabling: Error making API request.\n\n"
                                            f"URL: POST {cli.server.addr}/v1/sys/mounts/{name}\nCode: 400.")
    table = cli.ok("secrets", "list")
    assert table.splitlines()[0].split() == ["Path", "Type", "Accessor", "Description"]
    assert re.search(rf"^{name}/\s+kv\s+kv_\S+\s+hello there$", table, re.MULTILINE)
    mounts = json.loads(cli.ok("secrets", "list", "-format=json"))
    assert mounts[f"{name}/"]["options"] == {"version": "2"}
    assert list(mounts[f"{name}/"])[:4] == ["uuid", "type", "description", "accessor"]
    detailed = cli.ok("secrets", "list", "-detailed")
    assert re.search(rf"^{name}/\s+kv\s+\S+\s+3600\s+7200\s+false\s+replicated", detailed, re.MULTILINE)

    assert cli.ok("secrets", "tune", "-default-lease-ttl=30m", "-max-lease-ttl=90m", "-description=new",
                  name) == f"Success! Tuned the secrets engine at: {name}/\n"
    tuned = cli.ok("read", f"sys/mounts/{name}/tune")
    assert re.search(r"^default_lease_ttl\s+30m$", tuned, re.MULTILINE)
    assert re.search(r"^max_lease_ttl\s+1h30m$", tuned, re.MULTILINE)
    assert re.search(r"^description\s+new$", tuned, re.MULTILINE)

    cli.ok("kv", "put", f"{name}/k", "v=1")
    moved = cli.ok("secrets", "move", name, f"{name}-moved")
    assert moved.splitlines()[-1].startswith("Success! ")
    assert f"{name}/" in moved and f"{name}-moved/" in moved
    assert cli.ok("kv", "get", "-field=v", f"{name}-moved/k") == "1"
    assert f"{name}/" not in json.loads(cli.ok("secrets", "list", "-format=json"))
    assert cli.ok("secrets", "disable", f"{name}-moved") == (
        f"Success! Disabled the secrets engine (if it existed) at: {name}-moved/\n")
    assert f"{name}-moved/" not in json.loads(cli.ok("secrets", "list", "-format=json"))

    cli.ok("secrets", "enable", f"-path={name}-v2", "kv-v2")
    assert json.loads(cli.ok("secrets", "list", "-format=json"))[f"{name}-v2/"]["options"]["version"] == "2"
    cli.ok("secrets", "disable", f"{name}-v2")


def test_auth_methods(cli: Any, name: str) -> None:
    assert cli.ok("auth", "enable", f"-path={name}", "-description=people", "userpass") == (
        f"Success! Enabled userpass auth method at: {name}/\n")
    table = cli.ok("auth", "list")
    assert table.splitlines()[0].split() == ["Path", "Type", "Accessor", "Description", "Version"]
    assert re.search(rf"^{name}/\s+userpass\s+\S+\s+people\s+n/a$", table, re.MULTILINE)
    assert re.search(r"^token/\s+token\s", table, re.MULTILINE)
    assert json.loads(cli.ok("auth", "list", "-format=json"))[f"{name}/"]["type"] == "userpass"
    assert cli.ok("auth", "disable", name) == f"Success! Disabled the auth method (if it existed) at: {name}/\n"
    assert f"{name}/" not in json.loads(cli.ok("auth", "list", "-format=json"))
    r = cli("auth", "enable", f"-path={name}", "no-such-method")
    assert r.code == 2 and "no-such-method" in r.err
    assert f"{name}/" not in json.loads(cli.ok("auth", "list", "-format=json"))


def test_login_writes_token_file(cli: Any, name: str) -> None:
    token = cli.ok("token", "create", "-field=token", "-ttl=1h")
    cli.monkeypatch.delenv("VAULT_TOKEN")
    token_file = cli.home / ".vault-token"
    assert not token_file.exists()
    r = cli("login", token)
    assert r.code == 0, r.err
    assert r.out.startswith("Success! You are now authenticated.")
    assert re.search(rf"^token\s+{re.escape(token)}$", r.out, re.MULTILINE)
    assert token_file.read_text() == token
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    looked = json.loads(cli.ok("token", "lookup", "-format=json"))  # uses the stored token
    assert looked["data"]["id"] == token
    assert json.loads(cli.ok("login", "-format=json", "-no-store", token))["auth"]["client_token"] == token
    r = cli("login", "not-a-token")
    assert r.code == 2
    assert r.err.startswith("Error authenticating: error looking up token: Error making API request.")
    assert token_file.read_text() == token
    r = cli("login", "-method=bogus")
    assert r.code == 1 and r.err.startswith("Unknown auth method: bogus.")


def test_sealed_status_exits_2(fresh_cli: Any) -> None:
    cli = fresh_cli
    assert cli.ok("operator", "seal") == "Success! Vault is sealed.\n"
    r = cli("status")
    assert r.code == 2
    assert re.search(r"^Sealed\s+true$", r.out, re.MULTILINE)
    assert re.search(r"^Unseal Progress\s+0/1$", r.out, re.MULTILINE)
    assert json.loads(cli("status", "-format=json").out)["sealed"] is True
    r = cli("kv", "get", "secret/x")
    assert r.code == 2 and "Code: 503" in r.err
    key = cli.server.unseal_key()
    if key is None:
        pytest.skip("the dev server did not print its unseal key")
    out = cli.ok("operator", "unseal", key)
    assert re.search(r"^Sealed\s+false$", out, re.MULTILINE)
    assert cli("status").code == 0


def test_operator_init_unseal_rotate(init_cli: Any) -> None:
    cli = init_cli
    r = cli("operator", "init", "-status")
    assert (r.code, r.out) == (2, "Vault is not initialized\n")
    r = cli("status")
    assert r.code == 2 and re.search(r"^Initialized\s+false$", r.out, re.MULTILINE)

    init = json.loads(cli.ok("operator", "init", "-key-shares=3", "-key-threshold=2", "-format=json"))
    assert list(init) == ["unseal_keys_b64", "unseal_keys_hex", "unseal_shares", "unseal_threshold",
                          "recovery_keys_b64", "recovery_keys_hex", "recovery_keys_shares",
                          "recovery_keys_threshold", "root_token"]
    assert len(init["unseal_keys_b64"]) == 3 and len(init["unseal_keys_hex"]) == 3
    assert (init["unseal_shares"], init["unseal_threshold"]) == (3, 2)
    r = cli("operator", "init")
    assert r.code == 2 and r.err.startswith("Error initializing: Error making API request.")
    assert cli("operator", "init", "-status").out == "Vault is initialized\n"

    out = cli.ok("operator", "unseal", init["unseal_keys_b64"][0])
    assert re.search(r"^Unseal Progress\s+1/2$", out, re.MULTILINE)
    assert cli.ok("operator", "unseal", "-reset") and cli("status").code == 2
    cli.ok("operator", "unseal", init["unseal_keys_b64"][0])
    out = cli.ok("operator", "unseal", init["unseal_keys_hex"][1])
    assert re.search(r"^Sealed\s+false$", out, re.MULTILINE)
    assert cli("status").code == 0

    cli.monkeypatch.setenv("VAULT_TOKEN", init["root_token"])
    status = cli.ok("operator", "key-status")
    assert re.fullmatch(r"Key Term\s+1\nInstall Time\s+\d\d \w{3} \d\d \d\d:\d\d UTC\nEncryption Count\s+\d+\n",
                        status)
    rotated = cli.ok("operator", "rotate")
    assert rotated.startswith("Success! Rotated key\n\nKey Term            2\n")
    assert json.loads(cli.ok("operator", "key-status", "-format=json"))["term"] == 2
    assert cli.ok("operator", "seal") == "Success! Vault is sealed.\n"
    assert cli("status").code == 2
    r = cli("operator", "unseal")  # no key, and stdin is not a terminal
    assert r.code == 1 and "not a terminal" in r.err
