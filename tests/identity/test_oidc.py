"""Identity tokens (identity/oidc/*): keys, roles, tokens verified by an independent JOSE library
(joserfc) against the published JWKS, introspection and the discovery document."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from tests.auth.conftest import Vault

POLICY = 'path "identity/oidc/token/*" { capabilities = ["read"] }'


async def _entity_token(vault: Vault) -> tuple[str, str]:
    await vault.done("POST", "sys/policies/acl/oidc", {"policy": POLICY})
    await vault.done("POST", "auth/userpass/users/ann", {"password": "pw", "token_policies": "oidc"})
    auth = (await vault.ok("POST", "auth/userpass/login/ann", {"password": "pw"}, token=None))["auth"]
    return str(auth["client_token"]), str(auth["entity_id"])


async def _raw_get(vault: Vault, path: str) -> dict[str, Any]:
    r = await vault.call("GET", path, token=None)
    assert r.status_code == 200, r.text
    return dict(r.json())


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
async def test_issue_and_verify_identity_token(vault: Vault, alg: str) -> None:
    token, eid = await _entity_token(vault)
    await vault.done("POST", "identity/oidc/key/k1", {"algorithm": alg, "allowed_client_ids": "*"})
    assert (await vault.ok("GET", "identity/oidc/key/k1"))["data"] == {
        "algorithm": alg, "allowed_client_ids": ["*"], "rotation_period": 86400, "verification_ttl": 86400}
    template = '{"nm": {{identity.entity.name}}, "groups": {{identity.entity.groups.names}}}'
    await vault.done("POST", "identity/oidc/role/r1", {"key": "k1", "ttl": "1h", "template": template})
    role = (await vault.ok("GET", "identity/oidc/role/r1"))["data"]
    assert set(role) == {"client_id", "key", "template", "ttl"} and len(role["client_id"]) == 26
    await vault.ok("POST", "identity/group", {"name": "devs", "member_entity_ids": [eid]})
    issued = (await vault.ok("GET", "identity/oidc/token/r1", token=token))["data"]
    assert issued["client_id"] == role["client_id"] and issued["ttl"] == 3600

    disco = await _raw_get(vault, "identity/oidc/.well-known/openid-configuration")
    issuer = str(disco["issuer"])
    assert issuer.endswith("/v1/identity/oidc") and disco["jwks_uri"] == issuer + "/.well-known/keys"
    keys = KeySet.import_key_set(await _raw_get(vault, "identity/oidc/.well-known/keys"))  # type: ignore[arg-type]
    verified = jwt.decode(issued["token"], keys, algorithms=[alg])
    claims = verified.claims
    assert (claims["sub"], claims["aud"], claims["iss"], claims["namespace"]) == (eid, role["client_id"], issuer, "root")
    assert claims["exp"] - claims["iat"] == 3600 and claims["groups"] == ["devs"]
    assert claims["nm"].startswith("entity_")

    r = await vault.call("POST", "identity/oidc/introspect", {"token": issued["token"],
                                                              "client_id": role["client_id"]})
    assert r.status_code == 200 and r.json() == {"active": True}
    # A tampered payload, a wrong audience, a disabled entity: inactive.
    head, body, sig = issued["token"].split(".")
    forged = dict(claims, sub="someone-else")
    forged_token = ".".join([head, base64.urlsafe_b64encode(orjson.dumps(forged)).rstrip(b"=").decode(), sig])
    for body_, why in (({"token": forged_token}, "signature"), ({"token": issued["token"], "client_id": "x"}, "audience")):
        out = (await vault.call("POST", "identity/oidc/introspect", body_)).json()
        assert out["active"] is False and why in out["error"]
    await vault.done("POST", f"identity/entity/id/{eid}", {"disabled": True})
    out = (await vault.call("POST", "identity/oidc/introspect", {"token": issued["token"]})).json()
    assert out["active"] is False


async def test_oidc_errors_rotation_and_root_without_entity(vault: Vault) -> None:
    token, _ = await _entity_token(vault)
    assert await vault.fails(400, "POST", "identity/oidc/role/r", {"key": "nope"}) == ['key "nope" does not exist']
    await vault.fails(400, "POST", "identity/oidc/key/k", {"algorithm": "HS256"})
    await vault.done("POST", "identity/oidc/key/k", {})
    await vault.done("POST", "identity/oidc/role/r", {"key": "k"})
    errs = await vault.fails(400, "GET", "identity/oidc/token/r", token=token)
    assert "does not list the client ID" in errs[0]
    await vault.fails(400, "GET", "identity/oidc/token/r")  # root has no entity
    await vault.fails(400, "POST", "identity/oidc/role/bad", {"key": "k", "template": '{"iss": "x"}'})
    await vault.fails(400, "POST", "identity/oidc/role/bad", {"key": "k", "template": "{not json"})
    errs = await vault.fails(400, "DELETE", "identity/oidc/key/k")
    assert errs == ['unable to delete key "k" because it is currently referenced by these roles: r']
    before = list((await _raw_get(vault, "identity/oidc/.well-known/keys"))["keys"])
    await vault.done("POST", "identity/oidc/key/k/rotate", {})
    after = list((await _raw_get(vault, "identity/oidc/.well-known/keys"))["keys"])
    assert len(before) == 1 and len(after) == 2  # the old public key stays published for verification_ttl
    assert (await vault.ok("LIST", "identity/oidc/key"))["data"]["keys"] == ["k"]
    assert (await vault.ok("LIST", "identity/oidc/role"))["data"]["keys"] == ["r"]
    await vault.done("DELETE", "identity/oidc/role/r")
    await vault.done("DELETE", "identity/oidc/key/k")
