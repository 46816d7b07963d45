"""strongroom.hcl: the HCL reader for config files and policies.

Fixed cases pin the syntax Vault/OpenBao users write and the output shape the config and policy
readers consume; property tests check that arbitrary input fails only with HCLError and that
generated documents read back as what was written.
"""

from __future__ import annotations

import json
import math
import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.hcl import MAX_DEPTH, Block, HCLError, loads

VAULT_CONFIG = r'''
# Vault-style server config
ui            = true
api_addr      = "https://vault.example.com:8200"   // trailing comment
disable_mlock = true
max_lease_ttl = "768h"

/* multi-line
   comment */
storage "raft" {
  path    = "/opt/vault/data"
  node_id = "node-1"
  retry_join {
    leader_api_addr = "https://10.0.0.2:8200"
  }
  retry_join {
    leader_api_addr = "https://10.0.0.3:8200"
  }
}

listener "tcp" {
  address       = "0.0.0.0:8200"
  tls_cert_file = "/etc/tls/cert.pem"
  telemetry {
    unauthenticated_metrics_access = false
  }
}

listener "tcp" {
  address = "127.0.0.1:8300"
  tls_disable = 1
}

audit "file" "file/" {
  options {
    file_path = "/var/log/vault_audit.log"
    mode      = "0600"
  }
}

seal "transit" {
  key_name = "autounseal"
}
'''


def test_vault_config_shape() -> None:
    doc = loads(VAULT_CONFIG)
    assert doc["ui"] is True and doc["max_lease_ttl"] == "768h"
    assert doc["api_addr"] == "https://vault.example.com:8200"
    (storage,) = doc["storage"]
    raft = storage["raft"]
    assert isinstance(raft, Block) and raft["path"] == "/opt/vault/data"
    assert [j["leader_api_addr"] for j in raft["retry_join"]] == ["https://10.0.0.2:8200", "https://10.0.0.3:8200"]
    assert [entry["tcp"]["address"] for entry in doc["listener"]] == ["0.0.0.0:8200", "127.0.0.1:8300"]
    assert doc["listener"][0]["tcp"]["telemetry"] == [{"unauthenticated_metrics_access": False}]
    assert doc["audit"] == [{"file": {"file/": {"options": [{"file_path": "/var/log/vault_audit.log",
                                                               "mode": "0600"}]}}}]
    assert doc["seal"] == [{"transit": {"key_name": "autounseal"}}]


def test_policy_shape() -> None:
    doc = loads('path "secret/*" {\n  capabilities = ["read", "list",]\n}\n'
                'path "sys/x" { capabilities = ["deny"] }\n'
                'path "a" {\n allowed_parameters = { "Foo" = [], bar: ["x", 1, true] }\n}\n')
    assert doc == {"path": [{"secret/*": {"capabilities": ["read", "list"]}},
                            {"sys/x": {"capabilities": ["deny"]}},
                            {"a": {"allowed_parameters": {"Foo": [], "bar": ["x", 1, True]}}}]}
    assert not isinstance(doc["path"][2]["a"]["allowed_parameters"], Block)  # an object, not a block


@pytest.mark.parametrize(("text", "value"), [
    ('"a\\nb\\t\\"q\\" \\\\ \\u00e9 \\U0001F600"', 'a\nb\t"q" \\ é \U0001F600'),
    ('"\\ud83d\\ude00 \\b\\f"', "\U0001F600 \b\f"),  # a JSON-style surrogate pair is one character
    ('"${not.interpolated}"', "${not.interpolated}"),
    ('"# not a comment // /* */"', "# not a comment // /* */"),
    ("0", 0), ("-12", -12), ("1.5", 1.5), ("-2.5e3", -2500.0), ("1E2", 100.0), ("0x1F", 31), ("007", 7),
    ("true", True), ("false", False), ("null", None),
    ("[]", []), ("[1,\n 2 ,\n\n 3,\n]", [1, 2, 3]), ('[[1], {a = "b"}]', [[1], {"a": "b"}]),
    ("{}", {}), ("{ a = 1, b = 2 }", {"a": 1, "b": 2}), ("{\n a = 1\n b = 2\n}", {"a": 1, "b": 2}),
    ('{ "quoted key" = 1, k.with-dots_and-dash = 2 }', {"quoted key": 1, "k.with-dots_and-dash": 2}),
    ("<<EOT\nline 1\n  line 2\nEOT", "line 1\n  line 2"),
    ("<<EOT\nEOT", ""),
    ("<<-EOT\n    a\n      b\n\n    c\n    EOT", "a\n  b\n\nc"),
    ("<<EOF\r\nwindows\r\nEOF", "windows"),
])
def test_values(text: str, value: object) -> None:
    assert loads(f"v = {text}\n") == {"v": value}


def test_separators_and_comments_between_items() -> None:
    assert loads("a = 1, b = 2 c = 3 # x\n// y\n/* z */ d = 4") == {"a": 1, "b": 2, "c": 3, "d": 4}
    assert loads("") == {} and loads("# only a comment\n") == {}
    assert loads("\ufeffa = 1") == {"a": 1}


def test_block_forms() -> None:
    assert loads("b {}\nb {}") == {"b": [{}, {}]}
    assert loads('"quoted" "l" {}') == {"quoted": [{"l": {}}]}
    assert loads('x ident_label "two" { y = 1 }') == {"x": [{"ident_label": {"two": {"y": 1}}}]}
    assert loads("o = { inner { k = 1 } }") == {"o": {"inner": [{"k": 1}]}}
    assert isinstance(loads("b {}")["b"][0], Block) and not isinstance(loads("o = {}")["o"], Block)


@pytest.mark.parametrize(("text", "where", "detail"), [
    ('path "a" capabilities = ["read"] }', "1:23", "expected '{' after the labels of block 'path'"),
    ("a = 1\na = 2", "2:1", "'a' is already defined as an attribute"),
    ("a = 1\na {}", "2:1", "'a' is already defined as an attribute"),
    ("a {}\na = 1", "2:1", "'a' is already defined as a block"),
    ("a = yes", "1:5", "unexpected 'yes': strings must be quoted"),
    ('a = "x\n"', "1:5", "string not terminated"),
    ('a = "\\q"', "1:6", "invalid escape sequence \\q"),
    ('a = "\\ud800"', "1:6", "invalid unicode escape"),
    ('a = "\\U00110000"', "1:6", "invalid unicode escape"),
    ("a = 1e999", "1:5", "number out of range"),
    ("a = 12abc", "1:5", "invalid number"),
    ("a = 1" + "0" * 5000, "1:5", "invalid number"),
    ("/* open", "1:1", "comment not terminated"),
    ("a = <<EOT\nno end", "1:5", "heredoc not terminated"),
    ("a = <<EOT x\nEOT", "1:5", "invalid heredoc"),
    ("a = [1 2]", "1:8", "expected ',' or ']' in list, got 2"),
    ("a = [1,", "1:8", "expected a value, got end of input"),
    ("a = [,]", "1:6", "expected a value, got ','"),
    ("b {\n a = 1\n", "3:1", "expected a key or '}', got end of input"),
    ("}", "1:1", "expected a key, got '}'"),
    ("a: 1", "1:2", "expected '=' or '{' after 'a', got ':'"),
    ("a = 1 @", "1:7", "unexpected character '@'"),
])
def test_errors_have_position_and_reason(text: str, where: str, detail: str) -> None:
    with pytest.raises(HCLError) as info:
        loads(text)
    assert str(info.value).startswith(f"At {where}: "), str(info.value)
    assert detail in info.value.detail
    line, column = where.split(":")
    assert (info.value.line, info.value.column) == (int(line), int(column))
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(("prefix", "opener"), [("a = ", "["), ("a = ", "{b = "), ("", "a {"), ("a = ", "[{b = ")])
def test_deep_nesting_is_an_error_not_a_crash(prefix: str, opener: str) -> None:
    # SECURITY: policies come from API clients; a deeply nested document must not exhaust the stack.
    with pytest.raises(HCLError, match=f"nesting deeper than {MAX_DEPTH} levels"):
        loads(prefix + opener * 100_000)


def test_nesting_up_to_the_limit_is_accepted() -> None:
    doc = loads("a = " + "[" * MAX_DEPTH + "]" * MAX_DEPTH)
    depth, value = 0, doc["a"]
    while value:
        depth, value = depth + 1, value[0]
    assert depth == MAX_DEPTH - 1


def test_large_flat_documents_parse() -> None:
    assert len(loads("a = [" + "1," * 100_000 + "]")["a"]) == 100_000
    assert len(loads('path "p" { capabilities = ["read"] }\n' * 20_000)["path"]) == 20_000


# ------------------------------------------------------------------------------------ properties

_HCL_ALPHABET = string.ascii_letters[:6] + string.digits[:3] + ' \t\n"\\{}[]=,:#/*<<-.xEOTu'


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(), st.text(alphabet=_HCL_ALPHABET, max_size=80)))
def test_any_input_either_parses_or_raises_hcl_error(text: str) -> None:
    try:
        doc = loads(text)
    except HCLError as e:
        assert e.line >= 1 and e.column >= 1
    else:
        assert isinstance(doc, dict)


_KEYS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,8}", fullmatch=True).filter(
    lambda k: k not in ("true", "false", "null"))
_SCALARS = st.one_of(
    st.text(max_size=12), st.integers(min_value=-10**30, max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False), st.booleans(), st.none())
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_KEYS, inner, max_size=4)),
    max_leaves=12)


@st.composite
def _bodies(draw: st.DrawFn, depth: int = 0) -> list[tuple[str, Any]]:
    """Items of a body: ("attr", key, value) or ("block", key, labels, items)."""
    items: list[Any] = []
    used: dict[str, str] = {}
    for _ in range(draw(st.integers(0, 4))):
        key = draw(_KEYS)
        as_block = depth < 3 and used.get(key) != "attr" and (key in used or draw(st.booleans()))
        if as_block:
            labels = draw(st.lists(st.one_of(_KEYS, st.text(max_size=6)), max_size=2))
            items.append(("block", key, labels, draw(_bodies(depth + 1))))
            used[key] = "block"
        elif key not in used:
            items.append(("attr", key, draw(_VALUES)))
            used[key] = "attr"
    return items


def _render_value(value: object, style: int) -> str:
    if isinstance(value, str):
        return json.dumps(value)  # JSON's escapes are a subset of HCL's
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, float):
        return repr(value) if "e" in repr(value) or "." in repr(value) else f"{value}.0"
    if isinstance(value, int):
        return str(value)
    sep = ",\n" if style % 2 else ", "
    if isinstance(value, list):
        return "[" + sep.join(_render_value(v, style) for v in value) + ("," if style % 3 == 0 and value else "") + "]"
    assert isinstance(value, dict)
    pairs = (f"{_key(k, style)} {'=' if style % 4 else ':'} {_render_value(v, style)}" for k, v in value.items())
    return "{" + ("\n" if style % 2 else " ").join(pairs) + "}"


def _key(key: str, style: int) -> str:
    return json.dumps(key) if style % 5 == 0 else key


def _render(items: list[Any], style: int) -> str:
    lines: list[str] = []
    for item in items:
        if item[0] == "attr":
            lines.append(f"{_key(item[1], style)} = {_render_value(item[2], style)}  # c")
        else:
            labels = " ".join(json.dumps(label) for label in item[2])
            lines.append(f"{item[1]} {labels} {{\n{_render(item[3], style + 1)}\n}}")
    return ("\n// between\n" if style % 2 else "\n").join(lines)


def _expected(items: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        if item[0] == "attr":
            out[item[1]] = item[2]
        else:
            node: Any = _expected(item[3])
            for label in reversed(item[2]):
                node = {label: node}
            out.setdefault(item[1], []).append(node)
    return out


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or math.isclose(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@settings(max_examples=300, deadline=None)
@given(_bodies(), st.integers(0, 59))
def test_generated_documents_read_back(items: list[Any], style: int) -> None:
    text = _render(items, style)
    assert _same(loads(text), _expected(items)), text


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text(min_size=1, max_size=20),
                          st.lists(st.sampled_from(["create", "read", "update", "delete", "list", "sudo"]),
                                   max_size=6)), max_size=6))
def test_generated_policies_read_back(stanzas: list[tuple[str, list[str]]]) -> None:
    text = "\n".join(f"path {json.dumps(p)} {{\n  capabilities = {json.dumps(caps)}\n}}" for p, caps in stanzas)
    assert loads(text) == ({"path": [{p: {"capabilities": caps}} for p, caps in stanzas]} if stanzas else {})


def test_a_repeated_list_attribute_appends_as_in_hcl1() -> None:
    # OpenBao (HCL1) reads `capabilities` given twice in one path block as both lists together.
    assert loads('path "a" {\n capabilities = ["read"]\n capabilities = ["list"]\n}') == {
        "path": [{"a": {"capabilities": ["read", "list"]}}]}


def test_numbers_with_a_leading_zero_are_octal_as_in_hcl1() -> None:
    # Go's HCL1 parses numbers in base 0: file modes such as `mode = 0640` are octal.
    assert loads("a = 0640\nb = 0\nc = 640\nd = 0x1F") == {"a": 0o640, "b": 0, "c": 640, "d": 31}
