"""BYOK: wrapping_key, keys/NAME/import and import_version, wrapped as OpenBao's clients wrap."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import hvac
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

from strongroom.framework import Op
from tests.compat.conftest import RunningServer

from .conftest import Transit

HELLO = base64.b64encode(b"hello").decode()


async def wrap(transit: Transit, material: bytes, hash_alg: Any = hashes.SHA256) -> str:
    """What ``bao transit import`` sends: RSA-OAEP(ephemeral AES key) || AES-KWP(material)."""
    pem = (await transit.read("wrapping_key"))["public_key"]
    wrapping = serialization.load_pem_public_key(pem.encode())
    assert isinstance(wrapping, rsa.RSAPublicKey) and wrapping.key_size == 4096
    ephemeral = os.urandom(32)
    wrapped = wrapping.encrypt(ephemeral, padding.OAEP(mgf=padding.MGF1(hash_alg()), algorithm=hash_alg(), label=None))
    return base64.b64encode(wrapped + aes_key_wrap_with_padding(ephemeral, material)).decode()


def pkcs8(key: Any) -> bytes:
    der: bytes = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption())
    return der


async def test_import_symmetric_key(transit: Transit) -> None:
    key = os.urandom(32)
    assert await transit.call(Op.UPDATE, "keys/imp/import", {"ciphertext": await wrap(transit, key)}) is None
    data = await transit.read("keys/imp")
    assert data["imported_key"] is True and data["imported_key_allow_rotation"] is False
    ct = (await transit.write("encrypt/imp", {"plaintext": HELLO}))["ciphertext"]
    raw = base64.b64decode(ct.split(":")[2])
    assert AESGCM(key).decrypt(raw[:12], raw[12:], None) == b"hello"  # our own key did it
    assert await transit.fails("keys/imp/rotate") == "imported key imp does not allow rotation within Vault"
    # import_version adds a version with new material.
    key2 = os.urandom(32)
    assert await transit.call(Op.UPDATE, "keys/imp/import_version",
                              {"ciphertext": await wrap(transit, key2, hashes.SHA512),
                               "hash_function": "SHA512"}) is None
    ct2 = (await transit.write("encrypt/imp", {"plaintext": HELLO}))["ciphertext"]
    raw = base64.b64decode(ct2.split(":")[2])
    assert ct2.startswith("vault:v2:") and AESGCM(key2).decrypt(raw[:12], raw[12:], None) == b"hello"
    # Rotation when allowed: a generated version, and the key is no longer marked imported.
    await transit.call(Op.UPDATE, "keys/rot/import", {"ciphertext": await wrap(transit, os.urandom(32)),
                                                      "allow_rotation": True})
    data = await transit.write("keys/rot/rotate")
    assert data["latest_version"] == 2 and data["imported_key"] is False


async def test_import_asymmetric_keys(transit: Transit) -> None:
    ec_key = ec.generate_private_key(ec.SECP384R1())
    await transit.call(Op.UPDATE, "keys/ec/import", {"ciphertext": await wrap(transit, pkcs8(ec_key)),
                                                     "type": "ecdsa-p384"})
    sig = (await transit.write("sign/ec", {"input": HELLO}))["signature"]
    ec_key.public_key().verify(base64.b64decode(sig.split(":")[2]), b"hello", ec.ECDSA(hashes.SHA256()))
    ed_key = ed25519.Ed25519PrivateKey.generate()
    await transit.call(Op.UPDATE, "keys/ed/import", {"ciphertext": await wrap(transit, pkcs8(ed_key)),
                                                     "type": "ed25519"})
    assert (await transit.read("keys/ed"))["keys"]["1"]["public_key"] == \
        base64.b64encode(ed_key.public_key().public_bytes_raw()).decode()
    sig = (await transit.write("sign/ed", {"input": HELLO}))["signature"]
    ed_key.public_key().verify(base64.b64decode(sig.split(":")[2]), b"hello")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    await transit.call(Op.UPDATE, "keys/rsa/import", {"ciphertext": await wrap(transit, pkcs8(rsa_key)),
                                                      "type": "rsa-2048", "exportable": True})
    ct = (await transit.write("encrypt/rsa", {"plaintext": HELLO}))["ciphertext"]
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    assert rsa_key.decrypt(base64.b64decode(ct.split(":")[2]), oaep) == b"hello"
    hmac_key = os.urandom(48)
    await transit.call(Op.UPDATE, "keys/mac/import", {"ciphertext": await wrap(transit, hmac_key), "type": "hmac"})
    assert (await transit.read("keys/mac"))["key_size"] == 48


async def test_import_errors(transit: Transit) -> None:
    good = await wrap(transit, os.urandom(32))
    await transit.call(Op.UPDATE, "keys/have/import", {"ciphertext": good})
    ec_key = ec.generate_private_key(ec.SECP256R1())
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("keys/have/import", {"ciphertext": good},
         "the import path cannot be used with an existing key; use import-version to rotate an existing imported key"),
        ("keys/x/import", {"ciphertext": good, "convergent_encryption": True},
         "import cannot be used on keys with convergent encryption enabled"),
        ("keys/x/import", {"ciphertext": good, "auto_rotate_period": "2h"},
         "allow_rotation must be set to true if auto-rotation is enabled"),
        ("keys/x/import", {"ciphertext": good, "type": "bogus"}, "unknown key type: bogus"),
        ("keys/x/import", {"ciphertext": "AAAA"}, "provided ciphertext is too short"),
        ("keys/x/import", {"ciphertext": good, "hash_function": "MD5"}, "unknown hash function: MD5"),
        ("keys/x/import", {"ciphertext": good, "hash_function": "SHA1"}, "crypto/rsa: decryption error"),
        ("keys/x/import", {"ciphertext": good, "type": "aes128-gcm96"},
         "invalid key size 32 bytes for key type aes128-gcm96"),
        ("keys/x/import", {"ciphertext": await wrap(transit, pkcs8(ec_key)), "type": "rsa-2048"},
         "invalid key type: expected rsa-2048, got *ecdsa.PrivateKey"),
        ("keys/x/import", {"ciphertext": await wrap(transit, pkcs8(ec_key)), "type": "ecdsa-p384"},
         "invalid curve: expected P-384, got secp256r1"),
        ("keys/x/import", {"public_key": "x"}, "provided type does not support public_key import"),
        ("keys/x/import_version", {"ciphertext": good},
         "no key found with name x; to import a new key, use the import/ endpoint"),
    ]
    for path, body, msg in cases:
        assert await transit.fails(path, body) == msg, (path, body)
    await transit.write("keys/generated")
    assert await transit.fails("keys/generated/import_version", {"ciphertext": good}) == \
        "the import_version endpoint can only be used with an imported key"
    assert sorted(await transit.storage.list("policy/")) == ["generated", "have"]
    assert (await transit.ok(Op.LIST, "keys"))["keys"] == ["generated", "have"]  # the wrapping key is not listed


def test_bao_transit_import_against_strongroom(server: RunningServer, tmp_path: Path) -> None:
    """``bao transit import`` (client-side wrapping) into a real Strongroom server."""
    s = server
    client = hvac.Client(url=s.addr, token=s.root_token)
    key = ed25519.Ed25519PrivateKey.generate()
    keyfile = tmp_path / "key.b64"
    keyfile.write_text(base64.b64encode(pkcs8(key)).decode())
    out = s.bao("transit", "import", "transit/keys/byo", f"@{keyfile}", "type=ed25519")
    assert out.returncode == 0, out.stdout + out.stderr
    sig = client.secrets.transit.sign_data("byo", hash_input=HELLO)["data"]["signature"]
    key.public_key().verify(base64.b64decode(sig.split(":")[2]), b"hello")
    aes = os.urandom(32)
    keyfile.write_text(base64.b64encode(aes).decode())
    assert s.bao("transit", "import", "transit/keys/aes", f"@{keyfile}", "allow_rotation=true").returncode == 0
    aes2 = os.urandom(32)
    keyfile.write_text(base64.b64encode(aes2).decode())
    out = s.bao("transit", "import-version", "transit/keys/aes", f"@{keyfile}")
    assert out.returncode == 0, out.stdout + out.stderr
    ct = client.secrets.transit.encrypt_data("aes", plaintext=HELLO)["data"]["ciphertext"]
    raw = base64.b64decode(ct.split(":")[2])
    assert ct.startswith("vault:v2:") and AESGCM(aes2).decrypt(raw[:12], raw[12:], None) == b"hello"


@pytest.fixture(autouse=True)
def _wrapping(shared_wrapping_key: None) -> None:
    """Every test here shares one wrapping key (conftest)."""


def public_pem(key: Any) -> str:
    pem: bytes = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem.decode()


async def test_import_public_keys_then_their_private_halves(transit: Transit) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    for name, key_type, key in (("pec", "ecdsa-p256", ec_key), ("prsa", "rsa-2048", rsa_key),
                                ("ped", "ed25519", ed_key)):
        assert await transit.call(Op.UPDATE, f"keys/{name}/import",
                                  {"public_key": public_pem(key), "type": key_type, "exportable": True}) is None
        data = await transit.read(f"keys/{name}")
        assert data["imported_key"] is True and data["latest_version"] == 1
        assert await transit.fails(f"sign/{name}", {"input": HELLO}) == \
            "requested version for signing does not contain a private part"
        assert (await transit.read(f"export/signing-key/{name}"))["keys"] == {"1": ""}
    # Signatures made outside verify with the imported public keys.
    sig = ec_key.sign(b"hello", ec.ECDSA(hashes.SHA256()))
    assert (await transit.write("verify/pec", {"input": HELLO, "signature": "vault:v1:" + base64.b64encode(sig).decode()
                                               }))["valid"] is True
    sig = ed_key.sign(b"hello")
    assert (await transit.write("verify/ped", {"input": HELLO, "signature": "vault:v1:" + base64.b64encode(sig).decode()
                                               }))["valid"] is True
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)
    sig = rsa_key.sign(b"hello", pss, hashes.SHA256())
    assert (await transit.write("verify/prsa", {"input": HELLO, "signature": "vault:v1:" + base64.b64encode(sig).decode()
                                                }))["valid"] is True
    # RSA encryption needs only the public key; decryption the private one.
    ct = (await transit.write("encrypt/prsa", {"plaintext": HELLO}))["ciphertext"]
    assert await transit.fails("decrypt/prsa", {"ciphertext": ct}) == \
        "cannot decrypt ciphertext, key version does not have a private counterpart"
    # The private half of another key is refused; the right one completes version 1.
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert await transit.fails("keys/prsa/import_version", {"ciphertext": await wrap(transit, pkcs8(other)),
                                                            "version": 1}) == \
        "cannot import key, key pair does not match"
    assert await transit.call(Op.UPDATE, "keys/prsa/import_version",
                              {"ciphertext": await wrap(transit, pkcs8(rsa_key))}) is None
    data = await transit.read("keys/prsa")
    assert data["latest_version"] == 1
    assert (await transit.write("decrypt/prsa", {"ciphertext": ct}))["plaintext"] == HELLO
    assert await transit.fails("keys/prsa/import_version", {"ciphertext": await wrap(transit, pkcs8(rsa_key)),
                                                            "version": 1}) == \
        "private key imported, key version cannot be updated"
    assert await transit.call(Op.UPDATE, "keys/pec/import_version",
                              {"ciphertext": await wrap(transit, pkcs8(ec_key)), "version": 1}) is None
    sig2 = (await transit.write("sign/pec", {"input": HELLO}))["signature"]
    ec_key.public_key().verify(base64.b64decode(sig2.split(":")[2]), b"hello", ec.ECDSA(hashes.SHA256()))
    # A new public-only version of ped, then a public key for it again is refused.
    other_ed = ed25519.Ed25519PrivateKey.generate()
    assert await transit.call(Op.UPDATE, "keys/ped/import_version", {"public_key": public_pem(other_ed)}) is None
    assert (await transit.read("keys/ped"))["latest_version"] == 2
    assert await transit.fails("keys/ped/import_version", {"public_key": public_pem(other_ed), "version": 2}) == \
        "cannot add a public key to a key version that already has a public key set"
    # Backups carry public-only versions.
    await transit.write("keys/ped/config", {"allow_plaintext_backup": True})
    backup = (await transit.read("backup/ped"))["backup"]
    assert await transit.call(Op.UPDATE, "restore/ped-copy", {"backup": backup}) is None
    assert (await transit.read("keys/ped-copy"))["keys"]["2"]["public_key"] == \
        base64.b64encode(other_ed.public_key().public_bytes_raw()).decode()


async def test_public_key_import_errors(transit: Transit) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cases: list[tuple[dict[str, Any], str]] = [
        ({"public_key": public_pem(key)}, "provided type does not support public_key import"),
        ({"public_key": "nope", "type": "ecdsa-p256"}, "error parsing public key: not in PEM format"),
        ({"public_key": public_pem(key), "type": "ecdsa-p384"}, "invalid curve: expected P-384, got secp256r1"),
        ({"public_key": public_pem(key), "type": "rsa-2048"},
         "invalid key type: expected rsa-2048, got *ecdsa.PublicKey"),
        ({"public_key": public_pem(ed25519.Ed25519PrivateKey.generate()), "type": "ed25519", "derived": True},
         "unable to import only public key for derived Ed25519 key: imported key should not be an Ed25519 key pair "
         "but is instead an HKDF key"),
    ]
    for body, msg in cases:
        assert await transit.fails("keys/x/import", body) == msg, body
    assert await transit.storage.list("policy/") == []
