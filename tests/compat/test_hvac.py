"""hvac, the Python client Vault users already have, against a real Strongroom server on sqlite."""

from __future__ import annotations

import hvac
import hvac.exceptions
import pytest

from .conftest import RunningServer


def test_hvac_getting_started(sqlite_server: RunningServer) -> None:
    s = sqlite_server
    client = hvac.Client(url=s.addr)
    assert client.sys.is_initialized() is False
    init = client.sys.initialize(secret_shares=5, secret_threshold=3)
    keys, root = init["keys"], init["root_token"]
    assert len(keys) == 5 and root.startswith("hvs.")
    assert client.sys.is_sealed() is True
    status = client.sys.submit_unseal_keys(keys[:3])
    assert status["sealed"] is False and status["t"] == 3 and status["n"] == 5

    client.token = root
    assert client.is_authenticated()
    client.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
    assert "secret/" in client.sys.list_mounted_secrets_engines()["data"]
    client.secrets.kv.v2.create_or_update_secret("app/db", secret={"password": "pw1"})
    client.secrets.kv.v2.create_or_update_secret("app/db", secret={"password": "pw2"}, cas=1)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="check-and-set"):
        client.secrets.kv.v2.create_or_update_secret("app/db", secret={"password": "nope"}, cas=1)
    read = client.secrets.kv.v2.read_secret_version("app/db", raise_on_deleted_version=True)
    assert read["data"]["data"] == {"password": "pw2"} and read["data"]["metadata"]["version"] == 2
    client.secrets.kv.v2.patch("app/db", secret={"user": "svc"})
    assert client.secrets.kv.v2.read_secret_version("app/db", raise_on_deleted_version=True)["data"]["data"] == {
        "password": "pw2", "user": "svc"}
    assert client.secrets.kv.v2.list_secrets("app")["data"]["keys"] == ["db"]
    client.secrets.kv.v2.delete_latest_version_of_secret("app/db")
    client.secrets.kv.v2.undelete_secret_versions("app/db", versions=[3])
    client.secrets.kv.v2.destroy_secret_versions("app/db", versions=[1])
    meta = client.secrets.kv.v2.read_secret_metadata("app/db")["data"]
    assert meta["versions"]["1"]["destroyed"] is True and meta["current_version"] == 3

    client.sys.create_or_update_policy("reader", 'path "secret/data/app/*" { capabilities = ["read"] }')
    assert "reader" in client.sys.list_policies()["data"]["policies"]
    child = client.auth.token.create(policies=["reader"], ttl="30m")["auth"]
    assert child["policies"] == ["default", "reader"] and child["lease_duration"] == 1800
    reader = hvac.Client(url=s.addr, token=child["client_token"])
    assert reader.secrets.kv.v2.read_secret_version("app/db", raise_on_deleted_version=True)["data"]["data"]["user"] == "svc"
    with pytest.raises(hvac.exceptions.Forbidden):
        reader.secrets.kv.v2.create_or_update_secret("app/db", secret={"password": "x"})
    with pytest.raises(hvac.exceptions.Forbidden):
        reader.sys.list_mounted_secrets_engines()
    assert reader.lookup_token()["data"]["policies"] == ["default", "reader"]
    client.auth.token.revoke(child["client_token"])
    with pytest.raises(hvac.exceptions.Forbidden):
        reader.lookup_token()

    client.sys.seal()
    with pytest.raises(hvac.exceptions.VaultDown):
        client.secrets.kv.v2.read_secret_version("app/db", raise_on_deleted_version=True)
    client.sys.submit_unseal_keys(keys[1:4])
    assert client.sys.read_health_status(method="GET")["sealed"] is False

    assert s.stop() == 0
    s.start()
    assert client.sys.is_sealed() is True
    client.sys.submit_unseal_keys(keys[2:5])
    assert client.secrets.kv.v2.read_secret_version("app/db", raise_on_deleted_version=True)["data"]["data"] == {
        "password": "pw2", "user": "svc"}
