"""A server without ha_enabled behaves as before: always active, no redirects; sys/ha-status lists
just this node, as OpenBao's single node does."""

from __future__ import annotations

from strongroom.core import Core, CoreConfig
from strongroom.storage.inmem import InmemStorage
from strongroom.testing import app_client


async def test_single_node_is_active_and_lists_itself() -> None:
    core = Core(InmemStorage(), CoreConfig(api_addr="http://127.0.0.1:8200"))
    _key, root = await core.dev_bootstrap("root")
    try:
        assert core.ha is None and core.serving_active
        async with app_client(core, root) as c:
            assert (await c.get("/v1/sys/leader")).json() == {"ha_enabled": False}
            assert (await c.get("/v1/sys/health")).status_code == 200
            status = (await c.get("/v1/sys/ha-status")).json()
            nodes = status["data"]["nodes"]
            assert len(nodes) == 1 and nodes[0]["active_node"] is True
            assert nodes[0]["api_address"] == "http://127.0.0.1:8200" and nodes[0]["last_echo"] is None
            assert status["nodes"] == nodes
            assert (await c.put("/v1/sys/step-down")).status_code == 204  # nothing to step down from
            assert (await c.get("/v1/sys/health")).status_code == 200
    finally:
        await core.seal()
