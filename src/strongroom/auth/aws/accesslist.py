"""identity-accesslist: the EC2 instances that logged in (their nonce, pending time, whether they
may log in again), as in Vault; ``identity-whitelist`` is the deprecated spelling hvac still uses.
``tidy/identity-accesslist`` removes entries expired for longer than ``safety_buffer``."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from strongroom.auth.aws.ec2 import ACCESSLIST_PREFIX
from strongroom.auth.aws.store import storage
from strongroom.errors import NotFound
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response

if TYPE_CHECKING:
    from strongroom.auth.aws import AwsBackend

_INSTANCE = r"(?P<instance_id>[A-Za-z0-9][A-Za-z0-9\-]*)"


def paths() -> list[Path[AwsBackend]]:
    out: list[Path[AwsBackend]] = []
    for name in ("identity-accesslist", "identity-whitelist"):
        out += [
            Path(f"{name}/?", operations={Op.LIST: list_entries},
                 synopsis="Lists the items present in the identity access list."),
            Path(f"{name}/{_INSTANCE}", fields={"instance_id": Field(FieldType.STRING, "EC2 instance ID.")},
                 operations={Op.READ: read_entry, Op.DELETE: delete_entry},
                 synopsis="Read or delete entries in the identity access list."),
            Path(f"tidy/{name}", fields={"safety_buffer": Field(
                FieldType.DURATION, "The amount of extra time that must have passed beyond the identity's "
                "expiration, before it is removed from the backend storage.", default=259200)},
                operations={Op.UPDATE: tidy}, synopsis="Clean-up the access list instance identity entries."),
        ]
    return out


def _rfc3339(t: Any) -> str:
    return datetime.fromtimestamp(float(t), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def list_entries(b: AwsBackend, req: Request, d: FieldData) -> Response | None:
    keys = await storage(req).list(ACCESSLIST_PREFIX)
    if not keys:
        raise NotFound()
    return Response(data={"keys": keys})


async def read_entry(b: AwsBackend, req: Request, d: FieldData) -> Response | None:
    raw = await storage(req).get(ACCESSLIST_PREFIX + d.get("instance_id"))
    if raw is None:
        raise NotFound()
    e = orjson.loads(raw)
    return Response(data={"role": e["role"], "client_nonce": e.get("client_nonce", ""),
                          "creation_time": _rfc3339(e["creation_time"]),
                          "disallow_reauthentication": bool(e.get("disallow_reauthentication")),
                          "pending_time": e.get("pending_time", ""),
                          "expiration_time": _rfc3339(e["expiration_time"]),
                          "last_updated_time": _rfc3339(e["last_updated_time"])})


async def delete_entry(b: AwsBackend, req: Request, d: FieldData) -> Response | None:
    await storage(req).delete(ACCESSLIST_PREFIX + d.get("instance_id"))
    return None


async def tidy(b: AwsBackend, req: Request, d: FieldData) -> Response | None:
    s = storage(req)
    cutoff = time.time() - int(d.get("safety_buffer"))
    for key in await s.list(ACCESSLIST_PREFIX):
        raw = await s.get(ACCESSLIST_PREFIX + key)
        if raw is not None and float(orjson.loads(raw).get("expiration_time", 0)) < cutoff:
            await s.delete(ACCESSLIST_PREFIX + key)
    return None
