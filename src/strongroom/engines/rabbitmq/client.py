"""The RabbitMQ management HTTP API, the few calls the engine makes, over one pooled httpx client.

Every call has a deadline (:data:`TIMEOUT`): a broker that does not answer is an error within
seconds, never a hung request. Names go into URL paths percent-encoded with nothing kept
(the default vhost is ``/``, which must travel as ``%2F``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
LIMITS = httpx.Limits(max_connections=32, max_keepalive_connections=8)


class BrokerError(Exception):
    """The management API answered with a non-2xx status (``status``) or not at all (``status`` 0)."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"{status}: {body}" if status else body)
        self.status, self.body = status, body


def _seg(name: str) -> str:
    return quote(name, safe="")


class ManagementClient:
    def __init__(self, uri: str, username: str, password: str) -> None:
        self._http = httpx.AsyncClient(base_url=uri.rstrip("/"), auth=(username, password), timeout=TIMEOUT,
                                       limits=LIMITS, headers={"content-type": "application/json"})

    async def _call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        try:
            resp = await self._http.request(method, path, json=body)
        except httpx.HTTPError as e:
            raise BrokerError(0, f"{type(e).__name__}: {e}" if str(e) else type(e).__name__) from None
        if not 200 <= resp.status_code < 300:
            raise BrokerError(resp.status_code, resp.text[:500])
        return resp

    async def list_users(self) -> list[str]:
        resp = await self._call("GET", "/api/users")
        return [str(u.get("name")) for u in resp.json()]

    async def put_user(self, username: str, password: str, tags: str) -> None:
        await self._call("PUT", f"/api/users/{_seg(username)}", {"password": password, "tags": tags})

    async def delete_user(self, username: str) -> bool:
        """Delete the user; False if there was none (a repeated revoke, a rollback of a create that
        never happened)."""
        try:
            await self._call("DELETE", f"/api/users/{_seg(username)}")
        except BrokerError as e:
            if e.status == 404:
                return False
            raise
        return True

    async def set_permissions(self, vhost: str, username: str, configure: str, write: str, read: str) -> None:
        await self._call("PUT", f"/api/permissions/{_seg(vhost)}/{_seg(username)}",
                         {"configure": configure, "write": write, "read": read})

    async def set_topic_permissions(self, vhost: str, username: str, exchange: str, write: str, read: str) -> None:
        await self._call("PUT", f"/api/topic-permissions/{_seg(vhost)}/{_seg(username)}",
                         {"exchange": exchange, "write": write, "read": read})

    async def aclose(self) -> None:
        await self._http.aclose()


__all__ = ["BrokerError", "ManagementClient"]
