"""Ciphertexts cross between OpenBao and Strongroom: same key material, same layout, same answers."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from .conftest import Bao, Transit

HELLO = base64.b64encode(b"hello").decode()


async def adopt(transit: Transit, bao: Bao, name: str, params: dict[str, object]) -> None:
    """Create ``name`` here with ``params`` and give it OpenBao's key material (version 1)."""
    exported = bao.write(f"transit/keys/{name}", {**params, "exportable": True})
    assert exported["latest_version"] == 1
    status, out = bao.call("GET", f"transit/export/encryption-key/{name}/1")
    assert status == 200, out
    key = out["data"]["keys"]["1"]
    await transit.write(f"keys/{name}", params)
    stored = await transit.stored(name)
    stored["keys"]["1"]["key"] = key
    await transit.storage.put("policy/" + name, json.dumps(stored).encode())
    await transit.backend.invalidate("policy/" + name)


@pytest.mark.parametrize("key_type", ["aes128-gcm96", "aes256-gcm96", "chacha20-poly1305", "xchacha20-poly1305"])
async def test_openbao_ciphertexts_decrypt_here(transit: Transit, bao: Bao, key_type: str) -> None:
    name = "interop-" + key_type
    await adopt(transit, bao, name, {"type": key_type})
    ct = bao.write(f"transit/encrypt/{name}", {"plaintext": HELLO})["ciphertext"]
    assert (await transit.write(f"decrypt/{name}", {"ciphertext": ct}))["plaintext"] == HELLO
    ours = (await transit.write(f"encrypt/{name}", {"plaintext": HELLO}))["ciphertext"]
    assert bao.write(f"transit/decrypt/{name}", {"ciphertext": ours})["plaintext"] == HELLO


async def test_derived_and_convergent_match_openbao_byte_for_byte(transit: Transit, bao: Bao) -> None:
    await adopt(transit, bao, "conv", {"derived": True, "convergent_encryption": True, "type": "chacha20-poly1305"})
    body = {"plaintext": HELLO, "context": "Y3R4"}
    theirs = bao.write("transit/encrypt/conv", body)["ciphertext"]
    ours = (await transit.write("encrypt/conv", body))["ciphertext"]
    assert ours == theirs
    await adopt(transit, bao, "der", {"derived": True})
    ct = bao.write("transit/encrypt/der", body)["ciphertext"]
    assert (await transit.write("decrypt/der", {"ciphertext": ct, "context": "Y3R4"}))["plaintext"] == HELLO
    ours = (await transit.write("encrypt/der", body))["ciphertext"]
    assert bao.write("transit/decrypt/der", {"ciphertext": ours, "context": "Y3R4"})["plaintext"] == HELLO


async def test_read_fields_and_errors_match_openbao(transit: Transit, bao: Bao) -> None:
    for params in ({}, {"derived": True, "convergent_encryption": True}, {"type": "ed25519"},
                   {"type": "ecdsa-p384"}, {"type": "rsa-2048"}, {"type": "hmac", "key_size": 32}):
        name = "fields-" + str(params.get("type", "aes")) + ("-conv" if params.get("derived") else "")
        theirs = bao.write(f"transit/keys/{name}", params)
        ours = await transit.write(f"keys/{name}", params)
        assert set(ours) == set(theirs), name
        for field in set(ours) - {"keys"}:
            assert ours[field] == theirs[field], (name, field)
        if "keys" in theirs:
            assert ours["keys"].keys() == theirs["keys"].keys()
            if isinstance(theirs["keys"]["1"], dict):
                assert ours["keys"]["1"].keys() == theirs["keys"]["1"].keys()
                assert ours["keys"]["1"]["name"] == theirs["keys"]["1"]["name"]
    bao.write("transit/keys/errs")
    await transit.write("keys/errs")
    cases: list[tuple[str, dict[str, Any]]] = [("encrypt/errs", {"plaintext": "aGVsbG8"}), ("decrypt/errs", {"ciphertext": "vault:v1:AAAA"}),
                       ("decrypt/errs", {"ciphertext": "vault:v2:AAAA"}), ("keys/errs/config",
                                                                            {"min_decryption_version": 4}),
                       ("decrypt/none", {"ciphertext": "vault:v1:AAAA"}), ("keys/errs/trim", {"min_available_version": 1})]
    for path, body in cases:
        status, out = bao.call("POST", f"transit/{path}", body)
        assert status == 400
        assert await transit.fails(path, body) == out["errors"][0], path
