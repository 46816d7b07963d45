"""sign / verify: every asymmetric type, checked outside with ``cryptography``, and against OpenBao."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

from strongroom.engines.transit.keyentry import rsa_to_go

from .conftest import Bao, Transit

HELLO = base64.b64encode(b"hello").decode()
HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"sha2-256": hashes.SHA256, "sha2-384": hashes.SHA384, "sha2-512": hashes.SHA512,
          "sha3-256": hashes.SHA3_256, "sha1": hashes.SHA1, "sha2-224": hashes.SHA224}


def sig_bytes(sig: str, jws: bool = False) -> bytes:
    body = sig.split(":", 2)[2]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)) if jws else base64.b64decode(body)


async def public_key(transit: Transit, name: str, version: int = 1) -> Any:
    k = (await transit.read(f"keys/{name}"))["keys"][str(version)]["public_key"]
    if (await transit.read(f"keys/{name}"))["type"] == "ed25519":
        return ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(k))
    return serialization.load_pem_public_key(k.encode())


@pytest.mark.parametrize("key_type", ["ecdsa-p256", "ecdsa-p384", "ecdsa-p521"])
async def test_ecdsa_signatures_verify_outside(transit: Transit, key_type: str) -> None:
    await transit.write("keys/k", {"type": key_type})
    pub = await public_key(transit, "k")
    for alg in ("sha2-256", "sha2-384", "sha3-256"):
        sig = (await transit.write(f"sign/k/{alg}", {"input": HELLO}))["signature"]
        assert sig.startswith("vault:v1:")
        pub.verify(sig_bytes(sig), b"hello", ec.ECDSA(HASHES[alg]()))
        with pytest.raises(InvalidSignature):
            pub.verify(sig_bytes(sig), b"hellO", ec.ECDSA(HASHES[alg]()))
        assert (await transit.write(f"verify/k/{alg}", {"input": HELLO, "signature": sig}))["valid"] is True
        assert (await transit.write(f"verify/k/{alg}", {"input": base64.b64encode(b"x").decode(),
                                                        "signature": sig}))["valid"] is False
    # jws: fixed-width r || s, raw url-safe base64.
    sig = (await transit.write("sign/k", {"input": HELLO, "marshaling_algorithm": "jws"}))["signature"]
    raw = sig_bytes(sig, jws=True)
    n = {"ecdsa-p256": 32, "ecdsa-p384": 48, "ecdsa-p521": 66}[key_type]
    assert len(raw) == 2 * n and "=" not in sig
    der = utils.encode_dss_signature(int.from_bytes(raw[:n], "big"), int.from_bytes(raw[n:], "big"))
    pub.verify(der, b"hello", ec.ECDSA(hashes.SHA256()))
    assert (await transit.write("verify/k", {"input": HELLO, "signature": sig,
                                             "marshaling_algorithm": "jws"}))["valid"] is True
    # prehashed: the input is the digest.
    digest = base64.b64encode(hashlib.sha256(b"hello").digest()).decode()
    sig = (await transit.write("sign/k", {"input": digest, "prehashed": True}))["signature"]
    pub.verify(sig_bytes(sig), b"hello", ec.ECDSA(hashes.SHA256()))


async def test_ed25519_signatures_verify_outside(transit: Transit) -> None:
    await transit.write("keys/e", {"type": "ed25519"})
    pub = await public_key(transit, "e")
    data = await transit.write("sign/e", {"input": HELLO})
    assert data["key_version"] == 1 and "public_key" not in data
    pub.verify(sig_bytes(data["signature"]), b"hello")
    with pytest.raises(InvalidSignature):
        pub.verify(sig_bytes(data["signature"]), b"hellO")
    assert (await transit.write("verify/e", {"input": HELLO, "signature": data["signature"]}))["valid"] is True
    # Rotation: each version signs with its own key; both verify.
    await transit.write("keys/e/rotate")
    data2 = await transit.write("sign/e", {"input": HELLO})
    assert data2["signature"].startswith("vault:v2:")
    (await public_key(transit, "e", 2)).verify(sig_bytes(data2["signature"]), b"hello")
    assert (await transit.write("verify/e", {"input": HELLO, "signature": data["signature"]}))["valid"] is True
    old = await transit.write("sign/e", {"input": HELLO, "key_version": 1})
    assert old["signature"].startswith("vault:v1:")
    await transit.write("keys/e/config", {"min_decryption_version": 2})
    assert await transit.fails("verify/e", {"input": HELLO, "signature": data["signature"]}) == \
        "ciphertext or signature version is disallowed by policy (too old)"


async def test_derived_ed25519(transit: Transit) -> None:
    await transit.write("keys/d", {"type": "ed25519", "derived": True})
    data = await transit.write("sign/d", {"input": HELLO, "context": "YWJj"})
    pub = ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(data["public_key"]))
    pub.verify(sig_bytes(data["signature"]), b"hello")
    read = await transit.read("keys/d", {"context": "YWJj"})
    assert read["keys"]["1"]["public_key"] == data["public_key"]
    assert (await transit.write("verify/d", {"input": HELLO, "signature": data["signature"], "context": "YWJj"}))[
        "valid"] is True
    assert (await transit.write("verify/d", {"input": HELLO, "signature": data["signature"], "context": "YWJk"}))[
        "valid"] is False
    assert (await transit.fails("sign/d", {"input": HELLO})).startswith("error deriving key: missing 'context'")
    batch = await transit.write("sign/d", {"batch_input": [{"input": HELLO, "context": "YWJj", "reference": "r"},
                                                           {"input": HELLO}]})
    first, second = batch["batch_results"]
    assert first["publickey"] == data["public_key"] and first["reference"] == "r" and first["key_version"] == 1
    assert second["key_version"] == 0 and second["error"].startswith("error deriving key")


@pytest.mark.parametrize("key_type,bits", [("rsa-2048", 2048), ("rsa-3072", 3072)])
async def test_rsa_signatures_verify_outside(transit: Transit, key_type: str, bits: int) -> None:
    await transit.write("keys/r", {"type": key_type})
    pub = await public_key(transit, "r")
    assert isinstance(pub, rsa.RSAPublicKey) and pub.key_size == bits
    for alg in ("sha2-256", "sha2-512", "sha3-256"):
        h = HASHES[alg]()
        pss = await transit.write(f"sign/r/{alg}", {"input": HELLO})  # pss, salt as large as possible
        pub.verify(sig_bytes(pss["signature"]), b"hello",
                   padding.PSS(mgf=padding.MGF1(h), salt_length=padding.PSS.MAX_LENGTH), h)
        v15 = await transit.write(f"sign/r/{alg}", {"input": HELLO, "signature_algorithm": "pkcs1v15"})
        pub.verify(sig_bytes(v15["signature"]), b"hello", padding.PKCS1v15(), h)
        with pytest.raises(InvalidSignature):
            pub.verify(sig_bytes(v15["signature"]), b"hellO", padding.PKCS1v15(), h)
        assert (await transit.write(f"verify/r/{alg}", {"input": HELLO, "signature": pss["signature"]}))["valid"]
        assert (await transit.write(f"verify/r/{alg}", {"input": HELLO, "signature": v15["signature"],
                                                        "signature_algorithm": "pkcs1v15"}))["valid"]
        assert not (await transit.write(f"verify/r/{alg}", {"input": HELLO, "signature": v15["signature"]}))["valid"]
    hashed = await transit.write("sign/r", {"input": HELLO, "salt_length": "hash"})
    pub.verify(sig_bytes(hashed["signature"]), b"hello",
               padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
    salted = await transit.write("sign/r", {"input": HELLO, "salt_length": "20"})
    pub.verify(sig_bytes(salted["signature"]), b"hello",
               padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=20), hashes.SHA256())
    digest = base64.b64encode(hashlib.sha256(b"hello").digest()).decode()
    pre = await transit.write("sign/r", {"input": digest, "prehashed": True, "signature_algorithm": "pkcs1v15"})
    pub.verify(sig_bytes(pre["signature"]), b"hello", padding.PKCS1v15(), hashes.SHA256())


async def test_signing_errors(transit: Transit) -> None:
    await transit.write("keys/e", {"type": "ed25519"})
    await transit.write("keys/r", {"type": "rsa-2048"})
    await transit.write("keys/p", {"type": "ecdsa-p256"})
    await transit.write("keys/k")
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("sign/e", {"input": HELLO, "key_version": 5}, "requested version for signing is higher than the latest key version"),
        ("sign/e", {"input": HELLO, "key_version": -1}, "requested version for signing is negative"),
        ("sign/e", {"input": "!"}, "unable to decode input as base64: illegal base64 data at input byte 0"),
        ("sign/k", {"input": HELLO}, "key type aes256-gcm96 does not support signing"),
        ("sign/nokey", {"input": HELLO}, "signing key not found"),
        ("sign/p/sha2-999", {"input": HELLO}, 'invalid hash algorithm "sha2-999"'),
        ("sign/p", {"input": HELLO, "marshaling_algorithm": "x"}, 'invalid marshaling type "x"'),
        ("sign/r", {"input": HELLO, "salt_length": "x"}, "salt length neither 'auto', 'hash', nor an int: x"),
        ("sign/r", {"input": HELLO, "salt_length": "-5"}, "salt length is invalid: -5"),
        ("sign/r", {"input": HELLO, "salt_length": "9999"}, "requested salt length 9999 is invalid"),
        ("sign/r", {"input": HELLO, "signature_algorithm": "x"}, "unsupported rsa signature algorithm x"),
        ("sign/r", {"input": HELLO, "prehashed": True}, "crypto/rsa: input must be hashed with given hash"),
        ("sign/r/none", {"input": HELLO}, "hash_algorithm=none requires both prehashed=true and "
                                          "signature_algorithm=pkcs1v15"),
        ("verify/e", {"input": HELLO, "signature": "x"}, "invalid signature: no prefix"),
        ("verify/e", {"input": HELLO, "signature": "vault:v1:!"}, "invalid base64 signature value"),
        ("verify/p", {"input": HELLO, "signature": "vault:v1:AAAA"}, "supplied signature is invalid"),
        ("verify/p", {"input": HELLO, "signature": "vault:v2:AAAA"}, "invalid signature: version is too new"),
        ("verify/nokey", {"input": HELLO, "signature": "vault:v1:AAAA"}, "signature verification key not found"),
        ("verify/k", {"input": HELLO, "signature": "vault:v1:AAAA"}, "key type aes256-gcm96 does not support verification"),
    ]
    for path, body, msg in cases:
        assert await transit.fails(path, body) == msg, (path, body)
    assert (await transit.write("verify/e", {"input": HELLO, "signature": "vault:v1:AAAA"}))["valid"] is False
    batch = await transit.write("verify/e", {"batch_input": [{"input": HELLO, "signature": "vault:v1:AAAA"},
                                                             {"input": "!", "signature": "x"}]})
    assert batch["batch_results"] == [
        {"valid": False, "reference": ""},
        {"valid": False, "error": "unable to decode input as base64: illegal base64 data at input byte 0",
         "reference": ""}]


def _entry_from_pem(key_type: str, exported: str) -> dict[str, Any]:
    """Our stored key entry fields for a private key OpenBao exported."""
    if key_type == "ed25519":
        raw = base64.b64decode(exported)
        return {"key": base64.b64encode(raw).decode(), "public_key": base64.b64encode(raw[32:]).decode()}
    priv = serialization.load_pem_private_key(exported.encode(), None)
    if isinstance(priv, rsa.RSAPrivateKey):
        return {"rsa_key": rsa_to_go(priv)}
    assert isinstance(priv, ec.EllipticCurvePrivateKey)
    nums = priv.private_numbers()
    pem = priv.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return {"ec_x": nums.public_numbers.x, "ec_y": nums.public_numbers.y, "ec_d": nums.private_value,
            "public_key": pem}


@pytest.mark.parametrize("key_type", ["ed25519", "ecdsa-p256", "ecdsa-p521", "rsa-2048"])
async def test_signatures_cross_with_openbao(transit: Transit, bao: Bao, key_type: str) -> None:
    name = "xsign-" + key_type
    theirs = bao.write(f"transit/keys/{name}", {"type": key_type, "exportable": True})
    status, out = bao.call("GET", f"transit/export/signing-key/{name}/1")
    assert status == 200, out
    await transit.write(f"keys/{name}", {"type": key_type})
    stored = await transit.stored(name)
    stored["keys"]["1"].update(_entry_from_pem(key_type, out["data"]["keys"]["1"]))
    await transit.storage.put("policy/" + name, json.dumps(stored).encode())
    await transit.backend.invalidate("policy/" + name)
    ours = await transit.read(f"keys/{name}")
    if key_type != "rsa-2048":
        assert ours["keys"]["1"]["public_key"] == theirs["keys"]["1"]["public_key"]
    for params in ({}, {"marshaling_algorithm": "jws"}, {"hash_algorithm": "sha2-512"},
                   {"signature_algorithm": "pkcs1v15"}):
        body = {"input": HELLO, **params}
        sig = bao.write(f"transit/sign/{name}", body)["signature"]
        assert (await transit.write(f"verify/{name}", {**body, "signature": sig}))["valid"] is True, params
        mine = (await transit.write(f"sign/{name}", body))["signature"]
        assert bao.write(f"transit/verify/{name}", {**body, "signature": mine})["valid"] is True, params
        if key_type == "ed25519":
            assert mine == sig  # Ed25519 is deterministic
