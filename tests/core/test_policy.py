"""Policy parsing (HCL and JSON) and the PolicyStore.

Error wording and acceptance were compared with OpenBao 2.x (`bao server -dev`, writing the same
documents to sys/policy); cases marked "bao:" were checked there.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from strongroom.core.policy import DEFAULT_POLICY, POLICY_PREFIX, PathRules, PolicyStore, parse_policy
from strongroom.errors import InvalidRequest
from strongroom.logical import Operation
from strongroom.storage.inmem import InmemStorage


def rules(text: str) -> dict[str, PathRules]:
    return {r.path: r for r in parse_policy("p", text).rules}


def parse_error(text: str) -> str:
    with pytest.raises(InvalidRequest) as info:
        parse_policy("p", text)
    assert info.value.status_code == 400
    return info.value.message


# -- parsing ---------------------------------------------------------------------------------------


def test_hcl_path_block_strips_quotes() -> None:
    policy = parse_policy("Dev-Team", 'path "secret/*" { capabilities = ["read", "list"] }')
    assert policy.name == "dev-team"
    assert policy.text == 'path "secret/*" { capabilities = ["read", "list"] }'
    assert policy.rules == (PathRules(path="secret/*", capabilities=frozenset({"read", "list"})),)


def test_repeated_path_blocks_are_all_kept() -> None:
    policy = parse_policy(
        "p", 'path "a" { capabilities = ["read"] }\npath "b" {}\npath "a" { capabilities = ["update"] }'
    )
    assert [(r.path, sorted(r.capabilities)) for r in policy.rules] == [
        ("a", ["read"]),
        ("b", []),
        ("a", ["update"]),
    ]


def test_json_forms_match_hcl() -> None:
    hcl = rules('path "secret/foo" { capabilities = ["read"] }\npath "x/*" { capabilities = ["list"] }')
    assert (
        rules('{"path": {"secret/foo": {"capabilities": ["read"]}, "x/*": {"capabilities": ["list"]}}}')
        == hcl
    )
    # bao: the list-of-objects JSON form is accepted too.
    assert (
        rules('{"path": [{"secret/foo": {"capabilities": ["read"]}}, {"x/*": {"capabilities": ["list"]}}]}')
        == hcl
    )


def test_comments_heredocs_and_ignored_keys() -> None:
    text = """
    # a comment
    name = "ignored"
    path "pki/*" {
      capabilities = ["deny"]
      comment = <<EOT
    tracked in TICKET-1
    EOT
    }
    path "mfa" {
      capabilities = ["read"]
      mfa_methods = ["totp"]
    }
    """
    parsed = rules(text)
    assert parsed["pki/*"].capabilities == frozenset({"deny"})
    assert parsed["mfa"].capabilities == frozenset({"read"})


def test_full_stanza() -> None:
    rule = rules("""
    path "/secret/restricted" {
      capabilities = ["create", "update"]
      allowed_parameters = { "Foo" = [], "bar" = ["zip", "zap*", 1, true] }
      denied_parameters = { "baz" = [] }
      required_parameters = ["bar"]
      min_wrapping_ttl = "1s"
      max_wrapping_ttl = 90
    }""")["secret/restricted"]  # one leading '/' is dropped (bao: "/g" matches "g")
    assert rule.allowed_parameters == {"foo": (), "bar": ("zip", "zap*", 1, True)}  # names lowercased
    assert rule.denied_parameters == {"baz": ()}
    assert rule.required_parameters == ("bar",)
    assert (rule.min_wrapping_ttl, rule.max_wrapping_ttl) == (1, 90)


def test_block_syntax_for_parameter_maps() -> None:
    rule = rules('path "a" {\n capabilities = ["update"]\n allowed_parameters {\n x = ["1"]\n }\n}')["a"]
    assert rule.allowed_parameters == {"x": ("1",)}


@pytest.mark.parametrize(
    ("legacy", "expected"),
    [
        ("deny", {"deny"}),
        ("read", {"read", "list"}),
        ("write", {"create", "read", "update", "delete", "list"}),  # no patch (bao)
        ("sudo", {"create", "read", "update", "delete", "list", "sudo"}),
    ],
)
def test_legacy_policy_shorthand(legacy: str, expected: set[str]) -> None:
    assert rules(f'path "a" {{ policy = "{legacy}" }}')["a"].capabilities == expected


def test_legacy_shorthand_adds_to_capabilities() -> None:
    # bao: policy = "read" + capabilities = ["patch"] answers list, patch, read.
    assert rules('path "a" {\n policy = "read"\n capabilities = ["patch"] }')["a"].capabilities == {
        "read",
        "list",
        "patch",
    }


def test_deny_clears_other_capabilities_and_constraints() -> None:
    rule = rules('path "a" {\n capabilities = ["read", "deny"]\n allowed_parameters = { x = [] }\n}')["a"]
    assert rule.capabilities == frozenset({"deny"})
    assert rule.allowed_parameters == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'path "a" { capabilities = ["reed"] }',
            'failed to parse policy: path "a": invalid capability "reed"',
        ),
        # bao: capabilities are case-sensitive, and Vault's "subscribe" is not an OpenBao capability.
        ('path "a" { capabilities = ["READ"] }', 'path "a": invalid capability "READ"'),
        ('path "a" { capabilities = ["subscribe"] }', 'path "a": invalid capability "subscribe"'),
        ('path "a" { policy = "bogus" }', 'path "a": invalid policy "bogus"'),
        ("foo = 1", 'failed to parse policy: invalid key "foo"'),
        ('policy = "read"', 'invalid key "policy"'),  # bao: the shorthand is only valid inside a path
        ('path "a" {\n capabilities = ["read"]\n foo = 1\n}', 'path "a": invalid key "foo"'),
        ('{"path": {"a": {"capabilities": ["read"], "bad": 1}}}', 'path "a": invalid key "bad"'),
        ('{"path": {"a": {}}, "x": 1}', 'invalid key "x"'),
        ('path "a" { capabilities = "read" }', 'path "a": capabilities must be a list of strings'),
        ('path "f/+*" { capabilities = ["read"] }', "invalid use of wildcards ('+*' is forbidden)"),
        (
            'path "a" {\n min_wrapping_ttl = "10s"\n max_wrapping_ttl = "5s"\n}',
            "max_wrapping_ttl cannot be less than",
        ),
        ('path "a" { min_wrapping_ttl = "bogus" }', 'path "a": error parsing min_wrapping_ttl'),
        ('path "a" { expiration = "yesterday" }', 'path "a": invalid expiration time'),
        ('path "a" { allowed_parameters = ["x"] }', "allowed_parameters must be an object"),
        ('path "a" { pagination_limit = 10 }', 'path "a": "pagination_limit" is not supported'),
        ('path "a" capabilities = ["read"] }', "failed to parse policy: At 1:"),
        ("path { capabilities = [] }", "path block needs exactly one label"),
        ('{"path": {"a": {"capabilities": ["read"]}', "failed to parse policy: At 1:"),
        ("[]", "failed to parse policy"),
        ("   \n", "'policy' parameter not supplied or empty"),
    ],
)
def test_parse_errors_name_the_problem(text: str, message: str) -> None:
    assert message in parse_error(text)


def test_deny_stanza_skips_validation_of_the_rest() -> None:
    # bao accepts this: a deny stanza's other settings are never looked at.
    assert rules('path "a" {\n capabilities = ["deny"]\n min_wrapping_ttl = "bogus"\n}')[
        "a"
    ].capabilities == {"deny"}


def test_expiration_is_parsed_as_utc() -> None:
    rule = rules('path "a" {\n capabilities = ["read"]\n expiration = "2030-01-02T03:04:05+01:00"\n}')["a"]
    assert rule.expiration == datetime(2030, 1, 2, 2, 4, 5, tzinfo=UTC)


def test_comment_only_document_is_an_empty_policy() -> None:
    assert parse_policy("p", "# nothing yet").rules == ()  # bao accepts it


def test_default_policy_text() -> None:
    parsed = rules(DEFAULT_POLICY)
    assert parsed["auth/token/lookup-self"].capabilities == {"read"}
    assert parsed["cubbyhole/*"].capabilities == {"create", "read", "update", "delete", "list"}
    assert parsed["sys/wrapping/unwrap"].capabilities == {"update"}
    assert not any(p.startswith("secret") for p in parsed)


# -- store -----------------------------------------------------------------------------------------


@pytest.fixture
def view() -> InmemStorage:
    return InmemStorage()


@pytest.fixture
async def store(view: InmemStorage) -> PolicyStore:
    s = PolicyStore(view)
    await s.setup()
    return s


async def test_setup_writes_default_once(view: InmemStorage) -> None:
    store = PolicyStore(view)
    await store.setup()
    assert orjson.loads(await view.get(POLICY_PREFIX + "default") or b"") == {
        "name": "default",
        "policy": DEFAULT_POLICY,
    }
    await store.put("default", 'path "x" { capabilities = ["read"] }')
    await PolicyStore(view).setup()  # an operator's edit survives a restart
    reloaded = await PolicyStore(view).get("default")
    assert reloaded is not None and reloaded.text == 'path "x" { capabilities = ["read"] }'


async def test_crud(store: PolicyStore, view: InmemStorage) -> None:
    text = 'path "secret/*" { capabilities = ["read"] }'
    await store.put("Ops", text)
    policy = await store.get("ops")
    assert policy is not None and policy.text == text and policy.rules[0].path == "secret/*"
    assert await store.list() == ["default", "ops", "root"]  # bao: sorted, root last
    # A fresh store reads it back from storage.
    fresh = await PolicyStore(view).get("OPS")
    assert fresh is not None and fresh.rules == policy.rules
    await store.delete("ops")
    assert await store.get("ops") is None
    assert await store.list() == ["default", "root"]


async def test_bad_policy_writes_nothing(store: PolicyStore, view: InmemStorage) -> None:
    with pytest.raises(InvalidRequest, match='invalid capability "nope"'):
        await store.put("bad", 'path "a" { capabilities = ["nope"] }')
    assert await view.get(POLICY_PREFIX + "bad") is None
    assert await store.get("bad") is None


async def test_builtin_policies_are_protected(store: PolicyStore) -> None:
    # bao's exact wording for each.
    with pytest.raises(InvalidRequest, match='^cannot update "root" policy$'):
        await store.put("root", 'path "a" { capabilities = ["read"] }')
    with pytest.raises(InvalidRequest, match='^cannot delete "root" policy$'):
        await store.delete("root")
    with pytest.raises(InvalidRequest, match="^cannot delete default policy$"):
        await store.delete("default")
    root = await store.get("root")
    assert root is not None and root.text == ""  # bao reads root back with empty rules


async def test_acl_is_cached_and_invalidated(store: PolicyStore) -> None:
    await store.put("reader", 'path "secret/*" { capabilities = ["read"] }')
    acl = await store.acl(["reader", "default"])
    assert acl.capabilities("secret/x") == ["read"]
    assert await store.acl(["default", "reader"]) is acl  # keyed by the set of names
    await store.put("reader", 'path "secret/*" { capabilities = ["read", "list"] }')
    changed = await store.acl(["reader", "default"])
    assert changed is not acl and changed.capabilities("secret/x") == ["list", "read"]
    await store.delete("reader")
    assert (await store.acl(["reader", "default"])).capabilities("secret/x") == ["deny"]


async def test_acl_root_and_unknown_names(store: PolicyStore) -> None:
    root = await store.acl(["root", "default"])
    assert root.capabilities("anything") == ["root"]
    assert root.check(Operation.DELETE, "sys/audit/file").sudo
    unknown = await store.acl(["missing"])
    assert unknown.capabilities("cubbyhole/x") == ["deny"]


async def test_default_policy_grants_lookup_self_not_secrets(store: PolicyStore) -> None:
    acl = await store.acl(["default"])
    assert acl.check(Operation.READ, "auth/token/lookup-self").allowed
    assert acl.check(Operation.UPDATE, "sys/capabilities-self").allowed
    assert acl.check(Operation.LIST, "cubbyhole/").allowed
    assert not acl.check(Operation.READ, "secret/data/foo").allowed
    assert acl.capabilities("secret/foo") == ["deny"]
    assert not acl.check(Operation.UPDATE, "auth/token/create").allowed


async def test_expired_stanza_forces_recompile(store: PolicyStore) -> None:
    await store.put(
        "temp",
        'path "a" {\n capabilities = ["read"]\n expiration = "2000-01-01T00:00:00Z"\n}\n'
        'path "b" {\n capabilities = ["read"]\n expiration = "2999-01-01T00:00:00Z"\n}',
    )
    acl = await store.acl(["temp"])
    assert acl.capabilities("a") == ["deny"] and acl.capabilities("b") == ["read"]
    assert acl.expires_at == datetime(2999, 1, 1, tzinfo=UTC).timestamp()
    assert not acl.expired() and acl.expired(now=acl.expires_at)


async def test_names_with_slashes_and_malformed_names(store: PolicyStore) -> None:
    await store.put(
        "team/a", 'path "a" { capabilities = ["read"] }'
    )  # bao allows and lists "a/b"-style names
    assert await store.list() == ["default", "team/a", "root"]
    for bad in ("", "../x", "a//b", "a/"):
        with pytest.raises(InvalidRequest, match="invalid policy name"):
            await store.put(bad, 'path "a" { capabilities = ["read"] }')
    acl = await store.acl(["team/a", "../x", ""])  # malformed names on a token are ignored, not errors
    assert acl.capabilities("a") == ["read"]


def test_compiled_default_policy_matches_its_text() -> None:
    from strongroom.core.policy import default_policy

    assert default_policy().rules == parse_policy("default", DEFAULT_POLICY).rules
    assert default_policy().text == DEFAULT_POLICY


def test_dev_start_does_not_load_the_hcl_parser_or_httpx() -> None:
    # Start-up time: httpx (~80 ms) loads only when first needed; the old HCL parser (hcl2 on lark) is gone.
    import subprocess
    import sys

    code = ("import asyncio, sys\nimport strongroom.server\nfrom strongroom.core import Core\n"
            "from strongroom.storage.inmem import InmemStorage\n"
            "asyncio.run(Core(InmemStorage()).dev_bootstrap('root'))\n"
            "print(sorted(m for m in ('hcl2', 'lark', 'httpx') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_capabilities_given_twice_in_one_block_grant_both() -> None:
    # What `bao token capabilities` shows for such a policy on OpenBao: "list, read".
    policy = parse_policy("dup", 'path "a" {\n capabilities = ["read"]\n capabilities = ["list"]\n}\n')
    assert sorted(c for r in policy.rules for c in r.capabilities) == ["list", "read"]
