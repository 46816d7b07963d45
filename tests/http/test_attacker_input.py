"""Input an attacker would send: absurd numbers, deep JSON, NUL bytes, limited tokens. Each gets a
4xx in Vault's envelope (status and wording checked against OpenBao), is logged if it is a 500,
and a refused request changes no state."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from strongroom.core import Core, CoreConfig
from strongroom.core.audit import AuditConfig
from strongroom.framework.fields import MAX_JSON_DEPTH
from strongroom.storage.inmem import InmemStorage
from strongroom.testing import app_client, unsealed_core


def _state(core: Core) -> dict[str, bytes]:
    storage = core.physical
    assert isinstance(storage, InmemStorage)
    return dict(storage._data)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    config = CoreConfig(audit=AuditConfig(allow_api_creation=True))
    async with unsealed_core(config=config) as (core, root), app_client(core, root) as c:
        c.core = core  # type: ignore[attr-defined]
        r = await c.put("/v1/sys/audit/file", json={"type": "file", "options": {"file_path": str(tmp_path / "a.log")}})
        assert r.status_code == 204, r.text
        yield c


async def refused(c: httpx.AsyncClient, method: str, path: str, status: int = 400, **kw: Any) -> str:
    """The one error message of a refused request, which must have changed nothing stored."""
    before = _state(c.core)  # type: ignore[attr-defined]
    r = await c.request(method, path, **kw)
    assert r.status_code == status, r.text
    assert set(r.json()) == {"errors"} and len(r.json()["errors"]) == 1, r.text
    assert _state(c.core) == before  # type: ignore[attr-defined]
    return str(r.json()["errors"][0])


async def test_a_huge_mount_ttl_is_400_and_mounts_still_list(client: httpx.AsyncClient) -> None:
    # 1e100 used to be stored as an int no JSON encoder takes: 500, then sys/mounts 500 until restart.
    for ttl in (1e100, 9223372037, "99999999999999999999h"):
        msg = await refused(client, "POST", "/v1/sys/mounts/x", json={"type": "kv", "config": {"default_lease_ttl": ttl}})
        assert msg.startswith('error converting input for field "default_lease_ttl"') and "too long" in msg
    assert (await client.get("/v1/sys/mounts")).status_code == 200
    r = await client.post("/v1/sys/mounts/y", json={"type": "kv", "config": {"max_lease_ttl": 9223372036}})
    assert r.status_code == 204  # Go's longest duration is fine, as in OpenBao
    assert (await client.get("/v1/sys/mounts")).json()["y/"]["config"]["max_lease_ttl"] == 9223372036
    assert (await client.post("/v1/y/k", json={"a": 1})).status_code == 204


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/v1/auth/token/create", {"num_uses": 1e100}, "num_uses"),
    ("/v1/auth/token/create", {"num_uses": 2**63}, "num_uses"),
    ("/v1/secret/config", {"max_versions": 1e100}, "max_versions"),
    ("/v1/secret/config", {"max_versions": 2**64}, "max_versions"),
    ("/v1/secret/metadata/m", {"max_versions": 2**64}, "max_versions"),
    ("/v1/secret/metadata/m", {"delete_version_after": 1e100}, "delete_version_after"),
    ("/v1/secret/config", {"delete_version_after": "9" * 400 + "h"}, "delete_version_after"),
])
async def test_huge_numbers_are_400_naming_the_field(client: httpx.AsyncClient, path: str, body: dict[str, Any],
                                                    field: str) -> None:
    msg = await refused(client, "POST", path, json=body)
    assert msg.startswith(f'error converting input for field "{field}"')
    assert (await client.get("/v1/secret/config")).status_code == 200


async def test_a_huge_wrap_ttl_header_is_400(client: httpx.AsyncClient) -> None:
    assert (await client.post("/v1/secret/data/w", json={"data": {"a": 1}})).status_code == 200
    for ttl in ("1e100", "99999999999", "9" * 31):
        msg = await refused(client, "GET", "/v1/secret/data/w", headers={"X-Vault-Wrap-TTL": ttl})
        assert msg.startswith("error parsing X-Vault-Wrap-TTL header: ")
    r = await client.get("/v1/secret/data/w", headers={"X-Vault-Wrap-TTL": "9223372036"})
    assert r.status_code == 200 and r.json()["wrap_info"]["ttl"] == 9223372036  # as OpenBao


def _nested(depth: int) -> bytes:
    """A kv-v2 write whose secret value nests ``depth`` levels below the body object."""
    return b'{"data": {"k": ' + b"[" * (depth - 2) + b"]" * (depth - 2) + b"}}"


async def test_deep_json_is_400_at_the_edge(client: httpx.AsyncClient) -> None:
    for depth in (MAX_JSON_DEPTH + 1, 300, 5000):
        msg = await refused(client, "POST", "/v1/secret/data/deep", content=_nested(depth))
        assert "nested too deeply" in msg or "depth limit exceeded" in msg  # the latter: orjson's own
    assert (await client.get("/v1/secret/data/deep")).status_code == 404
    # As deep as allowed is stored, read back (wrapped too) and audited.
    r = await client.post("/v1/secret/data/deep", content=_nested(MAX_JSON_DEPTH))
    assert r.status_code == 200, r.text
    assert (await client.get("/v1/secret/data/deep")).status_code == 200
    wrapped = await client.get("/v1/secret/data/deep", headers={"X-Vault-Wrap-TTL": "60"})
    assert wrapped.status_code == 200
    r = await client.post("/v1/sys/wrapping/unwrap", json={"token": wrapped.json()["wrap_info"]["token"]})
    assert r.status_code == 200, r.text
    # Brackets inside strings are not nesting.
    r = await client.post("/v1/secret/data/brackets", json={"data": {"k": "[" * 1000}})
    assert r.status_code == 200


async def test_an_unexpected_500_is_logged(client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch,
                                           caplog: pytest.LogCaptureFixture) -> None:
    core: Core = client.core  # type: ignore[attr-defined]
    hit = core.router.match("secret/data/x")
    assert hit is not None and hit[0].backend is not None

    async def broken(req: object) -> None:
        raise RuntimeError("the detail the operator needs")

    monkeypatch.setattr(hit[0].backend, "handle", broken)
    with caplog.at_level(logging.ERROR, logger="strongroom.http"):
        r = await client.get("/v1/secret/data/x")
    assert r.status_code == 500 and r.json() == {"errors": ["internal error"]}
    assert "the detail the operator needs" not in r.text
    logged = [rec for rec in caplog.records if rec.exc_info]
    assert logged and "the detail the operator needs" in str(logged[0].exc_info[1])  # type: ignore[index]


@pytest.mark.parametrize("char", ["\x00", "\x01", "\t", "\n", "\x7f", "\u200b"])
async def test_non_printable_paths_are_400(client: httpx.AsyncClient, char: str) -> None:
    # OpenBao answers 400 to any request path holding a character Go's unicode.IsPrint refuses.
    quoted = "".join(f"%{b:02X}" for b in char.encode())
    for method, path, body in [
        ("POST", f"/v1/sys/mounts/nul{quoted}x", {"type": "kv"}),
        ("POST", f"/v1/sys/policy/nul{quoted}p", {"policy": 'path "a" { capabilities = ["read"] }'}),
        ("POST", f"/v1/sys/policies/acl/nul{quoted}p", {"policy": 'path "a" { capabilities = ["read"] }'}),
        ("POST", f"/v1/secret/data/nul{quoted}s", {"data": {"a": 1}}),
        ("POST", f"/v1/cubbyhole/nul{quoted}s", {"a": 1}),
        ("GET", f"/v1/secret/data/nul{quoted}s", None),
        ("GET", f"/v1/sys/health{quoted}", None),
    ]:
        msg = await refused(client, method, path, json=body)
        assert msg == "path cannot contain non-printable characters"
    # Printable non-ASCII is fine, as in OpenBao.
    assert (await client.post("/v1/secret/data/caf%C3%A9", json={"data": {"a": 1}})).status_code == 200


async def test_nul_in_a_mount_path_or_policy_name_from_anywhere_is_400(client: httpx.AsyncClient) -> None:
    from strongroom.core.mounts import normalize_path
    from strongroom.core.policy import normalize_name
    from strongroom.errors import InvalidRequest

    for bad in ("a\x00b", "a\nb"):
        with pytest.raises(InvalidRequest, match="non-printable"):
            normalize_path(bad)
        with pytest.raises(InvalidRequest, match="non-printable"):
            normalize_name(bad)
    msg = await refused(client, "POST", "/v1/sys/remount", json={"from": "secret", "to": "a\x00b"})
    assert "non-printable" in msg


async def test_wrong_methods_on_logical_paths_answer_as_openbao(client: httpx.AsyncClient) -> None:
    assert (await client.post("/v1/secret/data/m", json={"data": {"a": 1}})).status_code == 200
    for path in ("/v1/secret/data/m", "/v1/auth/token/lookup-self", "/v1/cubbyhole/m", "/v1/sys/mounts"):
        # OpenBao: HEAD is 405 on logical paths (only sealed-safe sys/ endpoints such as sys/health serve it).
        assert (await client.head(path)).status_code == 405, path
        for method in ("TRACE", "PROPFIND", "CONNECT"):
            assert (await refused(client, method, path, 405)).startswith("unsupported method"), (method, path)
        assert (await client.options(path)).status_code == 400, path  # OpenBao: 400 without CORS
    assert (await client.head("/v1/sys/health")).status_code == 200
