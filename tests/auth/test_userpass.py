"""userpass through a real core: users CRUD, password storage, login and the token it yields."""

from __future__ import annotations

import asyncio

import bcrypt
import pytest
from tests.auth.conftest import Vault

from strongroom.auth import userpass


async def test_user_crud_and_read_shape(vault: Vault) -> None:
    await vault.done("POST", "auth/userpass/users/alice", {"password": "pw1", "token_policies": "a,b",
                                                           "token_ttl": "1h"})
    data = (await vault.ok("GET", "auth/userpass/users/alice"))["data"]
    assert data == {"token_bound_cidrs": [], "token_explicit_max_ttl": 0, "token_max_ttl": 0,
                    "token_no_default_policy": False, "token_num_uses": 0, "token_period": 0,
                    "token_policies": ["a", "b"], "token_strictly_bind_ip": False, "token_ttl": 3600,
                    "token_type": "default"}
    # Usernames are case-insensitive; an update merges into the stored user.
    await vault.done("POST", "auth/userpass/users/ALICE", {"token_num_uses": 3})
    data = (await vault.ok("GET", "auth/userpass/users/alice"))["data"]
    assert data["token_num_uses"] == 3 and data["token_ttl"] == 3600
    assert (await vault.ok("LIST", "auth/userpass/users"))["data"]["keys"] == ["alice"]
    await vault.done("DELETE", "auth/userpass/users/alice")
    await vault.fails(404, "GET", "auth/userpass/users/alice")
    await vault.fails(404, "LIST", "auth/userpass/users")


async def test_legacy_names_show_while_used(vault: Vault) -> None:
    await vault.done("POST", "auth/userpass/users/bob", {"password": "pw", "policies": "x", "ttl": 60,
                                                         "bound_cidrs": "127.0.0.1/32"})
    data = (await vault.ok("GET", "auth/userpass/users/bob"))["data"]
    assert data["policies"] == data["token_policies"] == ["x"]
    assert data["ttl"] == data["token_ttl"] == 60
    assert data["bound_cidrs"] == data["token_bound_cidrs"] == ["127.0.0.1"]
    await vault.done("POST", "auth/userpass/users/bob", {"token_policies": "y"})
    data = (await vault.ok("GET", "auth/userpass/users/bob"))["data"]
    assert data["token_policies"] == ["y"] and "policies" not in data


async def test_create_requires_a_password_and_bad_input_is_400(vault: Vault) -> None:
    errors = await vault.fails(400, "POST", "auth/userpass/users/carol", {})
    assert errors == ["must provide either password or password_hash"]
    await vault.fails(400, "POST", "auth/userpass/users/carol", {"password": "x", "token_type": "weird"})
    await vault.fails(400, "POST", "auth/userpass/users/carol", {"password": "x", "token_ttl": "2h",
                                                                 "token_max_ttl": "1h"})
    await vault.fails(400, "POST", "auth/userpass/users/carol", {"password": "x", "token_bound_cidrs": "nope"})
    await vault.fails(400, "POST", "auth/userpass/users/carol", {"password": "x", "password_hash": "y"})
    await vault.fails(400, "POST", "auth/userpass/users/carol", {"password_hash": "not-a-hash"})
    await vault.fails(404, "GET", "auth/userpass/users/carol")  # nothing half-written


async def test_password_is_stored_only_as_a_bcrypt_hash(vault: Vault) -> None:
    await vault.done("POST", "auth/userpass/users/dave", {"password": "s3cret-pw"})
    mount = vault.core.mounts.find("auth", "userpass/")
    stored = await mount.view.get("user/dave")
    assert stored is not None and b"s3cret-pw" not in stored
    user = userpass.User.from_json(__import__("orjson").loads(stored))
    assert user.password_hash.startswith("$2b$10$")
    assert bcrypt.checkpw(b"s3cret-pw", user.password_hash.encode())


async def test_login_issues_a_token(vault: Vault) -> None:
    await vault.done("POST", "auth/userpass/users/alice", {"password": "pw1", "token_policies": "a",
                                                           "token_ttl": "1h", "token_max_ttl": "2h"})
    auth = (await vault.ok("POST", "auth/userpass/login/Alice", {"password": "pw1"}, token=None))["auth"]
    assert auth["policies"] == ["a", "default"] and auth["metadata"] == {"username": "alice"}
    assert auth["lease_duration"] == 3600 and auth["renewable"] and auth["orphan"]
    look = (await vault.ok("GET", "auth/token/lookup-self", token=auth["client_token"]))["data"]
    assert look["display_name"] == "userpass-alice" and look["path"] == "auth/userpass/login/Alice"
    assert look["meta"] == {"username": "alice"}
    renewed = (await vault.ok("POST", "auth/token/renew-self", {"increment": "10h"},
                              token=auth["client_token"]))["auth"]
    assert renewed["lease_duration"] <= 7200  # capped by token_max_ttl


async def test_wrong_password_and_unknown_user_look_the_same(vault: Vault) -> None:
    await vault.done("POST", "auth/userpass/users/alice", {"password": "pw1"})
    wrong = await vault.fails(400, "POST", "auth/userpass/login/alice", {"password": "nope"}, token=None)
    unknown = await vault.fails(400, "POST", "auth/userpass/login/nobody", {"password": "nope"}, token=None)
    assert wrong == unknown == ["invalid username or password"]
    assert await vault.fails(400, "POST", "auth/userpass/login/alice", {}, token=None) == ["missing password"]


async def test_password_change_and_prehashed_password(vault: Vault) -> None:
    await vault.done("POST", "auth/userpass/users/alice", {"password": "old"})
    await vault.done("POST", "auth/userpass/users/alice/password", {"password": "new"})
    await vault.fails(400, "POST", "auth/userpass/login/alice", {"password": "old"}, token=None)
    await vault.ok("POST", "auth/userpass/login/alice", {"password": "new"}, token=None)
    await vault.fails(400, "POST", "auth/userpass/users/nobody/password", {"password": "x"})
    prehashed = bcrypt.hashpw(b"hashed-pw", bcrypt.gensalt(6)).decode()
    await vault.done("POST", "auth/userpass/users/alice/password", {"password_hash": prehashed})
    await vault.ok("POST", "auth/userpass/login/alice", {"password": "hashed-pw"}, token=None)
    weak = bcrypt.hashpw(b"x", bcrypt.gensalt(4)).decode()
    assert "too low" in (await vault.fails(400, "POST", "auth/userpass/users/alice/password",
                                           {"password_hash": weak}))[0]


async def test_policies_endpoint(vault: Vault) -> None:
    await vault.done("POST", "auth/userpass/users/alice", {"password": "pw", "token_policies": "a"})
    await vault.done("POST", "auth/userpass/users/alice/policies", {"token_policies": "c"})
    auth = (await vault.ok("POST", "auth/userpass/login/alice", {"password": "pw"}, token=None))["auth"]
    assert auth["policies"] == ["c", "default"]


async def test_token_parameters_reach_the_token(vault: Vault) -> None:
    await vault.done("POST", "auth/userpass/users/p", {"password": "pw", "token_period": "30m",
                                                       "token_num_uses": 5, "token_no_default_policy": True,
                                                       "token_policies": "a"})
    auth = (await vault.ok("POST", "auth/userpass/login/p", {"password": "pw"}, token=None))["auth"]
    assert auth["policies"] == ["a"] and auth["lease_duration"] == 1800 and auth["num_uses"] == 5
    look = (await vault.ok("POST", "auth/token/lookup", {"token": auth["client_token"]}))["data"]
    assert look["period"] == 1800 and look["policies"] == ["a"]


async def test_bound_cidrs_refuse_other_addresses(vault: Vault) -> None:
    # The in-process client connects from 127.0.0.1.
    await vault.done("POST", "auth/userpass/users/far", {"password": "pw", "token_bound_cidrs": "10.0.0.0/8"})
    await vault.fails(403, "POST", "auth/userpass/login/far", {"password": "pw"}, token=None)
    await vault.done("POST", "auth/userpass/users/near", {"password": "pw", "token_bound_cidrs": "127.0.0.0/8"})
    auth = (await vault.ok("POST", "auth/userpass/login/near", {"password": "pw"}, token=None))["auth"]
    look = (await vault.ok("GET", "auth/token/lookup-self", token=auth["client_token"]))["data"]
    assert look["bound_cidrs"] == ["127.0.0.0/8"]


async def test_bcrypt_runs_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    loop_thread: list[bool] = []
    real = bcrypt.checkpw

    def spy(pw: bytes, hashed: bytes) -> bool:
        loop_thread.append(_in_loop_thread())
        return real(pw, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", spy)
    hashed = await userpass.hash_password("x")
    assert await userpass.check_password("x", hashed)
    assert loop_thread == [False]


def _in_loop_thread() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def test_unknown_user_costs_a_bcrypt_check(vault: Vault, bcrypt_calls: list[bytes]) -> None:
    await vault.fails(400, "POST", "auth/userpass/login/nobody", {"password": "dummy"}, token=None)
    assert bcrypt_calls == [userpass.DUMMY_HASH] and userpass.DUMMY_HASH.startswith(b"$2b$10$")


async def test_login_token_has_a_lease_and_dies_with_the_mount(vault: Vault) -> None:
    await vault.done("POST", "auth/userpass/users/carol", {"password": "pw", "token_ttl": "1h"})
    auth = (await vault.ok("POST", "auth/userpass/login/carol", {"password": "pw"}, token=None))["auth"]
    keys = (await vault.ok("LIST", "sys/leases/lookup/auth/userpass/login/carol/"))["data"]["keys"]
    assert len(keys) == 1
    assert (await vault.call("GET", "auth/token/lookup-self", token=auth["client_token"])).status_code == 200
    await vault.done("DELETE", "sys/auth/userpass")
    assert (await vault.call("GET", "auth/token/lookup-self", token=auth["client_token"])).status_code == 403
