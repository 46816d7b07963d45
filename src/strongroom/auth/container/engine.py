"""Inspecting a container through the Docker Engine API on a unix socket (Docker or podman).

One pooled httpx client per socket path. :class:`EngineUnavailable` when the engine gives no usable
answer (login fails with 502); ``None`` when the engine does not know the container.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

API = "/v1.41"
# Full or short container IDs, or names (Docker's [a-zA-Z0-9][a-zA-Z0-9_.-]+): nothing else reaches a URL.
CONTAINER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


class EngineUnavailable(Exception):
    """The container engine could not be asked (socket missing, refused, timeout, garbage)."""


class EnginePool:
    def __init__(self) -> None:
        self._clients: dict[str, httpx.AsyncClient] = {}

    def client(self, socket: str, timeout: float) -> httpx.AsyncClient:
        c = self._clients.get(socket)
        if c is None:
            c = httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=socket), base_url="http://engine",
                                  timeout=timeout)
            self._clients[socket] = c
        return c

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for c in clients:
            await c.aclose()


async def inspect(client: httpx.AsyncClient, container: str) -> dict[str, Any] | None:
    try:
        r = await client.get(f"{API}/containers/{container}/json")
    except httpx.HTTPError as e:
        raise EngineUnavailable(str(e) or type(e).__name__) from None
    if r.status_code == 404:
        return None
    if r.status_code != 200:
        raise EngineUnavailable(f"inspect answered {r.status_code}")
    try:
        body = r.json()
    except ValueError:
        raise EngineUnavailable("inspect answered something that is not JSON") from None
    if not isinstance(body, dict):
        raise EngineUnavailable("inspect answered something that is not an object")
    return body


def addresses(info: dict[str, Any]) -> set[str]:
    """The container's IP addresses on all its networks."""
    out: set[str] = set()
    ns = info.get("NetworkSettings") or {}
    if not isinstance(ns, dict):
        return out
    for key in ("IPAddress", "GlobalIPv6Address"):
        if isinstance(ns.get(key), str) and ns[key]:
            out.add(ns[key])
    nets = ns.get("Networks") or {}
    if isinstance(nets, dict):
        for net in nets.values():
            if isinstance(net, dict):
                for key in ("IPAddress", "GlobalIPv6Address"):
                    if isinstance(net.get(key), str) and net[key]:
                        out.add(net[key])
    return out
