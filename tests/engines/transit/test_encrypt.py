"""encrypt / decrypt / rewrap: layouts, batches with per-item errors, derivation, convergence, versions."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from strongroom.engines.transit.aead import XChaCha20Poly1305, hchacha20
from strongroom.engines.transit.gob64 import Base64Error, b64decode
from strongroom.framework import Op

from .conftest import Transit

HELLO = base64.b64encode(b"hello").decode()
SYMMETRIC = ["aes128-gcm96", "aes256-gcm96", "chacha20-poly1305", "xchacha20-poly1305"]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_hchacha20_matches_the_draft_test_vector() -> None:
    # draft-irtf-cfrg-xchacha-03, section 2.2.1.
    key = bytes(range(32))
    nonce = bytes.fromhex("000000090000004a0000000031415927")
    assert hchacha20(key, nonce).hex() == (
        "82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc")


def test_xchacha20poly1305_matches_the_draft_aead_vector() -> None:
    # draft-irtf-cfrg-xchacha-03, appendix A.3.1.
    plaintext = (b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, "
                 b"sunscreen would be it.")
    aad = bytes.fromhex("50515253c0c1c2c3c4c5c6c7")
    key = bytes.fromhex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
    iv = bytes.fromhex("404142434445464748494a4b4c4d4e4f5051525354555657")
    out = XChaCha20Poly1305(key).encrypt(iv, plaintext, aad)
    assert out[-16:].hex() == "c0875924c1c7987947deafd8780acf49"
    assert out[:16].hex() == "bd6d179d3e83d43b9576579493c0e939"
    assert XChaCha20Poly1305(key).decrypt(iv, out, aad) == plaintext


def test_go_base64_errors() -> None:
    assert b64decode("aGVsbG8=") == b"hello"
    assert b64decode("aGVs\nbG8=") == b"hello"
    for text, offset in [("aGVsbG8", 4), ("!!", 0), ("aGVsbG8=x", 8), ("aG=", 3), ("a===", 1), ("aGVs bG8=", 4),
                         ("AAAA==", 4), ("AAA=A", 4), ("AAAAA", 4)]:
        with pytest.raises(Base64Error) as info:
            b64decode(text)
        assert str(info.value) == f"illegal base64 data at input byte {offset}", text


@pytest.mark.parametrize("key_type", SYMMETRIC)
async def test_ciphertext_layout_is_vaults(transit: Transit, key_type: str) -> None:
    await transit.write("keys/k", {"type": key_type})
    data = await transit.write("encrypt/k", {"plaintext": HELLO})
    assert data["key_version"] == 1
    prefix, version, body = data["ciphertext"].split(":")
    assert (prefix, version) == ("vault", "v1")
    raw = base64.b64decode(body)
    key = base64.b64decode((await transit.stored("k"))["keys"]["1"]["key"])
    n = 24 if key_type == "xchacha20-poly1305" else 12
    aead: AESGCM | ChaCha20Poly1305 | XChaCha20Poly1305 = (
        ChaCha20Poly1305(key) if key_type == "chacha20-poly1305" else
        XChaCha20Poly1305(key) if key_type == "xchacha20-poly1305" else AESGCM(key))
    assert aead.decrypt(raw[:n], raw[n:], None) == b"hello"
    assert len(raw) == n + 5 + 16
    assert (await transit.write("decrypt/k", {"ciphertext": data["ciphertext"]}))["plaintext"] == HELLO


async def test_rsa_encryption_is_oaep_sha256(transit: Transit) -> None:
    data = await transit.write("keys/r", {"type": "rsa-2048"})
    from cryptography.hazmat.primitives import serialization

    pub = serialization.load_pem_public_key(data["keys"]["1"]["public_key"].encode())
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    assert isinstance(pub, rsa.RSAPublicKey)
    ct = pub.encrypt(b"outside", oaep)
    plain = await transit.write("decrypt/r", {"ciphertext": "vault:v1:" + b64(ct)})
    assert base64.b64decode(plain["plaintext"]) == b"outside"
    enc = await transit.write("encrypt/r", {"plaintext": HELLO})
    assert (await transit.write("decrypt/r", {"ciphertext": enc["ciphertext"]}))["plaintext"] == HELLO
    assert await transit.fails("decrypt/r", {"ciphertext": "vault:v1:" + b64(b"x" * 256)}) == \
        "failed to RSA decrypt the ciphertext: crypto/rsa: decryption error"


async def test_upsert_on_encrypt(transit: Transit) -> None:
    req = transit.request(Op.UPDATE, "encrypt/new")
    found, exists = await transit.backend.exists(req)
    assert found and not exists
    data = await transit.ok(Op.CREATE, "encrypt/new", {"plaintext": HELLO, "type": "chacha20-poly1305"})
    assert data["key_version"] == 1
    assert (await transit.read("keys/new"))["type"] == "chacha20-poly1305"
    data = await transit.ok(Op.CREATE, "encrypt/dnew", {"plaintext": HELLO, "context": "YWJj"})
    assert (await transit.read("keys/dnew"))["derived"] is True
    assert (await transit.error(Op.CREATE, "encrypt/x", {"plaintext": HELLO, "type": "ecdsa-p256"})).message == \
        "key type ecdsa-p256 not supported for this operation"
    assert (await transit.error(Op.CREATE, "encrypt/x", {"plaintext": HELLO, "type": "ed25519"})).message == \
        "unknown key type ed25519"
    assert (await transit.error(Op.CREATE, "encrypt/x", {"plaintext": HELLO, "convergent_encryption": True})).message \
        == "convergent encryption requires derivation to be enabled, so context is required"
    # Without CREATE (the policy allows update only) a missing key is an error, and nothing is made.
    assert await transit.fails("encrypt/x", {"plaintext": HELLO}) == "encryption key not found"
    assert await transit.storage.get("policy/x") is None


async def test_bad_input_wording(transit: Transit) -> None:
    await transit.write("keys/k")
    assert await transit.fails("encrypt/k", {"plaintext": "aGVsbG8"}) == "illegal base64 data at input byte 4"
    assert await transit.fails("encrypt/k", {}) == "missing plaintext to encrypt"
    assert await transit.fails("encrypt/k", {"plaintext": HELLO, "key_version": 3}) == \
        "requested version for encryption is higher than the latest key version"
    assert await transit.fails("encrypt/k", {"plaintext": HELLO, "key_version": -1}) == \
        "requested version for encryption is negative"
    assert await transit.fails("decrypt/k", {}) == "missing ciphertext to decrypt"
    for ct, msg in [("vault:v1:abc", "invalid ciphertext: could not decode base64"),
                    ("vault:v9:AAAA", "invalid ciphertext: version is too new"),
                    ("garbage", "invalid ciphertext: no prefix"),
                    ("vault:vx:AAAA", "invalid ciphertext: version number could not be decoded"),
                    ("vault:v1", "invalid ciphertext: wrong number of fields"),
                    ("vault:v1:" + "A" * 32, "cipher: message authentication failed"),
                    ("vault:v1:AAAA", "invalid ciphertext length")]:
        assert await transit.fails("decrypt/k", {"ciphertext": ct}) == msg, ct
    assert await transit.fails("decrypt/nokey", {"ciphertext": "vault:v1:AAAA"}) == "encryption key not found"
    await transit.write("keys/e", {"type": "ed25519"})
    assert await transit.fails("encrypt/e", {"plaintext": HELLO}) == "message encryption not supported for key type ed25519"


async def test_versions_and_min_versions(transit: Transit) -> None:
    await transit.write("keys/k")
    v1 = (await transit.write("encrypt/k", {"plaintext": HELLO}))["ciphertext"]
    await transit.write("keys/k/rotate")
    v2 = await transit.write("encrypt/k", {"plaintext": HELLO})
    assert v2["key_version"] == 2 and v2["ciphertext"].startswith("vault:v2:")
    old = await transit.write("encrypt/k", {"plaintext": HELLO, "key_version": 1})
    assert old["key_version"] == 1 and old["ciphertext"].startswith("vault:v1:")
    assert (await transit.write("decrypt/k", {"ciphertext": v1}))["plaintext"] == HELLO
    # vault:v0: is read as version 1, as Vault does.
    assert (await transit.write("decrypt/k", {"ciphertext": "vault:v0:" + v1.split(":")[2]}))["plaintext"] == HELLO
    rewrapped = await transit.write("rewrap/k", {"ciphertext": v1})
    assert rewrapped["key_version"] == 2 and rewrapped["ciphertext"].startswith("vault:v2:")
    assert (await transit.write("decrypt/k", {"ciphertext": rewrapped["ciphertext"]}))["plaintext"] == HELLO
    await transit.write("keys/k/config", {"min_decryption_version": 2, "min_encryption_version": 2})
    msg = "ciphertext or signature version is disallowed by policy (too old)"
    assert await transit.fails("decrypt/k", {"ciphertext": v1}) == msg
    assert await transit.fails("rewrap/k", {"ciphertext": v1}) == msg
    assert await transit.fails("encrypt/k", {"plaintext": HELLO, "key_version": 1}) == \
        "requested version for encryption is less than the minimum encryption key version"


async def test_derived_keys_need_the_right_context(transit: Transit) -> None:
    await transit.write("keys/d", {"derived": True})
    missing = await transit.fails("encrypt/d", {"plaintext": HELLO})
    assert missing.startswith("missing 'context' for key derivation; the key was created using a derived key")
    assert await transit.fails("encrypt/d", {"plaintext": HELLO, "context": "!!"}) == \
        "illegal base64 data at input byte 0"
    ct = (await transit.write("encrypt/d", {"plaintext": HELLO, "context": "YWJj"}))["ciphertext"]
    assert (await transit.write("decrypt/d", {"ciphertext": ct, "context": "YWJj"}))["plaintext"] == HELLO
    assert await transit.fails("decrypt/d", {"ciphertext": ct, "context": "YWJk"}) == \
        "cipher: message authentication failed"
    assert (await transit.fails("decrypt/d", {"ciphertext": ct})).startswith("missing 'context'")
    # The key is HKDF-SHA256(version key, info=context): decrypt outside with it.
    key = base64.b64decode((await transit.stored("d"))["keys"]["1"]["key"])
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"abc").derive(key)
    raw = base64.b64decode(ct.split(":")[2])
    assert AESGCM(derived).decrypt(raw[:12], raw[12:], None) == b"hello"


async def test_convergent_encryption_is_deterministic(transit: Transit) -> None:
    await transit.write("keys/c", {"derived": True, "convergent_encryption": True})
    one = await transit.write("encrypt/c", {"plaintext": HELLO, "context": "YWJj"})
    two = await transit.write("encrypt/c", {"plaintext": HELLO, "context": "YWJj"})
    other_ctx = await transit.write("encrypt/c", {"plaintext": HELLO, "context": "YWJk"})
    other_text = await transit.write("encrypt/c", {"plaintext": b64(b"hellO"), "context": "YWJj"})
    assert one["ciphertext"] == two["ciphertext"]
    assert len({one["ciphertext"], other_ctx["ciphertext"], other_text["ciphertext"]}) == 3
    # Version 3 layout: HKDF gives encryption key || HMAC key; nonce = HMAC-SHA256(plaintext)[:12].
    import hashlib
    import hmac

    key = base64.b64decode((await transit.stored("c"))["keys"]["1"]["key"])
    material = HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=b"abc").derive(key)
    raw = base64.b64decode(one["ciphertext"].split(":")[2])
    assert raw[:12] == hmac.new(material[32:], b"hello", hashlib.sha256).digest()[:12]
    assert AESGCM(material[:32]).decrypt(raw[:12], raw[12:], None) == b"hello"
    assert (await transit.write("decrypt/c", {"ciphertext": one["ciphertext"], "context": "YWJj"}))["plaintext"] \
        == HELLO


async def test_associated_data(transit: Transit) -> None:
    await transit.write("keys/k")
    ct = (await transit.write("encrypt/k", {"plaintext": HELLO, "associated_data": "YWFk"}))["ciphertext"]
    assert (await transit.write("decrypt/k", {"ciphertext": ct, "associated_data": "YWFk"}))["plaintext"] == HELLO
    assert await transit.fails("decrypt/k", {"ciphertext": ct}) == "cipher: message authentication failed"


async def test_batches_with_per_item_errors(transit: Transit) -> None:
    await transit.write("keys/k")
    resp = await transit.call(Op.UPDATE, "encrypt/k", {"batch_input": [
        {"plaintext": HELLO}, {"plaintext": "!!"}, {"plaintext": HELLO, "reference": "r1"}]})
    assert resp is not None and resp.data is not None and resp.status == 400
    results = resp.data["batch_results"]
    assert results[1] == {"error": "illegal base64 data at input byte 0", "reference": ""}
    assert results[0]["key_version"] == 1 and results[2]["reference"] == "r1"
    # All good: 200.
    resp = await transit.call(Op.UPDATE, "encrypt/k", {"batch_input": [{"plaintext": HELLO}, {"plaintext": ""}]})
    assert resp is not None and resp.status == 0 and resp.data is not None
    cts = [r["ciphertext"] for r in resp.data["batch_results"]]
    resp = await transit.call(Op.UPDATE, "decrypt/k", {
        "batch_input": [{"ciphertext": cts[0], "reference": "a"}, {"ciphertext": "x"}, {"ciphertext": cts[1]}],
        "partial_failure_response_code": 207})
    assert resp is not None and resp.data is not None and resp.status == 207
    assert resp.data["batch_results"] == [
        {"plaintext": HELLO, "reference": "a"},
        {"plaintext": "", "error": "invalid ciphertext: no prefix", "reference": ""},
        {"plaintext": "", "reference": ""}]
    # Everything failed: 400 whatever partial_failure_response_code says.
    resp = await transit.call(Op.UPDATE, "decrypt/k", {"batch_input": [{"ciphertext": "x"}],
                                                       "partial_failure_response_code": 207})
    assert resp is not None and resp.status == 400
    resp = await transit.call(Op.UPDATE, "rewrap/k", {"batch_input": [{"ciphertext": cts[0]}, {"ciphertext": "y"}]})
    assert resp is not None and resp.data is not None and resp.status == 0
    assert resp.data["batch_results"][1] == {"error": "invalid ciphertext: no prefix", "reference": ""}
    assert await transit.fails("encrypt/k", {"batch_input": []}) == "missing batch input to process"
    assert await transit.fails("encrypt/k", {"batch_input": [{"plaintext": HELLO, "context": "YQ=="},
                                                             {"plaintext": HELLO}]}) == \
        "context should be set either in all the request blocks or in none"
    msg = await transit.fails("encrypt/k", {"batch_input": [{"plaintext": 5}, {}]})
    assert msg == ("failed to parse batch input: '[0].plaintext' expected type 'string', got unconvertible type "
                   "'json.Number'\n'[1].plaintext' missing plaintext to encrypt")
    assert (await transit.fails("encrypt/k", {"batch_input": [{"plaintext": HELLO}] * 10_001})).startswith(
        "batch_input has 10001 items")
    assert await transit.fails("encrypt/k", {"batch_input": "nope"}) == \
        "failed to parse batch input: source data must be an array or slice, got string"


async def test_unknown_fields_are_warned_about(transit: Transit) -> None:
    await transit.write("keys/k")
    resp = await transit.call(Op.UPDATE, "encrypt/k", {"plaintext": HELLO, "foo": 1})
    assert resp is not None and resp.warnings == ["Endpoint ignored these unrecognized parameters: [foo]"]
    resp = await transit.call(Op.UPDATE, "encrypt/k", {"plaintext": HELLO})
    assert resp is not None and resp.warnings == []


async def test_config_keys_disable_upsert(transit: Transit) -> None:
    assert await transit.read("config/keys") == {"disable_upsert": False}
    assert await transit.write("config/keys", {"disable_upsert": True}) == {"disable_upsert": True}
    assert (await transit.error(Op.CREATE, "encrypt/new", {"plaintext": HELLO})).message == "encryption key not found"
    assert await transit.storage.get("policy/new") is None
    # Another node turns it back on: the cached setting follows the invalidation.
    await transit.storage.put("config/keys", b'{"disable_upsert": false}')
    assert await transit.read("config/keys") == {"disable_upsert": True}
    await transit.backend.invalidate("config/keys")
    assert await transit.read("config/keys") == {"disable_upsert": False}
    assert (await transit.ok(Op.CREATE, "encrypt/new", {"plaintext": HELLO}))["key_version"] == 1
