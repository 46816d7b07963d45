"""KV version 1: an unversioned passthrough store. Every path is a secret; LIST on "dir/" lists.

Storage layout: the secret at ``<path>`` is stored at the storage key ``<path>`` itself, its value
the JSON object the client wrote. That is the layout :mod:`strongroom.engines.kv.upgrade` reads
when the mount is upgraded to version 2.

A ``ttl`` (or, failing that, ``lease``) key in the data is stored like any other, and read back as
the response's advisory ``lease_duration``. No lease is created: the backend reports
``generates_leases = False`` and the response's secret is not renewable and has no lease id.
"""

from __future__ import annotations

import math

import orjson

from strongroom.durations import parse_duration
from strongroom.engines._request import storage_of, warn_ignored_params
from strongroom.errors import InvalidRequest, NotFound, StrongroomError
from strongroom.framework import (
    Backend,
    BackendConfig,
    Field,
    FieldData,
    FieldType,
    Op,
    Path,
    Request,
    Response,
)
from strongroom.logical import LeaseInfo

# Vault's system default lease TTL (768h), used when core passes no mount default.
SYSTEM_DEFAULT_TTL = 768 * 3600

PATH_FIELD = {"path": Field(FieldType.STRING, "Location of the secret.")}


def paths() -> list[Path[KVv1Backend]]:
    return [
        Path(
            r"(?P<path>.*)",
            fields=PATH_FIELD,
            operations={
                Op.READ: read_secret,
                Op.CREATE: write_secret,
                Op.UPDATE: write_secret,
                Op.DELETE: delete_secret,
                Op.LIST: list_secrets,
            },
            exists=secret_exists,
            synopsis="Pass-through secret storage to the mount's storage view.",
            description=(
                "Writes store the request body as-is; reads return it. A \"ttl\" key sets the "
                "advisory lease_duration of reads; no lease is created."
            ),
        ),
    ]


class KVv1Backend(Backend):
    help = (
        "The KV secrets engine (version 1) stores arbitrary secrets at any path.\n"
        "Secrets are not versioned: a write replaces the previous value."
    )
    version = 1
    # Read responses carry an advisory TTL only; core must not register a lease for them.
    generates_leases = False

    def __init__(self, config: BackendConfig) -> None:
        super().__init__(config, paths())

    async def handle(self, req: Request) -> Response | None:
        return warn_ignored_params(self, req, await super().handle(req))

    def default_ttl(self) -> int:
        return self.config.default_lease_ttl or SYSTEM_DEFAULT_TTL


def writable_key(path: str) -> str:
    if path == "" or path.endswith("/"):
        raise InvalidRequest("cannot write to a path ending in '/'")
    return path


def list_prefix(path: str) -> str:
    return path if path == "" or path.endswith("/") else path + "/"


def advisory_ttl(data: dict[str, object], default: int) -> int:
    """The ``ttl`` (else ``lease``) value in seconds; ``default`` when absent or unparsable."""
    raw = data["ttl"] if "ttl" in data else data.get("lease")
    if raw is None:
        return default
    try:
        return parse_duration(raw)
    except StrongroomError:
        return default


async def secret_exists(b: KVv1Backend, req: Request, d: FieldData) -> bool:
    path = d.get("path")
    return path != "" and await storage_of(req).get(path) is not None


async def read_secret(b: KVv1Backend, req: Request, d: FieldData) -> Response | None:
    path = d.get("path")
    raw = await storage_of(req).get(path) if path else None
    if raw is None:
        raise NotFound()
    data = orjson.loads(raw)
    ttl = advisory_ttl(data, b.default_ttl())
    # The same answer until the secret or the mount's tune changes (core/readcache.py watches both).
    return Response(data=data, secret=LeaseInfo(ttl=ttl, renewable=False), cache_until=math.inf)


async def write_secret(b: KVv1Backend, req: Request, d: FieldData) -> Response | None:
    key = writable_key(d.get("path"))
    # The body is the secret: req.data, not d.raw, which also holds the path captured from the URL.
    if not req.data:
        raise InvalidRequest("missing data fields")
    await storage_of(req).put(key, orjson.dumps(req.data))
    return None


async def delete_secret(b: KVv1Backend, req: Request, d: FieldData) -> Response | None:
    path = d.get("path")
    if path:
        await storage_of(req).delete(path)
    return None


async def list_secrets(b: KVv1Backend, req: Request, d: FieldData) -> Response | None:
    keys = await storage_of(req).list(list_prefix(d.get("path")))
    if not keys:
        raise NotFound()
    return Response(data={"keys": keys})
