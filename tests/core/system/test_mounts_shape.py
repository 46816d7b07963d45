"""The field names and JSON types of sys/mounts, sys/auth, sys/{mounts,auth}/PATH, their tune reads
and sys/internal/ui/mounts, pinned to what OpenBao 2.7 answers for the same mounts (`bao server -dev`,
then the same enable/tune calls)."""

from __future__ import annotations

from typing import Any

from strongroom.testing import asgi_client, unsealed_core

ENTRY = {"accessor": str, "config": dict, "description": str, "external_entropy_access": bool, "local": bool,
         "options": dict, "plugin_version": str, "running_plugin_version": str, "running_sha256": str,
         "seal_wrap": bool, "type": str, "uuid": str}
PLUGIN = {**ENTRY, "deprecation_status": str}  # a builtin plugin's mount
CORE = {**ENTRY, "options": type(None)}  # the mounts core makes itself: sys/, cubbyhole/, token/
CONFIG = {"default_lease_ttl": int, "force_no_cache": bool, "max_lease_ttl": int}
FULL_CONFIG = {**CONFIG, "listing_visibility": str, "audit_non_hmac_request_keys": list,
               "audit_non_hmac_response_keys": list, "passthrough_request_headers": list,
               "allowed_response_headers": list}
TUNE = {"default_lease_ttl": int, "description": str, "force_no_cache": bool, "max_lease_ttl": int}

# name -> (entry shape, config shape, tune shape)
SECRETS = {
    "sys/": (CORE, {**CONFIG, "passthrough_request_headers": list}, {**TUNE, "passthrough_request_headers": list}),
    "cubbyhole/": (CORE, CONFIG, TUNE),
    "identity/": (CORE, {**CONFIG, "passthrough_request_headers": list}, {**TUNE, "passthrough_request_headers": list}),
    "secret/": (PLUGIN, CONFIG, {**TUNE, "options": dict}),
    "kv1/": (PLUGIN, FULL_CONFIG, {**TUNE, **FULL_CONFIG}),
}
AUTH = {
    "token/": (CORE, {**CONFIG, "token_type": str}, {**TUNE, "token_type": str}),
    "approle/": (PLUGIN, {**CONFIG, "token_type": str}, {**TUNE, "token_type": str}),
    "userpass/": (PLUGIN, {**CONFIG, "token_type": str, "listing_visibility": str, "audit_non_hmac_request_keys": list},
                  {**TUNE, "token_type": str, "listing_visibility": str, "audit_non_hmac_request_keys": list}),
}


def _shape(value: dict[str, Any]) -> dict[str, type]:
    return {k: type(v) for k, v in value.items()}


def _entry_shape(value: dict[str, Any]) -> tuple[dict[str, type], dict[str, type]]:
    return _shape(value), _shape(value["config"])


async def test_mount_listings_reads_and_tunes_have_openbaos_fields_and_types() -> None:
    async with unsealed_core() as (core, root), asgi_client(core, root) as c:
        setup = [
            ("sys/mounts/kv1", {"type": "kv", "description": "d", "config": {
                "default_lease_ttl": "1h", "max_lease_ttl": "2h", "listing_visibility": "unauth",
                "audit_non_hmac_request_keys": ["a"], "audit_non_hmac_response_keys": ["b"],
                "passthrough_request_headers": ["X-A"], "allowed_response_headers": ["X-B"]}}),
            ("sys/auth/userpass", {"type": "userpass", "config": {
                "listing_visibility": "unauth", "token_type": "batch", "audit_non_hmac_request_keys": ["a"]}}),
            ("sys/auth/approle", {"type": "approle"}),
        ]
        for path, body in setup:
            assert (await c.post(f"/v1/{path}", json=body)).status_code == 204, path

        for table, expected in (("mounts", SECRETS), ("auth", AUTH)):
            listing = (await c.get(f"/v1/sys/{table}")).json()
            assert set(listing["data"]) == set(expected)
            ui = (await c.get("/v1/sys/internal/ui/mounts")).json()["data"]["secret" if table == "mounts" else "auth"]
            for name, (entry, config, tune) in expected.items():
                for seen in (listing["data"][name], listing[name], ui[name],
                             (await c.get(f"/v1/sys/{table}/{name}")).json()["data"]):
                    assert _entry_shape(seen) == (entry, config), (table, name)
                assert _shape((await c.get(f"/v1/sys/{table}/{name}tune")).json()["data"]) == tune, (table, name)

        listing = (await c.get("/v1/sys/mounts")).json()["data"]
        assert listing["sys/"]["seal_wrap"] is True and listing["sys/"]["config"]["passthrough_request_headers"] == ["Accept"]
        assert listing["kv1/"]["options"] == {} and listing["kv1/"]["deprecation_status"] == "supported"
        auth = (await c.get("/v1/sys/auth")).json()["data"]
        assert [auth[n]["config"]["token_type"] for n in ("token/", "approle/", "userpass/")] == [
            "default-service", "default-service", "batch"]

        # Without a token: only 'unauth' listed mounts, and only their type, description and options.
        c.headers.pop("X-Vault-Token")
        ui = (await c.get("/v1/sys/internal/ui/mounts")).json()["data"]
        assert ui == {"secret": {"kv1/": {"type": "kv", "description": "d", "options": {}}},
                      "auth": {"userpass/": {"type": "userpass", "description": "", "options": {}}}}
