"""One pooled HTTP client per mount, for backends that call an outside API (github, okta, aws): made
on first use, closed when the mount stops. Never follows redirects (the configured endpoint is the
only target) and ignores proxy settings from the environment."""

from __future__ import annotations

import httpx


class PooledClient:
    def __init__(self, max_connections: int, max_keepalive_connections: int | None = None) -> None:
        self._limits = httpx.Limits(max_connections=max_connections,
                                    max_keepalive_connections=max_keepalive_connections)
        self._client: httpx.AsyncClient | None = None

    def get(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False, limits=self._limits)
        return self._client

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
