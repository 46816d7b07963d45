"""sys/leases/*: look up, list, renew and revoke leases, and tidy the lease store; plus Vault's
older aliases sys/renew, sys/revoke, sys/revoke-prefix and sys/revoke-force.

Every token may renew and look up a lease it knows the id of (the default policy grants
sys/leases/renew and sys/leases/lookup). Listing leases and revoking by prefix can reach every
lease on the server, so those paths require sudo, as in Vault.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import Field, FieldData, FieldType, Op, Path, match_all
from strongroom.logical import Request, Response

if TYPE_CHECKING:
    from strongroom.core.system import SystemBackend

_LEASE_ID = Field(FieldType.STRING, "The lease id; it may also be given in the URL.")
_URL_ID = Field(FieldType.STRING, "The lease id, from the URL (the body's lease_id wins).")
_SYNC = Field(FieldType.BOOL, "Revoke before answering (the default); false queues the revocation and "
              "answers 202.", default=True)
_PREFIX = Field(FieldType.STRING, "The lease id prefix.")
_INCREMENT = Field(FieldType.DURATION, "Requested extension of the lease, from now.")
TIDY_STARTED = ("Tidy operation successfully started. Any information from the operation will be printed "
                "to Strongroom's server logs.")
_URL_LEASE = r"(?:/(?P<url_lease_id>.+))?"


def paths() -> list[Path[SystemBackend]]:
    renew_fields = {"lease_id": _LEASE_ID, "url_lease_id": _URL_ID, "increment": _INCREMENT}
    revoke_fields = {"lease_id": _LEASE_ID, "url_lease_id": _URL_ID, "sync": _SYNC}
    prefix_fields = {"prefix": _PREFIX, "sync": _SYNC}
    force_fields = {"prefix": _PREFIX}
    return [
        Path("leases/lookup/" + match_all("prefix"), fields={"prefix": _PREFIX}, operations={Op.LIST: list_leases},
             root=True, synopsis="List the lease ids under a prefix (sudo)."),
        Path("leases/lookup", fields={"lease_id": _LEASE_ID}, operations={Op.UPDATE: lookup},
             synopsis="Look up a lease's issue, expiry and renewal times."),
        Path("leases/renew" + _URL_LEASE, fields=renew_fields, operations={Op.UPDATE: renew},
             synopsis="Renew a secret's lease (tokens renew at auth/token/renew)."),
        Path("renew" + _URL_LEASE, fields=renew_fields, operations={Op.UPDATE: renew},
             synopsis="Renew a secret's lease (older path of sys/leases/renew)."),
        Path("leases/revoke" + _URL_LEASE, fields=revoke_fields, operations={Op.UPDATE: revoke},
             synopsis="Revoke a lease."),
        Path("revoke" + _URL_LEASE, fields=revoke_fields, operations={Op.UPDATE: revoke},
             synopsis="Revoke a lease (older path of sys/leases/revoke)."),
        Path("leases/revoke-prefix/(?P<prefix>.+)", fields=prefix_fields, operations={Op.UPDATE: revoke_prefix},
             root=True, synopsis="Revoke every lease under a prefix (sudo)."),
        Path("revoke-prefix/(?P<prefix>.+)", fields=prefix_fields, operations={Op.UPDATE: revoke_prefix},
             root=True, synopsis="Revoke every lease under a prefix (older path; sudo)."),
        Path("leases/revoke-force/(?P<prefix>.+)", fields=force_fields, operations={Op.UPDATE: revoke_force},
             root=True, synopsis="Remove every lease under a prefix, ignoring backend errors (sudo)."),
        Path("revoke-force/(?P<prefix>.+)", fields=force_fields, operations={Op.UPDATE: revoke_force},
             root=True, synopsis="Remove every lease under a prefix, ignoring errors (older path; sudo)."),
        Path("leases/tidy", operations={Op.UPDATE: tidy},
             synopsis="Revoke leases whose token is gone and clean up stale lease index records."),
    ]


def _lease_id(d: FieldData) -> str:
    from_url = d.get("url_lease_id") if "url_lease_id" in d.schema else ""
    lease_id = str(d.get("lease_id") or from_url or "").strip()
    if not lease_id:
        raise InvalidRequest("lease_id must be specified")
    return lease_id


async def list_leases(b: SystemBackend, req: Request, d: FieldData) -> Response | None:
    keys = await b.parts.expiration.list_ids(d.get("prefix"))
    if not keys:
        raise NotFound()
    return Response(data={"keys": keys})


async def lookup(b: SystemBackend, req: Request, d: FieldData) -> Response | None:
    return Response(data=await b.parts.expiration.lookup(_lease_id(d)))


async def renew(b: SystemBackend, req: Request, d: FieldData) -> Response | None:
    return await b.parts.expiration.renew(_lease_id(d), max(0, int(d.get("increment"))))


async def revoke(b: SystemBackend, req: Request, d: FieldData) -> Response | None:
    lease_id = _lease_id(d)
    sync = bool(d.get("sync"))
    await b.parts.expiration.revoke(lease_id, sync=sync)
    return None if sync else _accepted()


async def revoke_prefix(b: SystemBackend, req: Request, d: FieldData) -> Response | None:
    sync = bool(d.get("sync"))
    await b.parts.expiration.revoke_prefix(d.get("prefix"), sync=sync)
    return None if sync else _accepted()


async def revoke_force(b: SystemBackend, req: Request, d: FieldData) -> Response | None:
    await b.parts.expiration.revoke_prefix(d.get("prefix"), force=True)
    return None


async def tidy(b: SystemBackend, req: Request, d: FieldData) -> Response | None:
    b.parts.expiration.tidy()
    return Response(warnings=[TIDY_STARTED], status=202)


def _accepted() -> Response:
    """202 with an empty body, as Vault answers a queued revocation."""
    return Response(raw_status=202, raw_body=b"")
