"""Fixtures for the rabbitmq engine tests, against the REAL local broker (management API on
127.0.0.1:15672, guest/guest; .ci/run starts it and enables the management plugin). Every test
skips with the reason when the management API does not answer."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import pytest

from strongroom.core import Core
from strongroom.testing import app_client, unsealed_core

MGMT = "http://127.0.0.1:15672"
ADMIN = ("guest", "guest")
AMQP_PORT = 5672


def management_reachable() -> str:
    """'' when the management API answers with the admin credentials, else why not."""
    try:
        r = httpx.get(f"{MGMT}/api/whoami", auth=ADMIN, timeout=3)
    except httpx.HTTPError as e:
        return f"RabbitMQ management API at {MGMT} unreachable ({type(e).__name__}); run .ci/run or " \
               "`rabbitmq-plugins enable rabbitmq_management`"
    if r.status_code != 200:
        return f"RabbitMQ management API at {MGMT} refused guest/guest ({r.status_code})"
    return ""


@pytest.fixture(scope="session")
def broker() -> str:
    reason = management_reachable()
    if reason:
        pytest.skip(reason)
    return MGMT


def user_exists(username: str) -> bool:
    return httpx.get(f"{MGMT}/api/users/{quote(username, safe='')}", auth=ADMIN, timeout=5).status_code == 200


def users_with_prefix(prefix: str) -> list[str]:
    return [u["name"] for u in httpx.get(f"{MGMT}/api/users", auth=ADMIN, timeout=5).json()
            if u["name"].startswith(prefix)]


def whoami(username: str, password: str) -> int:
    """The management API's status for these credentials (200: they work; 401: they do not)."""
    return httpx.get(f"{MGMT}/api/whoami", auth=(username, password), timeout=5).status_code


def amqp_login(username: str, password: str, vhost: str = "/") -> bool:
    """Whether an AMQP 0-9-1 connection with these credentials opens (pika, the broker's own protocol)."""
    import pika  # type: ignore[import-untyped]
    import pika.exceptions  # type: ignore[import-untyped]

    params = pika.ConnectionParameters("127.0.0.1", AMQP_PORT, vhost, pika.PlainCredentials(username, password),
                                       connection_attempts=1, socket_timeout=5, blocked_connection_timeout=5)
    try:
        conn = pika.BlockingConnection(params)
    except (pika.exceptions.ProbableAuthenticationError, pika.exceptions.ProbableAccessDeniedError,
            pika.exceptions.ConnectionClosedByBroker):
        return False
    conn.close()
    return True


@pytest.fixture
def vhost(broker: str) -> Iterator[str]:
    """A throwaway vhost, deleted afterwards."""
    name = f"sr-test-{secrets.token_hex(4)}"
    assert httpx.put(f"{MGMT}/api/vhosts/{name}", auth=ADMIN, timeout=10).status_code in (201, 204)
    yield name
    httpx.delete(f"{MGMT}/api/vhosts/{name}", auth=ADMIN, timeout=10)


@dataclass
class Engine:
    core: Core
    client: httpx.AsyncClient
    prefix: str  # usernames this test makes start with it (username_template)


@pytest.fixture
async def engine(broker: str) -> AsyncIterator[Engine]:
    """A core with rabbitmq mounted at rabbitmq/ and configured for the local broker; usernames get a
    per-test prefix, and any user still carrying it afterwards is deleted (and fails the test)."""
    prefix = f"srt{secrets.token_hex(3)}-"
    async with unsealed_core() as (core, root), app_client(core, root) as c:
        assert (await c.post("/v1/sys/mounts/rabbitmq", json={"type": "rabbitmq"})).status_code == 204
        r = await c.post("/v1/rabbitmq/config/connection", json={
            "connection_uri": MGMT, "username": ADMIN[0], "password": ADMIN[1],
            "username_template": prefix + '{{ .RoleName }}-{{ random 10 }}'})
        assert r.status_code == 204, r.text
        yield Engine(core, c, prefix)
    left = users_with_prefix(prefix)
    for name in left:
        httpx.delete(f"{MGMT}/api/users/{quote(name, safe='')}", auth=ADMIN, timeout=5)
    assert not left, f"users left behind on the broker: {left}"
