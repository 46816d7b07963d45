"""sys/metrics: Vault's JSON summary and Prometheus text, what they count, who may read them."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from strongroom.core import CoreConfig
from strongroom.core.audit.table import AuditConfig, DeclaredDevice
from strongroom.core.metrics import TelemetryConfig
from strongroom.errors import InvalidRequest
from strongroom.storage.inmem import InmemStorage
from strongroom.telemetry import TimedStorage
from strongroom.testing import app_client, unsealed_core


def _by_name(items: list[dict[str, object]]) -> dict[str, list[dict[str, object]]]:
    out: dict[str, list[dict[str, object]]] = {}
    for item in items:
        out.setdefault(str(item["Name"]), []).append(item)
    return out


async def test_json_counts_requests_per_mount_and_operation() -> None:
    config = CoreConfig(telemetry=TelemetryConfig(disable_hostname=True))
    async with unsealed_core(config=config) as (core, root), app_client(core, root) as c:
        for i in range(3):
            assert (await c.post(f"/v1/secret/data/k{i}", json={"data": {"v": i}})).status_code == 200
        assert (await c.get("/v1/secret/data/k0")).status_code == 200
        assert (await c.post("/v1/auth/token/create", json={"ttl": "1h"})).status_code == 200
        r = await c.get("/v1/sys/metrics")
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        body = r.json()
        assert set(body) == {"Timestamp", "Gauges", "Points", "Counters", "Samples"}
        assert body["Timestamp"].endswith(" +0000 UTC")
        samples = _by_name(body["Samples"])
        assert samples["vault.route.create.secret-"][0]["Count"] == 3  # first writes are creates
        assert samples["vault.route.read.secret-"][0]["Count"] == 1
        assert samples["vault.route.update.auth-token-"][0]["Count"] == 1
        handle = samples["vault.core.handle_request"][0]
        assert handle["Count"] >= 5 and handle["Min"] <= handle["Mean"] <= handle["Max"]  # type: ignore[operator]
        gauges = _by_name(body["Gauges"])
        assert gauges["vault.core.unsealed"][0]["Value"] == 1 and gauges["vault.core.active"][0]["Value"] == 1
        # The token's lease and the leases by mount, counted from lease ids.
        assert gauges["vault.token.count.by_auth"][0]["Labels"] == {"auth_method": "token", "mount_point": "auth/token/"}
        assert gauges["vault.token.count.by_auth"][0]["Value"] == 1
        assert gauges["vault.expire.num_leases"][0]["Value"] == 1
        counters = _by_name(body["Counters"])
        assert counters["vault.audit.log_request_failure"][0]["Count"] == 0


async def test_prometheus_text_and_accept_header() -> None:
    config = CoreConfig(telemetry=TelemetryConfig(disable_hostname=True))
    async with unsealed_core(config=config) as (core, root), app_client(core, root) as c:
        assert (await c.get("/v1/secret/data/nope")).status_code == 404
        r = await c.get("/v1/sys/metrics", params={"format": "prometheus"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
        text = r.text
        assert "# TYPE vault_core_handle_request summary" in text
        assert "vault_route_read_secret__count 1" in text
        assert '# TYPE vault_core_unsealed gauge' in text and 'vault_core_unsealed{cluster="' in text
        assert "# TYPE vault_audit_log_request_failure counter" in text
        r2 = await c.get("/v1/sys/metrics", headers={"Accept": "application/openmetrics-text"})
        assert r2.headers["content-type"].startswith("text/plain")
        bad = await c.get("/v1/sys/metrics", params={"format": "xml"})
        assert bad.status_code == 400 and 'metric response format "xml" unknown' in bad.json()["errors"][0]


async def test_prometheus_off_with_zero_retention_and_hostname_in_gauge_names() -> None:
    config = CoreConfig(telemetry=TelemetryConfig(prometheus_retention_time=0))
    async with unsealed_core(config=config) as (core, root), app_client(core, root) as c:
        r = await c.get("/v1/sys/metrics", params={"format": "prometheus"})
        assert r.status_code == 400 and "prometheus is not enabled" in r.json()["errors"][0]
        names = {g["Name"] for g in (await c.get("/v1/sys/metrics")).json()["Gauges"]}
        assert f"vault.{core.metrics.hostname}.core.unsealed" in names  # go-metrics: hostname unless disabled


async def test_metrics_need_a_token_unless_the_listener_allows() -> None:
    async with unsealed_core() as (core, root):
        async with app_client(core) as anon:
            assert (await anon.get("/v1/sys/metrics")).status_code == 403
        async with app_client(core, root) as c:
            await c.post("/v1/sys/policy/nometrics", json={"policy": 'path "secret/*" { capabilities = ["read"] }'})
            tok = (await c.post("/v1/auth/token/create", json={"policies": ["nometrics"]})).json()["auth"]["client_token"]
        async with app_client(core, tok) as weak:
            assert (await weak.get("/v1/sys/metrics")).status_code == 403
        async with app_client(core, unauthenticated_metrics=True) as anon:
            r = await anon.get("/v1/sys/metrics", params={"format": "prometheus"})
            assert r.status_code == 200 and "_core_unsealed{" in r.text


async def test_audit_failures_are_counted(tmp_path: object) -> None:
    import pathlib

    log = pathlib.Path(str(tmp_path)) / "audit.log"
    audit = AuditConfig(devices=(DeclaredDevice("file", "file/", options=(("file_path", str(log)),)),))
    async with unsealed_core(config=CoreConfig(audit=audit)) as (core, root), app_client(core, root) as c:
        assert (await c.get("/v1/secret/data/x")).status_code == 404
        log.rename(log.with_name("moved"))
        log.mkdir()  # the device can no longer write (root ignores modes): requests now fail closed
        await asyncio.sleep(0)  # the device reopens its path once per event-loop turn
        assert (await c.post("/v1/secret/data/y", json={"data": {"v": 1}})).status_code == 500
        body, _ = await core.metrics.render("")
        counters = _by_name(orjson.loads(body)["Counters"])
        assert counters["vault.audit.log_request_failure"][0]["Count"] == 1


async def test_storage_timings_come_from_the_physical_store() -> None:
    timed = TimedStorage(InmemStorage())
    await timed.put("a", b"1")
    assert await timed.get("a") == b"1" and await timed.list("") == ["a"]
    await timed.delete("a")
    assert [timed.timers[op].count for op in ("get", "put", "delete", "list")] == [1, 1, 1, 1]


def test_telemetry_stanza() -> None:
    cfg = TelemetryConfig.from_raw({"prometheus_retention_time": "30s", "disable_hostname": True,
                                    "statsd_address": "127.0.0.1:8125"})
    assert cfg.prometheus_retention_time == 30 and cfg.disable_hostname
    with pytest.raises(InvalidRequest, match="unknown key"):
        TelemetryConfig.from_raw({"prometheus_retention": "1h"})


async def test_unseal_and_ha_activation_are_timed() -> None:
    async with unsealed_core() as (core, root), app_client(core, root) as c:
        names = {s["Name"] for s in (await c.get("/v1/sys/metrics")).json()["Samples"]}
        assert "vault.core.post_unseal" in names
        await core._ha_activate()  # what core/ha.py runs when this node wins the lock
        samples = _by_name((await c.get("/v1/sys/metrics")).json()["Samples"])
        assert samples["strongroom.ha.activation"][0]["Count"] == 1


async def test_a_standby_reports_its_role_on_an_unauthenticated_listener() -> None:
    class StandbyHA:  # core/ha.py's view of a node that does not hold the lock
        fenced_active = False

        def leader(self) -> tuple[bool, str]:
            return False, "http://active:8200"

    config = CoreConfig(telemetry=TelemetryConfig(disable_hostname=True))
    async with unsealed_core(config=config) as (core, _root):
        core.ha = StandbyHA()  # type: ignore[assignment]
        try:
            async with app_client(core, unauthenticated_metrics=True) as anon:
                gauges = _by_name((await anon.get("/v1/sys/metrics")).json()["Gauges"])
                assert gauges["vault.core.unsealed"][0]["Value"] == 1 and gauges["vault.core.active"][0]["Value"] == 0
                assert (await anon.get("/v1/secret/data/x")).status_code == 307  # everything else: the active
        finally:
            core.ha = None


def test_prometheus_label_values_are_escaped() -> None:
    from strongroom.core.metrics import Gauge, prometheus

    text = prometheus([Gauge("vault.x", 1.0, (("mount_point", 'a"b\\c\nd'),))], [], [])
    assert 'vault_x{mount_point="a\\"b\\\\c\\nd"} 1' in text
