"""TokenEntry shapes (lookup data, auth, storage JSON) and helpers, against what OpenBao shows."""

from __future__ import annotations

import pytest

from strongroom.core.tokens.entry import (
    TokenEntry,
    display_name_for,
    normalize_cidrs,
    rfc3339,
    sanitize_policies,
)
from strongroom.errors import InvalidRequest

NOW = 1_795_360_461.728299


def entry(**kw: object) -> TokenEntry:
    base: dict[str, object] = {
        "id": "ab" * 32, "accessor": "GkVfyBGmfyic9z0oybSfrPq2", "parent": "cd" * 32, "policies": ["default", "web"],
        "path": "auth/token/create", "display_name": "token-My-App", "creation_time": int(NOW), "ttl": 2764800,
        "expire_time": NOW + 2764800, "issue_time": NOW}
    base.update(kw)
    return TokenEntry(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("given", "shown"), [
    ("", "token"), ("My App!", "token-My-App"), ("token", "token-token"), ("a  b", "token-a--b"),
    ("--x!!", "token---x-"), ("x_y.z", "token-x-y-z"), ("Ünï", "token--n"), ("A-B-", "token-A-B"),
])
def test_display_name_like_openbao(given: str, shown: str) -> None:
    assert display_name_for(given) == shown


def test_sanitize_policies() -> None:
    assert sanitize_policies(["web", "stage", "web"], add_default=True) == ["default", "stage", "web"]
    assert sanitize_policies(["default", "web"], add_default=False, no_default=True) == ["web"]
    assert sanitize_policies([""], add_default=True) == ["default"]
    assert sanitize_policies(["root", "web"], add_default=True) == ["root"]


def test_lookup_data_has_openbaos_keys_and_values() -> None:
    data = entry().to_lookup_data(NOW + 1, "hvs.raw")
    assert list(data) == sorted(data)
    assert set(data) == {"accessor", "creation_time", "creation_ttl", "display_name", "entity_id", "expire_time",
                         "explicit_max_ttl", "id", "issue_time", "meta", "num_uses", "orphan", "path", "policies",
                         "renewable", "ttl", "type"}
    assert data["id"] == "hvs.raw"
    assert data["ttl"] == 2764799 and data["creation_ttl"] == 2764800
    assert data["creation_time"] == 1795360461
    assert data["expire_time"] == "2026-12-24T15:14:21.728299Z"
    assert data["issue_time"] == "2026-11-22T15:14:21.728299Z"
    assert data["meta"] is None and data["orphan"] is False and data["type"] == "service"


def test_lookup_data_optional_keys() -> None:
    e = entry(parent="", period=3600, role="r2", bound_cidrs=["127.0.0.1"], meta={"a": "b"},
              last_renewal=NOW + 10)
    data = e.to_lookup_data(NOW, "")
    assert data["orphan"] is True and data["period"] == 3600 and data["role"] == "r2"
    assert data["bound_cidrs"] == ["127.0.0.1"] and data["meta"] == {"a": "b"}
    assert data["last_renewal_time"] == int(NOW + 10)
    assert data["last_renewal"].startswith("2026-11-22T15:14:31")
    never = entry(expire_time=0.0, ttl=0).to_lookup_data(NOW, "")
    assert never["expire_time"] is None and never["ttl"] == 0


def test_rfc3339_trims_trailing_zeros() -> None:
    assert rfc3339(1_795_360_423.5) == "2026-11-22T15:13:43.5Z"
    assert rfc3339(1_795_360_423.0) == "2026-11-22T15:13:43Z"


def test_to_auth() -> None:
    auth = entry(meta={"user": "armon"}, num_uses=3).to_auth("hvs.raw")
    assert auth.client_token == "hvs.raw" and auth.accessor == "GkVfyBGmfyic9z0oybSfrPq2"
    assert auth.policies == auth.token_policies == ["default", "web"]
    assert auth.lease_duration == 2764800 and auth.renewable and auth.num_uses == 3
    assert auth.token_type == "service" and auth.orphan is False and auth.metadata == {"user": "armon"}
    assert entry().to_auth("", lease_duration=60).lease_duration == 60


def test_storage_round_trip() -> None:
    e = entry(meta={"k": "v"}, bound_cidrs=["10.0.0.0/8"], num_uses=-1, period=5, role="r", last_renewal=NOW)
    assert TokenEntry.from_json(e.to_json()) == e


def test_bound_cidrs() -> None:
    assert normalize_cidrs(["127.0.0.1/32", "10.1.2.3/8"]) == ["127.0.0.1", "10.0.0.0/8"]
    with pytest.raises(InvalidRequest):
        normalize_cidrs(["nope"])
    e = entry(bound_cidrs=["127.0.0.1", "10.0.0.0/8"])
    assert e.allows_address("10.9.9.9") and e.allows_address("127.0.0.1")
    assert not e.allows_address("192.168.0.1") and not e.allows_address("garbage")
    assert entry().allows_address("192.168.0.1")


def test_random_base62_is_uniform_over_exactly_the_62_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    from strongroom.core.tokens import entry as entry_module

    assert len(entry_module.random_base62()) == 24 and len(entry_module.random_base62(100)) == 100
    # Every byte value once: the 248 accepted ones map 4 times onto each character, the rest are dropped.
    monkeypatch.setattr(entry_module.secrets, "token_bytes", lambda n: bytes(range(256)))
    drawn = entry_module.random_base62(248)
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    assert sorted(set(drawn)) == sorted(alphabet)
    assert all(drawn.count(c) == 4 for c in alphabet)
