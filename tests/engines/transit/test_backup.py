"""export, backup and restore: formats parsed with ``cryptography``, backups crossing with OpenBao."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from strongroom.errors import NotFound
from strongroom.framework import Op

from .conftest import Bao, Transit

HELLO = base64.b64encode(b"hello").decode()


async def test_export_symmetric_and_hmac(transit: Transit) -> None:
    await transit.write("keys/k", {"exportable": True})
    await transit.write("keys/k/rotate")
    stored = await transit.stored("k")
    data = await transit.read("export/encryption-key/k")
    assert data["name"] == "k" and data["type"] == "aes256-gcm96"
    assert data["keys"] == {v: stored["keys"][v]["key"] for v in ("1", "2")}
    assert (await transit.read("export/hmac-key/k/1"))["keys"] == {"1": stored["keys"]["1"]["hmac_key"]}
    assert (await transit.read("export/encryption-key/k/latest"))["keys"] == {"2": stored["keys"]["2"]["key"]}
    assert (await transit.read("export/encryption-key/k/v1"))["keys"] == {"1": stored["keys"]["1"]["key"]}
    for path, msg in [("export/bogus/k", "invalid export type: bogus"),
                      ("export/encryption-key/k/9", "version does not exist or cannot be found"),
                      ("export/encryption-key/k/x", "invalid key version"),
                      ("export/signing-key/k", "signing not supported for the key")]:
        err = await transit.error(Op.READ, path)
        assert (err.status_code, err.message) == (400, msg), path
    err = await transit.error(Op.READ, "export/hmac-key/k", {"format": "pem"})
    assert err.message == "unknown format for HMAC key; supported values are `` or `raw`"
    await transit.write("keys/k/config", {"min_decryption_version": 2})
    assert (await transit.error(Op.READ, "export/encryption-key/k/1")).message == \
        "version for export is below minimum decryption version"
    with pytest.raises(NotFound):
        await transit.call(Op.READ, "export/encryption-key/nokey")
    await transit.write("keys/private")
    assert (await transit.error(Op.READ, "export/encryption-key/private")).message == \
        "private key material is not exportable"


async def test_export_asymmetric_formats(transit: Transit) -> None:
    await transit.write("keys/p", {"type": "ecdsa-p384", "exportable": True})
    await transit.write("keys/r", {"type": "rsa-2048", "exportable": True})
    await transit.write("keys/e", {"type": "ed25519", "exportable": True})
    read_pub = (await transit.read("keys/p"))["keys"]["1"]["public_key"]
    for fmt in ("", "pem", "der"):
        for name, kind in (("p", ec.EllipticCurvePrivateKey), ("r", rsa.RSAPrivateKey), ("e", ed25519.Ed25519PrivateKey)):
            if name == "e" and fmt == "":
                continue
            value = (await transit.read(f"export/signing-key/{name}/1", {"format": fmt}))["keys"]["1"]
            key = (serialization.load_der_private_key(base64.b64decode(value), None) if fmt == "der"
                   else serialization.load_pem_private_key(value.encode(), None))
            assert isinstance(key, kind), (name, fmt)
            if name != "e":
                pub = (await transit.read(f"export/public-key/{name}/1", {"format": fmt}))["keys"]["1"]
                loaded = (serialization.load_der_public_key(base64.b64decode(pub)) if fmt == "der"
                          else serialization.load_pem_public_key(pub.encode()))
                assert loaded.public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]
    assert (await transit.read("export/signing-key/p/1"))["keys"]["1"].startswith("-----BEGIN EC PRIVATE KEY-----")
    assert (await transit.read("export/signing-key/r/1"))["keys"]["1"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert (await transit.read("export/encryption-key/r/1", {"format": "pem"}))["keys"]["1"].startswith(
        "-----BEGIN PRIVATE KEY-----")
    assert (await transit.read("export/public-key/p/1"))["keys"]["1"] == read_pub.strip()
    raw = base64.b64decode((await transit.read("export/signing-key/e/1"))["keys"]["1"])
    pub_raw = (await transit.read("export/public-key/e/1"))["keys"]["1"]
    assert ed25519.Ed25519PrivateKey.from_private_bytes(raw[:32]).public_key().public_bytes_raw() == \
        base64.b64decode(pub_raw)
    # Public keys are exportable from any key.
    await transit.write("keys/closed", {"type": "ed25519"})
    assert (await transit.read("export/public-key/closed"))["keys"]["1"]
    assert (await transit.error(Op.READ, "export/signing-key/closed")).message == "private key material is not exportable"
    err = await transit.error(Op.READ, "export/signing-key/p/1", {"format": "raw"})
    assert err.message == "unknown key format for ec key; supported values are ``, `der`, or `pem`"


async def test_backup_and_restore_round_trip(transit: Transit) -> None:
    await transit.write("keys/k", {"exportable": True, "allow_plaintext_backup": True})
    v1 = (await transit.write("encrypt/k", {"plaintext": HELLO}))["ciphertext"]
    await transit.write("keys/k/rotate")
    backup = (await transit.read("backup/k"))["backup"]
    doc = json.loads(base64.b64decode(backup))
    assert set(doc) == {"policy", "archived_keys"} and len(doc["archived_keys"]["keys"]) == 3
    assert (await transit.read("keys/k"))["backup_info"]["version"] == 2
    assert await transit.fails("restore", {"backup": backup}) == 'key "k" already exists'
    assert await transit.call(Op.UPDATE, "restore/copy", {"backup": backup}) is None
    copy = await transit.read("keys/copy")
    assert copy["name"] == "copy" and copy["latest_version"] == 2 and copy["restore_info"]["version"] == 2
    assert (await transit.write("decrypt/copy", {"ciphertext": v1}))["plaintext"] == HELLO
    await transit.write("keys/k/rotate")
    assert await transit.call(Op.UPDATE, "restore", {"backup": backup, "force": True}) is None
    assert (await transit.read("keys/k"))["latest_version"] == 2


async def test_backup_and_restore_errors(transit: Transit) -> None:
    await transit.write("keys/k")
    err = await transit.error(Op.READ, "backup/k")
    assert (err.status_code, err.message) == (400, "exporting is disallowed on the policy")
    await transit.write("keys/k/config", {"exportable": True})
    assert (await transit.error(Op.READ, "backup/k")).message == "plaintext backup is disallowed on the policy"
    assert (await transit.error(Op.READ, "backup/nokey")).message == 'key "nokey" not found'
    assert await transit.fails("restore", {}) == "'backup' must be supplied"
    assert await transit.fails("restore", {"backup": "!!"}) == "illegal base64 data at input byte 0"
    assert await transit.fails("restore/a/b", {"backup": "e30="}) == "key names cannot be paths"
    assert (await transit.fails("restore", {"backup": "e30="})).startswith("invalid backup:")
    bad = base64.b64encode(json.dumps({"policy": {"name": "bad", "type": 0, "latest_version": 1,
                                                  "min_decryption_version": 1, "keys": {}}}).encode()).decode()
    assert await transit.fails("restore", {"backup": bad}) == "invalid backup: version 1 is missing"
    evil = base64.b64encode(json.dumps({"policy": {"name": "../x", "type": 0}}).encode()).decode()
    assert await transit.fails("restore", {"backup": evil}) == "key names cannot be paths"
    assert await transit.storage.list("policy/") == ["k"]


async def test_backups_cross_with_openbao(transit: Transit, bao: Bao) -> None:
    """An OpenBao backup (trimmed key, EC and RSA keys) restores here and its ciphertexts and
    signatures check; a Strongroom backup restores into OpenBao and decrypts there."""
    bao.write("transit/keys/bk", {"exportable": True, "allow_plaintext_backup": True})
    for _ in range(2):
        bao.write("transit/keys/bk/rotate")
    bao.write("transit/keys/bk/config", {"min_decryption_version": 2, "min_encryption_version": 3})
    bao.write("transit/keys/bk/trim", {"min_available_version": 2})
    v2 = bao.write("transit/encrypt/bk", {"plaintext": HELLO, "key_version": 3})["ciphertext"]
    status, out = bao.call("GET", "transit/backup/bk")
    assert status == 200, out
    assert await transit.call(Op.UPDATE, "restore", {"backup": out["data"]["backup"]}) is None
    mine = await transit.read("keys/bk")
    assert mine["min_available_version"] == 2 and list(mine["keys"]) == ["2", "3"]
    assert (await transit.write("decrypt/bk", {"ciphertext": v2}))["plaintext"] == HELLO
    for key_type in ("ecdsa-p521", "rsa-2048", "ed25519"):
        name = "bk-" + key_type
        bao.write(f"transit/keys/{name}", {"type": key_type, "exportable": True, "allow_plaintext_backup": True})
        sig = bao.write(f"transit/sign/{name}", {"input": HELLO})["signature"]
        backup = bao.call("GET", f"transit/backup/{name}")[1]["data"]["backup"]
        assert await transit.call(Op.UPDATE, "restore", {"backup": backup}) is None
        assert (await transit.write(f"verify/{name}", {"input": HELLO, "signature": sig}))["valid"] is True
        mine_sig = (await transit.write(f"sign/{name}", {"input": HELLO}))["signature"]
        ours_backup = (await transit.read(f"backup/{name}"))["backup"]
        status, out = bao.call("POST", f"transit/restore/{name}-back", {"backup": ours_backup})
        assert status == 204, out
        assert bao.write(f"transit/verify/{name}-back", {"input": HELLO, "signature": mine_sig})["valid"] is True
    await transit.write("keys/ours", {"exportable": True, "allow_plaintext_backup": True, "derived": True,
                                      "convergent_encryption": True})
    await transit.write("keys/ours/rotate")
    ct = (await transit.write("encrypt/ours", {"plaintext": HELLO, "context": "YWJj"}))["ciphertext"]
    status, out = bao.call("POST", "transit/restore", {"backup": (await transit.read("backup/ours"))["backup"]})
    assert status == 204, out
    assert bao.write("transit/decrypt/ours", {"ciphertext": ct, "context": "YWJj"})["plaintext"] == HELLO
    assert bao.write("transit/encrypt/ours", {"plaintext": HELLO, "context": "YWJj"})["ciphertext"] == ct


async def test_restore_validates_key_material(transit: Transit) -> None:
    await transit.write("keys/r", {"type": "rsa-2048", "exportable": True, "allow_plaintext_backup": True})
    doc = json.loads(base64.b64decode((await transit.read("backup/r"))["backup"]))
    doc["policy"]["keys"]["1"]["rsa_key"]["D"] += 2  # no longer the private exponent of N
    bad = base64.b64encode(json.dumps(doc).encode()).decode()
    assert (await transit.fails("restore/r2", {"backup": bad})).startswith("invalid backup:")
    doc["policy"]["keys"]["1"]["rsa_key"]["D"] -= 2
    doc["policy"]["keys"]["1"]["ec_d"] = None
    good = base64.b64encode(json.dumps(doc).encode()).decode()
    assert await transit.call(Op.UPDATE, "restore/r2", {"backup": good}) is None
    assert await transit.storage.get("policy/r2") is not None
