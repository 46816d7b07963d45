"""Which trusted certificate (role) a presented client certificate logs in as (pure: no storage).

As Vault's cert method: a role whose certificate is not a CA trusts exactly that certificate (the
presented leaf must be byte-for-byte the same, and within its validity dates); a role whose
certificate is a CA trusts what chains to it. The presented chain is verified once against every
CA of every role together (``cryptography``'s X.509 path builder: signatures, validity dates,
basicConstraints of each issuer), and a role matches when one of its CAs is on the verified chain
and the leaf meets the role's constraints (globs as Vault's go-glob).

The listener does not verify what a client presents (see strongroom/http/tls.py), so everything a
login grants rests on this module. The extension policies are relaxed from the Web PKI defaults to
what Go's verifier (Vault's) accepts: leaves without authority key identifiers or SANs, CAs without
key usage; an extended key usage on the leaf, when present, must allow client authentication.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import (Criticality, ExtensionPolicy, Policy, PolicyBuilder, Store,
                                            VerificationError)

from strongroom.auth.cert.store import CertRole
from strongroom.framework.globs import glob_match


def parse_pem_chain(pem: str) -> list[x509.Certificate]:
    """Every certificate in ``pem``; ``[]`` when it holds none or is malformed."""
    try:
        return x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        return []


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


@dataclass(slots=True)
class Trusted:
    """Every role's certificates, parsed once (rebuilt when a role changes)."""

    roles: dict[str, CertRole] = field(default_factory=dict)
    leaves: dict[bytes, list[str]] = field(default_factory=dict)  # DER of a non-CA -> role names
    cas: dict[bytes, list[str]] = field(default_factory=dict)  # DER of a CA -> role names
    ca_certs: list[x509.Certificate] = field(default_factory=list)
    store: Store | None = None  # of ca_certs, made once
    verdicts: dict[tuple[bytes, ...], Verdict] = field(default_factory=dict)  # see judge()
    subsets: dict[str, Trusted] = field(default_factory=dict)  # see only()

    @classmethod
    def build(cls, roles: Iterable[CertRole]) -> Trusted:
        t = cls()
        for role in roles:
            t.roles[role.name] = role
            for cert in parse_pem_chain(role.certificate):
                der = cert.public_bytes(Encoding.DER)
                if is_ca(cert):
                    if der not in t.cas:
                        t.ca_certs.append(cert)
                    t.cas.setdefault(der, []).append(role.name)
                else:
                    t.leaves.setdefault(der, []).append(role.name)
        t.store = Store(t.ca_certs) if t.ca_certs else None
        return t

    def only(self, name: str) -> Trusted:
        """The same, narrowed to one role (a login that names its role)."""
        subset = self.subsets.get(name)
        if subset is None:
            role = self.roles.get(name)
            subset = self.subsets[name] = Trusted.build([role] if role is not None else [])
        return subset


def _ca_constraint(policy: Policy, cert: x509.Certificate, ext: x509.BasicConstraints | None) -> None:
    if ext is None or not ext.ca:
        raise ValueError("basicConstraints.cA must be asserted in a CA certificate")


_CA_POLICY = ExtensionPolicy.permit_all().require_present(x509.BasicConstraints, Criticality.AGNOSTIC,
                                                          _ca_constraint)
_EE_POLICY = ExtensionPolicy.permit_all()
_CLIENT_EKUS = (ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE)


def load_presented(chain: tuple[bytes, ...]) -> list[x509.Certificate] | None:
    """The presented chain parsed, leaf first; None when it does not parse."""
    try:
        return [x509.load_der_x509_certificate(der) for der in chain]
    except ValueError:
        return None


def valid_at(cert: x509.Certificate, now: datetime.datetime) -> bool:
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


def _eku_allows_client(leaf: x509.Certificate) -> bool:
    try:
        usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return any(u in _CLIENT_EKUS for u in usages)


def verified_chain(trusted: Trusted, presented: list[x509.Certificate],
                   now: datetime.datetime) -> list[x509.Certificate] | None:
    """The chain from the leaf to one of the trusted CAs, or None when there is none."""
    if trusted.store is None or not _eku_allows_client(presented[0]):
        return None
    verifier = (PolicyBuilder().store(trusted.store).time(now)
                .extension_policies(ca_policy=_CA_POLICY, ee_policy=_EE_POLICY).build_client_verifier())
    try:
        return list(verifier.verify(presented[0], presented[1:]).chain)
    except VerificationError:
        return None


def candidates(trusted: Trusted, presented: list[x509.Certificate],
               now: datetime.datetime) -> tuple[list[str], datetime.datetime, list[x509.Certificate]]:
    """Names of the roles that trust the presented certificate, before constraints (a role trusting
    the leaf itself first; none when nothing trusts it), until when that holds (the earliest end
    of validity of the certificates involved), and the verified chain (leaf first; the leaf alone
    when only a role trusting the leaf itself trusts it)."""
    leaf = presented[0]
    names: list[str] = []
    expires = leaf.not_valid_after_utc
    if valid_at(leaf, now):
        names.extend(trusted.leaves.get(leaf.public_bytes(Encoding.DER), []))
    chain = verified_chain(trusted, presented, now)
    for cert in chain or []:
        names.extend(trusted.cas.get(cert.public_bytes(Encoding.DER), []))
        expires = min(expires, cert.not_valid_after_utc)
    return list(dict.fromkeys(names)), expires, chain or [leaf]


@dataclass(slots=True, frozen=True)
class Verdict:
    """A presented chain that some role trusts: which roles, the leaf and what the constraints see."""

    names: list[str]
    leaf: x509.Certificate
    who: Identity
    expires: datetime.datetime
    chain: list[x509.Certificate]  # verified, leaf first (revocation checks look at it)


_MAX_VERDICTS = 4096


def judge(trusted: Trusted, chain: tuple[bytes, ...], now: datetime.datetime) -> Verdict | None:
    """The verdict on a presented chain (DER, leaf first); None when nothing trusts it.

    Verdicts are kept per Trusted (so until a role changes) and per exact chain, until the first of
    its certificates expires: a client that logs in again on every request pays for one path
    validation, not one per login. Refusals are not kept. The table is bounded (cleared when full).
    """
    hit = trusted.verdicts.get(chain)
    if hit is not None and now <= hit.expires:
        return hit
    presented = load_presented(chain)
    if not presented:
        return None
    names, expires, chain_certs = candidates(trusted, presented, now)
    if not names:
        return None
    verdict = Verdict(names, presented[0], identity(presented[0]), expires, chain_certs)
    if len(trusted.verdicts) >= _MAX_VERDICTS:
        trusted.verdicts.clear()
    trusted.verdicts[chain] = verdict
    return verdict


# -- constraints --------------------------------------------------------------------------------


@dataclass(slots=True)
class Identity:
    """What the constraints look at in a leaf."""

    common_name: str
    dns: list[str]
    emails: list[str]
    uris: list[str]
    ous: list[str]
    extensions: dict[str, str]  # dotted OID -> the value as an ASN.1 string ("" when not a string)


def _attrs(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(oid)]


def _der_string(data: bytes) -> str:
    """An extension value that is one DER string (UTF8/Printable/IA5/...); "" otherwise."""
    if len(data) < 2 or data[0] not in (0x0C, 0x12, 0x13, 0x14, 0x16, 0x1A, 0x1E):
        return ""
    length, offset = data[1], 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4 or len(data) < 2 + n:
            return ""
        length, offset = int.from_bytes(data[2:2 + n], "big"), 2 + n
    body = data[offset:offset + length]
    if len(body) != length or offset + length != len(data):
        return ""
    return body.decode("utf-16-be" if data[0] == 0x1E else "utf-8", errors="replace")


def identity(leaf: x509.Certificate) -> Identity:
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = [str(v) for v in san.get_values_for_type(x509.DNSName)]
        emails = [str(v) for v in san.get_values_for_type(x509.RFC822Name)]
        uris = [str(v) for v in san.get_values_for_type(x509.UniformResourceIdentifier)]
    except x509.ExtensionNotFound:
        dns, emails, uris = [], [], []
    extensions: dict[str, str] = {}
    for ext in leaf.extensions:
        if isinstance(ext.value, x509.UnrecognizedExtension):
            extensions[ext.oid.dotted_string] = _der_string(ext.value.value)
    common = _attrs(leaf, NameOID.COMMON_NAME)
    return Identity(common_name=common[0] if common else "", dns=dns, emails=emails, uris=uris,
                    ous=_attrs(leaf, NameOID.ORGANIZATIONAL_UNIT_NAME), extensions=extensions)


def _any(patterns: list[str], values: Iterable[str]) -> bool:
    vals = list(values)
    return not patterns or any(glob_match(p, v) for p in patterns for v in vals)


def meets_constraints(role: CertRole, who: Identity) -> bool:
    c = role.constraints
    names = [who.common_name, *who.dns, *who.emails]
    if not (_any(c["allowed_names"], names) and _any(c["allowed_common_names"], [who.common_name])
            and _any(c["allowed_dns_sans"], who.dns) and _any(c["allowed_email_sans"], who.emails)
            and _any(c["allowed_uri_sans"], who.uris) and _any(c["allowed_organizational_units"], who.ous)):
        return False
    for required in c["required_extensions"]:  # every one must be present, with a matching value
        oid, _, pattern = required.partition(":")
        if oid not in who.extensions or not glob_match(pattern, who.extensions[oid]):
            return False
    return True


def key_id(value: bytes | None) -> str:
    """Vault's hex form of a key identifier: "aa:bb:..."."""
    return ":".join(f"{b:02x}" for b in value or b"")


def key_ids(leaf: x509.Certificate) -> tuple[bytes, bytes]:
    """(subject key id, authority key id), empty when absent."""
    try:
        skid = leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        skid = b""
    try:
        akid = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier or b""
    except x509.ExtensionNotFound:
        akid = b""
    return skid, akid
