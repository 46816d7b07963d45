"""Response wrapping end to end (in-process HTTP): wrap, lookup, unwrap, rewrap, wrapping bounds,
and the tamper alarms (reuse of a spent wrapping token, expiry unclaimed)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from strongroom.core import CoreConfig
from strongroom.core.security import SecurityConfig
from strongroom.testing import asgi_client, unsealed_core

WRAP = {"X-Vault-Wrap-TTL": "60s"}


async def _wrap_read(c: httpx.AsyncClient, path: str, ttl: str = "60s") -> dict[str, Any]:
    r = await c.get(path, headers={"X-Vault-Wrap-TTL": ttl})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["data"] is None
    return dict(body["wrap_info"])


async def _events(c: httpx.AsyncClient) -> dict[str, Any]:
    r = await c.get("/v1/sys/security/events")
    assert r.status_code == 200, r.text
    return dict(r.json()["data"])


async def test_wrap_and_unwrap_a_kv_read() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        await c.post("/v1/secret/data/app", json={"data": {"password": "hunter2"}})
        info = await _wrap_read(c, "/v1/secret/data/app")
        assert info["token"].startswith("hvs.") and info["accessor"] and info["ttl"] == 60
        assert info["creation_path"] == "secret/data/app" and info["creation_time"].endswith("Z")
        assert "wrapped_accessor" not in info
        # The wrapping token is a single-use orphan holding only the response-wrapping policy.
        entry = await core.tokens.lookup(info["token"])
        assert entry is not None and entry.policies == ["response-wrapping"] and entry.num_uses == 1
        r = await c.post("/v1/sys/wrapping/unwrap", json={"token": info["token"]})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["data"]["data"] == {"password": "hunter2"}
        assert body["request_id"] and body["wrap_info"] is None
        assert await core.tokens.lookup(info["token"]) is None


async def test_unwrap_with_the_wrapping_token_as_client_token() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        await c.post("/v1/secret/data/app", json={"data": {"k": "v"}})
        info = await _wrap_read(c, "/v1/secret/data/app")
        async with asgi_client(core, info["token"]) as wrapped:
            r = await wrapped.post("/v1/sys/wrapping/unwrap")
            assert r.status_code == 200, r.text
            assert r.json()["data"]["data"] == {"k": "v"}
            again = await wrapped.post("/v1/sys/wrapping/unwrap")
            assert again.status_code == 400
            assert again.json()["errors"] == ["wrapping token is not valid or does not exist"]


async def test_lookup_does_not_spend_the_token() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        info = (await c.post("/v1/sys/wrapping/wrap", json={"a": "b"}, headers=WRAP)).json()["wrap_info"]
        for _ in range(2):
            r = await c.post("/v1/sys/wrapping/lookup", json={"token": info["token"]})
            assert r.status_code == 200, r.text
            assert r.json()["data"] == {"creation_path": "sys/wrapping/wrap", "creation_ttl": 60,
                                        "creation_time": info["creation_time"]}
        # lookup needs no token at all
        async with asgi_client(core) as anon:
            assert (await anon.post("/v1/sys/wrapping/lookup", json={"token": info["token"]})).status_code == 200
        assert (await c.post("/v1/sys/wrapping/unwrap", json={"token": info["token"]})).json()["data"] == {"a": "b"}


async def test_sys_wrapping_wrap_needs_a_wrap_ttl_and_wraps_an_empty_body() -> None:
    """As OpenBao: without X-Vault-Wrap-TTL, 400 (body or none); with it, an empty body wraps {}."""
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        for body in ({"x": 1}, {}, None):
            r = await c.post("/v1/sys/wrapping/wrap", json=body)
            assert (r.status_code, r.json()) == (400, {"errors": ["endpoint requires response wrapping to be used"]})
        for body in ({}, None):
            r = await c.post("/v1/sys/wrapping/wrap", json=body, headers=WRAP)
            assert r.status_code == 200 and r.json()["wrap_info"]["ttl"] == 60
            r = await c.post("/v1/sys/wrapping/unwrap", json={"token": r.json()["wrap_info"]["token"]})
            assert r.status_code == 200 and r.json()["data"] == {}


async def test_rewrap_moves_the_response_and_spends_the_old_token() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        old = (await c.post("/v1/sys/wrapping/wrap", json={"a": "b"}, headers=WRAP)).json()["wrap_info"]
        r = await c.post("/v1/sys/wrapping/rewrap", json={"token": old["token"]})
        assert r.status_code == 200, r.text
        new = r.json()["wrap_info"]
        assert new["token"] != old["token"] and new["ttl"] == 60 and new["creation_path"] == "sys/wrapping/wrap"
        assert (await c.post("/v1/sys/wrapping/unwrap", json={"token": old["token"]})).status_code == 400
        assert (await c.post("/v1/sys/wrapping/unwrap", json={"token": new["token"]})).json()["data"] == {"a": "b"}


async def test_wrapped_token_create_reports_wrapped_accessor_and_unwraps_to_a_working_token() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        r = await c.post("/v1/auth/token/create", json={"policies": ["default"]}, headers=WRAP)
        info = r.json()["wrap_info"]
        assert info["creation_path"] == "auth/token/create" and info["wrapped_accessor"]
        assert r.json()["auth"] is None
        auth = (await c.post("/v1/sys/wrapping/unwrap", json={"token": info["token"]})).json()["auth"]
        assert auth["accessor"] == info["wrapped_accessor"]
        lookup = await c.get("/v1/auth/token/lookup-self", headers={"X-Vault-Token": auth["client_token"]})
        assert lookup.status_code == 200


async def test_bad_tokens_and_non_wrapping_tokens_are_refused_without_alarm() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        for token in ("bogus", root):
            r = await c.post("/v1/sys/wrapping/unwrap", json={"token": token})
            assert r.status_code == 400
        assert (await c.post("/v1/sys/wrapping/unwrap", json={"token": 5})).status_code == 400
        assert (await _events(c))["events"] == []


async def test_reusing_a_spent_wrapping_token_raises_an_alarm() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        info = (await c.post("/v1/sys/wrapping/wrap", json={"a": "b"}, headers=WRAP)).json()["wrap_info"]
        assert (await c.post("/v1/sys/wrapping/unwrap", json={"token": info["token"]})).status_code == 200
        assert (await _events(c))["events"] == []
        # The second party (attacker or the victim arriving late) is refused, and the alarm goes off:
        assert (await c.post("/v1/sys/wrapping/unwrap", json={"token": info["token"]})).status_code == 400
        assert (await c.post("/v1/sys/wrapping/lookup", json={"token": info["token"]})).status_code == 400
        events = await _events(c)
        assert events["counts"] == {"wrapping-token-reuse": 2}
        first = events["events"][0]
        assert first["type"] == "wrapping-token-reuse" and first["accessor"] == info["accessor"]
        assert first["creation_path"] == "sys/wrapping/wrap" and first["spent"] == "unwrapped"
        assert info["token"] not in str(events)  # SECURITY: events never carry the token


async def test_concurrent_unwraps_one_wins_the_other_alarms() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        info = (await c.post("/v1/sys/wrapping/wrap", json={"a": "b"}, headers=WRAP)).json()["wrap_info"]
        results = await asyncio.gather(*(c.post("/v1/sys/wrapping/unwrap", json={"token": info["token"]})
                                         for _ in range(5)))
        assert sorted(r.status_code for r in results) == [200, 400, 400, 400, 400]
        assert (await _events(c))["counts"].get("wrapping-token-reuse", 0) >= 1


async def test_expired_unclaimed_wrapping_token_raises_an_alarm() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        info = (await c.post("/v1/sys/wrapping/wrap", json={"a": "b"}, headers={"X-Vault-Wrap-TTL": "1s"})).json()
        token = info["wrap_info"]["token"]
        await asyncio.sleep(1.1)
        assert (await c.post("/v1/sys/wrapping/unwrap", json={"token": token})).status_code == 400
        await core.tokens.drain()
        events = await _events(c)
        assert events["counts"] == {"wrapping-token-expired-unclaimed": 1}
        assert events["events"][0]["accessor"] == info["wrap_info"]["accessor"]


async def test_revoke_on_tamper_revokes_the_wrapped_token() -> None:
    config = CoreConfig(security=SecurityConfig(revoke_on_tamper=True))
    async with unsealed_core(config=config) as (core, root), asgi_client(core, root) as c:
        info = (await c.post("/v1/auth/token/create", json={}, headers=WRAP)).json()["wrap_info"]
        stolen = (await c.post("/v1/sys/wrapping/unwrap", json={"token": info["token"]})).json()["auth"]
        assert await core.tokens.lookup(stolen["client_token"]) is not None
        # The rightful recipient arrives too late: the alarm revokes what the interceptor took.
        assert (await c.post("/v1/sys/wrapping/unwrap", json={"token": info["token"]})).status_code == 400
        assert await core.tokens.lookup(stolen["client_token"]) is None


async def test_without_revoke_on_tamper_the_wrapped_token_survives() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        info = (await c.post("/v1/auth/token/create", json={}, headers=WRAP)).json()["wrap_info"]
        got = (await c.post("/v1/sys/wrapping/unwrap", json={"token": info["token"]})).json()["auth"]
        await c.post("/v1/sys/wrapping/unwrap", json={"token": info["token"]})
        assert await core.tokens.lookup(got["client_token"]) is not None


async def test_policy_wrapping_bounds() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        await c.put("/v1/sys/policy/wr", json={"policy": 'path "secret/data/*" { capabilities = ["read"]\n'
                                                         'min_wrapping_ttl = "10s"\nmax_wrapping_ttl = "90s" }'})
        await c.post("/v1/secret/data/a", json={"data": {"k": "v"}})
        t = (await c.post("/v1/auth/token/create", json={"policies": ["wr"]})).json()["auth"]["client_token"]
        h = {"X-Vault-Token": t}
        assert (await c.get("/v1/secret/data/a", headers=h)).status_code == 403
        assert (await c.get("/v1/secret/data/a", headers={**h, "X-Vault-Wrap-TTL": "5s"})).status_code == 403
        assert (await c.get("/v1/secret/data/a", headers={**h, "X-Vault-Wrap-TTL": "500s"})).status_code == 403
        assert (await c.get("/v1/secret/data/a", headers={**h, "X-Vault-Wrap-TTL": "60s"})).status_code == 200


async def test_mount_wrapping_bounds() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        r = await c.post("/v1/sys/mounts/secret/tune", json={"max_wrapping_ttl": "2m", "min_wrapping_ttl": "30s"})
        assert r.status_code == 204, r.text
        tune = (await c.get("/v1/sys/mounts/secret/tune")).json()["data"]
        assert tune["max_wrapping_ttl"] == 120 and tune["min_wrapping_ttl"] == 30
        await c.post("/v1/secret/data/a", json={"data": {"k": "v"}}, headers=WRAP)
        assert (await c.get("/v1/secret/data/a")).status_code == 400
        assert (await c.get("/v1/secret/data/a", headers={"X-Vault-Wrap-TTL": "10s"})).status_code == 400
        assert (await c.get("/v1/secret/data/a", headers={"X-Vault-Wrap-TTL": "1h"})).status_code == 400
        assert (await c.get("/v1/secret/data/a", headers=WRAP)).status_code == 200
        bad = await c.post("/v1/sys/mounts/secret/tune", json={"max_wrapping_ttl": "10s", "min_wrapping_ttl": "30s"})
        assert bad.status_code == 400


async def test_legacy_cubbyhole_response_read() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        info = (await c.post("/v1/sys/wrapping/wrap", json={"a": "b"}, headers=WRAP)).json()["wrap_info"]
        r = await c.get("/v1/cubbyhole/response", headers={"X-Vault-Token": info["token"]})
        assert r.status_code == 200
        assert '"a":"b"' in r.json()["data"]["response"]
        assert (await c.put("/v1/sys/policy/response-wrapping", json={"policy": ""})).status_code == 400
