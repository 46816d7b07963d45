"""OpenBao's user lockout on userpass and approle, in process (core/lockout.py): failures counted per
user, the lock checked before the method runs, the counter reset, expiry, tuning, sys/locked-users,
the server config, audit of failed logins, and a lock that survives a seal."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.auth.conftest import Vault

import strongroom.auth.userpass as userpass
from strongroom.core import CoreConfig
from strongroom.core.audit import AuditConfig
from strongroom.core.lockout import LockoutConfig, LockoutSettings
from strongroom.testing import asgi_client, unsealed_core

BAD = ["invalid username or password"]
DENIED = ["permission denied"]


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(vault: Vault) -> Clock:
    c = Clock()
    vault.core.lockout.clock = c
    return c


async def _alice(vault: Vault, mount: str = "userpass") -> None:
    await vault.done("POST", f"auth/{mount}/users/alice", {"password": "right-pw"})


async def _login(vault: Vault, password: str, user: str = "alice", mount: str = "userpass") -> Any:
    return await vault.call("POST", f"auth/{mount}/login/{user}", {"password": password}, token=None)


async def _fail(vault: Vault, n: int, user: str = "alice", mount: str = "userpass") -> None:
    for _ in range(n):
        r = await _login(vault, "wrong-pw", user, mount)
        assert (r.status_code, r.json()["errors"]) == (400, BAD)


async def _accessor(vault: Vault, mount: str = "userpass") -> str:
    return str((await vault.ok("GET", "sys/auth"))["data"][f"{mount}/"]["accessor"])


async def test_five_failures_lock_the_user_even_with_the_right_password(
        vault: Vault, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    await _alice(vault)
    await _fail(vault, 5)
    checks: list[str] = []
    real = userpass.VerifiedPasswords.check

    async def counting(self: userpass.VerifiedPasswords, name: str | None, password: str, hashed: bytes) -> bool:
        checks.append(password)
        return await real(self, name, password, hashed)

    monkeypatch.setattr(userpass.VerifiedPasswords, "check", counting)
    r = await _login(vault, "right-pw")
    assert (r.status_code, r.json()) == (403, {"errors": DENIED})
    # Any spelling of the name is the same (locked) user; the password hash never ran.
    assert (await _login(vault, "right-pw", user="ALICE")).status_code == 403
    assert checks == []
    # Another user is not affected.
    await vault.done("POST", "auth/userpass/users/bob", {"password": "bob-pw"})
    assert (await _login(vault, "bob-pw", user="bob")).status_code == 200


async def test_unknown_users_are_not_counted_and_success_resets(vault: Vault, clock: Clock) -> None:
    await _alice(vault)
    await _fail(vault, 10, user="nobody")  # as OpenBao: only existing users' failures are tracked
    assert vault.core.lockout._failed == {}
    await _fail(vault, 4)
    assert (await _login(vault, "right-pw")).status_code == 200  # a success forgets the 4 failures
    await _fail(vault, 4)
    assert (await _login(vault, "right-pw")).status_code == 200


async def test_counter_reset_and_lockout_duration(vault: Vault, clock: Clock) -> None:
    await _alice(vault)
    await _fail(vault, 4)
    clock.now += 901  # past lockout_counter_reset (15 min): the next failure counts as the first
    await _fail(vault, 4)
    assert (await _login(vault, "right-pw")).status_code == 200
    await _fail(vault, 5)
    clock.now += 899
    assert (await _login(vault, "right-pw")).status_code == 403
    clock.now += 2  # past lockout_duration (15 min)
    assert (await _login(vault, "right-pw")).status_code == 200
    assert (await vault.ok("GET", "sys/locked-users"))["data"]["total"] == 0


async def test_locked_users_list_and_unlock(vault: Vault, clock: Clock) -> None:
    await _alice(vault)
    accessor = await _accessor(vault)
    empty = await vault.ok("GET", "sys/locked-users")
    assert empty["data"] == {"by_namespace": [{"namespace_id": "root", "namespace_path": "", "counts": 0,
                                               "mount_accessors": []}], "total": 0}
    await _fail(vault, 5)
    listed = await vault.ok("GET", "sys/locked-users")
    assert listed["data"] == {"by_namespace": [{"namespace_id": "root", "namespace_path": "", "counts": 1,
                                                "mount_accessors": [{"mount_accessor": accessor, "counts": 1,
                                                                     "alias_identifiers": ["alice"]}]}],
                              "total": 1}
    assert (await vault.ok("GET", f"sys/locked-users?mount_accessor={accessor}"))["data"] == listed["data"]
    other = (await vault.ok("GET", "sys/locked-users?mount_accessor=auth_approle_x"))["data"]
    assert other["by_namespace"][0]["mount_accessors"] == [
        {"mount_accessor": "auth_approle_x", "counts": 0, "alias_identifiers": None}]
    # Unlocking is idempotent and answers 204, as OpenBao.
    await vault.done("POST", f"sys/locked-users/{accessor}/unlock/alice")
    await vault.done("POST", f"sys/locked-users/{accessor}/unlock/alice")
    await vault.done("POST", "sys/locked-users/nope/unlock/bob")
    assert (await _login(vault, "right-pw")).status_code == 200
    assert (await vault.ok("GET", "sys/locked-users"))["data"]["total"] == 0
    # An ordinary token cannot list or unlock without a policy allowing it.
    token = (await vault.ok("POST", "auth/token/create", {"policies": ["default"]}))["auth"]["client_token"]
    assert await vault.fails(403, "GET", "sys/locked-users", token=token) == DENIED
    await vault.fails(403, "POST", f"sys/locked-users/{accessor}/unlock/alice", token=token)


async def test_tuning_a_mount_overrides_and_shows(vault: Vault, clock: Clock) -> None:
    await _alice(vault)
    await vault.done("POST", "sys/auth/userpass/tune", {"user_lockout_config": {
        "lockout_threshold": "2", "lockout_duration": "10m", "lockout_counter_reset_duration": "5m"}})
    tune = (await vault.ok("GET", "sys/auth/userpass/tune"))["data"]
    assert {k: v for k, v in tune.items() if k.startswith("user_lockout")} == {
        "user_lockout_threshold": 2, "user_lockout_duration": 600, "user_lockout_counter_reset_duration": 300,
        "user_lockout_disable": False}
    listed = (await vault.ok("GET", "sys/auth"))["data"]["userpass/"]["config"]["user_lockout_config"]
    assert listed == {"user_lockout_threshold": 2, "user_lockout_duration": 600,
                      "user_lockout_counter_reset_duration": 300, "user_lockout_disable": False}
    # Untuned mounts show nothing.
    assert not any(k.startswith("user_lockout") for k in (await vault.ok("GET", "sys/auth/approle/tune"))["data"])
    await _fail(vault, 2)
    assert (await _login(vault, "right-pw")).status_code == 403
    clock.now += 601
    assert (await _login(vault, "right-pw")).status_code == 200
    # "system" puts a value back to the server's; a later tune keeps what it does not name.
    await vault.done("POST", "sys/auth/userpass/tune", {"user_lockout_config": {"lockout_duration": "system"}})
    tune = (await vault.ok("GET", "sys/auth/userpass/tune"))["data"]
    assert (tune["user_lockout_threshold"], tune["user_lockout_duration"]) == (2, 0)
    # lockout_disable turns it off for this mount.
    await vault.done("POST", "sys/auth/userpass/tune", {"user_lockout_config": {"lockout_disable": True}})
    await _fail(vault, 8)
    assert (await _login(vault, "right-pw")).status_code == 200


async def test_tune_errors_are_openbaos(vault: Vault) -> None:
    async def tune_fails(mount: str, cfg: object) -> list[str]:
        return await vault.fails(400, "POST", f"sys/{mount}/tune", {"user_lockout_config": cfg})

    assert await tune_fails("mounts/secret", {"lockout_threshold": "3"}) == [
        'tuning of user lockout configuration for auth type "kv" not allowed']
    assert await tune_fails("auth/userpass", {"lockout_threshold": "x"}) == [
        'unable to parse user lockout threshold: strconv.ParseUint: parsing "x": invalid syntax']
    assert await tune_fails("auth/userpass", {"lockout_threshold": "-1"}) == [
        'unable to parse user lockout threshold: strconv.ParseUint: parsing "-1": invalid syntax']
    assert await tune_fails("auth/userpass", {"lockout_duration": "abc"}) == ['time: invalid duration "abc"']
    assert await tune_fails("auth/approle", {"lockout_disable": "true"}) == [
        "unable to convert given user lockout config information"]
    await tune_fails("auth/approle", "abc")
    # Nothing was half-written, and an empty object changes nothing.
    await vault.done("POST", "sys/auth/userpass/tune", {"user_lockout_config": {}})
    assert "user_lockout_threshold" not in (await vault.ok("GET", "sys/auth/userpass/tune"))["data"]
    await vault.done("POST", "sys/auth/userpass/tune", {"user_lockout_config": {"lockout_threshold": 3}})
    assert (await vault.ok("GET", "sys/auth/userpass/tune"))["data"]["user_lockout_threshold"] == 3


async def _approle(vault: Vault) -> tuple[str, str]:
    await vault.done("POST", "auth/approle/role/app", {"token_policies": "default"})
    role_id = (await vault.ok("GET", "auth/approle/role/app/role-id"))["data"]["role_id"]
    secret = (await vault.ok("POST", "auth/approle/role/app/secret-id"))["data"]["secret_id"]
    return str(role_id), str(secret)


async def test_approle_wrong_secret_ids_lock_the_role_id(vault: Vault, clock: Clock) -> None:
    role_id, secret = await _approle(vault)
    for _ in range(5):
        await vault.fails(400, "POST", "auth/approle/login", {"role_id": "nope", "secret_id": "x"}, token=None)
    for _ in range(5):
        errors = await vault.fails(400, "POST", "auth/approle/login", {"role_id": role_id, "secret_id": "x"},
                                   token=None)
        assert errors == ["invalid role or secret ID"]
    assert await vault.fails(403, "POST", "auth/approle/login", {"role_id": role_id, "secret_id": secret},
                             token=None) == DENIED
    users = (await vault.ok("GET", "sys/locked-users"))["data"]["by_namespace"][0]["mount_accessors"]
    assert users == [{"mount_accessor": await _accessor(vault, "approle"), "counts": 1,
                      "alias_identifiers": [role_id]}]  # the role_id; unknown role ids were never counted


@pytest.fixture
async def configured(request: pytest.FixtureRequest) -> AsyncIterator[Vault]:
    config: LockoutConfig = request.param
    async with unsealed_core(config=CoreConfig(user_lockout=config)) as (core, _), asgi_client(core) as client:
        v = Vault(core, client)
        await v.done("POST", "sys/auth/userpass", {"type": "userpass"})
        await v.done("POST", "sys/auth/approle", {"type": "approle"})
        yield v


@pytest.mark.parametrize("configured", [LockoutConfig(by_type={
    "all": LockoutSettings(threshold=3), "approle": LockoutSettings(disable=True)})], indirect=True)
async def test_server_config_per_type_and_all(configured: Vault) -> None:
    vault = configured
    await _alice(vault)
    await _fail(vault, 3)
    assert (await _login(vault, "right-pw")).status_code == 403
    role_id, secret = await _approle(vault)
    for _ in range(6):
        await vault.fails(400, "POST", "auth/approle/login", {"role_id": role_id, "secret_id": "x"}, token=None)
    await vault.ok("POST", "auth/approle/login", {"role_id": role_id, "secret_id": secret}, token=None)
    # A tune cannot re-enable what the server config disables (OpenBao: only true overrides).
    await vault.done("POST", "sys/auth/approle/tune", {"user_lockout_config": {"lockout_disable": False}})
    for _ in range(6):
        await vault.fails(400, "POST", "auth/approle/login", {"role_id": role_id, "secret_id": "x"}, token=None)
    await vault.ok("POST", "auth/approle/login", {"role_id": role_id, "secret_id": secret}, token=None)


@pytest.mark.parametrize("configured", [LockoutConfig(env_disable=True)], indirect=True)
async def test_environment_disables_everywhere(configured: Vault) -> None:
    await _alice(configured)
    await _fail(configured, 10)
    assert (await _login(configured, "right-pw")).status_code == 200


async def test_failed_and_refused_logins_are_audited(tmp_path: Path) -> None:
    async with unsealed_core(config=CoreConfig(audit=AuditConfig(allow_api_creation=True))) as (core, _), \
            asgi_client(core) as client:
        vault = Vault(core, client)
        log = tmp_path / "audit.log"
        await vault.done("PUT", "sys/audit/file", {"type": "file", "options": {"file_path": str(log)}})
        await vault.done("POST", "sys/auth/userpass", {"type": "userpass"})
        await _alice(vault)
        await _fail(vault, 5)
        assert (await _login(vault, "right-pw")).status_code == 403
        entries = [json.loads(line) for line in log.read_text().splitlines()]
    logins = [e for e in entries if e["request"]["path"] == "auth/userpass/login/alice"]
    responses = [e for e in logins if e["type"] == "response"]
    assert len([e for e in logins if e["type"] == "request"]) == 6
    assert [e.get("error") for e in responses] == ["invalid username or password"] * 5 + ["permission denied"]
    text = log.read_text()
    assert "wrong-pw" not in text and "right-pw" not in text  # passwords are HMAC'd


async def test_a_lock_survives_a_seal_and_unseal(vault: Vault) -> None:
    await _alice(vault)
    await _fail(vault, 5)
    core = vault.core
    key = next(iter(await core.lockout.storage.list("")))
    raw = await core.barrier.get("core/login/lockedUsers/" + key)
    assert raw is not None and b"alice" in raw  # through the barrier: the physical bytes are encrypted
    assert all(b"alice" not in v for v in core.physical._data.values())
    core.lockout._failed.clear()  # the counters are gone after a restart; the stored lock decides
    await core.lockout.setup()
    assert (await _login(vault, "right-pw")).status_code == 403


async def test_periodic_forgets_what_ran_out_and_counters_are_bounded(
        vault: Vault, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    import strongroom.core.lockout as lockout

    await _alice(vault)
    await _fail(vault, 5)
    part = vault.core.lockout
    assert await part.storage.list("") == [await _accessor(vault)]
    clock.now += 901
    await part.periodic(clock.now)
    assert part._failed == {} and part._locked == {} and await part.storage.list("") == []
    # A flood of failures for many names keeps at most MAX_TRACKED counters, the newest ones.
    monkeypatch.setattr(lockout, "MAX_TRACKED", 3)
    for name in ("u1", "u2", "u3", "u4"):
        await vault.done("POST", f"auth/userpass/users/{name}", {"password": "pw"})
        await _fail(vault, 1, user=name)
    assert sorted(alias for _, alias in part._failed) == ["u2", "u3", "u4"]


async def test_a_burst_of_parallel_guesses_gets_threshold_tries(
        vault: Vault, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    await _alice(vault)
    checks: list[str] = []
    real = userpass.VerifiedPasswords.check

    async def counting(self: userpass.VerifiedPasswords, name: str | None, password: str, hashed: bytes) -> bool:
        checks.append(password)
        return await real(self, name, password, hashed)

    monkeypatch.setattr(userpass.VerifiedPasswords, "check", counting)
    answers = await asyncio.gather(*(_login(vault, f"guess-{i}") for i in range(20)))
    assert sorted(r.status_code for r in answers) == [400] * 5 + [403] * 15
    assert len(checks) == 5
    assert (await _login(vault, "right-pw")).status_code == 403
    # Parallel logins with the right password are all let in (in turns of at most `threshold`).
    await vault.done("POST", f"sys/locked-users/{await _accessor(vault)}/unlock/alice")
    answers = await asyncio.gather(*(_login(vault, "right-pw") for _ in range(8)))
    assert [r.status_code for r in answers] == [200] * 8
    assert vault.core.lockout._gates == {}
