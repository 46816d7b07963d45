"""Bad input of every shape on every path: a StrongroomError (4xx), never another exception."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from strongroom.errors import StrongroomError
from strongroom.framework import Op

from .conftest import Transit

HELLO = base64.b64encode(b"hello").decode()
JUNK: list[Any] = [None, 0, -1, 2**70, 1.5, True, "", "!!", "vault:v1:", "vault:v99999999999999999999:AAAA",
                   [], [1], [{}], [{"plaintext": 1, "ciphertext": [], "context": {}, "key_version": "x"}],
                   {}, {"a": 1}, "x" * 3000]
FIELDS = ["plaintext", "ciphertext", "context", "key_version", "batch_input", "input", "signature", "hmac",
          "hash_algorithm", "algorithm", "marshaling_algorithm", "salt_length", "signature_algorithm", "prehashed",
          "bits", "bytes", "format", "backup", "name", "force", "min_available_version", "min_decryption_version",
          "min_encryption_version", "auto_rotate_period", "type", "key_size", "associated_data", "derived",
          "convergent_encryption", "partial_failure_response_code", "reference", "csr", "certificate_chain",
          "version", "public_key"]
PATHS = ["encrypt/{k}", "decrypt/{k}", "rewrap/{k}", "datakey/plaintext/{k}", "hmac/{k}", "sign/{k}", "verify/{k}",
         "keys/{k}/config", "keys/{k}/trim", "restore", "random", "hash", "keys/new-{k}", "keys/new-{k}/import",
         "keys/{k}/import_version", "keys/{k}/csr", "keys/{k}/set-certificate"]


@pytest.mark.parametrize("key_type", ["aes256-gcm96", "ed25519", "ecdsa-p256", "rsa-2048", "hmac"])
async def test_no_input_makes_anything_but_a_clean_error(transit: Transit, key_type: str,
                                                         shared_wrapping_key: None) -> None:
    k = key_type.replace("-", "")
    await transit.write(f"keys/{k}", {"type": key_type, "exportable": True, "allow_plaintext_backup": True})
    good: dict[str, dict[str, Any]] = {"": {}}
    if key_type in ("aes256-gcm96", "rsa-2048"):
        ct = (await transit.write(f"encrypt/{k}", {"plaintext": HELLO}))["ciphertext"]
        good["ct"] = {"plaintext": HELLO, "ciphertext": ct}
    if key_type not in ("aes256-gcm96", "hmac"):
        sig = (await transit.write(f"sign/{k}", {"input": HELLO}))["signature"]
        good["sig"] = {"input": HELLO, "signature": sig}
    mac = (await transit.write(f"hmac/{k}", {"input": HELLO}))["hmac"]
    good["mac"] = {"input": HELLO, "hmac": mac}
    for path in PATHS:
        for base in good.values():
            for field in FIELDS:
                for value in JUNK:
                    for op in (Op.UPDATE, Op.CREATE) if path.startswith("encrypt") else (Op.UPDATE,):
                        try:
                            await transit.call(op, path.format(k=k), {**base, field: value})
                        except StrongroomError as e:
                            assert e.status_code < 500, (path, base, field, value, e)
    for path in ("export/encryption-key/{k}", "export/signing-key/{k}/x", "export/public-key/{k}/latest",
                 "backup/{k}", "keys/{k}"):
        for fmt in JUNK:
            try:
                await transit.call(Op.READ, path.format(k=k), {"format": fmt, "context": fmt})
            except StrongroomError as e:
                assert e.status_code < 500, (path, fmt, e)
