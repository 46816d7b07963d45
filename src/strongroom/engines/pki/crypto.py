"""Pure certificate helpers (no I/O): keys, serials, PEM, certificate and CSR building.

Everything cryptographic comes from ``cryptography``. Key generation is CPU-bound (RSA-4096 takes
a second): handlers run it through :func:`asyncio.to_thread`.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from strongroom.errors import InvalidRequest

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey: TypeAlias = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

_CURVES: dict[int, type[ec.EllipticCurve]] = {224: ec.SECP224R1, 256: ec.SECP256R1, 384: ec.SECP384R1,
                                              521: ec.SECP521R1}
_CURVE_BITS: dict[str, int] = {"secp224r1": 224, "secp256r1": 256, "secp384r1": 384, "secp521r1": 521}
DEFAULT_BITS = {"rsa": 2048, "ec": 256, "ed25519": 0}

# Vault's key usage names (x509.KeyUsage flags) and ext key usage names.
KEY_USAGES = {
    "digitalsignature": "digital_signature", "contentcommitment": "content_commitment",
    "keyencipherment": "key_encipherment", "dataencipherment": "data_encipherment",
    "keyagreement": "key_agreement", "certsign": "key_cert_sign", "crlsign": "crl_sign",
    "encipheronly": "encipher_only", "decipheronly": "decipher_only",
}
EXT_KEY_USAGES = {
    "serverauth": ExtendedKeyUsageOID.SERVER_AUTH, "clientauth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "codesigning": ExtendedKeyUsageOID.CODE_SIGNING, "emailprotection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "timestamping": ExtendedKeyUsageOID.TIME_STAMPING, "ocspsigning": ExtendedKeyUsageOID.OCSP_SIGNING,
    "any": ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
}


def validate_key(key_type: str, key_bits: int, *, allow_any: bool = False) -> int:
    """The effective bit length for ``key_type`` (0 = its default); Vault's wording on refusal."""
    if key_type == "any" and allow_any:
        return 0
    if key_type == "rsa":
        bits = key_bits or 2048
        if bits < 2048:
            raise InvalidRequest(f"RSA keys < 2048 bits are unsafe and not supported: got {bits}")
        if bits not in (2048, 3072, 4096, 8192):
            raise InvalidRequest(f"unsupported bit length for RSA key: {bits}")
        return bits
    if key_type == "ec":
        bits = key_bits or 256
        if bits not in _CURVES:
            raise InvalidRequest(f"unsupported bit length for EC key: {bits}")
        return bits
    if key_type == "ed25519":
        return 0
    raise InvalidRequest(f"unknown key type {key_type}")


def generate_key(key_type: str, key_bits: int) -> PrivateKey:
    bits = validate_key(key_type, key_bits)
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=bits)
    if key_type == "ec":
        return ec.generate_private_key(_CURVES[bits]())
    return ed25519.Ed25519PrivateKey.generate()


def key_type_of(key: PrivateKey | PublicKey) -> str:
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "rsa"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return "ec"
    return "ed25519"


def key_bits_of(key: PrivateKey | PublicKey) -> int:
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return key.key_size
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return _CURVE_BITS.get(key.curve.name, key.curve.key_size)
    return 0


def public_key_of(obj: x509.Certificate | x509.CertificateSigningRequest) -> PublicKey:
    pub = obj.public_key()
    if not isinstance(pub, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey)):
        raise InvalidRequest("unsupported public key type (rsa, ec and ed25519 are supported)")
    return pub


def public_key_of_key(key: PrivateKey) -> PublicKey:
    return key.public_key()


def key_to_pem(key: PrivateKey, fmt: str = "pem") -> str:
    """PEM as Vault returns it: PKCS#1 for RSA, SEC1 for EC, PKCS#8 for ed25519 and on request."""
    if fmt == "pkcs8" or isinstance(key, ed25519.Ed25519PrivateKey):
        enc = serialization.PrivateFormat.PKCS8
    else:
        enc = serialization.PrivateFormat.TraditionalOpenSSL
    return key.private_bytes(serialization.Encoding.PEM, enc, serialization.NoEncryption()).decode().strip()


def key_to_der_b64(key: PrivateKey, *, pkcs8: bool = False) -> str:
    fmt = serialization.PrivateFormat.PKCS8 if pkcs8 or isinstance(key, ed25519.Ed25519PrivateKey) \
        else serialization.PrivateFormat.TraditionalOpenSSL
    der = key.private_bytes(serialization.Encoding.DER, fmt, serialization.NoEncryption())
    return base64.b64encode(der).decode()


def load_key(pem: str) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as e:
        raise InvalidRequest(f"error parsing private key: {e}") from None
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)):
        raise InvalidRequest("unsupported private key type (rsa, ec and ed25519 are supported)")
    return key


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode().strip()


def load_cert(pem: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.encode())
    except ValueError as e:
        raise InvalidRequest(f"error parsing certificate: {e}") from None


def load_csr(pem: str) -> x509.CertificateSigningRequest:
    try:
        csr = x509.load_pem_x509_csr(pem.strip().encode())
    except ValueError as e:
        raise InvalidRequest(f"certificate request could not be parsed: {e}") from None
    if not csr.is_signature_valid:
        raise InvalidRequest("request signature invalid")
    return csr


def load_csr_der(der: bytes) -> x509.CertificateSigningRequest:
    try:
        csr = x509.load_der_x509_csr(der)
    except ValueError as e:
        raise InvalidRequest(f"certificate request could not be parsed: {e}") from None
    if not csr.is_signature_valid:
        raise InvalidRequest("request signature invalid")
    return csr


def new_serial() -> int:
    """A random positive serial of at most 159 bits (RFC 5280: at most 20 octets, positive)."""
    return secrets.randbits(159) | 1 << 120


def format_serial(n: int) -> str:
    """Vault's "xx:xx:..." form of a serial (the minimal big-endian bytes)."""
    return n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big").hex(":")


def parse_serial(s: str) -> str:
    """A client's serial ("xx:xx", "xx-xx", upper case) in the canonical "xx:xx" form."""
    text = s.strip().lower().replace("-", ":")
    parts = text.split(":")
    if not text or any(len(p) != 2 or any(c not in "0123456789abcdef" for c in p) for p in parts):
        raise InvalidRequest(f"invalid serial number: {s}")
    return text


def key_id_hex(data: bytes) -> str:
    return data.hex(":")


def subject_key_id(pub: PublicKey) -> bytes:
    return x509.SubjectKeyIdentifier.from_public_key(pub).digest


def hash_for(key: PrivateKey, signature_bits: int = 0) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512 | None:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    bits = signature_bits
    if not bits and isinstance(key, ec.EllipticCurvePrivateKey):
        bits = {384: 384, 521: 512}.get(key_bits_of(key), 256)
    if bits == 384:
        return hashes.SHA384()
    if bits == 512:
        return hashes.SHA512()
    return hashes.SHA256()


def sig_alg_name(key: PrivateKey) -> str:
    """Vault's revocation_signature_algorithm name for the issuer key's default."""
    if isinstance(key, rsa.RSAPrivateKey):
        return "SHA256WithRSA"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        h = hash_for(key)
        return f"ECDSAWith{(h.name if h else 'sha256').upper()}"
    return "PureEd25519"


@dataclass(slots=True)
class CertSpec:
    """What goes into one certificate."""

    common_name: str = ""
    dns_names: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    ips: list[str] = field(default_factory=list)
    uris: list[str] = field(default_factory=list)
    not_before: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    not_after: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    is_ca: bool = False
    max_path_length: int = -1
    key_usage: list[str] = field(default_factory=list)
    ext_key_usage: list[str] = field(default_factory=list)
    ext_key_usage_oids: list[str] = field(default_factory=list)
    subject_extra: list[x509.NameAttribute[str]] = field(default_factory=list)
    # AIA / CRL distribution (from config/urls or the issuer)
    issuing_certificates: list[str] = field(default_factory=list)
    crl_distribution_points: list[str] = field(default_factory=list)
    ocsp_servers: list[str] = field(default_factory=list)
    subject: x509.Name | None = None  # used verbatim when set (sign-verbatim, sign-intermediate)
    leaf_basic_constraints: bool = False  # a role's basic_constraints_valid_for_non_ca: CA:FALSE on leaves
    policy_oids: list[str] = field(default_factory=list)  # a role's policy_identifiers
    use_pss: bool = False  # an RSA issuer signs with RSASSA-PSS (a role's use_pss)
    extra_extensions: list[x509.Extension[x509.ExtensionType]] = field(default_factory=list)


def subject_name(spec: CertSpec) -> x509.Name:
    if spec.subject is not None:
        return spec.subject
    attrs = list(spec.subject_extra)
    if spec.common_name:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, spec.common_name))
    return x509.Name(attrs)


def _general_names(spec: CertSpec) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in spec.dns_names]
    names += [x509.RFC822Name(e) for e in spec.emails]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in spec.ips]
    names += [x509.UniformResourceIdentifier(u) for u in spec.uris]
    return names


def build_certificate(spec: CertSpec, public_key: PublicKey, signer: PrivateKey,
                      issuer: x509.Certificate | None, serial: int, signature_bits: int = 0,
                      issuer_ski: bytes = b"", ski: bytes = b"") -> x509.Certificate:
    """Sign a certificate for ``public_key``; ``issuer`` None means self-signed. ``ski``: the
    subject key identifier if the caller has it (else computed). Input the X.509 encoders refuse
    (a CN over 64 characters, a non-ASCII DNS name, a bad OID) is a 400."""
    try:
        return _build_certificate(spec, public_key, signer, issuer, serial, signature_bits, issuer_ski, ski)
    except (ValueError, TypeError) as e:
        raise InvalidRequest(f"error creating certificate: {e}") from None


def _build_certificate(spec: CertSpec, public_key: PublicKey, signer: PrivateKey,
                       issuer: x509.Certificate | None, serial: int, signature_bits: int,
                       issuer_ski: bytes, ski: bytes) -> x509.Certificate:
    subject = subject_name(spec)
    ski = ski or subject_key_id(public_key)
    # One list of extensions for the builder (add_extension copies it each time); an error making
    # them surfaces after the builder's checks (dates, serial), as when they were added after those.
    failed: Exception | None = None
    try:
        extensions = _extensions(spec, len(subject) == 0, ski, issuer, issuer_ski)
    except Exception as e:  # noqa: BLE001 - re-raised below
        extensions, failed = [], e
    b = (x509.CertificateBuilder(extensions=extensions).subject_name(subject)
         .issuer_name(issuer.subject if issuer is not None else subject)
         .public_key(public_key).serial_number(serial)
         .not_valid_before(spec.not_before).not_valid_after(spec.not_after))
    if failed is not None:
        raise failed
    algorithm = hash_for(signer, signature_bits)
    if spec.use_pss and isinstance(signer, rsa.RSAPrivateKey) and algorithm is not None:
        pss = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.DIGEST_LENGTH)
        return b.sign(signer, algorithm, rsa_padding=pss)
    return b.sign(signer, algorithm)


def _extensions(spec: CertSpec, no_subject: bool, ski: bytes, issuer: x509.Certificate | None,
                issuer_ski: bytes) -> list[x509.Extension[x509.ExtensionType]]:
    """The certificate's extensions, in the order they are encoded."""
    out: list[x509.Extension[x509.ExtensionType]] = []
    seen: set[x509.ObjectIdentifier] = set()

    def add(value: x509.ExtensionType, critical: bool) -> None:
        oid = value.oid
        if oid in seen:
            raise ValueError("This extension has already been set.")  # the builder's wording
        seen.add(oid)
        out.append(x509.Extension(oid, critical, value))

    if spec.is_ca:
        ku = {"key_cert_sign": True, "crl_sign": True, "digital_signature": False}
        path_len = None if spec.max_path_length < 0 else spec.max_path_length
        add(x509.BasicConstraints(ca=True, path_length=path_len), True)
    else:
        ku = {KEY_USAGES[u.lower()]: True for u in spec.key_usage if u.lower() in KEY_USAGES}
        if spec.leaf_basic_constraints:
            add(x509.BasicConstraints(ca=False, path_length=None), True)
    if any(ku.values()):
        flags = {v: ku.get(v, False) for v in KEY_USAGES.values()}
        if not flags["key_agreement"]:
            flags["encipher_only"] = flags["decipher_only"] = False
        add(x509.KeyUsage(**flags), True)
    ekus = [EXT_KEY_USAGES[e.lower()] for e in spec.ext_key_usage if e.lower() in EXT_KEY_USAGES]
    ekus += [x509.ObjectIdentifier(o) for o in spec.ext_key_usage_oids]
    if ekus and not spec.is_ca:
        add(x509.ExtendedKeyUsage(list(dict.fromkeys(ekus))), False)
    add(x509.SubjectKeyIdentifier(ski), False)
    if not issuer_ski:
        issuer_ski = subject_key_id(public_key_of(issuer)) if issuer is not None else ski
    add(x509.AuthorityKeyIdentifier(issuer_ski, None, None), False)
    aia = x509.oid.AuthorityInformationAccessOID
    access = [x509.AccessDescription(oid, x509.UniformResourceIdentifier(u)) for oid, urls in (
        (aia.CA_ISSUERS, spec.issuing_certificates), (aia.OCSP, spec.ocsp_servers)) for u in urls]
    if access:
        add(x509.AuthorityInformationAccess(access), False)
    names = _general_names(spec)
    if names:  # critical when the subject is empty (RFC 5280 4.2.1.6)
        add(x509.SubjectAlternativeName(names), no_subject)
    if spec.crl_distribution_points:
        points = [x509.DistributionPoint([x509.UniformResourceIdentifier(u)], None, None, None)
                  for u in spec.crl_distribution_points]
        add(x509.CRLDistributionPoints(points), False)
    if spec.policy_oids:
        add(x509.CertificatePolicies(
            [x509.PolicyInformation(x509.ObjectIdentifier(o), None) for o in spec.policy_oids]), False)
    for ext in spec.extra_extensions:
        add(ext.value, ext.critical)
    return out


def build_csr(spec: CertSpec, key: PrivateKey) -> x509.CertificateSigningRequest:
    try:
        return _build_csr(spec, key)
    except (ValueError, TypeError) as e:
        raise InvalidRequest(f"error creating certificate request: {e}") from None


def _build_csr(spec: CertSpec, key: PrivateKey) -> x509.CertificateSigningRequest:
    b = x509.CertificateSigningRequestBuilder().subject_name(subject_name(spec))
    names = _general_names(spec)
    if names:
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return b.sign(key, hash_for(key))


def csr_names(csr: x509.CertificateSigningRequest) -> tuple[list[str], list[str], list[str], list[str]]:
    """(dns, email, ip, uri) subject alternative names of a CSR."""
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], [], [], []
    return (san.get_values_for_type(x509.DNSName), san.get_values_for_type(x509.RFC822Name),
            [str(i) for i in san.get_values_for_type(x509.IPAddress)],
            san.get_values_for_type(x509.UniformResourceIdentifier))


def common_name_of(name: x509.Name) -> str:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else ""


def verify_signed_by(cert: x509.Certificate, parent: x509.Certificate) -> bool:
    """Whether ``parent`` issued ``cert`` (names match and the signature verifies)."""
    if cert.issuer != parent.subject:
        return False
    pub = parent.public_key()
    try:
        if isinstance(pub, rsa.RSAPublicKey):
            assert cert.signature_hash_algorithm is not None
            pub.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)
        elif isinstance(pub, ec.EllipticCurvePublicKey):
            assert cert.signature_hash_algorithm is not None
            pub.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        elif isinstance(pub, ed25519.Ed25519PublicKey):
            pub.verify(cert.signature, cert.tbs_certificate_bytes)
        else:
            return False
    except Exception:  # noqa: BLE001 - any failure means "not signed by"
        return False
    return True


def same_public_key(a: PublicKey, b: PublicKey) -> bool:
    enc, fmt = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return a.public_bytes(enc, fmt) == b.public_bytes(enc, fmt)


def to_datetime(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


def rfc3339(ts: float) -> str:
    if not ts:
        return ""
    return to_datetime(ts).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise InvalidRequest(f'the value "{value}" is not a valid IP address') from None


def go_duration(seconds: int) -> str:
    """Go's time.Duration.String() of whole seconds ("72h0m0s", "30m0s", "45s")."""
    h, rest = divmod(int(seconds), 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h{m}m{s}s"
    return f"{m}m{s}s" if m else f"{s}s"


def check_oid(oid: str) -> str:
    try:
        x509.ObjectIdentifier(oid)
    except ValueError:
        raise InvalidRequest(f"invalid OID: {oid}") from None
    return oid


def check_usages(key_usage: Sequence[str], ext_key_usage: Sequence[str]) -> None:
    for u in key_usage:
        if u.lower() not in KEY_USAGES:
            raise InvalidRequest(f"unknown key usage: {u}")
    for u in ext_key_usage:
        if u.lower().replace("extkeyusage", "") not in EXT_KEY_USAGES:
            raise InvalidRequest(f"unknown ext key usage: {u}")
