"""The sealed-safe sys endpoints: init, unseal, seal, seal-status, health, leader; and key-status/rotate."""

from __future__ import annotations

import base64

from strongroom.core import Core
from strongroom.storage.inmem import InmemStorage
from strongroom.testing import asgi_client


async def test_init_unseal_seal_cycle() -> None:
    core = Core(InmemStorage())
    async with asgi_client(core) as c:
        assert (await c.get("/v1/sys/init")).json() == {"initialized": False}
        assert (await c.get("/v1/sys/health")).status_code == 501
        assert (await c.get("/v1/secret/data/x")).status_code == 503

        r = await c.put("/v1/sys/init", json={"secret_shares": 5, "secret_threshold": 3})
        assert r.status_code == 200
        init = r.json()
        assert len(init["keys"]) == 5 and len(init["keys_base64"]) == 5
        root = init["root_token"]
        assert root.startswith("hvs.") and len(root) == len("hvs.") + 24
        assert (await c.put("/v1/sys/init", json={"secret_shares": 5, "secret_threshold": 3})).status_code == 400

        status = (await c.get("/v1/sys/seal-status")).json()
        assert (status["sealed"], status["t"], status["n"], status["progress"]) == (True, 3, 5, 0)
        assert (await c.get("/v1/sys/health")).status_code == 503
        assert (await c.get("/v1/sys/health", params={"sealedcode": 299})).status_code == 299

        first = (await c.put("/v1/sys/unseal", json={"key": init["keys"][0]})).json()
        assert first["progress"] == 1 and first["nonce"]
        # The same share again does not count twice.
        again = await c.put("/v1/sys/unseal", json={"key": init["keys"][0]})
        assert again.status_code in (200, 400) and (await c.get("/v1/sys/seal-status")).json()["progress"] == 1
        # hex and base64 are both accepted
        await c.put("/v1/sys/unseal", json={"key": init["keys_base64"][1]})
        done = (await c.put("/v1/sys/unseal", json={"key": init["keys"][2]})).json()
        assert done["sealed"] is False and done["progress"] == 0

        health = await c.get("/v1/sys/health")
        assert health.status_code == 200 and health.json()["initialized"] is True
        assert (await c.head("/v1/sys/health")).status_code == 200
        assert (await c.get("/v1/sys/health", params={"activecode": 204})).status_code == 204
        assert (await c.get("/v1/sys/leader")).json() == {"ha_enabled": False}

        # sys/seal needs a token with sudo
        assert (await c.put("/v1/sys/seal")).status_code == 403
        assert (await c.put("/v1/sys/seal", headers={"X-Vault-Token": root})).status_code == 204
        assert (await c.get("/v1/sys/seal-status")).json()["sealed"] is True


async def test_wrong_unseal_keys() -> None:
    core = Core(InmemStorage())
    async with asgi_client(core) as c:
        init = (await c.put("/v1/sys/init", json={"secret_shares": 3, "secret_threshold": 2})).json()
        r = await c.put("/v1/sys/unseal", json={"key": "not-hex-or-base64!"})
        assert r.status_code == 400 and "hex or base64" in r.json()["errors"][0]
        assert (await c.get("/v1/sys/seal-status")).json()["progress"] == 0
        wrong = base64.b64encode(b"\x01" * 33).decode()
        await c.put("/v1/sys/unseal", json={"key": wrong})
        r = await c.put("/v1/sys/unseal", json={"key": init["keys"][0]})
        assert r.status_code == 400  # threshold reached with a bad share: refused, progress reset
        status = (await c.get("/v1/sys/seal-status")).json()
        assert status["sealed"] is True and status["progress"] == 0
        await c.put("/v1/sys/unseal", json={"key": init["keys"][1]})
        assert (await c.put("/v1/sys/unseal", json={"reset": True})).json()["progress"] == 0
        for k in init["keys"][:2]:
            r = await c.put("/v1/sys/unseal", json={"key": k})
        assert r.json()["sealed"] is False
        r = await c.put("/v1/sys/unseal", json={"key": init["keys"][0]})
        assert r.status_code == 200 and r.json()["sealed"] is False  # as OpenBao: the seal status


async def test_unseal_answers_as_openbao() -> None:
    """A share already given: 200, progress unchanged. A malformed share (too short or long, not
    hex/base64): 400, progress unchanged. An unsealed server: 200 with the seal status, except for
    a share it cannot decode, no share, or a reset (400)."""
    core = Core(InmemStorage())
    async with asgi_client(core) as c:
        init = (await c.put("/v1/sys/init", json={"secret_shares": 3, "secret_threshold": 2})).json()
        first = (await c.put("/v1/sys/unseal", json={"key": init["keys"][0]})).json()
        assert first["progress"] == 1
        for key in (init["keys"][0], init["keys_base64"][0]):
            r = await c.put("/v1/sys/unseal", json={"key": key})
            assert r.status_code == 200 and r.json() == first
        for key, error in (("abcd", "invalid key: key is shorter than minimum 16 bytes"),
                           ("ab" * 34, "invalid key: key is longer than maximum 33 bytes"),
                           ("zz!!", "'key' must be a valid hex or base64 string"),
                           ("abc", "'key' must be a valid hex or base64 string")):
            r = await c.put("/v1/sys/unseal", json={"key": key})
            assert (r.status_code, r.json()) == (400, {"errors": [error]}), key
            assert (await c.get("/v1/sys/seal-status")).json() == first
        done = (await c.put("/v1/sys/unseal", json={"key": init["keys"][1]})).json()
        assert done["sealed"] is False

        status = (await c.get("/v1/sys/seal-status")).json()
        for key in (init["keys"][2], "abcd"):
            r = await c.put("/v1/sys/unseal", json={"key": key})
            assert (r.status_code, r.json()) == (200, status)
        for body, error in (({"key": "zz!!"}, "'key' must be a valid hex or base64 string"),
                            ({}, "'key' must be specified in request body as JSON, or 'reset' set to true"),
                            ({"reset": True}, "vault is unsealed")):
            r = await c.put("/v1/sys/unseal", json=body)
            assert (r.status_code, r.json()) == (400, {"errors": [error]}), body


async def test_init_validation_and_pgp_refused() -> None:
    core = Core(InmemStorage())
    async with asgi_client(core) as c:
        for body in ({"secret_shares": 2, "secret_threshold": 3}, {"secret_shares": 0, "secret_threshold": 0},
                     {"secret_shares": "five", "secret_threshold": 3}, {"secret_shares": 300, "secret_threshold": 2}):
            r = await c.put("/v1/sys/init", json=body)
            assert r.status_code == 400, body
        r = await c.put("/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1, "pgp_keys": ["abc"]})
        assert r.status_code == 400 and "not supported yet" in r.json()["errors"][0]
        assert (await c.get("/v1/sys/init")).json() == {"initialized": False}


async def test_key_status_and_rotate() -> None:
    core = Core(InmemStorage())
    async with asgi_client(core) as c:
        init = (await c.put("/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1})).json()
        await c.put("/v1/sys/unseal", json={"key": init["keys"][0]})
        h = {"X-Vault-Token": init["root_token"]}
        await c.post("/v1/sys/mounts/kv", json={"type": "kv"}, headers=h)
        await c.post("/v1/kv/a", json={"v": "old"}, headers=h)
        assert (await c.get("/v1/sys/key-status", headers=h)).json()["data"]["term"] == 1
        assert (await c.post("/v1/sys/rotate", headers=h)).status_code == 204
        assert (await c.get("/v1/sys/key-status", headers=h)).json()["term"] == 2
        await c.post("/v1/kv/b", json={"v": "new"}, headers=h)
        assert (await c.get("/v1/kv/a", headers=h)).json()["data"] == {"v": "old"}
        assert (await c.get("/v1/kv/b", headers=h)).json()["data"] == {"v": "new"}


async def test_wrong_methods_on_the_sealed_safe_endpoints_are_405() -> None:
    """As OpenBao: health answers GET and HEAD; init GET, PUT, POST; seal-status and leader GET;
    unseal, seal and step-down PUT and POST. LIST (a GET with ?list=true here) is 405 on each."""
    allowed = {"sys/health": {"GET", "HEAD"}, "sys/init": {"GET", "PUT", "POST"}, "sys/seal-status": {"GET"},
               "sys/leader": {"GET"}, "sys/unseal": {"PUT", "POST"}, "sys/seal": {"PUT", "POST"},
               "sys/step-down": {"PUT", "POST"}}
    core = Core(InmemStorage())
    await core.dev_bootstrap("root")
    try:
        async with asgi_client(core, "root") as c:
            for path, methods in allowed.items():
                for method in ("GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "TRACE", "LIST"):
                    if method in methods:
                        continue
                    r = await c.request(method, f"/v1/{path}", headers={"Content-Type": "application/merge-patch+json"})
                    assert r.status_code == 405, (method, path)
                for method in ("GET", "HEAD"):
                    r = await c.request(method, f"/v1/{path}", params={"list": "true"})
                    assert r.status_code == 405, ("LIST", path)
            assert (await c.get("/v1/sys/health")).status_code == 200
            assert (await c.head("/v1/sys/health")).status_code == 200
            assert (await c.get("/v1/sys/seal-status")).status_code == 200
            assert (await c.get("/v1/sys/leader")).status_code == 200
            assert (await c.get("/v1/sys/init")).status_code == 200
    finally:
        await core.seal()
