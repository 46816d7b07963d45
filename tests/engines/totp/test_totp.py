"""totp engine: keys generated or imported, codes compared with pyotp, replay refused, the QR decodes."""

from __future__ import annotations

import base64
import hashlib
import io
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest

from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import Op

NOW = 1_800_000_000.0


class FixedClock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def totp(make_mount: Any) -> Any:
    m = await make_mount("totp")
    clock = FixedClock()
    m.backend.system.clock = clock  # StaticSystemView's clock
    m.clock = clock
    return m


def decode_qr(png: bytes) -> str:
    from PIL import Image
    try:
        from pyzbar.pyzbar import decode  # needs libzbar0 (Debian); .ci/run installs it
    except ImportError as e:
        pytest.skip(f"cannot decode the QR code: {e} (install libzbar0)")
    image = Image.open(io.BytesIO(png))
    found = decode(image)
    assert found, "no QR code found in the barcode"
    return str(found[0].data.decode())


async def test_generated_key_url_barcode_and_codes(totp: Any) -> None:
    data = await totp.ok(Op.UPDATE, "keys/k", {"generate": True, "issuer": "Acme Corp", "account_name": "al@x.io"})
    url = data["url"]
    parts = urlsplit(url)
    assert parts.scheme == "otpauth" and parts.netloc == "totp" and parts.path == "/Acme%20Corp:al@x.io"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query["issuer"] == "Acme Corp" and query["algorithm"] == "SHA1" and query["digits"] == "6"
    assert query["period"] == "30" and len(base64.b32decode(query["secret"])) == 20
    png = base64.b64decode(data["barcode"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    from PIL import Image
    assert Image.open(io.BytesIO(png)).size == (200, 200)

    reference = pyotp.parse_uri(url)
    assert isinstance(reference, pyotp.TOTP)
    code = await totp.ok(Op.READ, "code/k")
    assert code["code"] == reference.at(NOW) and code["period"] == "30s"
    assert code["expire_time"] == (int(NOW) // 30 + 1) * 30 and code["generated"] == int(NOW)
    assert await totp.ok(Op.READ, "keys/k") == {"account_name": "al@x.io", "algorithm": "SHA1", "digits": 6,
                                                "issuer": "Acme Corp", "period": 30}
    assert decode_qr(png) == url  # last: skips without libzbar


async def test_validate_with_skew_and_replay(totp: Any) -> None:
    secret = pyotp.random_base32()
    assert await totp.call(Op.UPDATE, "keys/i", {"key": secret, "issuer": "a", "account_name": "b"}) is None
    reference = pyotp.TOTP(secret)
    assert (await totp.ok(Op.UPDATE, "code/i", {"code": reference.at(NOW)}))["valid"] is True
    with pytest.raises(InvalidRequest, match="code already used; wait until the next time period"):
        await totp.call(Op.UPDATE, "code/i", {"code": reference.at(NOW)})
    # skew 1 (the default): the previous and next periods' codes are valid, two periods off is not.
    assert (await totp.ok(Op.UPDATE, "code/i", {"code": reference.at(NOW - 30)}))["valid"] is True
    assert (await totp.ok(Op.UPDATE, "code/i", {"code": reference.at(NOW + 30)}))["valid"] is True
    assert (await totp.ok(Op.UPDATE, "code/i", {"code": reference.at(NOW + 60)}))["valid"] is False
    # The used code is refused for (2 + skew) periods, then forgotten (and no longer valid either).
    totp.clock.now = NOW + 89
    with pytest.raises(InvalidRequest, match="code already used"):
        await totp.call(Op.UPDATE, "code/i", {"code": reference.at(NOW)})
    totp.clock.now = NOW + 91
    assert (await totp.ok(Op.UPDATE, "code/i", {"code": reference.at(NOW)}))["valid"] is False
    assert (await totp.ok(Op.UPDATE, "code/i", {"code": reference.at(NOW + 91)}))["valid"] is True


async def test_imported_url_sha256_8_digits_60s(totp: Any) -> None:
    secret = pyotp.random_base32()
    reference = pyotp.TOTP(secret, digits=8, digest=hashlib.sha256, interval=60, issuer="Acme", name="bob")
    await totp.call(Op.UPDATE, "keys/u", {"url": reference.provisioning_uri(), "skew": 0})
    assert await totp.ok(Op.READ, "keys/u") == {"account_name": "bob", "algorithm": "SHA256", "digits": 8,
                                                "issuer": "Acme", "period": 60}
    code = await totp.ok(Op.READ, "code/u")
    assert code["code"] == reference.at(NOW) and code["period"] == "1m0s"
    assert (await totp.ok(Op.UPDATE, "code/u", {"code": reference.at(NOW - 60)}))["valid"] is False  # skew 0
    assert (await totp.ok(Op.UPDATE, "code/u", {"code": reference.at(NOW)}))["valid"] is True
    with pytest.raises(InvalidRequest, match="invalid number of digits for the code"):
        await totp.call(Op.UPDATE, "code/u", {"code": "123456"})


@pytest.mark.parametrize("algorithm,digest", [("SHA512", "sha512"), ("SHA1", "sha1")])
async def test_generated_parameters(totp: Any, algorithm: str, digest: str) -> None:
    data = await totp.ok(Op.UPDATE, "keys/g", {"generate": True, "issuer": "i", "account_name": "a",
                                               "algorithm": algorithm, "digits": 8, "period": "45s",
                                               "key_size": 64, "qr_size": 0})
    assert "barcode" not in data
    secret = parse_qs(urlsplit(data["url"]).query)["secret"][0]
    assert len(base64.b32decode(secret + "=" * (-len(secret) % 8))) == 64
    reference = pyotp.TOTP(secret, digits=8, digest=getattr(hashlib, digest), interval=45)
    assert (await totp.ok(Op.READ, "code/g"))["code"] == reference.at(NOW)


async def test_key_errors_list_and_delete(totp: Any) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"generate": True, "issuer": "a"}, "the account_name value is required for generated keys"),
        ({"generate": True, "account_name": "a"}, "the issuer value is required for generated keys"),
        ({}, "the key value is required"),
        ({"key": "!!!"}, "invalid key value"),
        ({"key": "JBSWY3DPEHPK3PXP", "digits": 7}, "the digits value can only be 6 or 8"),
        ({"key": "JBSWY3DPEHPK3PXP", "algorithm": "MD5"}, "the algorithm value is not valid"),
        ({"key": "JBSWY3DPEHPK3PXP", "skew": 2}, "the skew value must be 0 or 1"),
        ({"key": "JBSWY3DPEHPK3PXP", "period": 0}, "the period value must be greater than zero"),
        ({"generate": True, "key": "JBSWY3DPEHPK3PXP"}, "a key should not be passed if generate is true"),
        ({"generate": True, "issuer": "a", "account_name": "b", "qr_size": -1}, "the qr_size value must be"),
        ({"generate": True, "issuer": "a", "account_name": "b", "key_size": 0}, "the key_size value must be"),
        ({"url": "https://example.com/x"}, "otpauth://totp/"),
    ]
    for body, message in cases:
        with pytest.raises(InvalidRequest, match=message):
            await totp.call(Op.UPDATE, "keys/bad", body)
    assert await totp.storage.list("key/") == []  # nothing stored by a refused write
    with pytest.raises(NotFound):
        await totp.call(Op.LIST, "keys")
    assert await totp.call(Op.UPDATE, "keys/x", {"generate": True, "issuer": "a", "account_name": "b",
                                                 "exported": False}) is None
    await totp.call(Op.UPDATE, "keys/y", {"key": "jbswy3dpehpk3pxp"})
    assert (await totp.ok(Op.LIST, "keys"))["keys"] == ["x", "y"]
    raw = await totp.storage.get("key/y")
    assert raw is not None and b"JBSWY3DPEHPK3PXP" not in (await totp.ok(Op.READ, "keys/y")).__repr__().encode()
    await totp.call(Op.DELETE, "keys/y")
    with pytest.raises(NotFound):
        await totp.call(Op.READ, "keys/y")
    with pytest.raises(InvalidRequest, match="unknown key: y"):
        await totp.call(Op.READ, "code/y")
    with pytest.raises(InvalidRequest, match="the code value is required"):
        await totp.call(Op.UPDATE, "code/x", {})
