"""External groups fed by a login that reports group names (Auth.group_aliases), and a login whose
method sets no alias (core's default alias name)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from tests.auth.conftest import Vault
from tests.identity.conftest import accessor

from strongroom.auth import AUTH_METHODS
from strongroom.framework import Backend, BackendConfig, Field, FieldData, FieldType, Op, Path, Request, Response
from strongroom.logical import Auth
from strongroom.testing import asgi_client, unsealed_core


async def _login(b: Backend, req: Request, d: FieldData) -> Response | None:
    groups = [g for g in (d.get("groups") or "").split(",") if g]
    return Response(auth=Auth(metadata={"username": d.get("user")}, display_name=d.get("user"),
                              group_aliases=groups))


class GroupsBackend(Backend):
    """A directory-like method: logs anyone in, reporting the groups it is told."""

    backend_type = "credential"

    def __init__(self, config: BackendConfig) -> None:
        super().__init__(config, [Path("login", fields={"user": Field(FieldType.STRING),
                                                        "groups": Field(FieldType.STRING)},
                                       operations={Op.UPDATE: _login}, unauthenticated=True)])


@pytest.fixture
async def gvault(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Vault]:
    monkeypatch.setitem(AUTH_METHODS, "groupstest", GroupsBackend)
    async with unsealed_core() as (core, _), asgi_client(core) as client:
        v = Vault(core, client)
        await v.done("POST", "sys/auth/dir", {"type": "groupstest"})
        yield v


async def test_reported_groups_set_external_membership(gvault: Vault) -> None:
    v = gvault
    acc = await accessor(v, "dir/")
    ops = (await v.ok("POST", "identity/group", {"name": "ops", "type": "external", "policies": "ops-p"}))["data"]["id"]
    dev = (await v.ok("POST", "identity/group", {"name": "dev", "type": "external", "policies": "dev-p"}))["data"]["id"]
    await v.ok("POST", "identity/group-alias", {"name": "cn=ops", "mount_accessor": acc, "canonical_id": ops})
    await v.ok("POST", "identity/group-alias", {"name": "cn=dev", "mount_accessor": acc, "canonical_id": dev})
    # An internal group containing the external one passes its policies on too.
    await v.ok("POST", "identity/group", {"name": "all", "policies": "all-p", "member_group_ids": [ops]})
    auth = (await v.ok("POST", "auth/dir/login", {"user": "ann", "groups": "cn=ops,cn=unknown"}, token=None))["auth"]
    eid = auth["entity_id"]
    assert auth["identity_policies"] == ["all-p", "ops-p"]
    assert (await v.ok("GET", f"identity/group/id/{ops}"))["data"]["member_entity_ids"] == [eid]
    ent = (await v.ok("GET", f"identity/entity/id/{eid}"))["data"]
    assert ent["aliases"][0]["name"] == "ann"  # default alias: the username in the metadata
    # The next login reports other groups: membership follows.
    auth = (await v.ok("POST", "auth/dir/login", {"user": "ann", "groups": "cn=dev"}, token=None))["auth"]
    assert auth["entity_id"] == eid and auth["identity_policies"] == ["dev-p"]
    assert (await v.ok("GET", f"identity/group/id/{ops}"))["data"]["member_entity_ids"] is None
