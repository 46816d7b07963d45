"""transit mounted in a real core: keys stored through the barrier, the cache follows Core.invalidate."""

from __future__ import annotations

import base64
import json

from strongroom.testing import app_client, unsealed_core

HELLO = base64.b64encode(b"hello").decode()


async def test_keys_are_encrypted_at_rest_and_the_cache_follows_invalidation() -> None:
    async with unsealed_core() as (core, root), app_client(core, root) as c:
        assert (await c.post("/v1/sys/mounts/transit", json={"type": "transit"})).status_code == 204
        assert (await c.post("/v1/transit/keys/k", json={})).status_code == 200
        ct = (await c.post("/v1/transit/encrypt/k", json={"plaintext": HELLO})).json()["data"]["ciphertext"]
        entry = core.mounts.find("mounts", "transit/")
        assert entry is not None
        key = f"logical/{entry.uuid}/policy/k"
        stored = await core.barrier.get(key)
        assert stored is not None
        material = json.loads(stored)["keys"]["1"]["key"]
        raw = await core.physical.get(key)
        assert raw is not None and material.encode() not in raw and b"hmac_key" not in raw
        # Another node rotates the key (a write behind this node's back), then says so.
        policy = json.loads(stored)
        policy["keys"]["2"] = policy["keys"]["1"]
        policy["latest_version"] = 2
        await core.barrier.put(key, json.dumps(policy).encode())
        assert (await c.get("/v1/transit/keys/k")).json()["data"]["latest_version"] == 1  # still cached
        await core.invalidate(key)
        assert (await c.get("/v1/transit/keys/k")).json()["data"]["latest_version"] == 2
        out = await c.post("/v1/transit/encrypt/k", json={"plaintext": HELLO})
        assert out.json()["data"]["key_version"] == 2
        out = await c.post("/v1/transit/decrypt/k", json={"ciphertext": ct})
        assert out.json()["data"]["plaintext"] == HELLO
