"""TokenParams: parsing token_* fields (and legacy names), showing them, filling an Auth."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.errors import InvalidRequest
from strongroom.framework import FieldData, TokenParams, addr_allowed, cidrs_subset, parse_cidrs, token_fields
from strongroom.logical import Auth

SCHEMA = token_fields(legacy=("policies", "ttl", "max_ttl", "period", "bound_cidrs", "num_uses"))


def updated(p: TokenParams, **raw: Any) -> TokenParams:
    p.update(FieldData(raw, SCHEMA))
    return p


def test_update_merges_and_validates_whole() -> None:
    p = updated(TokenParams(), token_policies="a, b,a", token_ttl="1h", token_max_ttl="2h", token_type="service")
    assert p.token_policies == ["a", "b"] and p.token_ttl == 3600 and p.token_max_ttl == 7200
    updated(p, token_num_uses=4)
    assert p.token_ttl == 3600 and p.token_num_uses == 4
    with pytest.raises(InvalidRequest, match="cannot be greater"):
        updated(p, token_ttl="3h")
    assert p.token_ttl == 3600  # a refused update changes nothing
    for bad in ({"token_type": "batch"}, {"token_type": "x"}, {"token_num_uses": -1},
                {"token_bound_cidrs": "300.1.1.1/8"},
                {"token_strictly_bind_ip": True, "token_bound_cidrs": "10.0.0.0/8"}):
        with pytest.raises(InvalidRequest):
            updated(TokenParams(), **bad)


def test_legacy_names() -> None:
    p = updated(TokenParams(), policies="x", ttl=60, period="1m", num_uses=2, bound_cidrs="10.0.0.1/32")
    shown = p.to_response()
    assert shown["policies"] == shown["token_policies"] == ["x"]
    assert shown["ttl"] == shown["token_ttl"] == 60 and shown["period"] == shown["token_period"] == 60
    assert shown["num_uses"] == shown["token_num_uses"] == 2
    assert shown["bound_cidrs"] == shown["token_bound_cidrs"] == ["10.0.0.1"]
    updated(p, token_policies="y", policies="z")  # the new name wins, the old mirrors it
    assert p.token_policies == ["y"] and p.to_response()["policies"] == ["y"]
    updated(p, token_ttl=30)  # the new name alone retires the old one
    assert p.token_ttl == 30 and "ttl" not in p.to_response()
    assert TokenParams.from_json(p.to_json()) == p


def test_fill_auth() -> None:
    p = updated(TokenParams(), token_policies="a", token_ttl=10, token_max_ttl=20, token_period=5,
                token_explicit_max_ttl=30, token_num_uses=3, token_no_default_policy=True,
                token_bound_cidrs="10.0.0.0/8")
    auth = p.fill_auth(Auth(), "10.1.2.3")
    assert (auth.policies, auth.ttl, auth.max_ttl, auth.period, auth.explicit_max_ttl, auth.num_uses) == (
        ["a"], 10, 20, 5, 30, 3)
    assert auth.no_default_policy and auth.bound_cidrs == ["10.0.0.0/8"] and auth.renewable
    strict = updated(TokenParams(), token_strictly_bind_ip=True).fill_auth(Auth(), "192.0.2.7")
    assert strict.bound_cidrs == ["192.0.2.7"]


def test_cidr_helpers() -> None:
    assert parse_cidrs(["10.0.0.1/32", " 10.0.0.0/8", ""]) == ["10.0.0.1", "10.0.0.0/8"]
    assert parse_cidrs(["10.0.0.1/32", "10.0.0.2"], bare_hosts=False) == ["10.0.0.1/32", "10.0.0.2/32"]
    assert addr_allowed("10.1.1.1", ["10.0.0.0/8"]) and addr_allowed("1.2.3.4", [])
    assert not addr_allowed("11.1.1.1", ["10.0.0.0/8"]) and not addr_allowed("garbage", ["10.0.0.0/8"])
    assert cidrs_subset(["10.1.0.0/16"], ["10.0.0.0/8"]) and cidrs_subset(["10.1.0.0/16"], [])
    assert not cidrs_subset(["192.168.0.0/16"], ["10.0.0.0/8"])
    assert not cidrs_subset(["::1/128"], ["10.0.0.0/8"])
