"""Rendering: expected strings are what OpenBao's CLI printed for the same data."""

from __future__ import annotations

import json

import pytest

from strongroom.api import format_warnings
from strongroom.cli.hcl import HCLError, format_hcl
from strongroom.cli.output import (
    columns,
    go_time,
    go_value,
    header,
    kv_table,
    secret_field,
    secret_json,
    secret_pairs,
    section_width,
    short_time,
    table_value,
    to_json,
    to_yaml,
)


@pytest.mark.parametrize(("value", "shown"), [
    (None, "<nil>"), (True, "true"), (False, "false"), (5, "5"), (1.5, "1.5"), ("x", "x"),
    ({"y": 1}, "map[y:1]"), ({"b": "2", "a": [1, "x"]}, "map[a:[1 x] b:2]"),
    (["default", "admin"], "[default admin]"), ({"k": ["x"]}, "map[k:[x]]"), ({}, "map[]"),
])
def test_go_value(value: object, shown: str) -> None:
    assert go_value(value) == shown


@pytest.mark.parametrize(("key", "value", "shown"), [
    ("ttl", 90, "1m30s"), ("my_ttl", 3600, "1h"), ("period", 60, "1m"), ("foo_period", 7, "7s"),
    ("duration", 100, "1m40s"), ("max_lease_ttl", 100, "1m40s"), ("creation_ttl", 7200, "2h"),
    ("explicit_max_ttl", 0, "0s"), ("ttl", "30", "30"), ("ttl_seconds", 3, "3"), ("ttlx", 5, "5"),
    ("entity_id", "", "n/a"), ("meta", None, "<nil>"),
])
def test_table_value(key: str, value: object, shown: str) -> None:
    assert table_value(key, value) == shown


def test_columns_pad_four_spaces_and_not_the_last_column() -> None:
    assert columns([["Key", "Value"], ["---", "-----"], ["a", "b2"]]) == "Key    Value\n---    -----\na      b2"


def test_kv_table_without_header() -> None:
    assert kv_table([("Key Term", "1"), ("Encryption Count", "20")], header=()) == (
        "Key Term            1\nEncryption Count    20")


@pytest.mark.parametrize(("name", "width", "shown"), [
    ("Secret Path", len("secret/data/foo"), "= Secret Path ="),
    ("Secret Path", len("secret/data/cplx"), "== Secret Path =="),
    ("Secret Path", len("k/data/a"), "== Secret Path =="),
    ("Secret Path", len("k/data/abcdef"), "== Secret Path =="),
    ("Secret Path", len("k/data/abcdefg"), "= Secret Path ="),
    ("Secret Path", len("secret/data/a/very/long/path/name/here/xxxxxx"),
     "================ Secret Path ================"),
    ("Metadata Path", len("secret/metadata/foo"), "== Metadata Path =="),
])
def test_header_over_a_path(name: str, width: int, shown: str) -> None:
    assert header(name, width) == shown


@pytest.mark.parametrize(("name", "keys", "shown"), [
    ("Data", ["a", "c"], "== Data =="),
    ("Data", ["abcdefghij"], "======= Data ======="),
    ("Data", ["abcdefghijklmnopqrstuvwxyz0123"], "================= Data ================="),
    ("Metadata", ["created_time", "custom_metadata", "deletion_time", "destroyed", "version"],
     "======= Metadata ======="),
    ("Metadata", ["cas_required", "current_metadata_version"], "============ Metadata ============"),
    ("Version 1", ["created_time", "deletion_time", "destroyed"], "====== Version 1 ======"),
])
def test_header_over_a_table(name: str, keys: list[str], shown: str) -> None:
    assert header(name, section_width(dict.fromkeys(keys, ""))) == shown


def test_secret_pairs_refresh_interval_then_sorted_data() -> None:
    resp = {"lease_id": "", "lease_duration": 2764800, "data": {"n": "5", "a": "b", "l": "x"}}
    assert kv_table(secret_pairs(resp)) == (
        "Key                 Value\n"
        "---                 -----\n"
        "refresh_interval    768h\n"
        "a                   b\n"
        "l                   x\n"
        "n                   5")


def test_secret_pairs_lease() -> None:
    rows = secret_pairs({"lease_id": "db/creds/x/abc", "lease_duration": 3600, "renewable": True, "data": {}})
    assert rows == [("lease_id", "db/creds/x/abc"), ("lease_duration", "1h"), ("lease_renewable", "true")]


AUTH = {"client_token": "s.abc", "accessor": "acc", "policies": ["default", "mypol"],
        "token_policies": ["default", "mypol"], "metadata": {"c": "d", "a": "b"}, "lease_duration": 3600,
        "renewable": True, "entity_id": "", "orphan": False}


def test_auth_table() -> None:
    text = kv_table(secret_pairs({"auth": AUTH, "data": None}))
    assert text == (
        "Key                  Value\n"
        "---                  -----\n"
        "token                s.abc\n"
        "token_accessor       acc\n"
        "token_duration       1h\n"
        "token_renewable      true\n"
        'token_policies       ["default" "mypol"]\n'
        "identity_policies    []\n"
        'policies             ["default" "mypol"]\n'
        "token_meta_a         b\n"
        "token_meta_c         d")


def test_secret_json_field_order() -> None:
    resp = {"auth": AUTH, "data": None, "wrap_info": None, "warnings": None, "renewable": False,
            "lease_duration": 0, "lease_id": "", "request_id": "r"}
    out = secret_json(resp)
    assert list(out) == ["request_id", "lease_id", "lease_duration", "renewable", "data", "warnings", "auth"]
    assert list(out["auth"]) == ["client_token", "accessor", "policies", "token_policies", "identity_policies",
                                 "metadata", "orphan", "entity_id", "lease_duration", "renewable",
                                 "mfa_requirement"]


def test_secret_field() -> None:
    resp = {"auth": AUTH, "data": {"x": {"y": 1}}, "lease_duration": 60}
    assert secret_field(resp, "token") == (True, "s.abc")
    assert secret_field(resp, "token_policies") == (True, "[default mypol]")
    assert secret_field(resp, "x") == (True, "map[y:1]")
    assert secret_field(resp, "refresh_interval") == (True, "60")
    assert secret_field(resp, "nope") == (False, "")


def test_json_like_go() -> None:
    assert to_json({"p": "<a & b>", "u": "ü"}) == '{\n  "p": "\\u003ca \\u0026 b\\u003e",\n  "u": "ü"\n}'
    assert json.loads(to_json({"p": "<a & b>"})) == {"p": "<a & b>"}


def test_yaml_quoting_as_go_yaml() -> None:
    data = {"a": "#x", "b": "a: b", "c": "- x", "d": "true", "e": "1.5", "f": "null", "g": "~", "h": "  lead",
            "i": "", "j": "it's", "k": 'say "hi"', "l": "2026-01-01", "m": "{x}", "n": "*star", "p": "%pct",
            "q": "x #y", "r": "yes", "s": "Off", "t": "0x1F", "u": "1e3", "v": "a\nb", "w": "tail ", "y": ":x",
            "z": "a:b"}
    expected = [
        "a: '#x'", "b: 'a: b'", "c: '- x'", 'd: "true"', 'e: "1.5"', 'f: "null"', 'g: "~"', "h: '  lead'",
        'i: ""', "j: it's", 'k: say "hi"', 'l: "2026-01-01"', "m: '{x}'", "\"n\": '*star'", "p: '%pct'",
        "q: 'x #y'", 'r: "yes"', 's: "Off"', 't: "0x1F"', 'u: "1e3"', "v: |-", "  a", "  b", "w: 'tail '",
        '"y": :x', "z: a:b"]
    assert to_yaml(data) == "\n".join(expected)


def test_yaml_structure() -> None:
    value = {"auth": {"policies": ["default", "mypol"], "metadata": {"k": "v"}, "identity_policies": None},
             "data": None, "lease_duration": 0, "policy": "path \"x\" {\n}\n"}
    expected = [
        "auth:", "  identity_policies: null", "  metadata:", "    k: v", "  policies:", "  - default",
        "  - mypol", "data: null", "lease_duration: 0", "policy: |", '  path "x" {', "  }"]
    assert to_yaml(value) == "\n".join(expected)
    assert to_yaml(["default", "root"]) == "- default\n- root"


def test_warnings_wrap_like_vault() -> None:
    text = format_warnings([("Mount move has been queued. Progress will be reported in OpenBao's server log, "
                             "tagged with the returned migration_id")])
    assert text == (
        "WARNING! The following warnings were returned from Vault:\n\n"
        "  * Mount move has been queued. Progress will be reported in OpenBao's server\n"
        "  log, tagged with the returned migration_id\n")


def test_times() -> None:
    assert go_time("2026-11-22T15:15:56.357185046Z") == "2026-11-22 15:15:56.357185046 +0000 UTC"
    assert short_time("2026-11-22T15:15:02.126525124Z") == "22 Nov 26 15:15 UTC"


POLICY = """\
# top comment
path "secret/*" {
  capabilities = ["create","read"]
  min_wrapping_ttl="1s"
  allowed_parameters = {
    "foo" = []
    "bar"=["a","b"]
  }


  denied_parameters { "x" = [] }
}
path "a" { capabilities = ["deny"] } # trailing
/* block
comment */
path "b" {
  capabilities = [
    "read", # why
    "list"
  ]
}
"""

# What `bao policy fmt` wrote for POLICY.
FORMATTED = """\
# top comment
path "secret/*" {
  capabilities     = ["create", "read"]
  min_wrapping_ttl = "1s"

  allowed_parameters = {
    "foo" = []
    "bar" = ["a", "b"]
  }

  denied_parameters {
    "x" = []
  }
}

path "a" {
  capabilities = ["deny"]
} # trailing

/* block
comment */
path "b" {
  capabilities = [
    "read", # why
    "list",
  ]
}
"""


def test_hcl_format_matches_reference() -> None:
    assert format_hcl(POLICY) == FORMATTED
    assert format_hcl(FORMATTED) == FORMATTED


@pytest.mark.parametrize("bad", ['path "a" {', 'path "a" { x = }', 'path "a', "}"])
def test_hcl_errors(bad: str) -> None:
    with pytest.raises(HCLError, match=r"^At \d+:\d+: "):
        format_hcl(bad)
