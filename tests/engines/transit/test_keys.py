"""keys/NAME create, read, list, delete, config, rotate, trim, auto-rotation: OpenBao's fields and wording."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from strongroom.errors import NotFound
from strongroom.framework import Op

from .conftest import Transit

SYMMETRIC = ["aes128-gcm96", "aes256-gcm96", "chacha20-poly1305", "xchacha20-poly1305"]


async def test_create_default_is_aes256_with_vaults_fields(transit: Transit) -> None:
    data = await transit.write("keys/k1")
    assert data["type"] == "aes256-gcm96"
    assert set(data) == {
        "allow_plaintext_backup", "auto_rotate_period", "deletion_allowed", "derived", "exportable",
        "imported_key", "keys", "latest_version", "min_available_version", "min_decryption_version",
        "min_encryption_version", "name", "soft_deleted", "supports_decryption", "supports_derivation",
        "supports_encryption", "supports_signing", "type"}
    assert data["latest_version"] == 1 and data["min_decryption_version"] == 1
    assert data["min_encryption_version"] == 0 and data["min_available_version"] == 0
    assert data["supports_encryption"] and data["supports_decryption"] and data["supports_derivation"]
    assert not data["supports_signing"]
    assert list(data["keys"]) == ["1"] and isinstance(data["keys"]["1"], int)
    assert await transit.read("keys/k1") == data
    # A second create answers the existing key unchanged.
    assert await transit.write("keys/k1", {"type": "aes128-gcm96"}) == data


@pytest.mark.parametrize("key_type", SYMMETRIC + ["hmac"])
async def test_symmetric_types(transit: Transit, key_type: str) -> None:
    data = await transit.write("keys/k", {"type": key_type})
    assert data["type"] == key_type
    policy = await transit.stored("k")
    key = base64.b64decode(policy["keys"]["1"]["key"])
    assert len(key) == (16 if key_type == "aes128-gcm96" else 32)
    if key_type == "hmac":
        assert "keys" not in data and data["key_size"] == 32
        assert not data["supports_encryption"] and not data["supports_derivation"]


async def test_asymmetric_public_keys_per_version(transit: Transit) -> None:
    data = await transit.write("keys/e", {"type": "ed25519"})
    k = data["keys"]["1"]
    assert k["name"] == "ed25519" and k["certificate_chain"] == "" and k["creation_time"].endswith("Z")
    assert len(base64.b64decode(k["public_key"])) == 32
    assert data["supports_signing"] and not data["supports_encryption"]
    await transit.write("keys/e/rotate")
    data = await transit.read("keys/e")
    assert set(data["keys"]) == {"1", "2"} and data["keys"]["1"]["public_key"] != data["keys"]["2"]["public_key"]
    for key_type, curve, name in [("ecdsa-p256", ec.SECP256R1, "P-256"), ("ecdsa-p384", ec.SECP384R1, "P-384"),
                                  ("ecdsa-p521", ec.SECP521R1, "P-521")]:
        k = (await transit.write(f"keys/{key_type}", {"type": key_type}))["keys"]["1"]
        pub = serialization.load_pem_public_key(k["public_key"].encode())
        assert isinstance(pub, ec.EllipticCurvePublicKey) and isinstance(pub.curve, curve) and k["name"] == name
    data = await transit.write("keys/r", {"type": "rsa-2048"})
    pub_rsa = serialization.load_pem_public_key(data["keys"]["1"]["public_key"].encode())
    assert isinstance(pub_rsa, rsa.RSAPublicKey) and pub_rsa.key_size == 2048
    assert data["keys"]["1"]["name"] == "rsa-2048" and data["supports_encryption"] and data["supports_signing"]


async def test_derived_ed25519_public_key_for_a_context(transit: Transit) -> None:
    data = await transit.write("keys/d", {"type": "ed25519", "derived": True})
    assert data["keys"]["1"]["public_key"] == "" and data["kdf"] == "hkdf_sha256"
    one = (await transit.read("keys/d", {"context": "YWJj"}))["keys"]["1"]["public_key"]
    two = (await transit.read("keys/d", {"context": "YWJk"}))["keys"]["1"]["public_key"]
    assert one and two and one != two
    ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(one))
    assert "failed to base64-decode context" in (await transit.error(Op.READ, "keys/d", {"context": "!"})).message


async def test_create_options_and_errors(transit: Transit) -> None:
    data = await transit.write("keys/c", {"derived": True, "convergent_encryption": True, "exportable": True,
                                          "allow_plaintext_backup": True, "auto_rotate_period": "2h"})
    assert data["derived"] and data["convergent_encryption"] and data["convergent_encryption_version"] == -1
    assert data["exportable"] and data["allow_plaintext_backup"] and data["auto_rotate_period"] == 7200
    assert await transit.fails("keys/x", {"type": "bogus"}) == "unknown key type bogus"
    assert await transit.fails("keys/x", {"convergent_encryption": True}) == \
        "convergent encryption requires derivation to be enabled"
    assert await transit.fails("keys/x", {"auto_rotate_period": "10m"}) == \
        "auto rotate period must be 0 to disable or at least an hour"
    assert await transit.fails("keys/x", {"key_size": 20}) == "key_size is not valid for algorithm aes256-gcm96"
    assert await transit.fails("keys/x", {"type": "hmac", "key_size": 20}) == "invalid key_size 20"
    assert await transit.fails("keys/x", {"type": "rsa-2048", "derived": True}) == \
        "key derivation and convergent encryption not supported for keys of type rsa-2048"
    assert await transit.fails("keys/x", {"type": "ed25519", "derived": True, "convergent_encryption": True}) == \
        "convergent encryption not supported for keys of type ed25519"
    assert await transit.storage.get("policy/x") is None
    data = await transit.write("keys/h", {"type": "hmac", "key_size": 64})
    assert data["key_size"] == 64


async def test_list_and_delete(transit: Transit) -> None:
    with pytest.raises(NotFound):
        await transit.call(Op.LIST, "keys/")
    for name in ("b", "a", "c"):
        await transit.write(f"keys/{name}")
    assert (await transit.ok(Op.LIST, "keys/"))["keys"] == ["a", "b", "c"]
    assert (await transit.ok(Op.LIST, "keys", {"after": "a", "limit": 1}))["keys"] == ["b"]
    err = await transit.error(Op.DELETE, "keys/a")
    assert err.status_code == 400 and err.message == "error deleting policy a: deletion is not allowed for this key"
    err = await transit.error(Op.DELETE, "keys/nokey")
    assert err.message == "error deleting policy nokey: could not delete key; not found"
    await transit.write("keys/a/config", {"deletion_allowed": True})
    assert await transit.call(Op.DELETE, "keys/a") is None
    with pytest.raises(NotFound):
        await transit.call(Op.READ, "keys/a")
    assert await transit.storage.get("policy/a") is None
    assert (await transit.ok(Op.LIST, "keys/"))["keys"] == ["b", "c"]


async def test_rotate_config_trim(transit: Transit) -> None:
    await transit.write("keys/k")
    assert await transit.fails("keys/k/config", {"min_decryption_version": 5}) == \
        "cannot set min decryption version of 5, latest key version is 1"
    await transit.write("keys/k/rotate")
    data = await transit.write("keys/k/rotate")
    assert data["latest_version"] == 3 and list(data["keys"]) == ["1", "2", "3"]
    assert await transit.fails("keys/k/trim", {"min_available_version": 2}) == \
        "minimum available version cannot be set when minimum encryption version is not set"
    assert await transit.fails("keys/k/config", {"min_decryption_version": 3, "min_encryption_version": 2}) == (
        "cannot set min encryption/decryption values; min encryption version of 2 must be greater than or equal "
        "to min decryption version of 3")
    assert (await transit.read("keys/k"))["min_decryption_version"] == 1  # the failed config changed nothing
    assert await transit.fails("keys/k/config", {"min_encryption_version": 4}) == \
        "cannot set min encryption version of 4, latest key version is 3"
    data = await transit.write("keys/k/config", {"min_decryption_version": 2, "min_encryption_version": 3})
    assert list(data["keys"]) == ["2", "3"]  # versions below min_decryption_version are not shown
    assert await transit.fails("keys/k/trim", {"min_available_version": 3}) == \
        "minimum available version cannot be greater than minimum decryption version"
    assert await transit.fails("keys/k/trim", {}) == "missing min_available_version"
    data = await transit.write("keys/k/trim", {"min_available_version": 2})
    assert data["min_available_version"] == 2
    stored = await transit.stored("k")
    assert sorted(stored["keys"]) == ["2", "3"]  # version 1 is gone for good
    assert await transit.fails("keys/k/trim", {"min_available_version": 1}) == \
        "minimum available version cannot be decremented"
    assert await transit.fails("keys/k/config", {"min_decryption_version": 1}) == \
        "min decryption version should not be less then min available version"
    data = await transit.write("keys/k/config", {"min_decryption_version": 2, "min_encryption_version": 3})
    assert data  # unchanged values: answered, not an error
    assert await transit.fails("keys/nokey/config", {"exportable": True}) == "no existing key named nokey could be found"
    assert await transit.fails("keys/nokey/rotate") == "key not found"
    assert await transit.fails("keys/nokey/trim", {"min_available_version": 1}) == "invalid key name"


async def test_config_flags_cannot_be_disabled(transit: Transit) -> None:
    await transit.write("keys/k")
    data = await transit.write("keys/k/config", {"exportable": True, "allow_plaintext_backup": True,
                                                 "auto_rotate_period": "1h", "deletion_allowed": True})
    assert data["exportable"] and data["allow_plaintext_backup"] and data["deletion_allowed"]
    assert data["auto_rotate_period"] == 3600
    data = await transit.write("keys/k/config", {"exportable": False, "allow_plaintext_backup": False,
                                                 "auto_rotate_period": 0})
    assert data["exportable"] and data["allow_plaintext_backup"] and data["auto_rotate_period"] == 0
    assert await transit.fails("keys/k/config", {"auto_rotate_period": "5m"}) == \
        "auto rotate period must be 0 to disable or at least an hour"


async def test_auto_rotation(transit: Transit) -> None:
    transit.backend.clock = lambda: 1_000 * 1_000_000_000  # type: ignore[attr-defined]
    await transit.write("keys/auto", {"auto_rotate_period": "1h"})
    await transit.write("keys/manual")
    b = transit.backend
    assert await b.auto_rotate(transit.storage, 1_000 + 3599) == []  # type: ignore[attr-defined]
    assert await b.auto_rotate(transit.storage, 1_000 + 3600) == ["auto"]  # type: ignore[attr-defined]
    assert (await transit.read("keys/auto"))["latest_version"] == 2
    assert (await transit.read("keys/manual"))["latest_version"] == 1


async def test_cache_follows_every_write_and_invalidation(transit: Transit) -> None:
    await transit.write("keys/k")
    assert (await transit.read("keys/k"))["latest_version"] == 1
    # Another node rotates the key: the stored key changes behind this backend's cache.
    stored = await transit.stored("k")
    stored["latest_version"] = 2
    stored["keys"]["2"] = stored["keys"]["1"]
    await transit.storage.put("policy/k", json.dumps(stored).encode())
    assert (await transit.read("keys/k"))["latest_version"] == 1  # cached
    await transit.backend.invalidate("policy/k")
    assert (await transit.read("keys/k"))["latest_version"] == 2


async def test_soft_delete(transit: Transit) -> None:
    await transit.write("keys/k", {"exportable": True, "allow_plaintext_backup": True})
    await transit.write("keys/e", {"type": "ed25519"})
    ct = (await transit.write("encrypt/k", {"plaintext": "aGVsbG8="}))["ciphertext"]
    sig = (await transit.write("sign/e", {"input": "aGVsbG8="}))["signature"]
    resp = await transit.call(Op.DELETE, "keys/k/soft-delete")
    assert resp is not None and resp.data is not None and resp.data["soft_deleted"] is True and not resp.warnings
    resp = await transit.call(Op.DELETE, "keys/k/soft-delete")
    assert resp is not None and resp.warnings == ["key was already marked as soft deleted"]
    await transit.call(Op.DELETE, "keys/e/soft-delete")
    assert (await transit.read("keys/k"))["soft_deleted"] is True
    assert (await transit.stored("k"))["soft_deleted"] is True
    msg = "refusing to use soft-deleted key"
    for path, body in [("encrypt/k", {"plaintext": "aGVsbG8="}), ("decrypt/k", {"ciphertext": ct}),
                       ("rewrap/k", {"ciphertext": ct}), ("datakey/plaintext/k", {}), ("hmac/k", {"input": "aGVsbG8="}),
                       ("keys/k/rotate", {}), ("sign/e", {"input": "aGVsbG8="}),
                       ("verify/e", {"input": "aGVsbG8=", "signature": sig})]:
        assert await transit.fails(path, body) == msg, path
    for path in ("backup/k", "export/encryption-key/k"):
        assert (await transit.error(Op.READ, path)).message == msg
    assert (await transit.write("keys/k/config", {"deletion_allowed": True}))["deletion_allowed"] is True
    data = await transit.write("keys/k/soft-delete-restore")
    assert data["soft_deleted"] is False
    resp = await transit.call(Op.UPDATE, "keys/k/soft-delete-restore")
    assert resp is not None and resp.warnings == ["key was already restored"]
    assert (await transit.write("decrypt/k", {"ciphertext": ct}))["plaintext"] == "aGVsbG8="
    assert await transit.call(Op.DELETE, "keys/nosuch/soft-delete") is None
    # A soft-deleted key is not auto-rotated.
    await transit.write("keys/auto", {"auto_rotate_period": "1h"})
    await transit.call(Op.DELETE, "keys/auto/soft-delete")
    assert await transit.backend.auto_rotate(transit.storage, 2**40) == []  # type: ignore[attr-defined]


async def test_cache_config_bounds_the_decoded_keys(transit: Transit) -> None:
    assert await transit.read("cache-config") == {"size": 0}
    assert await transit.fails("cache-config", {"size": 5}) == "size must be 0 or a value greater or equal to 10"
    assert await transit.write("cache-config", {"size": 10}) == {"size": 10}
    for i in range(25):
        await transit.write(f"keys/c{i}")
    assert len(transit.backend.cache) == 10  # type: ignore[attr-defined]
    await transit.backend.setup()  # as after an unseal: nothing cached, the setting read again
    for i in range(25):
        assert (await transit.read(f"keys/c{i}"))["name"] == f"c{i}"
    cache = transit.backend.cache  # type: ignore[attr-defined]
    assert len(cache) == 10 and "c24" in cache and "c0" not in cache
    await transit.storage.put("config/cache", b'{"size": 0}')
    await transit.backend.invalidate("config/cache")
    for i in range(25):
        await transit.read(f"keys/c{i}")
    assert len(cache) == 25


async def test_concurrent_rotations_and_use(transit: Transit) -> None:
    """Writers of one key are serialised (no lost rotation); readers never see a half-made key."""
    import asyncio

    await transit.write("keys/busy", {"type": "chacha20-poly1305"})

    async def rotate() -> None:
        await transit.write("keys/busy/rotate")

    async def encrypt() -> str:
        return str((await transit.write("encrypt/busy", {"plaintext": "aGVsbG8="}))["ciphertext"])

    results = await asyncio.gather(*[rotate() if i % 2 else encrypt() for i in range(60)])
    assert (await transit.read("keys/busy"))["latest_version"] == 31
    assert (await transit.stored("busy"))["latest_version"] == 31
    for ct in [r for r in results if r]:
        assert (await transit.write("decrypt/busy", {"ciphertext": ct}))["plaintext"] == "aGVsbG8="
