"""The identity API through real clients against a real server process: hvac's
``client.secrets.identity`` and the bao CLI (``bao write identity/entity``, ``bao login -method=userpass``)."""

from __future__ import annotations

import json

import hvac
from tests.compat.conftest import RunningServer, sqlite_server  # noqa: F401 (the fixture)
from tests.identity.conftest import hvac_unsealed


def test_hvac_identity_api_and_bao_cli(sqlite_server: RunningServer) -> None:  # noqa: F811
    s = sqlite_server
    client = hvac_unsealed(s)
    ident = client.secrets.identity
    made = ident.create_or_update_entity(name="bob", policies=["p1"], metadata={"team": "ops"})
    eid = made["data"]["id"]
    assert ident.read_entity(entity_id=eid)["data"]["policies"] == ["p1"]
    assert ident.read_entity_by_name(name="bob")["data"]["id"] == eid
    assert ident.list_entities()["data"]["keys"] == [eid]
    client.sys.enable_auth_method("userpass")
    acc = client.sys.list_auth_methods()["data"]["userpass/"]["accessor"]
    alias = ident.create_or_update_entity_alias(name="alice", canonical_id=eid, mount_accessor=acc)
    assert ident.read_entity_alias(alias_id=alias["data"]["id"])["data"]["canonical_id"] == eid
    group = ident.create_or_update_group(name="devs", policies=["reader"], member_entity_ids=[eid])
    gid = group["data"]["id"]
    assert ident.read_group(group_id=gid)["data"]["member_entity_ids"] == [eid]
    assert ident.lookup_entity(alias_name="alice", alias_mount_accessor=acc)["data"]["id"] == eid
    other = ident.create_or_update_entity(name="carol")["data"]["id"]
    ident.merge_entities(from_entity_ids=[other], to_entity_id=eid)
    assert ident.read_entity(entity_id=eid)["data"]["merged_entity_ids"] == [other]

    # The bao CLI: write an entity, log in through userpass, the token carries the aliased entity.
    out = s.bao("write", "-format=json", "identity/entity", "name=cli-made", "policies=a,b")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["data"]["name"] == "cli-made"
    read = json.loads(s.bao("read", "-format=json", "identity/entity/name/cli-made").stdout)
    assert read["data"]["policies"] == ["a", "b"]
    client.policy = None
    client.sys.create_or_update_policy("reader", 'path "secret/*" { capabilities = ["read"] }')
    client.write("auth/userpass/users/alice", password="pw")
    login = s.bao("login", "-format=json", "-method=userpass", "username=alice", "password=pw", token="")
    assert login.returncode == 0, login.stderr
    auth = json.loads(login.stdout)["auth"]
    assert auth["entity_id"] == eid and auth["identity_policies"] == ["p1", "reader"]
    looked = json.loads(s.bao("token", "lookup", "-format=json", auth["client_token"]).stdout)
    assert looked["data"]["entity_id"] == eid

    # Identity tokens through hvac: key, role, a token for the logged-in entity, introspection.
    ident.create_named_key(name="k", allowed_client_ids=["*"])
    ident.create_or_update_role(name="r", key="k", ttl="1h")
    client.sys.create_or_update_policy("oidc", 'path "identity/oidc/token/*" { capabilities = ["read"] }')
    client.write("auth/userpass/users/alice", password="pw", token_policies="oidc")
    user = hvac.Client(url=s.addr)
    user.auth.userpass.login(username="alice", password="pw")
    signed = user.secrets.identity.generate_signed_id_token(name="r")["data"]["token"]
    assert ident.introspect_signed_id_token(token=signed) == {"active": True}
    assert ident.read_well_known_configurations()["issuer"].endswith("/v1/identity/oidc")
    assert len(ident.read_active_public_keys()["keys"]) == 1
