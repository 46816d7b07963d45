"""verify.py without a server: the verdict cache and the DER string reader."""

from __future__ import annotations

import datetime
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

from strongroom.auth.cert import verify
from strongroom.auth.cert.store import CertRole

from .conftest import NOW, make_pki


def test_verdicts_are_kept_until_the_chain_expires_and_refusals_are_not(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    trusted = verify.Trusted.build([CertRole(name="web", certificate=pki.pem("ca"))])
    chain = (pki.certs["web"].public_bytes(Encoding.DER),)
    first = verify.judge(trusted, chain, NOW)
    assert first is not None and first.names == ["web"] and first.who.common_name == "web.example.com"
    assert verify.judge(trusted, chain, NOW) is first  # no second path validation
    later = first.expires + datetime.timedelta(seconds=1)
    assert verify.judge(trusted, chain, later) is None  # expired: validated again, and refused
    foreign = (pki.certs["foreign"].public_bytes(Encoding.DER),)
    assert verify.judge(trusted, foreign, NOW) is None and foreign not in trusted.verdicts
    assert verify.judge(trusted, (b"not DER",), NOW) is None


def test_der_strings() -> None:
    assert verify._der_string(b"\x0c\x05hello") == "hello"
    assert verify._der_string(b"\x13\x02ab") == "ab"
    assert verify._der_string(b"\x0c\x81\x03abc") == "abc"
    assert verify._der_string(b"\x0c\x05hel") == ""  # truncated
    assert verify._der_string(b"\x02\x01\x05") == ""  # an INTEGER is no string
    assert verify.glob_match("a*b*c", "axxbyyc") and not verify.glob_match("a*b", "ab-x")
