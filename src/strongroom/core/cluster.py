"""The cluster's name and id: made on the first unseal, kept under the barrier, reported by
sys/seal-status, sys/health and sys/leader."""

from __future__ import annotations

import secrets
import uuid

import orjson

from strongroom.lifecycle import Part
from strongroom.logical import Storage

# Barrier key of the cluster's name and id.
CLUSTER_KEY = "core/cluster-info"


class ClusterInfo(Part):
    def __init__(self, barrier: Storage, configured_name: str) -> None:
        self._barrier = barrier
        self.name = configured_name
        self.id = ""
        self._configured = configured_name

    async def setup(self) -> None:
        raw = await self._barrier.get(CLUSTER_KEY)
        if raw is None:
            info = {"name": self._configured or f"strongroom-cluster-{secrets.token_hex(4)}", "id": str(uuid.uuid4())}
            await self._barrier.put(CLUSTER_KEY, orjson.dumps(info))
        else:
            info = orjson.loads(raw)
        self.name, self.id = info["name"], info["id"]

    async def invalidate(self, key: str) -> None:
        if key == CLUSTER_KEY:
            await self.setup()
