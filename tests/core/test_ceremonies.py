"""Rekey and root generation state machines (core/ceremonies.py), on a real core with 5 shares / threshold 3."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import pytest

from strongroom.barrier.seal import combine_unseal_key
from strongroom.core import Core
from strongroom.core.ceremonies import ROOT_TOKEN_LENGTH, decode_token, encode_token
from strongroom.errors import InvalidRequest, Sealed
from strongroom.storage.inmem import InmemStorage

OTP = "0123456789abcdefghijABCDEFGH"  # 28 characters


@pytest.fixture
async def core() -> AsyncIterator[tuple[Core, list[bytes]]]:
    core = Core(InmemStorage())
    result = await core.initialize(5, 3)
    for key in result.keys[:3]:
        await core.unseal(key)
    assert not core.barrier.sealed
    yield core, result.keys
    await core.seal()


async def _unseals_with(core: Core, keys: list[bytes]) -> bool:
    """Seal, then try to unseal with ``keys``; leaves the core sealed or unsealed accordingly."""
    await core.seal()
    await core.unseal(None, reset=True)
    try:
        for key in keys:
            await core.unseal(key)
    except InvalidRequest:
        return False
    return not core.barrier.sealed


async def _rekey(core: Core, keys: list[bytes], shares: int, threshold: int, verify: bool = False) -> dict[str, object]:
    c = core.ceremonies
    nonce = (await c.rekey_init(shares, threshold, verify))["nonce"]
    assert isinstance(nonce, str)
    done = None
    for key in keys:
        done = await c.rekey_update(key, nonce)
    assert done is not None and done["complete"] is True
    return done


def _new_keys(done: dict[str, object]) -> list[bytes]:
    keys = done["keys"]
    assert isinstance(keys, list)
    return [bytes.fromhex(k) for k in keys]


async def test_rekey_switches_to_the_new_shares(core: tuple[Core, list[bytes]]) -> None:
    c, old = core
    status = await c.ceremonies.rekey_status()
    assert status == {"nonce": "", "started": False, "t": 0, "n": 0, "progress": 0, "required": 3,
                      "pgp_fingerprints": None, "backup": False, "verification_required": False}
    done = await _rekey(c, old[:3], 3, 2)
    new = _new_keys(done)
    assert len(new) == 3 and done["keys_base64"] == [base64.b64encode(k).decode() for k in new]
    assert "verification_nonce" not in done
    assert (await c.barrier.seal_config()).secret_threshold == 2  # type: ignore[union-attr]
    assert (await c.ceremonies.rekey_status())["started"] is False
    assert not await _unseals_with(c, old[:3])
    assert await _unseals_with(c, new[1:])


async def test_rekey_progress_duplicates_and_nonce(core: tuple[Core, list[bytes]]) -> None:
    c, old = core
    nonce = (await c.ceremonies.rekey_init(3, 2, False))["nonce"]
    with pytest.raises(InvalidRequest, match="rekey already in progress"):
        await c.ceremonies.rekey_init(3, 2, False)
    with pytest.raises(InvalidRequest, match="incorrect nonce supplied"):
        await c.ceremonies.rekey_update(old[0], "bogus")
    assert await c.ceremonies.rekey_update(old[0], nonce) is None
    with pytest.raises(InvalidRequest, match="already been provided"):
        await c.ceremonies.rekey_update(old[0], nonce)
    assert (await c.ceremonies.rekey_status())["progress"] == 1
    with pytest.raises(InvalidRequest, match="shorter than minimum 16 bytes"):
        await c.ceremonies.rekey_update(b"ab", nonce)


async def test_rekey_with_wrong_shares_fails_and_keeps_the_old_keys(core: tuple[Core, list[bytes]]) -> None:
    c, old = core
    nonce = (await c.ceremonies.rekey_init(3, 2, False))["nonce"]
    await c.ceremonies.rekey_update(old[0], nonce)
    await c.ceremonies.rekey_update(old[1], nonce)
    with pytest.raises(InvalidRequest, match="root key verification failed"):
        await c.ceremonies.rekey_update(b"\x07" * 33, nonce)
    status = await c.ceremonies.rekey_status()
    assert status["progress"] == 0 and status["nonce"] == nonce  # the attempt goes on
    assert await _unseals_with(c, old[2:5])


async def test_rekey_config_is_validated(core: tuple[Core, list[bytes]]) -> None:
    c, _ = core
    with pytest.raises(InvalidRequest, match="invalid rekey seal configuration: threshold cannot be larger"):
        await c.ceremonies.rekey_init(1, 3, False)
    with pytest.raises(InvalidRequest, match="threshold must be greater than one"):
        await c.ceremonies.rekey_init(3, 1, False)


async def test_verification_keeps_old_shares_until_it_completes(core: tuple[Core, list[bytes]]) -> None:
    c, old = core
    cer = c.ceremonies
    done = await _rekey(c, old[:3], 3, 2, verify=True)
    new = _new_keys(done)
    vnonce = done["verification_nonce"]
    assert isinstance(vnonce, str) and done["verification_required"] is True
    # Not switched yet: the old key is still the one in force, the new one is not.
    assert await c.barrier.verify_unseal_key(combine_unseal_key(old[2:5])) is True
    assert await c.barrier.verify_unseal_key(combine_unseal_key(new[:2])) is False
    assert (await c.barrier.seal_config()).secret_threshold == 3  # type: ignore[union-attr]
    with pytest.raises(InvalidRequest, match="verification must be performed"):
        await cer.rekey_update(old[0], str(done["nonce"]))
    assert await cer.verify_status() == {"nonce": vnonce, "started": True, "t": 2, "n": 3, "progress": 0}
    # Wrong shares: rejected, and the verification starts over under a new nonce.
    await cer.rekey_verify(new[0], vnonce)
    with pytest.raises(InvalidRequest, match="incorrect key shares supplied"):
        await cer.rekey_verify(old[0], vnonce)
    vnonce2 = (await cer.verify_status())["nonce"]
    assert vnonce2 != vnonce
    with pytest.raises(InvalidRequest, match="incorrect nonce"):
        await cer.rekey_verify(new[0], vnonce)
    assert await cer.rekey_verify(new[0], vnonce2) is None
    assert await cer.rekey_verify(new[2], vnonce2) == {"nonce": vnonce2, "complete": True}
    assert cer.rekey is None
    assert not await _unseals_with(c, old[:3])
    assert await _unseals_with(c, new[:2])


async def test_cancel_during_verification_leaves_the_old_keys(core: tuple[Core, list[bytes]]) -> None:
    c, old = core
    done = await _rekey(c, old[1:4], 2, 2, verify=True)
    restarted = await c.ceremonies.verify_restart()
    assert restarted["nonce"] != done["verification_nonce"]
    await c.ceremonies.rekey_cancel()
    with pytest.raises(InvalidRequest, match="no rekey configuration found"):
        await c.ceremonies.verify_status()
    assert not await _unseals_with(c, _new_keys(done))
    assert await _unseals_with(c, old[:3])


async def test_seal_abandons_the_ceremonies(core: tuple[Core, list[bytes]]) -> None:
    c, old = core
    await c.ceremonies.rekey_init(3, 2, True)
    await c.ceremonies.root_init(OTP)
    await c.seal()
    assert c.ceremonies.rekey is None and c.ceremonies.root is None
    with pytest.raises(Sealed):
        await c.ceremonies.rekey_status()
    with pytest.raises(Sealed):
        await c.ceremonies.root_status()
    for key in old[:3]:
        await c.unseal(key)


async def test_generate_root(core: tuple[Core, list[bytes]]) -> None:
    c, old = core
    cer = c.ceremonies
    status = await cer.root_status()
    assert status["started"] is False and status["otp_length"] == ROOT_TOKEN_LENGTH and status["required"] == 3
    with pytest.raises(InvalidRequest, match="OTP string has incorrect length"):
        await cer.root_init("short")
    await cer.root_init(OTP)
    with pytest.raises(InvalidRequest, match="root generation already in progress for this namespace"):
        await cer.root_init(OTP)
    nonce = str((await cer.root_status())["nonce"])
    with pytest.raises(InvalidRequest, match="incorrect nonce"):
        await cer.root_update(old[0], "x")
    first = await cer.root_update(old[0], nonce)
    assert first["progress"] == 1 and first["complete"] is False and first["otp_length"] == 0
    # Wrong shares abort the combination but not the attempt.
    await cer.root_update(old[1], nonce)
    with pytest.raises(InvalidRequest, match="root generation aborted"):
        await cer.root_update(b"\x01" * 33, nonce)
    assert (await cer.root_status())["progress"] == 0
    for key in old[2:4]:
        await cer.root_update(key, nonce)
    done = await cer.root_update(old[4], nonce)
    assert done["complete"] is True and done["encoded_token"] == done["encoded_root_token"]
    token = decode_token(str(done["encoded_token"]), OTP)
    assert token.startswith("hvs.") and len(token) == ROOT_TOKEN_LENGTH
    entry = await c.tokens.lookup(token)
    assert entry is not None and entry.policies == ["root"]
    assert (await cer.root_status())["started"] is False


async def test_generate_root_cancel(core: tuple[Core, list[bytes]]) -> None:
    c, old = core
    await c.ceremonies.root_init(OTP)
    await c.ceremonies.root_cancel()
    with pytest.raises(InvalidRequest, match="no root generation in progress"):
        await c.ceremonies.root_update(old[0], "x")


def test_otp_encoding_is_unpadded_base64_of_the_xor() -> None:
    token = "hvs.ABCDEFGHIJKLMNOPQRSTUVWX"
    encoded = encode_token(token, OTP)
    assert "=" not in encoded
    raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    assert raw == bytes(a ^ b for a, b in zip(token.encode(), OTP.encode(), strict=True))
    assert decode_token(encoded, OTP) == token
    with pytest.raises(InvalidRequest):
        encode_token(token, OTP[:-1])


@pytest.mark.parametrize(("encoded", "otp", "message"), [
    # Messages as OpenBao 2.7's sys/decode-token words them (Go's unpadded base64).
    ("AAAAA", "AAA", "error decoding base64'd token: illegal base64 data at input byte 4"),
    ("AA AA", "AAA", "error decoding base64'd token: illegal base64 data at input byte 2"),
    ("AAA==", "AAA", "error decoding base64'd token: illegal base64 data at input byte 3"),
    ("MDE=", "AA", "error decoding base64'd token: illegal base64 data at input byte 3"),
    ("AAAAAA", "AAA", "error xoring token: length of byte slices is not equivalent: 4 != 3"),
])
def test_decode_token_errors(encoded: str, otp: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as e:
        decode_token(encoded, otp)
    assert str(e.value) == message


def test_decode_token_skips_line_breaks() -> None:
    assert decode_token("AAA\nA", "AAA") == "AAA"
    assert decode_token("MDE", "AA") == "qp"
