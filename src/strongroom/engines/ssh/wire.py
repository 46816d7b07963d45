"""OpenSSH key and certificate wire formats (RFC 4251 encodings, PROTOCOL.certkeys), pure functions.

The certificate is assembled here field by field and signed with a CA key from ``cryptography``:

    string  "<key type>-cert-v01@openssh.com"      uint64  valid after
    string  nonce (32 random bytes)                 uint64  valid before
    ...     the subject key's own fields            string  critical options (sorted by name)
    uint64  serial                                  string  extensions (sorted by name)
    uint32  type (1 user, 2 host)                   string  reserved ("")
    string  key id                                  string  the CA's public key blob
    string  valid principals (a list of strings)    string  signature over everything above

An option's data is ``string(value)`` when the value is not empty, else the empty string (as
OpenSSH and Go's x/crypto/ssh write it); ``ssh-keygen -L`` and sshd read it back that way.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import struct
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from strongroom.errors import InvalidRequest

USER_CERT = 1
HOST_CERT = 2

CAKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

# Subject key types that can be certified, and the certificate type name of each.
CERT_TYPES = {
    "ssh-rsa": "ssh-rsa-cert-v01@openssh.com",
    "ssh-ed25519": "ssh-ed25519-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256": "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384": "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521": "ecdsa-sha2-nistp521-cert-v01@openssh.com",
}
_EC_HASH: dict[int, hashes.HashAlgorithm] = {256: hashes.SHA256(), 384: hashes.SHA384(), 521: hashes.SHA512()}
RSA_SIGNERS: dict[str, hashes.HashAlgorithm] = {
    "ssh-rsa": hashes.SHA1(), "rsa-sha2-256": hashes.SHA256(), "rsa-sha2-512": hashes.SHA512()}


def string(b: bytes | str) -> bytes:
    raw = b.encode() if isinstance(b, str) else b
    return struct.pack(">I", len(raw)) + raw


def mpint(n: int) -> bytes:
    if n == 0:
        return string(b"")
    raw = n.to_bytes((n.bit_length() + 8) // 8, "big")  # a leading zero keeps it positive
    return string(raw)


def _read_string(buf: bytes, pos: int) -> tuple[bytes, int]:
    if pos + 4 > len(buf):
        raise ValueError("truncated key data")
    (n,) = struct.unpack_from(">I", buf, pos)
    end = pos + 4 + n
    if end > len(buf):
        raise ValueError("truncated key data")
    return buf[pos + 4:end], end


@dataclass(frozen=True, slots=True)
class SubjectKey:
    """A public key a client asks to have certified."""

    key_type: str  # "ssh-ed25519", ...
    blob: bytes  # the whole public key blob
    family: str  # "rsa" | "ecdsa" | "ed25519" (allowed_user_key_lengths)
    bits: int

    @property
    def fields(self) -> bytes:
        """The key-specific fields: the blob after its type string."""
        _, pos = _read_string(self.blob, 0)
        return self.blob[pos:]


def parse_public_key(text: str) -> SubjectKey:
    """An authorized_keys line (``type base64 [comment]``) → SubjectKey; InvalidRequest otherwise."""
    parts = text.strip().split()
    try:
        if len(parts) < 2:
            raise ValueError("expected a key type and base64 data")
        blob = base64.b64decode(parts[1], validate=True)
        name, _ = _read_string(blob, 0)
        key_type = name.decode("ascii", "replace")
        if key_type not in CERT_TYPES or key_type != parts[0]:
            raise ValueError(f"unsupported key type {parts[0]!r}")
        key = serialization.load_ssh_public_key(f"{parts[0]} {parts[1]}".encode())
    except (ValueError, binascii.Error, UnsupportedAlgorithm) as e:
        raise InvalidRequest(f"failed to parse public_key as SSH key: {e}") from None
    if isinstance(key, rsa.RSAPublicKey):
        family, bits = "rsa", key.key_size
    elif isinstance(key, ec.EllipticCurvePublicKey):
        family, bits = "ecdsa", key.curve.key_size
    elif isinstance(key, ed25519.Ed25519PublicKey):
        family, bits = "ed25519", 256
    else:  # pragma: no cover - excluded by CERT_TYPES above
        raise InvalidRequest("failed to parse public_key as SSH key: unsupported key type")
    return SubjectKey(key_type, blob, family, bits)


def public_key_line(key: CAKey) -> str:
    """The CA's public key as an authorized_keys line, newline-terminated (as OpenBao answers)."""
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode() + "\n"


def public_key_blob(key: CAKey) -> bytes:
    return base64.b64decode(public_key_line(key).split()[1])


def sha256_hex(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def _options(opts: dict[str, str]) -> bytes:
    out = b""
    for name in sorted(opts):
        value = opts[name]
        out += string(name) + string(string(value) if value else b"")
    return out


def _sign(ca: CAKey, data: bytes, rsa_signer: str) -> bytes:
    if isinstance(ca, ed25519.Ed25519PrivateKey):
        return string("ssh-ed25519") + string(ca.sign(data))
    if isinstance(ca, ec.EllipticCurvePrivateKey):
        bits = ca.curve.key_size
        r, s = decode_dss_signature(ca.sign(data, ec.ECDSA(_EC_HASH[bits])))
        return string(f"ecdsa-sha2-nistp{bits}") + string(mpint(r) + mpint(s))
    return string(rsa_signer) + string(ca.sign(data, padding.PKCS1v15(), RSA_SIGNERS[rsa_signer]))


@dataclass(slots=True)
class CertRequest:
    key: SubjectKey
    cert_type: int
    key_id: str
    principals: list[str]
    valid_after: int
    valid_before: int
    critical_options: dict[str, str]
    extensions: dict[str, str]


def sign_certificate(ca: CAKey, req: CertRequest, *, rsa_signer: str = "rsa-sha2-256") -> tuple[str, int]:
    """The signed certificate as an authorized_keys line (newline-terminated) and its serial."""
    serial = secrets.randbits(64)
    cert_type = CERT_TYPES[req.key.key_type]
    body = (string(cert_type) + string(secrets.token_bytes(32)) + req.key.fields
            + struct.pack(">QI", serial, req.cert_type) + string(req.key_id)
            + string(b"".join(string(p) for p in req.principals))
            + struct.pack(">QQ", req.valid_after, req.valid_before)
            + string(_options(req.critical_options)) + string(_options(req.extensions))
            + string(b"") + string(public_key_blob(ca)))
    blob = body + string(_sign(ca, body, rsa_signer))
    return f"{cert_type} {base64.b64encode(blob).decode()}\n", serial


# -- CA keys ------------------------------------------------------------------------------------
def generate_ca_key(key_type: str, key_bits: int) -> CAKey:
    """A new CA key; key_type as OpenBao's config/ca takes it. InvalidRequest on bad input."""
    kt = key_type.lower()
    if kt in ("ssh-rsa", "rsa"):
        bits = key_bits or 4096
        if bits < 2048:
            raise InvalidRequest(f"refusing to generate weak rsa key: {bits} bits < 2048 bits")
        if bits > 8192:
            raise InvalidRequest(f"invalid RSA key size: {bits} bits (at most 8192)")
        return rsa.generate_private_key(65537, bits)
    if kt in ("ssh-ed25519", "ed25519"):
        return ed25519.Ed25519PrivateKey.generate()
    curves: dict[int, ec.EllipticCurve] = {256: ec.SECP256R1(), 384: ec.SECP384R1(), 521: ec.SECP521R1()}
    named = {"ecdsa-sha2-nistp256": 256, "ecdsa-sha2-nistp384": 384, "ecdsa-sha2-nistp521": 521}
    if kt in named:
        return ec.generate_private_key(curves[named[kt]])
    if kt in ("ec", "ecdsa"):
        bits = key_bits or 256
        if bits not in curves:
            raise InvalidRequest(f"invalid bit size for EC key: {bits} (256, 384 or 521)")
        return ec.generate_private_key(curves[bits])
    raise InvalidRequest(f"unknown ssh key pair algorithm: {key_type}")


def private_key_pem(key: CAKey, *, traditional: bool = False) -> str:
    """PEM of ``key``: OpenSSH's format, or (``traditional``) what OpenBao's issue/ hands out:
    PKCS#1 "RSA PRIVATE KEY", SEC 1 "EC PRIVATE KEY", and OpenSSH's format for ed25519."""
    fmt = serialization.PrivateFormat.OpenSSH
    if traditional and not isinstance(key, ed25519.Ed25519PrivateKey):
        fmt = serialization.PrivateFormat.TraditionalOpenSSL
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()


def load_private_key(pem: str) -> CAKey:
    """A CA private key from OpenSSH, PKCS#8 or traditional PEM; InvalidRequest otherwise."""
    data = pem.strip().encode() + b"\n"
    key: object
    try:
        if b"OPENSSH PRIVATE KEY" in data:
            key = serialization.load_ssh_private_key(data, None)
        else:
            key = serialization.load_pem_private_key(data, None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise InvalidRequest(f"failed to parse private_key: {e}") from None
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 2048:
            raise InvalidRequest(f"refusing weak RSA key: {key.key_size} bits (at least 2048)")
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size in _EC_HASH:
        return key
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    raise InvalidRequest("failed to parse private_key: unsupported key type")
