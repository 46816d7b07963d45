"""A small lease-generating secrets engine for the expiration tests (no such engine ships yet).

``creds/<name>`` issues a credential with a lease (``ttl``, ``max_ttl``, ``renewable`` from the
query). Its SecretType records every renew and revoke in a :class:`Ledger` shared by every backend
instance the factory builds (core rebuilds backends on each unseal), and fails revocations of the
usernames listed in ``Ledger.failing`` as many times as asked.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field

from strongroom.errors import Internal
from strongroom.framework import Backend, BackendConfig, Field, FieldData, FieldType, Op, Path, SecretType
from strongroom.logical import LeaseInfo, Request, Response

SECRET_TYPE = "creds"


@dataclass
class Ledger:
    issued: list[str] = field(default_factory=list)
    renewed: list[str] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)  # successful revocations
    attempts: list[str] = field(default_factory=list)  # every revocation attempt
    failing: dict[str, int] = field(default_factory=dict)  # username -> revocations still to fail
    increments: list[int] = field(default_factory=list)
    revoke_delay: float = 0.0  # each revocation waits this long (a slow database)
    in_flight: int = 0
    most_in_flight: int = 0  # the most revocations running at once
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    def factory(self, config: BackendConfig) -> LeasingBackend:
        return LeasingBackend(config, self)


class LeasingBackend(Backend):
    help = "Test engine: leased credentials."

    def __init__(self, config: BackendConfig, ledger: Ledger) -> None:
        super().__init__(config, paths(), [CREDS])
        self.ledger = ledger


def paths() -> list[Path[LeasingBackend]]:
    return [
        Path(r"creds/(?P<name>\w+)", fields={
            "name": Field(FieldType.STRING),
            "ttl": Field(FieldType.DURATION, query=True),
            "max_ttl": Field(FieldType.DURATION, query=True),
            "renewable": Field(FieldType.BOOL, default=True, query=True),
        }, operations={Op.READ: issue, Op.UPDATE: issue}),
    ]


async def issue(b: LeasingBackend, req: Request, d: FieldData) -> Response:
    username = f"{d.get('name')}-{next(b.ledger._counter)}"
    b.ledger.issued.append(username)
    return CREDS.response({"username": username, "password": "pw-" + username}, {"username": username},
                          ttl=d.get("ttl"), max_ttl=d.get("max_ttl"), renewable=d.get("renewable"), system=b.system)


async def renew_creds(b: LeasingBackend, req: Request, d: FieldData) -> Response:
    username = str(d.raw["username"])
    b.ledger.renewed.append(username)
    assert req.secret is not None
    b.ledger.increments.append(req.secret.ttl)  # the requested increment (or the lease's TTL)
    return Response(secret=LeaseInfo(ttl=req.secret.ttl, internal_data=dict(req.secret.internal_data)))


async def revoke_creds(b: LeasingBackend, req: Request, d: FieldData) -> Response | None:
    username = str(d.raw["username"])
    b.ledger.attempts.append(username)
    if b.ledger.revoke_delay:
        b.ledger.in_flight += 1
        b.ledger.most_in_flight = max(b.ledger.most_in_flight, b.ledger.in_flight)
        await asyncio.sleep(b.ledger.revoke_delay)
        b.ledger.in_flight -= 1
    left = b.ledger.failing.get(username, 0)
    if left:
        b.ledger.failing[username] = left - 1
        raise Internal(f"cannot reach the database to drop {username}")
    b.ledger.revoked.append(username)
    return None


CREDS: SecretType[LeasingBackend] = SecretType(SECRET_TYPE, renew=renew_creds, revoke=revoke_creds)
