"""hvac (``client.secrets.transit``) and the bao CLI against a real Strongroom server on sqlite."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import hvac
import hvac.exceptions
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.compat.conftest import RunningServer

HELLO = base64.b64encode(b"hello").decode()


@pytest.fixture
def client(server: RunningServer) -> hvac.Client:
    return hvac.Client(url=server.addr, token=server.root_token)


def test_hvac_encryption(client: hvac.Client) -> None:
    transit = client.secrets.transit
    transit.create_key("hv", key_type="chacha20-poly1305", exportable=True)
    assert transit.read_key("hv")["data"]["type"] == "chacha20-poly1305"
    assert "hv" in transit.list_keys()["data"]["keys"]
    ct = transit.encrypt_data("hv", plaintext=HELLO)["data"]["ciphertext"]
    assert ct.startswith("vault:v1:")
    assert transit.decrypt_data("hv", ciphertext=ct)["data"]["plaintext"] == HELLO
    transit.rotate_key("hv")
    rewrapped = transit.rewrap_data("hv", ciphertext=ct)["data"]
    assert rewrapped["key_version"] == 2
    batch = transit.encrypt_data("hv", plaintext="", batch_input=[{"plaintext": HELLO}, {"plaintext": HELLO}])
    assert [r["key_version"] for r in batch["data"]["batch_results"]] == [2, 2]
    transit.update_key_configuration("hv", min_decryption_version=2, deletion_allowed=True)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="disallowed by policy"):
        transit.decrypt_data("hv", ciphertext=ct)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid ciphertext: no prefix"):
        transit.decrypt_data("hv", ciphertext="garbage")
    data_key = transit.generate_data_key("hv", key_type="plaintext")["data"]
    assert transit.decrypt_data("hv", ciphertext=data_key["ciphertext"])["data"]["plaintext"] == data_key["plaintext"]
    assert len(base64.b64decode(transit.generate_random_bytes(n_bytes=16)["data"]["random_bytes"])) == 16
    assert transit.hash_data(HELLO, algorithm="sha2-256")["data"]["sum"] == (
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
    mac = transit.generate_hmac("hv", HELLO)["data"]["hmac"]
    assert transit.verify_signed_data("hv", HELLO, hmac=mac)["data"]["valid"] is True
    exported = transit.export_key("hv", key_type="encryption-key", version="latest")["data"]["keys"]
    assert list(exported) == ["2"]
    transit.update_key_configuration("hv", exportable=True, allow_plaintext_backup=True)
    backup = transit.backup_key("hv")["data"]["backup"]
    transit.restore_key(backup, name="hv-copy")
    assert transit.read_key("hv-copy")["data"]["latest_version"] == 2
    transit.update_key_configuration("hv", min_encryption_version=2)
    transit.trim_key("hv", min_version=2)
    assert transit.read_key("hv")["data"]["min_available_version"] == 2
    transit.delete_key("hv")
    with pytest.raises(hvac.exceptions.InvalidPath):
        transit.read_key("hv")


def test_hvac_signing(client: hvac.Client) -> None:
    transit = client.secrets.transit
    transit.create_key("hs", key_type="ecdsa-p256")
    sig = transit.sign_data("hs", hash_input=HELLO, hash_algorithm="sha2-384")["data"]["signature"]
    pem = transit.read_key("hs")["data"]["keys"]["1"]["public_key"]
    pub = serialization.load_pem_public_key(pem.encode())
    assert isinstance(pub, ec.EllipticCurvePublicKey)
    pub.verify(base64.b64decode(sig.split(":")[2]), b"hello", ec.ECDSA(hashes.SHA384()))
    assert transit.verify_signed_data("hs", HELLO, signature=sig, hash_algorithm="sha2-384")["data"]["valid"] is True
    tampered = base64.b64encode(b"hellO").decode()
    assert transit.verify_signed_data("hs", tampered, signature=sig, hash_algorithm="sha2-384")["data"]["valid"] is False


def test_batch_partial_failure_over_http(server: RunningServer, client: hvac.Client) -> None:
    client.secrets.transit.create_key("hb")
    resp = httpx.post(f"{server.addr}/v1/transit/encrypt/hb", headers={"X-Vault-Token": server.root_token},
                      json={"batch_input": [{"plaintext": HELLO}, {"plaintext": "!!"}]})
    assert resp.status_code == 400
    results = resp.json()["data"]["batch_results"]
    assert results[0]["key_version"] == 1 and results[1]["error"] == "illegal base64 data at input byte 0"
    resp = httpx.post(f"{server.addr}/v1/transit/encrypt/hb", headers={"X-Vault-Token": server.root_token},
                      json={"batch_input": [{"plaintext": HELLO}, {"plaintext": "!!"}],
                            "partial_failure_response_code": 207})
    assert resp.status_code == 207 and len(resp.json()["data"]["batch_results"]) == 2


def test_upsert_needs_create_capability(server: RunningServer, client: hvac.Client) -> None:
    client.sys.create_or_update_policy("enc-only", 'path "transit/encrypt/*" { capabilities = ["update"] }')
    token = client.auth.token.create(policies=["enc-only"])["auth"]["client_token"]
    user = hvac.Client(url=server.addr, token=token)
    client.secrets.transit.create_key("existing")
    assert user.secrets.transit.encrypt_data("existing", plaintext=HELLO)["data"]["key_version"] == 1
    with pytest.raises(hvac.exceptions.Forbidden):
        user.secrets.transit.encrypt_data("brand-new", plaintext=HELLO)
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.secrets.transit.read_key("brand-new")


def test_bao_cli(server: RunningServer, tmp_path: Path) -> None:
    s = server
    assert s.bao("write", "-f", "transit/keys/cli").returncode == 0
    out = s.bao("write", "-field=ciphertext", "transit/encrypt/cli", f"plaintext={HELLO}")
    assert out.returncode == 0, out.stderr
    ct = out.stdout.strip()
    assert ct.startswith("vault:v1:")
    out = s.bao("write", "-format=json", "transit/decrypt/cli", f"ciphertext={ct}")
    assert out.returncode == 0 and json.loads(out.stdout)["data"]["plaintext"] == HELLO
    assert s.bao("write", "-f", "transit/keys/cli/rotate").returncode == 0
    out = s.bao("read", "-format=json", "transit/keys/cli")
    assert json.loads(out.stdout)["data"]["latest_version"] == 2
    out = s.bao("list", "-format=json", "transit/keys")
    assert "cli" in json.loads(out.stdout)
    # A batch from a file (@file), as a user would send it.
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps({"batch_input": [{"plaintext": HELLO}, {"plaintext": HELLO, "reference": "b"}]}))
    out = s.bao("write", "-format=json", "transit/encrypt/cli", f"@{batch}")
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)["data"]["batch_results"]
    assert [r["key_version"] for r in results] == [2, 2] and results[1]["reference"] == "b"
    out = s.bao("write", "transit/decrypt/cli", "ciphertext=vault:v1:AAAA")
    assert out.returncode == 2 and "invalid ciphertext length" in out.stderr
    out = s.bao("write", "-field=signature", "transit/keys/cli-sign", "type=ed25519")
    assert s.bao("write", "-field=sum", "transit/hash/sha2-512", f"input={HELLO}").stdout.strip() == (
        "9b71d224bd62f3785d96d46ad3ea3d73319bfbc2890caadae2dff72519673ca72323c3d99ba5c11d7c7acc6e14b8c5da0c4663475c2e5c3"
        "adef46f73bcdec043")
    out = s.bao("write", "-field=signature", "transit/sign/cli-sign", f"input={HELLO}")
    sig = out.stdout.strip()
    out = s.bao("write", "-field=valid", "transit/verify/cli-sign", f"input={HELLO}", f"signature={sig}")
    assert out.stdout.strip() == "true"
    out = s.bao("write", "-field=random_bytes", "transit/random/8", "format=hex")
    assert len(bytes.fromhex(out.stdout.strip())) == 8


def strongroom(server: RunningServer, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_", "STRONGROOM_"))}
    env.update(VAULT_ADDR=server.addr, VAULT_TOKEN=server.root_token, HOME=str(server.workdir))
    return subprocess.run([sys.executable, "-m", "strongroom", *args], capture_output=True, text=True, env=env,
                          input=input, timeout=60)


def test_strongroom_cli(server: RunningServer, tmp_path: Path) -> None:
    """Our generic read/write/list cover transit as the bao CLI does: -field, -format=json, @file, -."""
    out = strongroom(server, "secrets", "enable", "-path=transit-cli", "transit")
    assert out.returncode == 0, out.stderr
    assert strongroom(server, "write", "-f", "transit-cli/keys/x").returncode == 0
    assert strongroom(server, "write", "-f", "transit/keys/src").returncode == 0
    out = strongroom(server, "write", "-field=ciphertext", "transit/encrypt/src", f"plaintext={HELLO}")
    assert out.returncode == 0, out.stderr
    ct = out.stdout.strip()
    assert ct.startswith("vault:v1:")
    out = strongroom(server, "write", "-field=plaintext", "transit/decrypt/src", f"ciphertext={ct}")
    assert out.stdout.strip() == HELLO
    # The plaintext from stdin (-) and from a file (@file).
    out = strongroom(server, "write", "-field=ciphertext", "transit/encrypt/src", "plaintext=-", input=HELLO)
    assert out.returncode == 0, out.stderr
    assert strongroom(server, "write", "-field=plaintext", "transit/decrypt/src",
                      f"ciphertext={out.stdout.strip()}").stdout.strip() == HELLO
    body = tmp_path / "batch.json"
    body.write_text(json.dumps({"batch_input": [{"plaintext": HELLO, "reference": "x"}]}))
    out = strongroom(server, "write", "-format=json", "transit/encrypt/src", f"@{body}")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["data"]["batch_results"][0]["reference"] == "x"
    out = strongroom(server, "read", "-format=json", "transit/keys/src")
    assert json.loads(out.stdout)["data"]["type"] == "aes256-gcm96"
    out = strongroom(server, "list", "-format=json", "transit/keys")
    assert "src" in json.loads(out.stdout)
    out = strongroom(server, "write", "transit/decrypt/src", "ciphertext=garbage")
    assert out.returncode != 0 and "invalid ciphertext: no prefix" in out.stderr


def test_query_parameters_over_http(server: RunningServer, client: hvac.Client) -> None:
    client.secrets.transit.create_key("hq", key_type="ed25519", derived=True, exportable=True)
    headers = {"X-Vault-Token": server.root_token}
    one = httpx.get(f"{server.addr}/v1/transit/keys/hq", params={"context": "YWJj"}, headers=headers).json()
    two = httpx.get(f"{server.addr}/v1/transit/keys/hq", params={"context": "YWJk"}, headers=headers).json()
    assert one["data"]["keys"]["1"]["public_key"] and one["data"]["keys"]["1"]["public_key"] != \
        two["data"]["keys"]["1"]["public_key"]
    client.secrets.transit.create_key("hq-ec", key_type="ecdsa-p256", exportable=True)
    out = httpx.get(f"{server.addr}/v1/transit/export/signing-key/hq-ec/1", params={"format": "pem"},
                    headers=headers).json()
    assert out["data"]["keys"]["1"].startswith("-----BEGIN PRIVATE KEY-----")
