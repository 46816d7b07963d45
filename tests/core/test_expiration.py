"""Leases end to end (in-process HTTP, with a real lease-generating engine from leasing_backend.py):
registration, sys/leases/* and the old aliases, expiry in the background, retries and irrevocable
leases, tokens' leases, revoke-by-token, tidy, and the wrapping alarm on expiry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from tests.core.leasing_backend import Ledger

from strongroom.core import Core, CoreConfig
from strongroom.core.expiration import SchedulerConfig
from strongroom.core.security import SecurityConfig
from strongroom.engines import SECRETS_ENGINES
from strongroom.testing import asgi_client, unsealed_core

FAST = SchedulerConfig(retry_base=0.05, retry_max=0.2)


@pytest.fixture
def ledger(monkeypatch: pytest.MonkeyPatch) -> Ledger:
    led = Ledger()
    monkeypatch.setitem(SECRETS_ENGINES, "leasing", led.factory)
    return led


@asynccontextmanager
async def leasing_core(config: CoreConfig | None = None) -> AsyncIterator[tuple[Core, httpx.AsyncClient]]:
    async with unsealed_core(config=config or CoreConfig(expiration=FAST)) as (core, root), \
            asgi_client(core, root) as c:
        r = await c.post("/v1/sys/mounts/db", json={"type": "leasing", "config": {"max_lease_ttl": "2h"}})
        assert r.status_code == 204, r.text
        yield core, c


async def issue(c: httpx.AsyncClient, query: str = "ttl=1h") -> dict[str, Any]:
    r = await c.get(f"/v1/db/creds/ro?{query}")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def eventually(cond: Callable[[], bool], timeout: float = 15.0) -> None:
    """Wait (polling) until ``cond()``; fails the test if it never holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        assert loop.time() < deadline, "condition never became true"
        await asyncio.sleep(0.02)


async def lookup(c: httpx.AsyncClient, lease_id: str) -> httpx.Response:
    return await c.post("/v1/sys/leases/lookup", json={"lease_id": lease_id})


# -- registration and lookup ----------------------------------------------------------------------
async def test_a_secret_gets_a_lease_in_vaults_form(ledger: Ledger) -> None:
    async with leasing_core() as (_, c):
        body = await issue(c)
        prefix, _, rand = body["lease_id"].rpartition("/")
        assert prefix == "db/creds/ro" and len(rand) == 24 and rand.isalnum()
        assert body["lease_duration"] == 3600 and body["renewable"] is True
        r = await lookup(c, body["lease_id"])
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        assert set(data) == {"id", "issue_time", "expire_time", "last_renewal", "renewable", "ttl", "path"}
        assert data["id"] == body["lease_id"] and data["path"] == "db/creds/ro"
        assert data["last_renewal"] is None and data["renewable"] is True
        assert 3590 <= data["ttl"] <= 3600
        assert data["issue_time"].endswith("Z") and data["expire_time"] > data["issue_time"]


async def test_ttl_defaults_to_the_mount_and_is_capped_by_its_max(ledger: Ledger) -> None:
    async with leasing_core() as (_, c):
        await c.post("/v1/sys/mounts/db/tune", json={"default_lease_ttl": "10m"})
        assert (await issue(c, ""))["lease_duration"] == 600
        capped = await issue(c, "ttl=10h")
        assert capped["lease_duration"] == 7200
        assert "capped" in capped["warnings"][0]
        assert (await issue(c, "ttl=1h&max_ttl=30m"))["lease_duration"] == 1800


async def test_lookup_errors(ledger: Ledger) -> None:
    async with leasing_core() as (_, c):
        r = await lookup(c, "db/creds/ro/nope")
        assert (r.status_code, r.json()["errors"]) == (400, ["invalid lease"])
        r = await c.post("/v1/sys/leases/lookup", json={})
        assert (r.status_code, r.json()["errors"]) == (400, ["lease_id must be specified"])


async def test_list_leases_needs_sudo_and_404s_when_empty(ledger: Ledger) -> None:
    async with leasing_core() as (core, c):
        ids = {(await issue(c))["lease_id"].rsplit("/", 1)[1] for _ in range(3)}
        r = await c.request("LIST", "/v1/sys/leases/lookup/db/creds/ro/")
        assert r.status_code == 200 and set(r.json()["data"]["keys"]) == ids
        r = await c.request("LIST", "/v1/sys/leases/lookup/db/")
        assert r.json()["data"]["keys"] == ["creds/"]
        assert (await c.request("LIST", "/v1/sys/leases/lookup/nothing/")).status_code == 404
        token = (await c.post("/v1/auth/token/create", json={"policies": ["default"]})).json()["auth"]["client_token"]
        async with asgi_client(core, token) as user:
            assert (await user.request("LIST", "/v1/sys/leases/lookup/db/creds/ro/")).status_code == 403
            # ... but any token may look up a lease whose id it knows (the default policy).
            assert (await lookup(user, "db/creds/ro/" + ids.pop())).status_code == 200


# -- renew ----------------------------------------------------------------------------------------
async def test_renew_asks_the_backend_and_is_capped_by_the_max_ttl_from_issue(ledger: Ledger) -> None:
    async with leasing_core() as (_, c):
        lease_id = (await issue(c, "ttl=5m"))["lease_id"]
        r = await c.put("/v1/sys/leases/renew", json={"lease_id": lease_id, "increment": "30m"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["lease_id"], body["lease_duration"], body["renewable"]) == (lease_id, 1800, True)
        assert ledger.renewed == ["ro-0"] and ledger.increments == [1800]
        looked = (await lookup(c, lease_id)).json()["data"]
        assert looked["last_renewal"] is not None and 1790 <= looked["ttl"] <= 1800
        # The mount's max is 2h from issue: a 10h increment is cut to what is left of it.
        r = await c.put("/v1/sys/leases/renew", json={"lease_id": lease_id, "increment": "10h"})
        assert 7190 <= r.json()["lease_duration"] <= 7200
        assert "capped" in r.json()["warnings"][0]
        # The old alias, with the lease id in the URL.
        r = await c.put(f"/v1/sys/renew/{lease_id}", json={"increment": 60})
        assert r.status_code == 200 and r.json()["lease_duration"] == 60


async def test_renew_refusals(ledger: Ledger) -> None:
    async with leasing_core() as (_, c):
        fixed = (await issue(c, "ttl=1h&renewable=false"))["lease_id"]
        r = await c.put("/v1/sys/leases/renew", json={"lease_id": fixed})
        assert (r.status_code, r.json()["errors"]) == (400, ["lease is not renewable"])
        r = await c.put("/v1/sys/leases/renew", json={"lease_id": "db/creds/ro/gone"})
        assert (r.status_code, r.json()["errors"]) == (400, ["lease not found"])
        assert ledger.renewed == []


async def test_renewing_the_response_does_not_register_a_new_lease(ledger: Ledger) -> None:
    async with leasing_core() as (_, c):
        lease_id = (await issue(c))["lease_id"]
        await c.put("/v1/sys/leases/renew", json={"lease_id": lease_id})
        assert (await c.request("LIST", "/v1/sys/leases/lookup/sys/")).status_code == 404


# -- revoke ---------------------------------------------------------------------------------------
async def test_revoke_sync_lazy_and_aliases(ledger: Ledger) -> None:
    async with leasing_core() as (core, c):
        a, b, d = [(await issue(c))["lease_id"] for _ in range(3)]
        r = await c.put("/v1/sys/leases/revoke", json={"lease_id": a})
        assert r.status_code == 204 and ledger.revoked == ["ro-0"]
        assert (await lookup(c, a)).status_code == 400
        r = await c.put("/v1/sys/leases/revoke", json={"lease_id": b, "sync": False})
        assert (r.status_code, r.content) == (202, b"")
        await eventually(lambda: "ro-1" in ledger.revoked)
        assert (await c.put(f"/v1/sys/revoke/{d}")).status_code == 204
        assert ledger.revoked == ["ro-0", "ro-1", "ro-2"]
        # An unknown lease revokes silently, as in Vault; no lease id at all is a 400.
        assert (await c.put("/v1/sys/leases/revoke", json={"lease_id": "db/creds/ro/x"})).status_code == 204
        assert (await c.put("/v1/sys/leases/revoke", json={})).status_code == 400
        await core.expiration.wait_idle()


async def test_a_failing_sync_revoke_is_an_error_and_keeps_the_lease(ledger: Ledger) -> None:
    async with leasing_core() as (_, c):
        lease_id = (await issue(c))["lease_id"]
        ledger.failing["ro-0"] = 1
        r = await c.put("/v1/sys/leases/revoke", json={"lease_id": lease_id})
        assert r.status_code == 500
        assert (await lookup(c, lease_id)).status_code == 200
        assert (await c.put("/v1/sys/leases/revoke", json={"lease_id": lease_id})).status_code == 204
        assert ledger.revoked == ["ro-0"]


async def test_revoke_prefix_and_force_need_sudo(ledger: Ledger) -> None:
    async with leasing_core() as (core, c):
        ids = [(await issue(c))["lease_id"] for _ in range(3)]
        await c.put("/v1/sys/policies/acl/lease-admin", json={"policy": (
            'path "sys/leases/revoke-prefix/*" { capabilities = ["update"] }\n'
            'path "sys/leases/revoke-force/*" { capabilities = ["update"] }\n')})
        token = (await c.post("/v1/auth/token/create", json={"policies": ["lease-admin"]})).json()["auth"]["client_token"]
        async with asgi_client(core, token) as user:
            assert (await user.put("/v1/sys/leases/revoke-prefix/db/creds")).status_code == 403
            assert (await user.put("/v1/sys/leases/revoke-force/db/creds")).status_code == 403
        ledger.failing["ro-2"] = 100
        r = await c.put("/v1/sys/leases/revoke-prefix/db/creds")
        assert r.status_code == 500  # stops at the failure, as Vault's sync revoke-prefix does
        assert (await lookup(c, ids[2])).status_code == 200
        # revoke-force drops it even though the engine keeps failing.
        assert (await c.put("/v1/sys/revoke-force/db/creds")).status_code == 204
        assert [(await lookup(c, i)).status_code for i in ids] == [400, 400, 400]
        assert sorted(ledger.revoked) == ["ro-0", "ro-1"]


async def test_revoke_prefix_revokes_many_leases_at_once(ledger: Ledger) -> None:
    """Each revocation waits on its backend (a DROP ROLE): revoke-prefix runs them side by side
    (at most REVOKE_PREFIX_WORKERS), not one round trip after another."""
    async with leasing_core() as (_core, c):
        ids = [(await issue(c))["lease_id"] for _ in range(40)]
        ledger.revoke_delay = 0.02
        assert (await c.put("/v1/sys/leases/revoke-prefix/db/creds")).status_code == 204
        assert sorted(ledger.revoked) == sorted(f"ro-{i}" for i in range(40))
        assert 1 < ledger.most_in_flight <= 32  # side by side, bounded by REVOKE_PREFIX_WORKERS
        assert [(await lookup(c, i)).status_code for i in ids[:3]] == [400, 400, 400]


async def test_revoke_prefix_queued_and_exact_id(ledger: Ledger) -> None:
    async with leasing_core() as (_core, c):
        ids = [(await issue(c))["lease_id"] for _ in range(2)]
        assert (await c.put(f"/v1/sys/leases/revoke-prefix/{ids[0]}")).status_code == 204
        assert ledger.revoked == ["ro-0"]
        r = await c.put("/v1/sys/leases/revoke-prefix/db", json={"sync": False})
        assert r.status_code == 202
        await eventually(lambda: "ro-1" in ledger.revoked)


# -- expiry ---------------------------------------------------------------------------------------
async def test_leases_are_revoked_at_expiry_without_any_request(ledger: Ledger) -> None:
    async with leasing_core() as (_, c):
        short = (await issue(c, "ttl=1s"))["lease_id"]
        await issue(c, "ttl=1h")
        await eventually(lambda: ledger.revoked == ["ro-0"])
        assert (await lookup(c, short)).status_code == 400


async def test_a_failing_revocation_is_retried_and_never_delays_the_others(ledger: Ledger) -> None:
    async with leasing_core() as (_core, c):
        ledger.failing["ro-0"] = 3
        await issue(c, "ttl=1s")
        await issue(c, "ttl=1s")
        await eventually(lambda: "ro-1" in ledger.revoked)
        await eventually(lambda: "ro-0" in ledger.revoked)
        assert ledger.attempts.count("ro-0") == 4


async def test_after_six_failures_the_lease_is_irrevocable_until_forced(ledger: Ledger) -> None:
    async with leasing_core() as (core, c):
        ledger.failing["ro-0"] = 1000
        lease_id = (await issue(c, "ttl=1s"))["lease_id"]
        await eventually(lambda: ledger.attempts.count("ro-0") == 6)
        await core.expiration.wait_idle()
        data = (await lookup(c, lease_id)).json()["data"]
        assert "cannot reach the database" in data["revoke_error"] and data["renewable"] is False
        r = await c.put("/v1/sys/leases/renew", json={"lease_id": lease_id})
        assert r.json()["errors"] == ["lease is expired and has failed previous revocation attempts"]
        await asyncio.sleep(0.5)
        assert ledger.attempts.count("ro-0") == 6  # no more retries
        assert (await c.put("/v1/sys/leases/revoke-force/db")).status_code == 204
        assert (await lookup(c, lease_id)).status_code == 400


# -- tokens ---------------------------------------------------------------------------------------
async def test_revoking_a_token_revokes_its_leases(ledger: Ledger) -> None:
    async with leasing_core() as (core, c):
        token = (await c.post("/v1/auth/token/create", json={"policies": ["root"]})).json()["auth"]["client_token"]
        async with asgi_client(core, token) as user:
            mine = [(await issue(user))["lease_id"] for _ in range(2)]
        other = (await issue(c))["lease_id"]
        assert (await c.post("/v1/auth/token/revoke", json={"token": token})).status_code == 204
        await eventually(lambda: sorted(ledger.revoked) == ["ro-0", "ro-1"])
        assert [(await lookup(c, i)).status_code for i in [*mine, other]] == [400, 400, 200]


async def test_a_token_lease_follows_the_token(ledger: Ledger) -> None:
    async with leasing_core() as (core, c):
        auth = (await c.post("/v1/auth/token/create", json={"ttl": "1h"})).json()["auth"]
        keys = (await c.request("LIST", "/v1/sys/leases/lookup/auth/token/create/")).json()["data"]["keys"]
        assert len(keys) == 1 and keys[0].startswith("h")
        lease_id = "auth/token/create/" + keys[0]
        entry = await core.tokens.lookup(auth["client_token"])
        assert entry is not None
        # SECURITY: the lease id reveals neither the token nor the token store's hash of it.
        assert auth["client_token"] not in lease_id and entry.id not in lease_id
        data = (await lookup(c, lease_id)).json()["data"]
        assert data["renewable"] is True and data["last_renewal"] is None and data["path"] == "auth/token/create"
        r = await c.put("/v1/sys/leases/renew", json={"lease_id": lease_id})
        assert r.json()["errors"] == ["tokens cannot be renewed through this endpoint"]
        await c.post("/v1/auth/token/renew", json={"token": auth["client_token"], "increment": "2h"})
        data = (await lookup(c, lease_id)).json()["data"]
        assert data["last_renewal"] is not None and data["ttl"] > 3600
        # Revoking the lease revokes the token.
        assert (await c.put("/v1/sys/leases/revoke", json={"lease_id": lease_id})).status_code == 204
        assert await core.tokens.lookup(auth["client_token"]) is None
        assert (await lookup(c, lease_id)).status_code == 400


async def test_an_expired_token_is_revoked_on_time_with_its_leases(ledger: Ledger) -> None:
    async with leasing_core() as (core, c):
        token = (await c.post("/v1/auth/token/create", json={"ttl": "1s", "policies": ["root"]})).json()["auth"]
        async with asgi_client(core, token["client_token"]) as user:
            await issue(user, "ttl=1h")
        await eventually(lambda: ledger.revoked == ["ro-0"])
        assert (await c.request("LIST", "/v1/sys/leases/lookup/auth/token/create/")).status_code == 404


async def test_an_unclaimed_wrapping_token_raises_its_alarm_at_expiry_untouched(ledger: Ledger) -> None:
    async with leasing_core() as (core, c):
        r = await c.post("/v1/sys/wrapping/wrap", json={"a": "b"}, headers={"X-Vault-Wrap-TTL": "1s"})
        accessor = r.json()["wrap_info"]["accessor"]
        # No request touches the wrapping token again: the expiry timer alone revokes it.
        found: list[dict[str, Any]] = []

        async def alarm() -> bool:
            found[:] = [e for e in await core.security.list() if e["type"] == "wrapping-token-expired-unclaimed"]
            return bool(found)

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while not await alarm():
            assert loop.time() < deadline
            await asyncio.sleep(0.05)
        assert found[0]["accessor"] == accessor


async def test_revoke_on_tamper_revokes_a_wrapped_lease(ledger: Ledger) -> None:
    config = CoreConfig(security=SecurityConfig(revoke_on_tamper=True), expiration=FAST)
    async with leasing_core(config) as (_, c):
        r = await c.get("/v1/db/creds/ro?ttl=1h", headers={"X-Vault-Wrap-TTL": "60s"})
        wrapping_token = r.json()["wrap_info"]["token"]
        stolen = await c.post("/v1/sys/wrapping/unwrap", json={"token": wrapping_token})
        lease_id = stolen.json()["lease_id"]
        assert lease_id.startswith("db/creds/ro/")
        assert (await c.post("/v1/sys/wrapping/unwrap", json={"token": wrapping_token})).status_code == 400
        assert ledger.revoked == ["ro-0"]
        assert (await lookup(c, lease_id)).status_code == 400


# -- tidy and scale -------------------------------------------------------------------------------
async def test_tidy_revokes_leases_of_vanished_tokens(ledger: Ledger) -> None:
    async with leasing_core() as (core, c):
        token = (await c.post("/v1/auth/token/create", json={"policies": ["root"]})).json()["auth"]["client_token"]
        async with asgi_client(core, token) as user:
            lease_id = (await issue(user))["lease_id"]
        entry = await core.tokens.lookup(token)
        assert entry is not None
        # The token's record vanishes without its revoke hooks running (as after a crash).
        await core.barrier.delete(f"sys/token/id/{entry.id}")
        core.tokens._cache.clear()
        r = await c.put("/v1/sys/leases/tidy")
        assert r.status_code == 202 and r.json()["warnings"]
        await eventually(lambda: ledger.revoked == ["ro-0"])
        assert (await lookup(c, lease_id)).status_code == 400


async def test_no_task_per_lease(ledger: Ledger) -> None:
    async with leasing_core() as (_, c):
        before = len(asyncio.all_tasks())
        for _ in range(200):
            await issue(c, "ttl=1h")
        assert len(asyncio.all_tasks()) == before


# -- unmount and quarantine -----------------------------------------------------------------------
async def test_disabling_a_mount_revokes_its_leases_first(ledger: Ledger) -> None:
    async with leasing_core() as (_, c):
        lease = (await issue(c))["lease_id"]
        assert (await c.delete("/v1/sys/mounts/db")).status_code == 204
        assert ledger.revoked == ["ro-0"]
        assert (await lookup(c, lease)).status_code == 400


async def test_a_failing_revocation_aborts_the_unmount(ledger: Ledger) -> None:
    async with leasing_core() as (_, c):
        ledger.failing["ro-0"] = 1
        lease = (await issue(c))["lease_id"]
        r = await c.delete("/v1/sys/mounts/db")
        assert r.status_code == 400 and "stays mounted" in r.json()["errors"][0]
        assert "db/" in (await c.get("/v1/sys/mounts")).json()["data"]  # still mounted, still usable
        assert (await lookup(c, lease)).status_code == 200
        assert (await c.delete("/v1/sys/mounts/db")).status_code == 204  # the second attempt succeeds
        assert ledger.revoked == ["ro-0"]


async def test_quarantine_revokes_the_leases_of_the_tokens_it_revokes(ledger: Ledger) -> None:
    async with leasing_core() as (core, c):
        suspect = (await c.post("/v1/auth/token/create", json={"policies": ["root"]})).json()["auth"]
        async with asgi_client(core, suspect["client_token"]) as user:
            child = (await user.post("/v1/auth/token/create", json={"policies": ["root"]})).json()["auth"]
            await issue(user)
        async with asgi_client(core, child["client_token"]) as grandchild:
            await issue(grandchild)
        bystander = (await issue(c))["lease_id"]
        r = await c.post("/v1/sys/security/quarantine", json={"accessor": suspect["accessor"]})
        assert r.status_code == 200, r.text
        await eventually(lambda: sorted(ledger.revoked) == ["ro-0", "ro-1"])
        assert (await lookup(c, bystander)).status_code == 200


async def test_a_lease_that_runs_out_publishes_a_lease_expired_event(ledger: Ledger) -> None:
    """Beyond Vault: ``lease/expired`` on the change-event bus once an expired lease is revoked
    (for the agent and subscribers who may read its path); an explicit revoke publishes none."""
    async with leasing_core() as (core, c):
        sub = core.events.subscribe("lease/*")
        revoked = (await issue(c))["lease_id"]
        assert (await c.put("/v1/sys/leases/revoke", json={"lease_id": revoked})).status_code == 204
        lease_id = (await issue(c, "ttl=1s"))["lease_id"]
        event = await asyncio.wait_for(sub.next(), 15)
        assert event is not None and event.event_type == "lease/expired"
        assert event.metadata == {"lease_id": lease_id, "path": lease_id.rsplit("/", 1)[0], "kind": "secret",
                                  "operation": "expired"}
        assert event.data_path == "db/creds/ro" and event.plugin_info["mount_path"] == "db/"
        assert event.cloudevent()["data"]["event_type"] == "lease/expired"
        core.events.unsubscribe(sub)
