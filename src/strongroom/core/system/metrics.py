"""sys/metrics: the server's telemetry (core/metrics.py), JSON by default, Prometheus text with
``?format=prometheus`` or an ``Accept: application/openmetrics-text`` header, as Vault. Read
permission on sys/metrics is required, unless a listener sets ``telemetry {
unauthenticated_metrics_access = true }`` (http/app.py answers it there, without a token)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.errors import UnsupportedPath
from strongroom.framework import Field, FieldData, FieldType, Path
from strongroom.logical import Operation as Op
from strongroom.logical import Request, Response

if TYPE_CHECKING:
    from strongroom.core.system import SystemBackend


def paths() -> list[Path[SystemBackend]]:
    return [Path("metrics", fields={"format": Field(FieldType.STRING, description="json (default) or prometheus")},
                 operations={Op.READ: read_metrics}, synopsis="Export the server's metrics.")]


def wanted_format(fmt: str, accept: str) -> str:
    if not fmt and "application/openmetrics-text" in accept:
        return "prometheus"
    return fmt


async def read_metrics(b: SystemBackend, req: Request, d: FieldData) -> Response:
    if b.parts.metrics is None:
        raise UnsupportedPath()
    fmt = wanted_format(d.get("format") or "", req.headers.get("accept", ""))
    body, content_type = await b.parts.metrics.render(fmt)
    return Response(raw_body=body, raw_content_type=content_type, raw_status=200)
