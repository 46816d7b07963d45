"""Bad input of every kind gets a clear 4xx in Vault's envelope and changes nothing."""

from __future__ import annotations

import httpx
import pytest

from strongroom.core import Core
from strongroom.storage.inmem import InmemStorage
from strongroom.testing import asgi_client, unsealed_core


async def _snapshot(core: Core) -> dict[str, bytes]:
    storage = core.physical
    assert isinstance(storage, InmemStorage)
    return dict(storage._data)


@pytest.fixture
async def client() -> httpx.AsyncClient:
    async with unsealed_core() as (core, root), asgi_client(core, root, max_request_size=4096) as c:
        c.core = core  # type: ignore[attr-defined]
        await c.post("/v1/secret/data/existing", json={"data": {"k": "v"}})
        yield c


def _errors(r: httpx.Response) -> list[str]:
    body = r.json()
    assert set(body) == {"errors"}, body
    return body["errors"]


async def test_malformed_json_is_400_and_writes_nothing(client: httpx.AsyncClient) -> None:
    before = await _snapshot(client.core)  # type: ignore[attr-defined]
    r = await client.post("/v1/secret/data/new", content=b'{"data": {"k": ')
    assert r.status_code == 400 and "failed to parse JSON" in _errors(r)[0]
    r = await client.post("/v1/secret/data/new", content=b'["not", "an", "object"]')
    assert r.status_code == 400
    assert await _snapshot(client.core) == before  # type: ignore[attr-defined]


async def test_wrong_types_are_400(client: httpx.AsyncClient) -> None:
    before = await _snapshot(client.core)  # type: ignore[attr-defined]
    r = await client.post("/v1/auth/token/create", json={"ttl": "a fortnight"})
    assert r.status_code == 400 and "ttl" in _errors(r)[0]
    r = await client.post("/v1/sys/mounts/x", json={"type": "kv", "config": {"max_lease_ttl": "forever"}})
    assert r.status_code == 400
    r = await client.post("/v1/secret/data/existing", json={"data": "not a map"})
    assert r.status_code == 400
    assert await _snapshot(client.core) == before  # type: ignore[attr-defined]


async def test_unknown_paths_and_missing_secrets(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/nothing/mounted/here")
    assert r.status_code == 404 and "no handler for route" in _errors(r)[0]
    r = await client.get("/v1/secret/data/missing")
    assert r.status_code == 404 and _errors(r) == []
    r = await client.get("/v1/sys/no-such-endpoint")
    assert r.status_code == 404
    r = await client.get("/not-v1")
    assert r.status_code == 404


async def test_wrong_methods_are_405(client: httpx.AsyncClient) -> None:
    r = await client.delete("/v1/sys/key-status")
    assert r.status_code == 405
    r = await client.get("/v1/sys/unseal")
    assert r.status_code == 405
    r = await client.request("TRACE", "/v1/secret/data/existing")
    assert r.status_code == 405


async def test_oversized_body_is_413(client: httpx.AsyncClient) -> None:
    before = await _snapshot(client.core)  # type: ignore[attr-defined]
    r = await client.post("/v1/secret/data/big", json={"data": {"blob": "x" * 10000}})
    assert r.status_code == 413 and _errors(r)
    assert await _snapshot(client.core) == before  # type: ignore[attr-defined]


async def test_invalid_policies_are_400_naming_the_problem(client: httpx.AsyncClient) -> None:
    before = await _snapshot(client.core)  # type: ignore[attr-defined]
    r = await client.put("/v1/sys/policies/acl/bad", json={"policy": 'path "secret/*" { capabilities = ["read"'})
    assert r.status_code == 400 and "parse" in _errors(r)[0]
    r = await client.put("/v1/sys/policy/bad", json={"policy": 'path "a/*" { capabilities = ["fly"] }'})
    assert r.status_code == 400 and "fly" in _errors(r)[0]
    r = await client.put("/v1/sys/policy/root", json={"policy": 'path "a" { capabilities = ["read"] }'})
    assert r.status_code == 400
    r = await client.delete("/v1/sys/policy/default")
    assert r.status_code == 400
    assert await _snapshot(client.core) == before  # type: ignore[attr-defined]
    assert (await client.get("/v1/sys/policy/bad")).status_code == 404


async def test_patch_needs_merge_patch_content_type(client: httpx.AsyncClient) -> None:
    r = await client.patch("/v1/secret/data/existing", json={"data": {"k": "w"}})
    assert r.status_code == 415
    r = await client.patch("/v1/secret/data/existing", content=b'{"data": {"k": "w"}}',
                           headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200
    assert (await client.get("/v1/secret/data/existing")).json()["data"]["data"] == {"k": "w"}


async def test_missing_and_bad_tokens_are_403(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/secret/data/existing", headers={"X-Vault-Token": "hvs.nope"})
    assert r.status_code == 403 and _errors(r) == ["permission denied"]
    client.headers.pop("X-Vault-Token")
    r = await client.get("/v1/secret/data/existing")
    assert r.status_code == 403
    token = "root"
    r = await client.get("/v1/secret/data/existing", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200


async def test_list_method_and_query_form() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        await c.post("/v1/secret/data/a/b", json={"data": {"x": 1}})
        r1 = await c.request("LIST", "/v1/secret/metadata/a")
        r2 = await c.get("/v1/secret/metadata/a", params={"list": "true"})
        assert r1.status_code == r2.status_code == 200
        assert r1.json()["data"] == r2.json()["data"] == {"keys": ["b"]}


async def test_request_ids_are_unique() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        ids = {(await c.get("/v1/auth/token/lookup-self")).json()["request_id"] for _ in range(3)}
        assert len(ids) == 3


async def test_unexpected_exception_is_500_without_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        async def boom(req: object) -> None:
            raise RuntimeError("secret detail that must not leak")

        monkeypatch.setattr(core, "handle_request", boom)
        r = await c.get("/v1/secret/data/x")
        assert r.status_code == 500 and r.json() == {"errors": ["internal error"]}
