"""userpass's memory of recently verified passwords (auth/userpass.py, VerifiedPasswords): a
user's next logins skip bcrypt; nothing else changes what a login accepts."""

from __future__ import annotations

import hashlib

import pytest
from tests.auth.conftest import Vault

from strongroom.auth import userpass


async def login(vault: Vault, user: str, password: str, status: int = 200) -> None:
    r = await vault.call("POST", f"auth/userpass/login/{user}", {"password": password}, token=None)
    assert r.status_code == status, r.text


async def test_a_second_login_skips_bcrypt(vault: Vault, bcrypt_calls: list[bytes]) -> None:
    await vault.done("POST", "auth/userpass/users/alice", {"password": "pw1"})
    for _ in range(3):
        await login(vault, "alice", "pw1")
    await login(vault, "ALICE", "pw1")  # the same user: names are case-insensitive
    assert len(bcrypt_calls) == 1


async def test_a_wrong_password_still_costs_bcrypt_and_fails(vault: Vault, bcrypt_calls: list[bytes]) -> None:
    await vault.done("POST", "auth/userpass/users/alice", {"password": "pw1"})
    await login(vault, "alice", "pw1")
    await login(vault, "alice", "pw2", 400)
    await login(vault, "alice", "", 400)
    assert len(bcrypt_calls) == 2  # the first login and the wrong password
    await login(vault, "alice", "pw1")  # the wrong guess did not evict the right one
    assert len(bcrypt_calls) == 2


async def test_a_new_password_ends_what_was_remembered(vault: Vault, bcrypt_calls: list[bytes]) -> None:
    await vault.done("POST", "auth/userpass/users/alice", {"password": "old"})
    await login(vault, "alice", "old")
    await vault.done("POST", "auth/userpass/users/alice/password", {"password": "new"})
    await login(vault, "alice", "old", 400)
    await login(vault, "alice", "new")
    # Deleted and made again with the same password: a new bcrypt hash, so bcrypt runs again.
    await vault.done("DELETE", "auth/userpass/users/alice")
    await login(vault, "alice", "new", 400)
    await vault.done("POST", "auth/userpass/users/alice", {"password": "new"})
    before = len(bcrypt_calls)
    await login(vault, "alice", "new")
    assert len(bcrypt_calls) == before + 1


async def test_every_login_pays_the_same_keyed_check(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> None:
    """Known or unknown user, remembered or not: one scrypt each, so timing tells nothing new."""
    salts: list[bytes] = []
    real = hashlib.scrypt

    def spy(password: bytes, *, salt: bytes, **kw: int) -> bytes:
        salts.append(salt)
        return real(password, salt=salt, **kw)

    monkeypatch.setattr(hashlib, "scrypt", spy)
    await vault.done("POST", "auth/userpass/users/alice", {"password": "pw1"})
    await login(vault, "alice", "pw1")
    await login(vault, "alice", "pw1")
    await login(vault, "nobody", "pw1", 400)
    await login(vault, "alice", "bad", 400)
    assert len(salts) == 4
    assert salts[2].endswith(userpass.DUMMY_HASH)  # the unknown user's check is against the dummy hash


async def test_only_a_keyed_tag_is_kept(vault: Vault) -> None:
    await vault.done("POST", "auth/userpass/users/alice", {"password": "correct horse"})
    await login(vault, "alice", "correct horse")
    backend = vault.core.mounts.find("auth", "userpass/").backend
    entries = dict(backend.verified._entries)
    assert list(entries) == ["alice"]
    tag = entries["alice"][0]
    assert len(tag) == 32 and b"correct horse" not in tag
    # Not the password's plain scrypt or sha256 either: keyed with the mount's random key.
    assert tag != hashlib.sha256(b"correct horse").digest()


async def test_seal_and_tune_forget(vault: Vault, bcrypt_calls: list[bytes]) -> None:
    await vault.done("POST", "auth/userpass/users/alice", {"password": "pw1"})
    await login(vault, "alice", "pw1")
    backend = vault.core.mounts.find("auth", "userpass/").backend
    await backend.deactivate()  # what unmount, tune and seal call
    assert not backend.verified._entries
    await login(vault, "alice", "pw1")
    assert len(bcrypt_calls) == 2


async def test_an_entry_expires(vault: Vault, bcrypt_calls: list[bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    await vault.done("POST", "auth/userpass/users/alice", {"password": "pw1"})
    await login(vault, "alice", "pw1")
    now = userpass.time.monotonic()
    monkeypatch.setattr(userpass.time, "monotonic", lambda: now + 301)  # past the default 5m
    await login(vault, "alice", "pw1")
    await login(vault, "alice", "pw1")
    assert len(bcrypt_calls) == 2  # expired, checked by bcrypt, remembered again


async def test_the_mount_option_turns_it_off(vault: Vault, bcrypt_calls: list[bytes]) -> None:
    await vault.done("POST", "sys/auth/up0", {"type": "userpass", "options": {"verified_password_ttl": "0"}})
    await vault.done("POST", "auth/up0/users/bob", {"password": "pw"})
    for _ in range(3):
        r = await vault.call("POST", "auth/up0/login/bob", {"password": "pw"}, token=None)
        assert r.status_code == 200
    assert len(bcrypt_calls) == 3
    r = await vault.call("POST", "sys/auth/up1", {"type": "userpass", "options": {"verified_password_ttl": "soon"}})
    assert r.status_code == 400 and "verified_password_ttl" in r.text
    assert (await vault.call("GET", "sys/auth/up1/tune")).status_code == 400  # nothing half-mounted
