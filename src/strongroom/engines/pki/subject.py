"""Request fields shared by every path that makes a certificate or CSR, and their reading into a
:class:`CertSpec` (names, subject attributes, validity)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from strongroom.engines.pki import crypto
from strongroom.errors import InvalidRequest
from strongroom.framework import Field, FieldData, FieldType

_SUBJECT_ATTRS: dict[str, x509.ObjectIdentifier] = {
    "country": NameOID.COUNTRY_NAME, "province": NameOID.STATE_OR_PROVINCE_NAME,
    "locality": NameOID.LOCALITY_NAME, "street_address": NameOID.STREET_ADDRESS,
    "postal_code": NameOID.POSTAL_CODE, "organization": NameOID.ORGANIZATION_NAME,
    "ou": NameOID.ORGANIZATIONAL_UNIT_NAME,
}

NAME_FIELDS: dict[str, Field] = {
    "common_name": Field(FieldType.STRING, "The requested common name."),
    "alt_names": Field(FieldType.COMMA_STRING_SLICE, "Requested Subject Alternative Names (DNS or email)."),
    "ip_sans": Field(FieldType.COMMA_STRING_SLICE, "Requested IP Subject Alternative Names."),
    "uri_sans": Field(FieldType.COMMA_STRING_SLICE, "Requested URI Subject Alternative Names."),
    "other_sans": Field(FieldType.COMMA_STRING_SLICE, "Requested other SANs (not supported)."),
    "exclude_cn_from_sans": Field(FieldType.BOOL, "Do not add the common name to the DNS SANs."),
    "ttl": Field(FieldType.DURATION, "The requested Time To Live."),
    "not_after": Field(FieldType.STRING, "Set the not after field (UTC, YYYY-MM-ddTHH:MM:SSZ)."),
    "format": Field(FieldType.STRING, "Format of the returned certificate: pem, der or pem_bundle.",
                    default="pem", allowed_values=("pem", "der", "pem_bundle")),
    "private_key_format": Field(FieldType.STRING, "Format of the private key: der, pem or pkcs8.", default="der",
                                allowed_values=("", "der", "pem", "pkcs8")),
    "serial_number": Field(FieldType.STRING, "The Subject's requested serial number."),
}

CA_FIELDS: dict[str, Field] = {
    **NAME_FIELDS,
    **{k: Field(FieldType.COMMA_STRING_SLICE, f"If set, {k} will be set to this value.") for k in _SUBJECT_ATTRS},
    "key_type": Field(FieldType.STRING, "The type of key to use: rsa, ec or ed25519.", default="rsa"),
    "key_bits": Field(FieldType.INT, "The number of bits to use (0: the key type's default)."),
    "signature_bits": Field(FieldType.INT, "The number of bits to use in the signature algorithm."),
    "max_path_length": Field(FieldType.INT, "The maximum allowable path length.", default=-1),
    "issuer_name": Field(FieldType.STRING, "A name for the new issuer."),
    "key_name": Field(FieldType.STRING, "A name for the new key."),
    "key_ref": Field(FieldType.STRING, "The key to use (existing)."),
    "permitted_dns_domains": Field(FieldType.COMMA_STRING_SLICE, "Domains for the name constraints."),
}


def subject_attrs(d: FieldData) -> list[x509.NameAttribute[str]]:
    out: list[x509.NameAttribute[str]] = []
    for name, oid in _SUBJECT_ATTRS.items():
        if name in d.schema:
            for v in d.get(name):
                out.append(x509.NameAttribute(oid, v))
    if "serial_number" in d.schema and d.get("serial_number"):
        out.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, d.get("serial_number")))
    return out


def split_alt_names(values: list[str]) -> tuple[list[str], list[str]]:
    dns: list[str] = []
    emails: list[str] = []
    for v in values:
        (emails if "@" in v else dns).append(v)
    return dns, emails


def ca_spec(d: FieldData, now: float, ttl: int) -> crypto.CertSpec:
    """The spec of a CA certificate from the request (root or intermediate)."""
    cn = d.get("common_name")
    if d.get("other_sans"):
        raise InvalidRequest("other_sans are not supported")
    dns, emails = split_alt_names(d.get("alt_names"))
    if cn and not d.get("exclude_cn_from_sans") and "@" not in cn and cn not in dns:
        dns.insert(0, cn)
    ips = [crypto.check_ip(i) for i in d.get("ip_sans")]
    spec = crypto.CertSpec(common_name=cn, dns_names=dns, emails=emails, ips=ips, uris=d.get("uri_sans"),
                           subject_extra=subject_attrs(d), is_ca=True, max_path_length=d.get("max_path_length"))
    spec.not_before = crypto.to_datetime(now - 30)
    spec.not_after = not_after(d, now, ttl)
    permitted = d.get("permitted_dns_domains")
    if permitted:  # a CA limited to these DNS subtrees (critical, as OpenBao marks it)
        constraints = x509.NameConstraints(permitted_subtrees=[x509.DNSName(p) for p in permitted],
                                           excluded_subtrees=None)
        spec.extra_extensions.append(x509.Extension(x509.oid.ExtensionOID.NAME_CONSTRAINTS, True, constraints))
    return spec


def not_after(d: FieldData, now: float, ttl: int) -> dt.datetime:
    text = d.get("not_after") if "not_after" in d.schema else ""
    if text:
        try:
            return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        except ValueError:
            raise InvalidRequest(f'error parsing not_after "{text}": expected YYYY-MM-ddTHH:MM:SSZ') from None
    return crypto.to_datetime(now + ttl)


def cert_output(cert: x509.Certificate, fmt: str) -> str:
    if fmt == "der":
        import base64

        from cryptography.hazmat.primitives import serialization

        return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    return crypto.cert_pem(cert)


def key_output(key: crypto.PrivateKey, fmt: str, key_format: str) -> str:
    """The private key as OpenBao returns it: base64 DER when ``format`` is der (PKCS#8 if asked,
    else PKCS#1/SEC1), PEM otherwise (PKCS#8 if asked)."""
    if fmt == "der":
        return crypto.key_to_der_b64(key, pkcs8=key_format == "pkcs8")
    return crypto.key_to_pem(key, "pkcs8" if key_format == "pkcs8" else "pem")


def issued_key_output(key: crypto.PrivateKey, fmt: str, key_format: str) -> tuple[str, str, bytes]:
    """issue/<role>'s key: (``private_key`` as :func:`key_output` gives it, the traditional PEM a
    pem_bundle starts with ("" for other formats), the subject key identifier (b"": compute it)).

    An EC key (not asked as PKCS#8) is encoded once: its SEC1 DER is the der output, wrapped as
    OpenSSL wraps PEM it is the PEM, and it ends with the public point whose SHA-1 is the SKI
    (RFC 5280 4.2.1.2 method 1), each encode costing about as much as the signature's hashing."""
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key_format == "pkcs8":
        return key_output(key, fmt, key_format), crypto.key_to_pem(key) if fmt == "pem_bundle" else "", b""
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    pem = _pem_block(der, "EC PRIVATE KEY") if fmt != "der" else ""
    return base64.b64encode(der).decode() if fmt == "der" else pem, pem if fmt == "pem_bundle" else "", _ec_ski(der, key)


def _pem_block(der: bytes, label: str) -> str:
    """PEM as OpenSSL writes it (64-character base64 lines), stripped as :func:`crypto.key_to_pem`."""
    text = base64.b64encode(der).decode()
    return "\n".join([f"-----BEGIN {label}-----", *(text[i:i + 64] for i in range(0, len(text), 64)),
                      f"-----END {label}-----"])


def _ec_ski(sec1: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
    """The SKI of ``key`` from its SEC1 DER (RFC 5915, with its publicKey): SHA-1 of the uncompressed
    point, the DER's trailing BIT STRING; b"" if the DER does not end that way (P-521's long length)."""
    size = 1 + 2 * ((key.curve.key_size + 7) // 8)  # 04 || X || Y
    if size < 127 and sec1[-size - 3:-size + 1] == bytes((0x03, size + 1, 0, 4)):
        return hashlib.sha1(sec1[-size:]).digest()  # noqa: S324 - the RFC's key identifier
    return b""


def chain_output(chain: list[str], fmt: str) -> list[str]:
    """PEM certificates as ``format`` wants them (base64 DER for der)."""
    return [cert_output(crypto.load_cert(c), "der") for c in chain] if fmt == "der" else chain
