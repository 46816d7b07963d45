"""sys/policy and sys/policies/acl over HTTP: policy text sent base64-encoded, as OpenBao accepts it."""

from __future__ import annotations

import base64

from strongroom.testing import asgi_client, unsealed_core

RULES = 'path "secret/data/*" {\n  capabilities = ["read"]\n}\n'


async def test_policy_text_may_be_sent_base64_encoded() -> None:
    encoded = base64.b64encode(RULES.encode()).decode()
    wrapped = "\n".join(encoded[i:i + 20] for i in range(0, len(encoded), 20))  # line breaks are ignored
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        for path, field, text in (("sys/policies/acl/b64", "policy", encoded), ("sys/policy/b64-legacy", "policy", encoded),
                                  ("sys/policy/b64-rules", "rules", wrapped)):
            assert (await c.put(f"/v1/{path}", json={field: text})).status_code == 204, path
        assert (await c.get("/v1/sys/policies/acl/b64")).json()["data"]["policy"] == RULES
        assert (await c.get("/v1/sys/policy/b64-legacy")).json()["rules"] == RULES
        assert (await c.get("/v1/sys/policies/acl/b64-rules")).json()["data"]["policy"] == RULES
        # The decoded policy is the one in force.
        token = (await c.post("/v1/auth/token/create", json={"policies": ["b64"]})).json()["auth"]["client_token"]
        await c.post("/v1/secret/data/x", json={"data": {"v": 1}})
        assert (await c.get("/v1/secret/data/x", headers={"X-Vault-Token": token})).status_code == 200
        # Base64 of something that is no policy is still refused, and plain text stays as sent.
        bad = base64.b64encode(b"not a policy").decode()
        assert (await c.put("/v1/sys/policies/acl/bad", json={"policy": bad})).status_code == 400
        assert (await c.put("/v1/sys/policies/acl/plain", json={"policy": RULES})).status_code == 204
        assert (await c.get("/v1/sys/policies/acl/plain")).json()["data"]["policy"] == RULES
