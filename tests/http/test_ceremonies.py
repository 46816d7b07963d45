"""The key ceremonies over HTTP. Expected bodies and messages were recorded from OpenBao 2.7.2
(``bao server`` on raft storage, 5 shares / threshold 3, unauthenticated ceremony endpoints enabled)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from strongroom.core import Core
from strongroom.core.ceremonies import decode_token
from strongroom.storage.inmem import InmemStorage
from strongroom.testing import asgi_client

REKEY_STATUS_KEYS = {"nonce", "started", "t", "n", "progress", "required", "pgp_fingerprints", "backup",
                     "verification_required"}
ROOT_STATUS_KEYS = {"nonce", "started", "progress", "required", "complete", "encoded_token", "encoded_root_token",
                    "pgp_fingerprint", "otp", "otp_length"}
OTP = "A" * 28


@pytest.fixture
async def client() -> AsyncIterator[tuple[httpx.AsyncClient, list[str], str]]:
    core = Core(InmemStorage())
    async with asgi_client(core) as c:
        init = (await c.put("/v1/sys/init", json={"secret_shares": 5, "secret_threshold": 3})).json()
        for key in init["keys"][:3]:
            await c.put("/v1/sys/unseal", json={"key": key})
        yield c, init["keys"], init["root_token"]
    await core.seal()


def _errors(r: httpx.Response) -> list[str]:
    errors: list[str] = r.json()["errors"]
    return errors


async def test_sealed_answers_503() -> None:
    core = Core(InmemStorage())
    async with asgi_client(core) as c:
        for method, path in [("GET", "sys/rekey/init"), ("GET", "sys/rekey/verify"), ("DELETE", "sys/rekey/init"),
                             ("PUT", "sys/rekey/update"), ("GET", "sys/generate-root/attempt"),
                             ("PUT", "sys/generate-root/update")]:
            r = await c.request(method, "/v1/" + path, json={"key": "ab" * 33, "nonce": "x"})
            assert (r.status_code, _errors(r)) == (503, ["Vault is sealed"]), path


async def test_rekey_over_http(client: tuple[httpx.AsyncClient, list[str], str]) -> None:
    c, keys, _ = client
    r = await c.get("/v1/sys/rekey/init")
    assert r.json() == {"nonce": "", "started": False, "t": 0, "n": 0, "progress": 0, "required": 3,
                        "pgp_fingerprints": None, "backup": False, "verification_required": False}
    r = await c.get("/v1/sys/rekey/verify")
    assert (r.status_code, _errors(r)) == (400, ["no rekey configuration found"])
    r = await c.put("/v1/sys/rekey/update", json={"key": "abcd", "nonce": "x"})
    assert (r.status_code, _errors(r)) == (400, ["key is shorter than minimum 16 bytes"])
    r = await c.put("/v1/sys/rekey/update", json={"key": keys[0], "nonce": "x"})
    assert (r.status_code, _errors(r)) == (400, ["no barrier rekey in progress"])
    r = await c.put("/v1/sys/rekey/update", json={"nonce": "x"})
    assert (r.status_code, _errors(r)) == (400, ["'key' must be specified in request body as JSON"])
    assert (await c.delete("/v1/sys/rekey/init")).status_code == 204

    r = await c.put("/v1/sys/rekey/init", json={"secret_shares": 3, "secret_threshold": 2,
                                                "require_verification": True})
    assert r.status_code == 200 and set(r.json()) == REKEY_STATUS_KEYS
    nonce = r.json()["nonce"]
    r = await c.put("/v1/sys/rekey/init", json={"secret_shares": 3, "secret_threshold": 2})
    assert (r.status_code, _errors(r)) == (400, ["rekey already in progress"])
    r = await c.get("/v1/sys/rekey/verify")
    assert r.json() == {"nonce": "", "started": False, "t": 2, "n": 3, "progress": 0}
    r = await c.put("/v1/sys/rekey/update", json={"key": keys[0], "nonce": "x"})
    assert _errors(r) == [f'incorrect nonce supplied; nonce for this rekey operation is "{nonce}"']
    r = await c.put("/v1/sys/rekey/update", json={"key": keys[0], "nonce": nonce})
    assert r.json()["progress"] == 1 and set(r.json()) == REKEY_STATUS_KEYS
    await c.put("/v1/sys/rekey/update", json={"key": keys[1], "nonce": nonce})
    r = await c.put("/v1/sys/rekey/update", json={"key": keys[2], "nonce": nonce})
    done = r.json()
    assert set(done) == {"nonce", "complete", "keys", "keys_base64", "pgp_fingerprints", "backup",
                         "verification_required", "verification_nonce"}
    assert done["complete"] is True and done["nonce"] == nonce and len(done["keys"]) == 3
    vnonce = done["verification_nonce"]
    assert (await c.get("/v1/sys/rekey/init")).json()["verification_nonce"] == vnonce
    r = await c.put("/v1/sys/rekey/update", json={"key": keys[0], "nonce": nonce})
    assert _errors(r) == [("rekey operation already finished; verification must be performed; nonce for the "
                           f'verification operation is "{vnonce}"')]
    r = await c.put("/v1/sys/rekey/verify", json={"key": done["keys"][0], "nonce": "bad"})
    assert _errors(r) == [f'incorrect nonce supplied; nonce for this verify operation is "{vnonce}"']
    r = await c.put("/v1/sys/rekey/verify", json={"key": done["keys"][0], "nonce": vnonce})
    assert r.json() == {"nonce": vnonce, "started": True, "t": 2, "n": 3, "progress": 1}
    r = await c.put("/v1/sys/rekey/verify", json={"key": done["keys_base64"][2], "nonce": vnonce})
    assert r.json() == {"nonce": vnonce, "complete": True}
    status = (await c.get("/v1/sys/seal-status")).json()
    assert (status["t"], status["n"]) == (2, 3)


async def test_rekey_input_errors(client: tuple[httpx.AsyncClient, list[str], str]) -> None:
    c, _, _ = client
    cases = [
        ({"secret_shares": 1, "secret_threshold": 3},
         "invalid rekey seal configuration: threshold cannot be larger than shares"),
        ({"secret_shares": 3, "secret_threshold": 1},
         "invalid rekey seal configuration: threshold must be greater than one for multiple shares"),
        ({}, "invalid rekey seal configuration: shares must be at least one"),
        ({"secret_shares": 3, "secret_threshold": 2, "pgp_keys": ["a", "b"]}, "incorrect number of PGP keys for rekey"),
        ({"secret_shares": 3, "secret_threshold": 2, "backup": True},
         "cannot request a backup of the new keys without providing PGP keys for encryption"),
        ({"secret_shares": 2, "secret_threshold": 2, "pgp_keys": ["a", "b"]},
         "PGP-encrypted key shares are not supported yet"),
    ]
    for body, message in cases:
        r = await c.put("/v1/sys/rekey/init", json=body)
        assert (r.status_code, _errors(r)) == (400, [message]), body
    r = await c.put("/v1/sys/rekey/init", content=b"not json")
    assert r.status_code == 400
    assert (await c.get("/v1/sys/rekey/init")).json()["started"] is False  # nothing half-started


async def test_generate_root_over_http(client: tuple[httpx.AsyncClient, list[str], str]) -> None:
    c, keys, _ = client
    r = await c.get("/v1/sys/generate-root/attempt")
    assert r.json() == {"nonce": "", "started": False, "progress": 0, "required": 3, "complete": False,
                        "encoded_token": "", "encoded_root_token": "", "pgp_fingerprint": "", "otp": "",
                        "otp_length": 28}
    r = await c.put("/v1/sys/generate-root/attempt", json={"otp": "abc"})
    assert (r.status_code, _errors(r)) == (400, ["OTP string has incorrect length"])
    r = await c.put("/v1/sys/generate-root/attempt", json={"pgp_key": "abc"})
    assert (r.status_code, _errors(r)) == (400, ["PGP-encrypted root tokens are not supported yet"])
    r = await c.put("/v1/sys/generate-root/attempt", json={})
    generated = r.json()
    assert set(generated) == ROOT_STATUS_KEYS and len(generated["otp"]) == 28 and generated["started"] is True
    r = await c.put("/v1/sys/generate-root/attempt", json={"otp": OTP})
    assert (r.status_code, _errors(r)) == (400, ["root generation already in progress for this namespace"])
    assert (await c.delete("/v1/sys/generate-root/attempt")).status_code == 204

    r = await c.put("/v1/sys/generate-root/attempt", json={"otp": OTP})
    assert r.json()["otp"] == "" and r.json()["otp_length"] == 28
    nonce = r.json()["nonce"]
    r = await c.put("/v1/sys/generate-root/update", json={"key": "abcd", "nonce": nonce})
    assert _errors(r) == ["invalid key: key is shorter than minimum 16 bytes"]
    r = await c.put("/v1/sys/generate-root/update", json={"key": keys[0]})
    assert _errors(r) == [f'incorrect nonce supplied; nonce for this root generation operation is "{nonce}"']
    r = await c.put("/v1/sys/generate-root/update", json={"key": keys[0], "nonce": nonce})
    assert r.json() == {"nonce": nonce, "started": True, "progress": 1, "required": 3, "complete": False,
                        "encoded_token": "", "encoded_root_token": "", "pgp_fingerprint": "", "otp": "",
                        "otp_length": 0}
    await c.put("/v1/sys/generate-root/update", json={"key": keys[1], "nonce": nonce})
    done = (await c.put("/v1/sys/generate-root/update", json={"key": keys[2], "nonce": nonce})).json()
    assert done["complete"] is True and done["encoded_token"] == done["encoded_root_token"]
    token = decode_token(done["encoded_token"], OTP)
    r = await c.get("/v1/auth/token/lookup-self", headers={"X-Vault-Token": token})
    assert r.json()["data"]["policies"] == ["root"]
    r = await c.put("/v1/sys/generate-root/update", json={"key": keys[2], "nonce": nonce})
    assert _errors(r) == ["no root generation in progress"]


async def test_generate_root_token_endpoints_need_a_token(client: tuple[httpx.AsyncClient, list[str], str]) -> None:
    c, keys, root = client
    assert (await c.get("/v1/sys/generate-root-token/attempt")).status_code == 403
    h = {"X-Vault-Token": root}
    r = await c.get("/v1/sys/generate-root-token/attempt", headers=h)
    assert r.json()["data"] == {"complete": False, "otp": "", "otp_length": 28, "progress": 0, "required": 3,
                                "started": False}
    assert "otp_length" not in r.json()  # not repeated at the top level
    r = await c.put("/v1/sys/generate-root-token/attempt", json={"otp": OTP}, headers=h)
    nonce = r.json()["data"]["nonce"]
    assert set(r.json()["data"]) == {"complete", "otp", "otp_length", "progress", "required", "started", "nonce",
                                     "pgp_fingerprint"}
    r = await c.put("/v1/sys/generate-root-token/update", json={"key": keys[0]}, headers=h)
    assert (r.status_code, _errors(r)) == (400, ["nonce is required"])
    # The same ceremony as the unauthenticated endpoints.
    assert (await c.get("/v1/sys/generate-root/attempt")).json()["nonce"] == nonce
    for key in keys[:2]:
        await c.put("/v1/sys/generate-root-token/update", json={"key": key, "nonce": nonce}, headers=h)
    r = await c.put("/v1/sys/generate-root-token/update", json={"key": keys[4], "nonce": nonce}, headers=h)
    data = r.json()["data"]
    assert set(data) == {"complete", "encoded_token", "nonce", "pgp_fingerprint", "progress", "required", "started"}
    r = await c.put("/v1/sys/decode-token", json={"encoded_token": data["encoded_token"], "otp": OTP})
    token = r.json()["data"]["token"]
    assert token == decode_token(data["encoded_token"], OTP) and token.startswith("hvs.")
    r = await c.put("/v1/sys/decode-token", json={"otp": OTP})
    assert _errors(r) == ["provided 'encoded_token' or 'otp' is empty"]
    r = await c.delete("/v1/sys/generate-root-token/attempt", headers=h)
    assert r.status_code == 204


async def test_rekey_backup_needs_root_and_is_always_empty(client: tuple[httpx.AsyncClient, list[str], str]) -> None:
    # As OpenBao answers with no backup stored (we never store one: PGP shares are refused).
    c, _, root = client
    r = await c.get("/v1/sys/rekey/backup")
    assert (r.status_code, _errors(r)) == (403, ["permission denied"])
    assert (await c.delete("/v1/sys/rekey/backup")).status_code == 403
    r = await c.get("/v1/sys/rekey/backup", headers={"X-Vault-Token": root})
    assert (r.status_code, _errors(r)) == (400, ["no backed-up keys found"])
    assert (await c.delete("/v1/sys/rekey/backup", headers={"X-Vault-Token": root})).status_code == 204


@pytest.mark.parametrize(("options", "refused", "served"), [
    ({"disable_unauthed_rekey": True}, "sys/rekey/init", "sys/generate-root/attempt"),
    ({"disable_unauthed_generate_root": True}, "sys/generate-root/attempt", "sys/rekey/init"),
])
async def test_listener_switches_refuse_the_tokenless_endpoints(options: dict[str, bool], refused: str,
                                                               served: str) -> None:
    # As OpenBao answers with disable_unauthed_{rekey,generate_root}_endpoints set on the listener.
    core = Core(InmemStorage())
    async with asgi_client(core, **options) as c:
        init = (await c.put("/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1})).json()
        await c.put("/v1/sys/unseal", json={"key": init["keys"][0]})
        for method in ("GET", "PUT", "DELETE"):
            r = await c.request(method, "/v1/" + refused, json={})
            assert (r.status_code, _errors(r)) == (405, ["unsupported operation"]), method
        assert (await c.put("/v1/" + refused.rsplit("/", 1)[0] + "/update", json={})).status_code == 405
        assert (await c.get("/v1/" + served)).status_code == 200
        # The authenticated variant stays available.
        r = await c.get("/v1/sys/generate-root-token/attempt", headers={"X-Vault-Token": init["root_token"]})
        assert r.status_code == 200
    await core.seal()
