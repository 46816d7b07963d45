"""The same requests to OpenBao and to Strongroom: same status, same error wording.

Only answers both servers make without randomness are compared (errors, and the shape of
successful answers); the documented differences (docs/transit.md: OpenBao's 500s for a caller's
mistakes) are left out of the table.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from strongroom.errors import StrongroomError
from strongroom.framework import Op

from .conftest import Bao, Transit

HELLO = base64.b64encode(b"hello").decode()
KEYS: dict[str, dict[str, Any]] = {"d-aes": {}, "d-der": {"derived": True}, "d-ed": {"type": "ed25519"}, "d-ec": {"type": "ecdsa-p256"},
        "d-rsa": {"type": "rsa-2048"}, "d-mac": {"type": "hmac", "key_size": 32}}

CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "encrypt/d-aes", {"plaintext": "aGVsbG8"}),
    ("POST", "encrypt/d-aes", {}),
    ("POST", "encrypt/d-aes", {"plaintext": HELLO, "key_version": 2}),
    ("POST", "encrypt/d-aes", {"plaintext": HELLO, "key_version": -3}),
    ("POST", "encrypt/d-aes", {"batch_input": []}),
    ("POST", "encrypt/d-aes", {"batch_input": [{"plaintext": HELLO, "context": "YQ=="}, {"plaintext": HELLO}]}),
    ("POST", "encrypt/d-aes", {"plaintext": HELLO, "associated_data": "YQ=="}),
    ("POST", "encrypt/d-der", {"plaintext": HELLO}),
    ("POST", "encrypt/d-der", {"plaintext": HELLO, "context": "!"}),
    ("POST", "encrypt/d-ed", {"plaintext": HELLO}),
    ("POST", "encrypt/d-mac", {"plaintext": HELLO}),
    ("POST", "encrypt/d-ec", {"plaintext": HELLO}),
    ("POST", "decrypt/d-aes", {}),
    ("POST", "decrypt/d-aes", {"ciphertext": "vault:v1"}),
    ("POST", "decrypt/d-aes", {"ciphertext": "vault:v-1:AAAA"}),
    ("POST", "decrypt/d-aes", {"ciphertext": "vault:v1:AAAA=="}),
    ("POST", "decrypt/d-aes", {"ciphertext": "vault:v1:" + "A" * 40}),
    ("POST", "decrypt/d-aes", {"ciphertext": "vault:v3:AAAA"}),
    ("POST", "decrypt/d-aes", {"ciphertext": "vault:v1:AAAA", "context": "!"}),
    ("POST", "decrypt/d-der", {"ciphertext": "vault:v1:" + "A" * 40}),
    ("POST", "decrypt/d-ed", {"ciphertext": "vault:v1:AAAA"}),
    ("POST", "decrypt/nokey", {"ciphertext": "vault:v1:AAAA"}),
    ("POST", "rewrap/d-aes", {}),
    ("POST", "rewrap/d-aes", {"ciphertext": "garbage"}),
    ("POST", "rewrap/nokey", {"ciphertext": "vault:v1:AAAA"}),
    ("POST", "datakey/plaintext/d-aes", {"bits": 7}),
    ("POST", "datakey/other/d-aes", {}),
    ("POST", "datakey/wrapped/d-ed", {}),
    ("POST", "datakey/wrapped/d-der", {}),
    ("POST", "hmac/d-aes", {}),
    ("POST", "hmac/d-aes", {"input": "!"}),
    ("POST", "hmac/d-aes", {"input": HELLO, "key_version": 9}),
    ("POST", "hmac/nokey", {"input": HELLO}),
    ("POST", "verify/d-aes", {"input": HELLO}),
    ("POST", "verify/d-aes", {"input": HELLO, "hmac": "vault:v1"}),
    ("POST", "verify/d-aes", {"input": HELLO, "hmac": "vault:vz:AAAA"}),
    ("POST", "verify/d-aes/sha2-999", {"input": HELLO, "hmac": "vault:v1:AAAA"}),
    ("POST", "verify/d-aes", {"batch_input": [{"input": HELLO}]}),
    ("POST", "verify/d-ed", {"input": HELLO, "signature": "vault:v1"}),
    ("POST", "verify/d-ed", {"input": HELLO, "signature": "vault:vq:AAAA"}),
    ("POST", "verify/d-ec", {"input": HELLO, "signature": "vault:v1:AAAA", "marshaling_algorithm": "pem"}),
    ("POST", "verify/d-rsa", {"input": HELLO, "signature": "vault:v7:AAAA"}),
    ("POST", "verify/d-rsa/none", {"input": HELLO, "signature": "vault:v1:AAAA"}),
    ("POST", "verify/d-mac", {"input": HELLO, "signature": "vault:v1:AAAA"}),
    ("POST", "sign/d-aes", {"input": HELLO}),
    ("POST", "sign/d-ed", {"input": "!"}),
    ("POST", "sign/d-rsa", {"input": HELLO, "salt_length": "nope"}),
    ("POST", "sign/d-ec/sha2-999", {"input": HELLO}),
    ("POST", "sign/nokey", {"input": HELLO}),
    ("POST", "hash", {}),
    ("POST", "hash/sha2-999", {"input": HELLO}),
    ("POST", "hash", {"input": HELLO, "format": "b32"}),
    ("POST", "random/-5", {}),
    ("POST", "random/seal/x", {}),
    ("POST", "random", {"format": "b32"}),
    ("POST", "keys/d-aes/config", {"min_decryption_version": -1}),
    ("POST", "keys/d-aes/config", {"min_encryption_version": -1}),
    ("POST", "keys/d-aes/config", {"min_encryption_version": 9}),
    ("POST", "keys/d-aes/config", {"auto_rotate_period": "59m"}),
    ("POST", "keys/d-aes/trim", {"min_available_version": 1}),
    ("POST", "keys/d-aes/trim", {}),
    ("POST", "keys/nokey/config", {}),
    ("POST", "keys/nokey/rotate", {}),
    ("POST", "keys/d-new", {"type": "aes256-gcm96", "key_size": 64}),
    ("POST", "keys/d-new", {"type": "ed25519", "convergent_encryption": True, "derived": True}),
    ("POST", "keys/d-new", {"type": "ecdsa-p256", "derived": True}),
    ("POST", "keys/d-new", {"type": "hmac", "key_size": 16}),
    ("POST", "keys/d-new", {"type": "aes512"}),
    ("DELETE", "keys/d-aes", {}),
    ("DELETE", "keys/nokey", {}),
    ("GET", "keys/nokey", {}),
    ("GET", "export/encryption-key/d-aes", {}),
    ("GET", "export/public-key/d-ed/9", {}),
    ("GET", "export/public-key/d-ed/abc", {}),
    ("GET", "export/what/d-aes", {}),
    ("GET", "export/signing-key/d-aes", {}),
    ("GET", "export/encryption-key/nokey", {}),
    ("POST", "restore", {}),
    ("POST", "restore", {"backup": ""}),
    ("POST", "keys/d-aes/import", {"ciphertext": "AAAA"}),
    ("POST", "keys/d-aes/import_version", {"ciphertext": "AAAA"}),
    ("POST", "keys/nokey/import_version", {"ciphertext": "AAAA"}),
    ("POST", "keys/d-new/import", {"ciphertext": "AAAA", "convergent_encryption": True}),
    ("POST", "keys/d-new/import", {"ciphertext": "AAAA", "type": "bogus"}),
    ("POST", "keys/d-new/import", {"ciphertext": "AAAA", "auto_rotate_period": "2h"}),
]
# OpenBao answers these with a 500 ("1 error occurred: ..."): Strongroom with a 400 and the
# message alone (docs/transit.md, differences).
OPENBAO_500 = {"keys/d-new/import", "keys/d-aes/import", "keys/d-aes/import_version", "keys/nokey/import_version",
               "keys/d-new"}


@pytest.fixture
async def both(transit: Transit, bao: Bao) -> tuple[Transit, Bao]:
    for name, params in KEYS.items():
        status, _ = bao.call("GET", f"transit/keys/{name}")
        if status == 404:
            bao.write(f"transit/keys/{name}", params)
        await transit.write(f"keys/{name}", params)
    return transit, bao


async def ours(transit: Transit, method: str, path: str, body: dict[str, Any]) -> tuple[int, list[str]]:
    op = {"POST": Op.UPDATE, "GET": Op.READ, "DELETE": Op.DELETE}[method]
    data = {k: v for k, v in body.items()}
    try:
        resp = await transit.call(op, path, data)
    except StrongroomError as e:
        return e.status_code, e.messages
    if resp is None:
        return 204, []
    return (resp.status or 200), []


async def test_same_answers_as_openbao(both: tuple[Transit, Bao]) -> None:
    transit, bao = both
    mismatches = []
    for method, path, body in CASES:
        status, out = bao.call(method, f"transit/{path}", body if method == "POST" else None)
        their_errors = out.get("errors") or []
        our_status, our_errors = await ours(transit, method, path, body)
        if status == 500 and path in OPENBAO_500:
            their_errors = [e.replace("1 error occurred:\n\t* ", "").rstrip("\n") for e in their_errors]
            status = 400
        if (status, their_errors) != (our_status, our_errors):
            mismatches.append((method, path, body, (status, their_errors), (our_status, our_errors)))
    assert not mismatches, "\n".join(map(str, mismatches))


SUCCESS: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "encrypt/d-aes", {"plaintext": HELLO}),
    ("POST", "encrypt/d-aes", {"batch_input": [{"plaintext": HELLO, "reference": "r"}, {"plaintext": "!"}]}),
    ("POST", "encrypt/d-der", {"plaintext": HELLO, "context": "YQ=="}),
    ("POST", "datakey/plaintext/d-aes", {"bits": 512}),
    ("POST", "datakey/wrapped/d-rsa", {}),
    ("POST", "hmac/d-mac/sha3-256", {"input": HELLO}),
    ("POST", "hmac/d-aes", {"batch_input": [{"input": HELLO}, {"input": "!"}, {}]}),
    ("POST", "sign/d-ed", {"input": HELLO}),
    ("POST", "sign/d-ec", {"batch_input": [{"input": HELLO, "reference": "a"}, {"input": "!"}]}),
    ("POST", "sign/d-rsa/sha2-512", {"input": HELLO, "signature_algorithm": "pkcs1v15"}),
    ("POST", "verify/d-ed", {"batch_input": [{"input": HELLO, "signature": "vault:v1:AAAA"}, {"signature": "x"}]}),
    ("POST", "random/seal/12", {"format": "hex"}),
    ("POST", "hash/sha2-384", {"input": HELLO}),
    ("GET", "keys/d-der", {}),
    ("GET", "keys/d-rsa", {}),
    ("GET", "export/public-key/d-ec/latest", {}),
    ("POST", "keys/d-aes/rotate", {}),
    ("POST", "keys/d-aes/config", {"min_decryption_version": 0}),
]


def shape(value: Any) -> Any:
    """The structure of an answer: dict keys and list lengths, not the random values."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items() if k not in ("1", "2")} | (
            {"versions": sorted(k for k in value if k.isdigit())} if any(k.isdigit() for k in value) else {})
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


async def test_same_answer_shapes_as_openbao(both: tuple[Transit, Bao]) -> None:
    transit, bao = both
    for method, path, body in SUCCESS:
        status, out = bao.call(method, f"transit/{path}", body if method == "POST" else None)
        op = {"POST": Op.UPDATE, "GET": Op.READ}[method]
        resp = await transit.call(op, path, dict(body))
        assert resp is not None and resp.data is not None, path
        assert (resp.status or 200) == status, (path, status, resp.status)
        assert shape(resp.data) == shape(out["data"]), path
        assert resp.warnings == (out.get("warnings") or []), path
