"""A minimal CMS/PKCS#7 SignedData verifier for EC2 instance identity documents (RFC 5652).

Only what AWS produces is accepted: DER ``ContentInfo`` of type signedData, the document as
encapsulated ``data``, one or more ``SignerInfo`` with RSA PKCS#1 v1.5 over SHA-1/SHA-256 (with or
without signed attributes; with them, the ``messageDigest`` attribute must equal the document's
digest and the signature covers the attributes' DER re-tagged as a SET). A signature verifies when
some registered certificate's key verifies it. Anything else raises :class:`PKCS7Error`.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

MAX_SIZE = 64 * 1024

OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
OID_DATA = "1.2.840.113549.1.7.1"
OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
_DIGESTS: dict[str, tuple[str, type[hashes.HashAlgorithm]]] = {
    "1.3.14.3.2.26": ("sha1", hashes.SHA1),
    "2.16.840.1.101.3.4.2.1": ("sha256", hashes.SHA256),
    "2.16.840.1.101.3.4.2.2": ("sha384", hashes.SHA384),
    "2.16.840.1.101.3.4.2.3": ("sha512", hashes.SHA512),
}


class PKCS7Error(ValueError):
    pass


class _Tlv:
    __slots__ = ("tag", "value", "raw")

    def __init__(self, tag: int, value: bytes, raw: bytes) -> None:
        self.tag, self.value, self.raw = tag, value, raw


def _read(data: bytes, pos: int) -> tuple[_Tlv, int]:
    """One DER element at ``pos`` (definite lengths only); the element and the position after it."""
    start = pos
    if pos + 2 > len(data):
        raise PKCS7Error("truncated")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise PKCS7Error("high tag numbers are not supported")
    n = data[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > 4 or pos + k > len(data):
            raise PKCS7Error("bad length")
        n = int.from_bytes(data[pos:pos + k], "big")
        pos += k
    if pos + n > len(data):
        raise PKCS7Error("truncated")
    return _Tlv(tag, data[pos:pos + n], data[start:pos + n]), pos + n


def _children(value: bytes) -> list[_Tlv]:
    out, pos = [], 0
    while pos < len(value):
        el, pos = _read(value, pos)
        out.append(el)
    return out


def _expect(el: _Tlv, tag: int, what: str) -> _Tlv:
    if el.tag != tag:
        raise PKCS7Error(f"unexpected {what}")
    return el


def _oid(el: _Tlv) -> str:
    _expect(el, 0x06, "object identifier")
    v = el.value
    if not v:
        raise PKCS7Error("empty object identifier")
    parts = [min(v[0] // 40, 2), v[0] - 40 * min(v[0] // 40, 2)]
    n = 0
    for b in v[1:]:
        n = (n << 7) | (b & 0x7F)
        if not b & 0x80:
            parts.append(n)
            n = 0
    return ".".join(str(p) for p in parts)


def verify(der: bytes, certificates: list[x509.Certificate]) -> bytes:
    """The signed content of ``der`` once a signer's signature verifies with one of ``certificates``."""
    try:
        return _verify(der, certificates)
    except (IndexError, ValueError) as e:
        if isinstance(e, PKCS7Error):
            raise
        raise PKCS7Error("malformed") from None


def _verify(der: bytes, certificates: list[x509.Certificate]) -> bytes:
    if len(der) > MAX_SIZE:
        raise PKCS7Error("too large")
    top, end = _read(der, 0)
    if end != len(der):
        raise PKCS7Error("trailing data")
    ci = _children(_expect(top, 0x30, "ContentInfo").value)
    if len(ci) != 2 or _oid(ci[0]) != OID_SIGNED_DATA:
        raise PKCS7Error("not a signedData")
    sd_wrapper = _children(_expect(ci[1], 0xA0, "content").value)
    if len(sd_wrapper) != 1:
        raise PKCS7Error("bad content")
    sd = _children(_expect(sd_wrapper[0], 0x30, "SignedData").value)
    if len(sd) < 4:
        raise PKCS7Error("bad SignedData")
    encap = _children(_expect(sd[2], 0x30, "EncapsulatedContentInfo").value)
    if len(encap) != 2 or _oid(encap[0]) != OID_DATA:
        raise PKCS7Error("no encapsulated data")
    explicit = _children(_expect(encap[1], 0xA0, "eContent").value)
    if len(explicit) != 1:
        raise PKCS7Error("bad eContent")
    if explicit[0].tag == 0x04:
        content = explicit[0].value
    elif explicit[0].tag == 0x24:  # constructed OCTET STRING (BER, still definite lengths)
        content = b"".join(_expect(c, 0x04, "octet string").value for c in _children(explicit[0].value))
    else:
        raise PKCS7Error("bad eContent")
    signer_infos = _expect(sd[-1], 0x31, "SignerInfos")
    keys: list[object] = [c.public_key() for c in certificates]
    for si in _children(signer_infos.value):
        if _signer_verifies(_children(_expect(si, 0x30, "SignerInfo").value), content, keys):
            return content
    raise PKCS7Error("failed to verify the signature")


def _signer_verifies(si: list[_Tlv], content: bytes, keys: list[object]) -> bool:
    if len(si) < 5:
        raise PKCS7Error("bad SignerInfo")
    digest_alg = _oid(_children(_expect(si[2], 0x30, "digestAlgorithm").value)[0])
    if digest_alg not in _DIGESTS:
        raise PKCS7Error(f"unsupported digest algorithm {digest_alg}")
    name, hash_cls = _DIGESTS[digest_alg]
    idx = 3
    signed: bytes = content
    if si[idx].tag == 0xA0:  # signedAttrs
        attrs = si[idx]
        digest = None
        for attr in _children(attrs.value):
            parts = _children(_expect(attr, 0x30, "Attribute").value)
            if len(parts) == 2 and _oid(parts[0]) == OID_MESSAGE_DIGEST:
                values = _children(_expect(parts[1], 0x31, "attribute values").value)
                if len(values) != 1:
                    raise PKCS7Error("bad messageDigest")
                digest = _expect(values[0], 0x04, "messageDigest").value
        if digest is None or not hmac.compare_digest(digest, hashlib.new(name, content).digest()):
            return False
        signed = b"\x31" + attrs.raw[1:]
        idx += 1
    if len(si) < idx + 2:
        raise PKCS7Error("bad SignerInfo")
    signature = _expect(si[idx + 1], 0x04, "signature").value
    for key in keys:
        if not isinstance(key, rsa.RSAPublicKey):
            continue
        try:
            key.verify(signature, signed, padding.PKCS1v15(), hash_cls())
            return True
        except InvalidSignature:
            continue
    return False
