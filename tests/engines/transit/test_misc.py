"""datakey, random, hash, hmac and HMAC verification."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest

from strongroom.framework import Op

from .conftest import Bao, Transit

HELLO = base64.b64encode(b"hello").decode()


async def test_datakey(transit: Transit) -> None:
    await transit.write("keys/k")
    data = await transit.write("datakey/plaintext/k")
    assert data["key_version"] == 1 and len(base64.b64decode(data["plaintext"])) == 32
    assert (await transit.write("decrypt/k", {"ciphertext": data["ciphertext"]}))["plaintext"] == data["plaintext"]
    wrapped = await transit.write("datakey/wrapped/k", {"bits": 512})
    assert "plaintext" not in wrapped
    plain = await transit.write("decrypt/k", {"ciphertext": wrapped["ciphertext"]})
    assert len(base64.b64decode(plain["plaintext"])) == 64
    assert len(base64.b64decode((await transit.write("datakey/plaintext/k", {"bits": 128}))["plaintext"])) == 16
    assert await transit.fails("datakey/bogus/k") == "Invalid path, must be 'plaintext' or 'wrapped'"
    assert await transit.fails("datakey/plaintext/k", {"bits": 100}) == "invalid bit length"
    assert await transit.fails("datakey/plaintext/nokey") == "encryption key not found"
    assert await transit.fails("datakey/plaintext/k", {"context": "!"}) == "failed to base64-decode context"
    await transit.write("keys/d", {"derived": True})
    data = await transit.write("datakey/plaintext/d", {"context": "YWJj"})
    assert (await transit.write("decrypt/d", {"ciphertext": data["ciphertext"], "context": "YWJj"}))["plaintext"] \
        == data["plaintext"]


async def test_random(transit: Transit) -> None:
    assert len(base64.b64decode((await transit.write("random"))["random_bytes"])) == 32
    assert len(bytes.fromhex((await transit.write("random/16", {"format": "hex"}))["random_bytes"])) == 16
    assert len(base64.b64decode((await transit.write("random", {"bytes": 8}))["random_bytes"])) == 8
    resp = await transit.call(Op.UPDATE, "random/seal/8")
    assert resp is not None and resp.data is not None and len(base64.b64decode(resp.data["random_bytes"])) == 8
    assert resp.warnings == ["no seal/entropy augmentation available, using platform entropy source"]
    assert len(base64.b64decode((await transit.write("random/all"))["random_bytes"])) == 32
    assert await transit.fails("random/abc") == \
        'error parsing url-set byte count: strconv.Atoi: parsing "abc": invalid syntax'
    assert await transit.fails("random/0") == "'bytes' cannot be less than 1"
    assert await transit.fails("random/200000") == "'bytes' should be less than 131072"
    assert await transit.fails("random/8", {"format": "x"}) == \
        'unsupported encoding format "x"; must be "hex" or "base64"'
    assert await transit.fails("random/bogus/8") == \
        'unsupported entropy source "bogus"; must be "platform" or "seal", or "all"'
    one, two = (await transit.write("random"))["random_bytes"], (await transit.write("random"))["random_bytes"]
    assert one != two


@pytest.mark.parametrize("alg,fn", [("sha2-224", hashlib.sha224), ("sha2-256", hashlib.sha256),
                                    ("sha2-384", hashlib.sha384), ("sha2-512", hashlib.sha512),
                                    ("sha3-224", hashlib.sha3_224), ("sha3-256", hashlib.sha3_256),
                                    ("sha3-384", hashlib.sha3_384), ("sha3-512", hashlib.sha3_512)])
async def test_hash(transit: Transit, alg: str, fn: object) -> None:
    expected = fn(b"hello").digest()  # type: ignore[operator]
    assert (await transit.write(f"hash/{alg}", {"input": HELLO}))["sum"] == expected.hex()
    assert (await transit.write("hash", {"input": HELLO, "algorithm": alg, "format": "base64"}))["sum"] == \
        base64.b64encode(expected).decode()


async def test_hash_errors(transit: Transit) -> None:
    assert (await transit.write("hash", {"input": HELLO}))["sum"] == hashlib.sha256(b"hello").hexdigest()
    assert await transit.fails("hash") == "input missing"
    assert await transit.fails("hash", {"input": "!"}) == \
        "unable to decode input as base64: illegal base64 data at input byte 0"
    assert await transit.fails("hash/md5", {"input": HELLO}) == "unsupported algorithm md5"
    assert await transit.fails("hash/sha1", {"input": HELLO}) == "unsupported algorithm sha1"
    assert await transit.fails("hash", {"input": HELLO, "format": "x"}) == \
        'unsupported encoding format x; must be "hex" or "base64"'


async def test_hmac_and_verify(transit: Transit) -> None:
    await transit.write("keys/k")
    key = base64.b64decode((await transit.stored("k"))["keys"]["1"]["hmac_key"])
    mac = (await transit.write("hmac/k", {"input": HELLO}))["hmac"]
    assert mac == "vault:v1:" + base64.b64encode(hmac.new(key, b"hello", hashlib.sha256).digest()).decode()
    mac512 = (await transit.write("hmac/k/sha2-512", {"input": HELLO}))["hmac"]
    assert mac512 == "vault:v1:" + base64.b64encode(hmac.new(key, b"hello", hashlib.sha512).digest()).decode()
    assert (await transit.write("verify/k", {"input": HELLO, "hmac": mac}))["valid"] is True
    assert (await transit.write("verify/k/sha2-512", {"input": HELLO, "hmac": mac512}))["valid"] is True
    assert (await transit.write("verify/k", {"input": HELLO, "hmac": mac512}))["valid"] is False
    assert (await transit.write("verify/k", {"input": base64.b64encode(b"hellO").decode(), "hmac": mac}))["valid"] \
        is False
    resp = await transit.write("hmac/k", {"batch_input": [{"input": HELLO, "reference": "x"}, {"input": "!"}, {}]})
    assert resp["batch_results"] == [
        {"hmac": mac, "reference": "x"},
        {"error": "unable to decode input as base64: illegal base64 data at input byte 0", "reference": ""},
        {"error": "missing input for HMAC", "reference": ""}]
    resp = await transit.write("verify/k", {"batch_input": [{"input": HELLO, "hmac": mac, "reference": "a"},
                                                            {"input": HELLO, "hmac": "vault:v1:x"}]})
    assert resp["batch_results"] == [
        {"valid": True, "reference": "a"},
        {"error": "unable to decode verification HMAC as base64: illegal base64 data at input byte 0",
         "reference": ""}]
    # Rotation: old HMACs verify until min_decryption_version passes them.
    await transit.write("keys/k/rotate")
    assert (await transit.write("hmac/k", {"input": HELLO}))["hmac"].startswith("vault:v2:")
    assert (await transit.write("verify/k", {"input": HELLO, "hmac": mac}))["valid"] is True
    await transit.write("keys/k/config", {"min_decryption_version": 2})
    assert await transit.fails("verify/k", {"input": HELLO, "hmac": mac}) == \
        "cannot verify HMAC: version is too old (disallowed by policy)"


async def test_hmac_key_type(transit: Transit) -> None:
    await transit.write("keys/h", {"type": "hmac", "key_size": 64})
    key = base64.b64decode((await transit.stored("h"))["keys"]["1"]["key"])
    assert len(key) == 64
    mac = (await transit.write("hmac/h", {"input": HELLO}))["hmac"]
    assert mac == "vault:v1:" + base64.b64encode(hmac.new(key, b"hello", hashlib.sha256).digest()).decode()
    assert await transit.fails("encrypt/h", {"plaintext": HELLO}) == "message encryption not supported for key type hmac"


async def test_hmac_and_verify_errors(transit: Transit) -> None:
    await transit.write("keys/k")
    assert await transit.fails("hmac/k") == "missing input for HMAC"
    assert await transit.fails("hmac/k", {"input": HELLO, "key_version": 5}) == \
        "key version does not exist; latest key version is 1"
    assert await transit.fails("hmac/nokey", {"input": HELLO}) == "encryption key not found"
    assert await transit.fails("hmac/k/md5", {"input": HELLO}) == 'unsupported algorithm "md5"'
    cases: list[tuple[dict[str, Any], str]] = [({"input": HELLO}, "neither a 'signature' nor an 'hmac' were given to verify"),
                      ({"input": HELLO, "hmac": "x"}, "invalid HMAC to verify: no prefix"),
                      ({"input": HELLO, "hmac": "vault:v1:!"},
                       "unable to decode verification HMAC as base64: illegal base64 data at input byte 0"),
                      ({"input": HELLO, "hmac": "vault:v5:AAAA"}, "invalid HMAC: version is too new"),
                      ({"input": HELLO, "hmac": "vault:vx:AAAA"}, "invalid HMAC: version number could not be decoded"),
                      ({"batch_input": [{"input": HELLO, "hmac": "vault:v1:AAAA"}, {"input": HELLO}]},
                       "some elements of batch_input are missing 'hmac'"),
                      ({"batch_input": [{"input": HELLO, "hmac": "vault:v1:AAAA"}, {"input": HELLO, "signature": "x"}]},
                       "elements of batch_input must all provide 'signature' or all provide 'hmac'"),
                      ({"batch_input": [{"input": HELLO}]}, "no batch_input elements have 'signature' or 'hmac'"),
                      ({"batch_input": []}, "missing batch input to process")]
    for body, msg in cases:
        assert await transit.fails("verify/k", body) == msg, body
    assert await transit.fails("verify/k/md5", {"input": HELLO, "hmac": "vault:v1:AAAA"}) == \
        'invalid hash algorithm "md5"'
    assert await transit.fails("verify/nokey", {"input": HELLO, "hmac": "vault:v1:AAAA"}) == "encryption key not found"


async def test_hmac_matches_openbao(transit: Transit, bao: Bao) -> None:
    """The same hmac key gives OpenBao's HMAC; its HMACs verify here."""
    bao.write("transit/keys/mac", {"type": "hmac", "key_size": 32, "exportable": True})
    status, out = bao.call("GET", "transit/export/hmac-key/mac/1")
    assert status == 200, out
    await transit.write("keys/mac", {"type": "hmac", "key_size": 32})
    stored = await transit.stored("mac")
    stored["keys"]["1"]["key"] = stored["keys"]["1"]["hmac_key"] = out["data"]["keys"]["1"]
    import json

    await transit.storage.put("policy/mac", json.dumps(stored).encode())
    await transit.backend.invalidate("policy/mac")
    for alg in ("sha2-256", "sha3-384"):
        theirs = bao.write(f"transit/hmac/mac/{alg}", {"input": HELLO})["hmac"]
        assert (await transit.write(f"hmac/mac/{alg}", {"input": HELLO}))["hmac"] == theirs
        assert (await transit.write(f"verify/mac/{alg}", {"input": HELLO, "hmac": theirs}))["valid"] is True
