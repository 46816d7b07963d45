"""creds/NAME: a new broker user with the role's tags and permissions, and the lease that deletes it.

Order (framework/wal.py): a write-ahead entry naming the user is stored first, then the user is
created and given its permissions, then core writes the lease and deletes the entry in one commit.
If any step after the create fails the user is deleted at once (no half-made users); if that
delete fails too, the entry stays and the rollback rounds delete the user later.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from strongroom.engines.rabbitmq.client import BrokerError, ManagementClient
from strongroom.engines.rabbitmq.config import DEFAULT_USERNAME_TEMPLATE, load_lease
from strongroom.engines.rabbitmq.roles import Role, load_role
from strongroom.errors import Internal, InvalidRequest, StrongroomError
from strongroom.framework import (
    Field, FieldData, FieldType, Op, Path, SecretType, UsernameTemplateError, compile_username_template,
)
from strongroom.framework.path import name_regex
from strongroom.logical import LeaseInfo, Request, Response

if TYPE_CHECKING:
    from strongroom.engines.rabbitmq import RabbitMQBackend

WAL_KIND = "user"


def paths() -> list[Path[RabbitMQBackend]]:
    return [Path(f"creds/{name_regex('name')}", fields={"name": Field(FieldType.STRING, "Name of the role.")},
                 operations={Op.READ: issue}, synopsis="Request RabbitMQ credentials for a certain role.")]


def _broker_error(e: BrokerError, message: str) -> StrongroomError:
    """A refusal by the broker (4xx: a vhost that does not exist, a bad pattern) is the role's fault:
    400. No answer or a 5xx: 500."""
    return InvalidRequest(f"{message}: {e}") if 400 <= e.status < 500 else Internal(f"{message}: {e}")


async def _grant(client: ManagementClient, username: str, role: Role) -> None:
    for vhost, p in role.vhosts.items():
        try:
            await client.set_permissions(vhost, username, p.get("configure", ""), p.get("write", ""), p.get("read", ""))
        except BrokerError as e:
            raise _broker_error(e, f"error updating vhost permissions for {vhost}") from None
    for vhost, exchanges in role.vhost_topics.items():
        for exchange, p in exchanges.items():
            try:
                await client.set_topic_permissions(vhost, username, exchange, p.get("write", ""), p.get("read", ""))
            except BrokerError as e:
                raise _broker_error(e, f"error updating vhost topic permissions for {vhost}") from None


async def issue(b: RabbitMQBackend, req: Request, d: FieldData) -> Response:
    assert req.storage is not None
    name = str(d.get("name"))
    role = await load_role(req.storage, name)
    if role is None:
        raise InvalidRequest(f"unknown role: {name}")
    conn, client = await b.connection(req.storage)
    try:
        template = compile_username_template(conn.username_template or DEFAULT_USERNAME_TEMPLATE)
        username = template.render({"DisplayName": req.display_name, "RoleName": name})
    except UsernameTemplateError as e:
        raise InvalidRequest(f"failed to generate username: {e}") from None
    if not username:
        raise InvalidRequest("failed to generate username: the username template produced an empty name")
    password = await b.system.generate_password(conn.password_policy)

    wal_id = await b.put_wal(WAL_KIND, {"username": username})  # durable before the user exists
    try:
        try:
            await client.put_user(username, password, role.tags)
        except BrokerError as e:
            raise _broker_error(e, f"error creating user {username}") from None
        await _grant(client, username, role)
    except BaseException:
        # The user may exist with part of its permissions: delete it now; the entry goes only once
        # that is known to have worked (else the rollback rounds retry).
        with contextlib.suppress(Exception):
            await client.delete_user(username)
            await b.delete_wal(wal_id)
        raise
    lease = await load_lease(req.storage)
    return CREDS.response({"username": username, "password": password}, {"username": username},
                          ttl=lease.ttl, max_ttl=lease.max_ttl, wal_ids=[wal_id], system=b.system)


async def renew(b: RabbitMQBackend, req: Request, d: FieldData) -> Response:
    """As Vault: the lease is extended by config/lease's ttl as it is now (else the increment asked
    for or the mount default), never past its max TTL (core counts it from the issue)."""
    assert req.storage is not None and req.secret is not None
    lease = await load_lease(req.storage)
    return Response(secret=LeaseInfo(ttl=lease.ttl or req.secret.ttl, max_ttl=lease.max_ttl,
                                     internal_data=dict(req.secret.internal_data)))


async def revoke(b: RabbitMQBackend, req: Request, d: FieldData) -> None:
    assert req.storage is not None and req.secret is not None
    username = req.secret.internal_data.get("username")
    if not isinstance(username, str) or not username:
        raise Internal("secret is missing username internal data")
    _, client = await b.connection(req.storage)
    try:
        await client.delete_user(username)  # already gone counts as done
    except BrokerError as e:
        raise Internal(f"could not delete user: {e}") from None


CREDS: SecretType[RabbitMQBackend] = SecretType("creds", renew=renew, revoke=revoke)
