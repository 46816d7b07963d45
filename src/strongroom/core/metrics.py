"""sys/metrics: what the server measured, in Vault's two shapes (docs/operations.md).

The request path pays one ``perf_counter`` pair and one :meth:`Metrics.observe` (two dict lookups
and a :class:`~strongroom.telemetry.Timer` update): no lock, no allocation but the float. Every
other figure is read when a scrape asks for it, from what is already in memory (the seal, the HA
role, the audit broker's failure counts, the storage cache's counters, the physical store's
timers), except the leases and tokens by mount, which are counted from the lease index's key
names (nothing decrypted) at most once per ``usage_gauge_period`` (Vault's default: 10 minutes),
never on every scrape.

Names are Vault's: ``vault.core.handle_request``, ``vault.route.<op>.<mount>`` (the mount path with
"/" as "-"), ``vault.audit.log_request_failure``, ``vault.core.unsealed``, ``vault.core.active``,
``vault.expire.num_leases``, ``vault.cache.hit``, ``vault.<storage type>.get``... Timers are in
milliseconds, as go-metrics' are. Unlike Vault's in-memory sink (10-second windows) the figures
are cumulative since the process started; Rate is per second over that time.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import orjson

from strongroom.durations import parse_duration
from strongroom.errors import InvalidRequest
from strongroom.logical import Operation
from strongroom.telemetry import Timer

if TYPE_CHECKING:
    from strongroom.core import Core

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Keys of the telemetry stanza that configure sinks Strongroom does not run (statsd, circonus...):
# accepted and ignored, so a Vault config loads; sys/metrics still serves everything.
_SINK_KEYS = ("statsd_", "dogstatsd_", "circonus_", "stackdriver_", "statsite_", "metrics_prefix",
              "lease_metrics_epsilon", "num_lease_metrics_buckets", "add_lease_metrics_namespace_labels",
              "filter_default", "prefix_filter", "maximum_gauge_cardinality", "add_mount_point_rollback_metrics")


@dataclass(frozen=True, slots=True)
class TelemetryConfig:
    """The server's ``telemetry { ... }`` stanza (Vault's keys). A zero retention time turns the
    Prometheus format off, as in Vault."""

    prometheus_retention_time: int = 86400  # Vault's default: 24h
    disable_hostname: bool = False
    enable_hostname_label: bool = False
    usage_gauge_period: int = 600

    @classmethod
    def from_raw(cls, raw: dict[str, object]) -> TelemetryConfig:
        out: dict[str, Any] = {}
        for key, value in raw.items():
            if key in ("prometheus_retention_time", "usage_gauge_period"):
                plain_int = isinstance(value, int) and not isinstance(value, bool)
                out[key] = value if plain_int else parse_duration(str(value))
            elif key in ("disable_hostname", "enable_hostname_label"):
                if isinstance(value, str) and value.lower() in ("true", "false"):
                    value = value.lower() == "true"
                if not isinstance(value, bool):
                    raise InvalidRequest(f"telemetry {key}: expected a boolean")
                out[key] = value
            elif not key.startswith(_SINK_KEYS):
                raise InvalidRequest(f'telemetry: unknown key "{key}"')
        return cls(**out)


@dataclass(frozen=True, slots=True)
class Gauge:
    name: str
    value: float
    labels: tuple[tuple[str, str], ...] = ()


# What a scrape reads from core: gauges (seal, HA role, ...), counters, and the extra timers.
GaugeSource = Callable[[], Iterable[Gauge]]
UsageSource = Callable[[], Awaitable[Iterable[Gauge]]]


class Metrics:
    def __init__(self, config: TelemetryConfig | None = None) -> None:
        self.config = config or TelemetryConfig()
        self.started = time.monotonic()
        self.handle_request = Timer()
        self.routes: dict[Operation, dict[str, Timer]] = {op: {} for op in Operation}
        self.gauges: GaugeSource = lambda: ()
        self.counters: Callable[[], Iterable[tuple[str, int]]] = lambda: ()
        self.timers: Callable[[], Iterable[tuple[str, Timer]]] = lambda: ()
        self.usage: UsageSource | None = None
        self._usage: tuple[float, list[Gauge]] = (float("-inf"), [])
        self.hostname = socket.gethostname()

    def observe(self, op: Operation, mount: str, seconds: float) -> None:
        """One request through core's pipeline (the hot path: keep it this small)."""
        ms = seconds * 1000.0
        self.handle_request.add(ms)
        table = self.routes[op]
        t = table.get(mount)
        if t is None:
            t = table[mount] = Timer()
        t.add(ms)

    # -- a scrape -------------------------------------------------------------------------------
    async def render(self, fmt: str) -> tuple[bytes, str]:
        """The body and its Content-Type for ``format`` ("" or "json": Vault's JSON summary;
        "prometheus": the text exposition format)."""
        if fmt not in ("", "json", "prometheus"):
            raise InvalidRequest(f'metric response format "{fmt}" unknown')
        if fmt == "prometheus" and self.config.prometheus_retention_time <= 0:
            raise InvalidRequest("prometheus is not enabled")
        gauges = [*self.gauges(), *await self._usage_gauges()]
        gauges = [self._host(g) for g in gauges]
        counters = list(self.counters())
        samples = [("vault.core.handle_request", self.handle_request), *self._route_timers(), *self.timers()]
        if fmt == "prometheus":
            return prometheus(gauges, counters, samples).encode(), PROMETHEUS_CONTENT_TYPE
        return orjson.dumps(self._json(gauges, counters, samples)), "application/json"

    async def _usage_gauges(self) -> list[Gauge]:
        at, gauges = self._usage
        if self.usage is not None and time.monotonic() - at >= self.config.usage_gauge_period:
            gauges = list(await self.usage())
            self._usage = (time.monotonic(), gauges)
        return gauges

    def _host(self, g: Gauge) -> Gauge:
        """go-metrics: a gauge's name carries the host name unless disable_hostname (or a label)."""
        if self.config.enable_hostname_label:
            return Gauge(g.name, g.value, (*g.labels, ("host", self.hostname)))
        if self.config.disable_hostname:
            return g
        head, _, rest = g.name.partition(".")
        return Gauge(f"{head}.{self.hostname}.{rest}", g.value, g.labels)

    def _route_timers(self) -> list[tuple[str, Timer]]:
        return [(f"vault.route.{op.value}.{mount.replace('/', '-')}", t)
                for op, table in self.routes.items() for mount, t in sorted(table.items()) if mount]

    def _json(self, gauges: list[Gauge], counters: list[tuple[str, int]],
              samples: list[tuple[str, Timer]]) -> dict[str, Any]:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        now = datetime.now(timezone.utc).replace(microsecond=0)
        return {
            "Timestamp": now.strftime("%Y-%m-%d %H:%M:%S +0000 UTC"),
            "Gauges": [{"Name": g.name, "Value": g.value, "Labels": dict(g.labels)} for g in gauges],
            "Points": [],
            "Counters": [_aggregate(name, _counter_timer(n), elapsed) for name, n in counters],
            "Samples": [_aggregate(name, t, elapsed) for name, t in samples if t.count],
        }


def _counter_timer(n: int) -> Timer:
    t = Timer()
    t.count, t.total, t.sumsq = n, float(n), float(n)
    t.low = t.high = 1.0 if n else 0.0
    return t


def _aggregate(name: str, t: Timer, elapsed: float) -> dict[str, Any]:
    mean = t.total / t.count if t.count else 0.0
    var = (t.sumsq - t.count * mean * mean) / (t.count - 1) if t.count > 1 else 0.0
    return {"Name": name, "Count": t.count, "Rate": t.total / elapsed, "Sum": t.total, "Min": t.low,
            "Max": t.high, "Mean": mean, "Stddev": max(var, 0.0) ** 0.5, "Labels": {}}


_UNSAFE = re.compile(r"[^a-zA-Z0-9_:]")


def prom_name(name: str) -> str:
    return _UNSAFE.sub("_", name)


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{prom_name(k)}="{_escape(v)}"' for k, v in labels)
    return "{" + inner + "}"


def _escape(value: str) -> str:
    """A label value in the text format: backslash, double quote and line feed escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else repr(float(v))


def prometheus(gauges: list[Gauge], counters: list[tuple[str, int]], samples: list[tuple[str, Timer]]) -> str:
    """The Prometheus text format, one family per metric name, sorted as Vault's sink sorts them.
    Timers are summaries with their sum and count (no quantiles: nothing per observation is kept)."""
    families: dict[str, tuple[str, list[str]]] = {}
    for g in gauges:
        name = prom_name(g.name)
        families.setdefault(name, ("gauge", []))[1].append(f"{name}{_labels(g.labels)} {_num(g.value)}")
    for cname, n in counters:
        name = prom_name(cname)
        families.setdefault(name, ("counter", []))[1].append(f"{name} {n}")
    for sname, t in samples:
        name = prom_name(sname)
        pair = (f"{name}_sum {_num(t.total)}", f"{name}_count {t.count}")
        families.setdefault(name, ("summary", []))[1].extend(pair)
    out: list[str] = []
    for name in sorted(families):
        kind, lines = families[name]
        out += [f"# HELP {name} {name}", f"# TYPE {name} {kind}", *lines]
    return "\n".join(out) + "\n"


async def lease_usage(ids: AsyncIterator[str], mount_of: Callable[[str], tuple[str, str, str] | None]) -> list[Gauge]:
    """Leases by secrets mount and tokens by auth mount, counted from lease ids (key names only,
    nothing decrypted): a secret's lease id starts with its mount's path, a token's with its login
    path (``auth/<mount>/...``). ``mount_of(path)``: (mount path, type, table) of the longest
    matching mount. Tokens without a lease (root tokens, no TTL) are not counted."""
    counts: dict[tuple[str, str, str], int] = {}
    total = 0
    async for lease_id in ids:
        total += 1
        hit = mount_of(lease_id)
        if hit is not None:
            counts[hit] = counts.get(hit, 0) + 1
    out = [Gauge("vault.expire.num_leases", float(total))]
    tokens = 0
    for (path, kind, table), n in sorted(counts.items()):
        if table == "auth":
            tokens += n
            out.append(Gauge("vault.token.count.by_auth", float(n), (("auth_method", kind), ("mount_point", path))))
        else:
            out.append(Gauge("vault.expire.leases.by_mount", float(n), (("mount_point", path),)))
    out.append(Gauge("vault.token.count", float(tokens)))
    return out


def attach_metrics(core: Core) -> Metrics:
    """The server's Metrics, reading core's parts at scrape time (nothing here runs per request)."""
    m = Metrics(core.config.telemetry)

    def gauges() -> list[Gauge]:
        unsealed = not core.sealed
        out = [Gauge("vault.core.unsealed", float(unsealed), (("cluster", core.cluster_name),)),
               Gauge("vault.core.active", float(unsealed and core.serving_active), (("cluster", core.cluster_name),))]
        if unsealed:
            tables: dict[str, int] = {}
            for e in core.mounts.entries():
                tables[e.table] = tables.get(e.table, 0) + 1
            out += [Gauge("vault.core.mount_table.num_entries", float(n),
                          (("type", "auth" if t == "auth" else "logical"),)) for t, n in sorted(tables.items())]
        return out

    def counters() -> list[tuple[str, int]]:
        out = [("vault.audit.log_request_failure", core.audit.request_failures),
               ("vault.audit.log_response_failure", core.audit.response_failures),
               ("strongroom.read_cache.hit", core.reads.hits)]
        cache = core.physical
        if hasattr(cache, "hits") and hasattr(cache, "misses"):
            out += [("vault.cache.hit", int(cache.hits)), ("vault.cache.miss", int(cache.misses))]
        return out

    def timers() -> list[tuple[str, Timer]]:
        return [*sorted(core.step_timers.items()), *storage_timers()]

    def storage_timers() -> list[tuple[str, Timer]]:
        storage: Any = core.physical
        for _ in range(4):  # down the wrappers (cache -> timed -> backend) to the timed one
            found = None if hasattr(storage, "inner") else getattr(storage, "timers", None)
            if isinstance(found, dict):
                return [(f"vault.{core.storage_type}.{op}", t) for op, t in found.items() if t.count]
            storage = getattr(storage, "inner", None)
            if storage is None:
                break
        return []

    async def usage() -> list[Gauge]:
        if core.sealed:
            return []

        def mount_of(path: str) -> tuple[str, str, str] | None:
            hit = core.router.match(path)
            return (hit[0].full_path, hit[0].type, hit[0].table) if hit is not None else None

        return await lease_usage(core.expiration.lease_ids(), mount_of)

    m.gauges, m.counters, m.timers, m.usage = gauges, counters, timers, usage
    return m
