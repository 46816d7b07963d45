"""sys/policies/password over HTTP (in-process), and named policies reaching every mount's
SystemView.generate_password, with the cache invalidated on write, delete and Core.invalidate."""

from __future__ import annotations

import base64

import pytest

from strongroom.core.password_policies import parse_password_policy
from strongroom.errors import InvalidRequest
from strongroom.testing import asgi_client, unsealed_core

POLICY = 'length = 20\nrule "charset" {\n  charset = "abc"\n  min-chars = 1\n}\nrule "charset" {\n  charset = "789"\n  min-chars = 3\n}\n'
DIGITS = 'length = 12\nrule "charset" {\n  charset = "0123456789"\n}\n'


async def test_write_read_generate_list_delete() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        r = await c.request("LIST", "/v1/sys/policies/password")
        assert r.status_code == 404 and r.json() == {"errors": []}  # as Vault: an empty list is a 404
        assert (await c.put("/v1/sys/policies/password/p", json={"policy": POLICY})).status_code == 204
        r = await c.get("/v1/sys/policies/password/p")
        assert r.status_code == 200 and r.json()["data"] == {"policy": POLICY}
        seen = set()
        for _ in range(20):
            pw = (await c.get("/v1/sys/policies/password/p/generate")).json()["data"]["password"]
            assert len(pw) == 20 and set(pw) <= set("abc789")
            assert sum(ch in "abc" for ch in pw) >= 1 and sum(ch in "789" for ch in pw) >= 3
            seen.add(pw)
        assert len(seen) == 20  # a fresh password each time: never a remembered answer
        assert (await c.request("LIST", "/v1/sys/policies/password")).json()["data"]["keys"] == ["p"]
        assert (await c.delete("/v1/sys/policies/password/p")).status_code == 204
        assert (await c.delete("/v1/sys/policies/password/p")).status_code == 204  # idempotent, as Vault
        assert (await c.request("LIST", "/v1/sys/policies/password")).status_code == 404
        for path in ("/v1/sys/policies/password/p", "/v1/sys/policies/password/p/generate"):
            r = await c.get(path)
            assert r.status_code == 404 and r.json() == {"errors": ["policy does not exist"]}


async def test_stored_through_the_barrier_and_base64_accepted() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        encoded = base64.b64encode(DIGITS.encode()).decode()
        assert (await c.put("/v1/sys/policies/password/b64", json={"policy": encoded})).status_code == 204
        assert (await c.get("/v1/sys/policies/password/b64")).json()["data"]["policy"] == DIGITS
        assert await core.barrier.get("sys/password_policy/b64") is not None
        raw = b"".join(core.physical._data.values())  # type: ignore[attr-defined]
        assert b"0123456789" not in raw and b"charset" not in raw  # encrypted at rest


@pytest.mark.parametrize(("text", "message"), [
    ("{{{", "invalid password policy: unable to decode:"),
    ('length = "abc"', "'length' expected type 'int', got unconvertible type 'string'"),
    ("length = 5", "invalid password policy: 1 error occurred:\n\t* no charset specified\n\n"),
    ("length = 0", "invalid password policy: 2 errors occurred:\n\t* length must be > 0\n\t* no charset specified\n\n"),
    ('length = 3\nrule "charset" {\n charset = "abc"\n}', "passwords must be between 4 and 100 characters"),
    ('length = 101\nrule "charset" {\n charset = "abc"\n}', "passwords must be between 4 and 100 characters"),
    ('length = 5\nrule "charset" {\n charset = "abc"\n min-chars = 6\n}',
     "specified rules require at least 6 characters but 5 is specified"),
    ('length = 10\nrule "foo" {\n charset = "a"\n}', "unable to parse rule foo: unrecognized rule type foo"),
    ('length = 10\nrule "charset" {\n charset = ""\n}', "no charset specified"),
    ('length = 10\nrule "charset" {\n charset = "ab"\n min-chars = "3"\n}', "'min-chars' expected type 'int'"),
    ('length = 10\nrule {\n charset = "ab"\n}', "unable to parse rules"),
])
async def test_invalid_or_impossible_policies_are_400(text: str, message: str) -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        r = await c.put("/v1/sys/policies/password/bad", json={"policy": text})
        assert r.status_code == 400, r.text
        assert message in r.json()["errors"][0]
        assert (await c.get("/v1/sys/policies/password/bad")).status_code == 404  # nothing written


async def test_missing_policy_field_is_400() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        for body in ({}, {"policy": ""}):
            r = await c.put("/v1/sys/policies/password/x", json=body)
            assert r.status_code == 400 and r.json() == {"errors": ["missing policy"]}


def test_lenient_like_vault() -> None:
    # Vault accepts unknown keys, floats for ints and negative min-chars (as 0).
    policy = parse_password_policy('foo = 1\nlength = 10.0\nrule "charset" {\n charset = "ab"\n min-chars = -1\n bogus = 2\n}')
    assert policy.length == 10 and policy.rules[0].min_chars == 0
    with pytest.raises(InvalidRequest):
        parse_password_policy('length = true\nrule "charset" {\n charset = "ab"\n}')


async def test_mount_system_view_resolves_named_policies_and_sees_changes() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        entry = core.mounts.find("mounts", "secret/")
        assert entry is not None and entry.backend is not None
        system = entry.backend.system
        assert len(await system.generate_password()) == 20  # the default policy
        with pytest.raises(InvalidRequest, match='policy "p" not found'):
            await system.generate_password("p")
        await c.put("/v1/sys/policies/password/p", json={"policy": DIGITS})
        pw = await system.generate_password("p")
        assert len(pw) == 12 and pw.isdigit()
        # A write replaces the cached policy at once.
        await c.put("/v1/sys/policies/password/p", json={"policy": 'length = 30\nrule "charset" {\n charset = "x"\n}'})
        assert await system.generate_password("p") == "x" * 30
        # A write behind the store's back (another node, a restore) reaches it through Core.invalidate.
        await core.barrier.put("sys/password_policy/p", b'{"policy": "length = 8\\nrule \\"charset\\" {\\n charset = \\"y\\"\\n}"}')
        assert await system.generate_password("p") == "x" * 30  # still cached
        await core.invalidate("sys/password_policy/p")
        assert await system.generate_password("p") == "y" * 8
        await c.delete("/v1/sys/policies/password/p")
        with pytest.raises(InvalidRequest, match="not found"):
            await system.generate_password("p")


async def test_policies_survive_seal_and_unseal() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        await c.put("/v1/sys/policies/password/keep", json={"policy": DIGITS})
        for _, part in reversed(core.parts):
            await part.deactivate()
        for _, part in core.parts:
            await part.setup()
        entry = core.mounts.find("mounts", "secret/")
        assert entry is not None and entry.backend is not None
        assert (await entry.backend.system.generate_password("keep")).isdigit()


async def test_acl_governs_the_paths() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        await c.put("/v1/sys/policies/password/p", json={"policy": DIGITS})
        await c.put("/v1/sys/policies/acl/gen", json={"policy": 'path "sys/policies/password/+/generate" { capabilities = ["read"] }'})
        tok = (await c.post("/v1/auth/token/create", json={"policies": ["gen"]})).json()["auth"]["client_token"]
        h = {"X-Vault-Token": tok}
        assert (await c.get("/v1/sys/policies/password/p/generate", headers=h)).status_code == 200
        assert (await c.get("/v1/sys/policies/password/p", headers=h)).status_code == 403
        assert (await c.put("/v1/sys/policies/password/p", json={"policy": DIGITS}, headers=h)).status_code == 403
