"""config and role/<name>: fields, defaults, validation, and what reads show (as OpenBao does)."""

from __future__ import annotations

from tests.auth.conftest import Vault
from tests.auth.kubernetes.conftest import FakeKubeAPI, Signer


async def test_config_roundtrip_hides_reviewer_jwt(kv: Vault, kube_api: FakeKubeAPI, signer: Signer) -> None:
    await kv.fails(404, "GET", "auth/kubernetes/config")
    await kv.done("POST", "auth/kubernetes/config", {
        "kubernetes_host": kube_api.url + "/", "kubernetes_ca_cert": kube_api.ca_pem,
        "token_reviewer_jwt": "reviewer-jwt", "pem_keys": [signer.public_pem], "disable_local_ca_jwt": True})
    data = (await kv.ok("GET", "auth/kubernetes/config"))["data"]
    assert data == {"disable_iss_validation": True, "disable_local_ca_jwt": True, "issuer": "",
                    "kubernetes_ca_cert": kube_api.ca_pem, "kubernetes_host": kube_api.url,
                    "pem_keys": [signer.public_pem.strip()], "token_reviewer_jwt_set": True}
    # A write replaces the whole config: the reviewer JWT not sent again is gone.
    await kv.done("POST", "auth/kubernetes/config", {"kubernetes_host": kube_api.url,
                                                     "kubernetes_ca_cert": kube_api.ca_pem,
                                                     "disable_local_ca_jwt": True})
    data = (await kv.ok("GET", "auth/kubernetes/config"))["data"]
    assert data["token_reviewer_jwt_set"] is False and data["pem_keys"] == []


async def test_config_validation(kv: Vault, kube_api: FakeKubeAPI) -> None:
    base = {"kubernetes_host": kube_api.url, "kubernetes_ca_cert": kube_api.ca_pem, "disable_local_ca_jwt": True}
    assert await kv.fails(400, "POST", "auth/kubernetes/config", {**base, "kubernetes_host": ""}) == [
        "no host provided"]
    errs = await kv.fails(400, "POST", "auth/kubernetes/config", {**base, "kubernetes_host": "ftp://x"})
    assert "must be an http(s) URL" in errs[0]
    assert await kv.fails(400, "POST", "auth/kubernetes/config", {**base, "pem_keys": "garbage"}) == [
        "data does not contain any valid public keys"]
    assert await kv.fails(400, "POST", "auth/kubernetes/config", {**base, "token_reviewer_jwt": "a\r\nX: y"}) == [
        "token_reviewer_jwt must be a single token without whitespace"]
    errs = await kv.fails(400, "POST", "auth/kubernetes/config", {**base, "kubernetes_ca_cert": "garbage"})
    assert "kubernetes_ca_cert" in errs[0]
    # Outside a pod, no CA given and the local one not disabled: refused, as OpenBao does.
    errs = await kv.fails(400, "POST", "auth/kubernetes/config", {"kubernetes_host": kube_api.url})
    assert errs == ["open /var/run/secrets/kubernetes.io/serviceaccount/ca.crt: no such file or directory"]
    await kv.fails(404, "GET", "auth/kubernetes/config")  # nothing half-written
    # A certificate is accepted as a PEM key (its public key is used).
    await kv.done("POST", "auth/kubernetes/config", {**base, "pem_keys": [kube_api.ca_pem]})


async def test_role_crud_and_read_shape(kv: Vault) -> None:
    await kv.fails(404, "LIST", "auth/kubernetes/role")
    await kv.done("POST", "auth/kubernetes/role/Demo", {
        "bound_service_account_names": "app,web-*", "bound_service_account_namespaces": ["prod", "team-*"],
        "policies": "dev", "ttl": "1h"})
    data = (await kv.ok("GET", "auth/kubernetes/role/demo"))["data"]
    assert data == {"alias_name_source": "serviceaccount_uid", "bound_service_account_names": ["app", "web-*"],
                    "bound_service_account_namespace_selector": "",
                    "bound_service_account_namespaces": ["prod", "team-*"], "policies": ["dev"],
                    "token_bound_cidrs": [], "token_explicit_max_ttl": 0, "token_max_ttl": 0,
                    "token_no_default_policy": False, "token_num_uses": 0, "token_period": 0,
                    "token_policies": ["dev"], "token_strictly_bind_ip": False, "token_ttl": 3600,
                    "ttl": 3600, "token_type": "default"}
    # Writes merge; the audience shows once set.
    await kv.done("POST", "auth/kubernetes/role/demo", {"audience": "vault", "token_policies": "a,b"})
    data = (await kv.ok("GET", "auth/kubernetes/role/DEMO"))["data"]
    assert data["audience"] == "vault" and data["token_policies"] == ["a", "b"]
    assert data["bound_service_account_names"] == ["app", "web-*"]
    assert (await kv.ok("LIST", "auth/kubernetes/role"))["data"]["keys"] == ["demo"]
    await kv.done("DELETE", "auth/kubernetes/role/demo")
    await kv.fails(404, "GET", "auth/kubernetes/role/demo")
    # A namespace selector alone is enough to bind namespaces.
    selector = '{"matchLabels": {"stage": "prod"}}'
    await kv.done("POST", "auth/kubernetes/role/sel", {"bound_service_account_names": "app",
                                                        "bound_service_account_namespace_selector": selector})
    data = (await kv.ok("GET", "auth/kubernetes/role/sel"))["data"]
    assert data["bound_service_account_namespace_selector"] == selector
    assert data["bound_service_account_namespaces"] == []


async def test_role_validation(kv: Vault) -> None:
    path = "auth/kubernetes/role/r"
    assert await kv.fails(400, "POST", path, {"bound_service_account_namespaces": "x"}) == [
        '"bound_service_account_names" can not be empty']
    assert await kv.fails(400, "POST", path, {"bound_service_account_names": "a"}) == [
        '"bound_service_account_namespaces" can not be empty if "bound_service_account_namespace_selector" '
        'is not set']
    assert await kv.fails(400, "POST", path, {"bound_service_account_names": "*,a",
                                              "bound_service_account_namespaces": "x"}) == [
        'can not mix "*" with values']
    assert await kv.fails(400, "POST", path, {"bound_service_account_names": "a",
                                              "bound_service_account_namespaces": "*,x"}) == [
        'can not mix "*" with values']
    errs = await kv.fails(400, "POST", path, {"bound_service_account_names": "a",
                                              "bound_service_account_namespaces": "x",
                                              "alias_name_source": "nope"})
    assert errs == ["invalid alias_name_source, must be one of: serviceaccount_uid, serviceaccount_name"]
    for bad in ("stage=prod", '{"matchLabels": 3}', '{"matchExpressions": [{"key": "a", "operator": "Bogus"}]}',
                '{"matchExpressions": [{"key": "a", "operator": "In"}]}', '{"other": {}}'):
        assert await kv.fails(400, "POST", path, {"bound_service_account_names": "a",
                                                  "bound_service_account_namespace_selector": bad}) == [
            'invalid "bound_service_account_namespace_selector" configured']
    assert await kv.fails(400, "POST", path, {"bound_service_account_names": "a",
                                              "bound_service_account_namespaces": "x",
                                              "token_ttl": "2h", "token_max_ttl": "1h"}) == [
        "'token_ttl' cannot be greater than 'token_max_ttl'"]
    await kv.fails(404, "GET", path)  # nothing half-written
