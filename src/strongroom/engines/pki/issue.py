"""Leaf certificates: issue/<role> (a key made here), sign/<role> (the client's CSR) and
sign-verbatim (the CSR as it is), each also under issuer/<ref>/. Role checks follow OpenBao's
wording: names against allowed_domains (bare, subdomains, globs, localhost, any), IP and URI SANs,
key type and size, TTL capped by the role, the mount and the issuer's own expiry.
"""

from __future__ import annotations

import asyncio
import fnmatch
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from strongroom.engines.pki import crypto, subject
from strongroom.engines.pki.roles import load_role
from strongroom.engines.pki.state import LoadedIssuer
from strongroom.errors import InvalidRequest
from strongroom.framework import (
    Field,
    FieldData,
    FieldType,
    Op,
    Path,
    Request,
    Response,
    SecretType,
    name_regex,
)

if TYPE_CHECKING:
    from strongroom.engines.pki import PkiBackend

_HOSTNAME = re.compile(r"^(\*\.)?(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])\.)*"
                       r"([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9\-]*[A-Za-z0-9])\.?$")
_REF = r"issuer/(?P<issuer_ref>\w(?:[\w\-.]*\w)?)/"
_ISSUE_FIELDS: dict[str, Field] = {
    **subject.NAME_FIELDS,
    "role": Field(FieldType.STRING, "The desired role."),
    "issuer_ref": Field(FieldType.STRING, "The issuer to use (overrides the role's)."),
    "csr": Field(FieldType.STRING, "PEM-format CSR to be signed."),
    "remove_roots_from_chain": Field(FieldType.BOOL, "Leave self-signed CAs out of ca_chain."),
    "not_before_duration": Field(FieldType.DURATION, "Backdate not_before by this much."),
    "key_usage": Field(FieldType.COMMA_STRING_SLICE, "sign-verbatim: key usages.",
                       default="DigitalSignature,KeyAgreement,KeyEncipherment"),
    "ext_key_usage": Field(FieldType.COMMA_STRING_SLICE, "sign-verbatim: extended key usages."),
    "ext_key_usage_oids": Field(FieldType.COMMA_STRING_SLICE, "sign-verbatim: extended key usage OIDs."),
    "signature_bits": Field(FieldType.INT, "sign-verbatim: signature hash bits."),
}


async def revoke_leased(b: PkiBackend, req: Request, d: FieldData) -> Response | None:
    """A generate_lease certificate's lease was revoked: revoke the certificate (OpenBao does)."""
    from strongroom.engines.pki.revoke import revoke_entry
    from strongroom.engines.pki.store import CERT_PREFIX, get_json, serial_key

    serial = str(d.raw.get("serial_number", ""))
    entry = await get_json(b.storage(req), CERT_PREFIX + serial_key(serial)) if serial else None
    if entry is not None:
        await revoke_entry(b, req, serial, entry)
    return None


#: The lease of a certificate issued under a role with generate_lease (ttl: until its notAfter).
CERT_SECRET: SecretType[PkiBackend] = SecretType("pki", revoke=revoke_leased)


def _respond(b: PkiBackend, role: dict[str, Any], issued: Issued, body: dict[str, Any]) -> Response:
    if not role.get("generate_lease"):
        return Response(data=body, warnings=issued.warnings)
    ttl = max(1, int(issued.cert.not_valid_after_utc.timestamp() - b.system.now()))
    resp = CERT_SECRET.response(body, {"serial_number": issued.serial},
                                ttl=ttl, renewable=False)
    resp.warnings = issued.warnings
    return resp


def paths() -> list[Path[PkiBackend]]:
    role = name_regex("role")
    return [
        Path(f"(?:{_REF})?issue/{role}", fields=_ISSUE_FIELDS, operations={Op.UPDATE: issue_handler},
             synopsis="Issue a certificate and private key under a role."),
        Path(f"(?:{_REF})?sign/{role}", fields=_ISSUE_FIELDS, operations={Op.UPDATE: sign_handler},
             synopsis="Sign a CSR under a role."),
        Path(f"(?:{_REF})?sign-verbatim(?:/{role})?", fields=_ISSUE_FIELDS,
             operations={Op.UPDATE: sign_verbatim_handler}, synopsis="Sign a CSR as it is."),
    ]


@dataclass(slots=True)
class Names:
    common_name: str = ""
    dns: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    ips: list[str] = field(default_factory=list)
    uris: list[str] = field(default_factory=list)


# -- role checks (pure) -------------------------------------------------------------------------

def _glob(pattern: str, name: str) -> bool:
    return fnmatch.fnmatchcase(name.lower(), pattern.lower())


def name_allowed(role: dict[str, Any], name: str) -> bool:
    """Whether ``name`` (a DNS name, wildcard or email) is allowed by the role."""
    is_email = "@" in name
    host = name.rsplit("@", 1)[1] if is_email else name
    if role["enforce_hostnames"] and not is_email and not _HOSTNAME.match(host):
        return False
    if role["allow_any_name"]:
        return True
    wildcard = host.startswith("*.")
    if wildcard and not role["allow_wildcard_certificates"]:
        return False
    base = host[2:] if wildcard else host
    if role["allow_localhost"] and not wildcard and host in ("localhost", "localdomain", "localhost.localdomain"):
        return True
    for domain in role["allowed_domains"]:
        domain = domain.lower()
        if domain.startswith("*.") and not role["allow_glob_domains"]:
            # OpenBao: a "*." domain with allow_subdomains stands for its subdomains.
            domain = domain[2:]
        h, b = host.lower(), base.lower()
        if role["allow_bare_domains"] and h == domain:
            return True
        if role["allow_subdomains"] and (b.endswith("." + domain) or (wildcard and b == domain)):
            return True
        if role["allow_glob_domains"] and "*" in domain and (_glob(domain, h) or (wildcard and _glob(domain, b))):
            return True
    return False


def check_names(role: dict[str, Any], n: Names) -> None:
    if n.common_name and not name_allowed(role, n.common_name):
        raise InvalidRequest(f"common name {n.common_name} not allowed by this role")
    for name in [*n.dns, *n.emails]:
        if name != n.common_name and not name_allowed(role, name):
            raise InvalidRequest(f"subject alternate name {name} not allowed by this role")
    if n.ips:
        if not role["allow_ip_sans"]:
            raise InvalidRequest(f"IP Subject Alternative Names are not allowed in this role, but was "
                                 f"provided {n.ips[0]}")
        nets = [ipaddress.ip_network(c, strict=False) for c in role["allowed_ip_sans_cidr"]]
        for ip in n.ips:
            if nets and not any(ipaddress.ip_address(ip) in net for net in nets):
                raise InvalidRequest(f"IP address {ip} is not allowed by the role's allowed_ip_sans_cidr")
    if n.uris:
        if not role["allowed_uri_sans"]:
            raise InvalidRequest("URI Subject Alternative Names are not allowed in this role, but were "
                                 "provided via the API")
        for uri in n.uris:
            if not any(_glob(p, uri) for p in role["allowed_uri_sans"]):
                raise InvalidRequest(f"URI Subject Alternative Names are not allowed in this role, but were "
                                     f"provided {uri}")


def check_csr_key(role: dict[str, Any], pub: crypto.PublicKey) -> None:
    kt, bits = crypto.key_type_of(pub), crypto.key_bits_of(pub)
    if kt == "rsa" and bits < 2048:
        raise InvalidRequest(f"RSA keys < 2048 bits are unsafe and not supported: got {bits}")
    if role["key_type"] == "any":
        return
    if kt != role["key_type"]:
        raise InvalidRequest(f"role requires keys of type {role['key_type']}")
    if kt == "rsa" and bits < role["key_bits"]:
        raise InvalidRequest(f"RSA key too small: provided {bits}, role requires at least {role['key_bits']} bits")
    if kt == "ec" and bits < role["key_bits"]:
        raise InvalidRequest(f"EC key too small: provided {bits}, role requires at least {role['key_bits']} bits")


def ext_usages(role: dict[str, Any]) -> list[str]:
    out = [u.lower().replace("extkeyusage", "") for u in role["ext_key_usage"]]
    for flag, name in (("server_flag", "serverauth"), ("client_flag", "clientauth"),
                       ("code_signing_flag", "codesigning"), ("email_protection_flag", "emailprotection")):
        if role.get(flag):
            out.append(name)
    return out


def names_from_request(d: FieldData, role: dict[str, Any], csr: x509.CertificateSigningRequest | None) -> Names:
    if d.get("other_sans"):
        raise InvalidRequest("other_sans are not supported")
    cn = d.get("common_name")
    if csr is not None and role["use_csr_common_name"]:
        cn = crypto.common_name_of(csr.subject) or cn
    if csr is not None and role["use_csr_sans"]:
        dns, emails, ips, uris = crypto.csr_names(csr)
    else:
        dns, emails = subject.split_alt_names(d.get("alt_names"))
        ips = [crypto.check_ip(i) for i in d.get("ip_sans")]
        uris = d.get("uri_sans")
    n = Names(cn, list(dns), list(emails), list(ips), list(uris))
    if not cn and role["require_cn"]:
        raise InvalidRequest('the common_name field is required, or must be provided in a CSR with '
                             '"use_csr_common_name" set to true, unless "require_cn" is set to false')
    if cn and not d.get("exclude_cn_from_sans"):
        target = n.emails if "@" in cn else n.dns  # an IP common name too, as OpenBao does
        if cn not in target:
            target.insert(0, cn)
    return n


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


# -- issuing ----------------------------------------------------------------------------------

@dataclass(slots=True)
class Issued:
    cert: x509.Certificate
    issuer: LoadedIssuer
    warnings: list[str]
    pem: str  # the certificate's PEM and serial ("xx:xx"), encoded once for storage and response
    serial: str


async def sign_leaf(b: PkiBackend, req: Request, *, issuer_ref: str, pub: crypto.PublicKey, names: Names,
                    ttl: int, max_ttl: int, key_usage: list[str], ext_key_usage: list[str],
                    ext_key_usage_oids: Sequence[str] = (), signature_bits: int = 0, no_store: bool = False,
                    subject_override: x509.Name | None = None, extra: Sequence[x509.NameAttribute[str]] = (),
                    backdate: int = 30, not_after_text: str = "", role: dict[str, Any] | None = None,
                    acme: bool = False, ski: bytes = b"") -> Issued:
    """Sign one leaf for ``pub`` (TTL rules applied), store it unless ``no_store``. ``role``: the
    role's certificate options (not_after, basic_constraints_valid_for_non_ca, policy_identifiers,
    use_pss); ``ski``: ``pub``'s subject key identifier if the caller has it."""
    role = role or {}
    snap = await b.snapshot(req)
    issuer = snap.signing_issuer(issuer_ref)
    warnings: list[str] = []
    default, mount_max = b.system.lease_ttls()
    cap = max_ttl or mount_max
    ttl = ttl or default
    if cap and ttl > cap:
        warnings.append(f"TTL \"{crypto.go_duration(ttl)}\" is longer than permitted maxTTL "
                        f"\"{crypto.go_duration(cap)}\", so maxTTL is being used")
        ttl = cap
    now = b.system.now()
    spec = crypto.CertSpec(common_name=names.common_name, dns_names=names.dns, emails=names.emails, ips=names.ips,
                           uris=names.uris, key_usage=key_usage, ext_key_usage=ext_key_usage,
                           ext_key_usage_oids=list(ext_key_usage_oids), subject=subject_override,
                           subject_extra=list(extra),
                           leaf_basic_constraints=bool(role.get("basic_constraints_valid_for_non_ca")),
                           policy_oids=list(role.get("policy_identifiers", [])), use_pss=bool(role.get("use_pss")),
                           not_before=crypto.to_datetime(now - backdate), not_after=crypto.to_datetime(now + ttl))
    not_after_text = not_after_text or str(role.get("not_after", ""))
    if not_after_text:
        spec.not_after = subject.not_after(FieldData({"not_after": not_after_text},
                                                     {"not_after": subject.NAME_FIELDS["not_after"]}), now, ttl)
    spec.not_after = b.bound_not_after(issuer, spec.not_after, acme=acme)
    b.apply_aia(snap, issuer, spec)
    assert issuer.key is not None
    number = crypto.new_serial()
    cert = crypto.build_certificate(spec, pub, issuer.key, issuer.cert, number, signature_bits, issuer.ski, ski)
    pem, serial = crypto.cert_pem(cert), crypto.format_serial(number)
    if not no_store:
        await b.store_cert(req, cert, issuer.id, pem=pem, serial=serial)
    return Issued(cert, issuer, warnings, pem, serial)


def _chain(issued: Issued, remove_roots: bool) -> list[str]:
    chain = list(issued.issuer.chain_stripped)
    if remove_roots:
        chain = [c for c in chain if not _self_signed(c)]
    return chain


def _self_signed(pem: str) -> bool:
    cert = crypto.load_cert(pem)
    return cert.issuer == cert.subject


def leaf_body(issued: Issued, fmt: str, remove_roots: bool = False) -> dict[str, Any]:
    cert = issued.cert
    pem = issued.pem if fmt != "der" else subject.cert_output(cert, fmt)
    chain = _chain(issued, remove_roots)
    body: dict[str, Any] = {
        "ca_chain": subject.chain_output(chain, fmt), "certificate": pem, "expiration": int(cert.not_valid_after_utc.timestamp()),
        "issuing_ca": issued.issuer.pem_stripped if fmt != "der" else subject.cert_output(issued.issuer.cert, fmt),
        "not_before": int(cert.not_valid_before_utc.timestamp()),
        "serial_number": issued.serial,
    }
    if fmt == "pem_bundle":
        body["certificate"] = "\n".join([pem, *chain])
    return body


async def _role(b: PkiBackend, req: Request, name: str) -> dict[str, Any]:
    role = await load_role(b, req, name)
    if role is None:
        raise InvalidRequest(f"unknown role: {name}")
    return role


def _issuer_ref(d: FieldData, role: dict[str, Any]) -> str:
    return str(d.raw.get("issuer_ref") or role["issuer_ref"] or "default")


async def issue_handler(b: PkiBackend, req: Request, d: FieldData) -> Response:
    role = await _role(b, req, d.get("role"))
    if role["key_type"] == "any":
        raise InvalidRequest("role key type \"any\" not allowed for issuing certificates, only signing")
    names = names_from_request(d, role, None)
    check_names(role, names)
    (await b.snapshot(req)).signing_issuer(_issuer_ref(d, role))  # fail before the key is made
    key = await asyncio.to_thread(crypto.generate_key, role["key_type"], role["key_bits"]) \
        if role["key_type"] == "rsa" else crypto.generate_key(role["key_type"], role["key_bits"])
    fmt = d.get("format")
    key_out, bundle_key, ski = subject.issued_key_output(key, fmt, d.get("private_key_format"))
    issued = await sign_leaf(b, req, issuer_ref=_issuer_ref(d, role), pub=key.public_key(), names=names,
                             ttl=d.get("ttl") or role["ttl"], max_ttl=role["max_ttl"], key_usage=role["key_usage"],
                             ext_key_usage=ext_usages(role), ext_key_usage_oids=role["ext_key_usage_oids"],
                             signature_bits=role["signature_bits"], no_store=role["no_store"],
                             extra=_role_subject(role, d), backdate=role["not_before_duration"],
                             not_after_text=d.get("not_after"), role=role, ski=ski)
    body = leaf_body(issued, fmt, d.get("remove_roots_from_chain"))
    body["private_key"] = key_out
    body["private_key_type"] = crypto.key_type_of(key)
    if fmt == "pem_bundle":  # the bundle carries the traditional PEM whatever private_key_format says
        body["certificate"] = bundle_key + "\n" + body["certificate"]
    return _respond(b, role, issued, body)


def _role_subject(role: dict[str, Any], d: FieldData) -> list[x509.NameAttribute[str]]:
    """The role's subject attributes, and the subject serialNumber the client asked for if the
    role's allowed_serial_numbers (globs) admit it."""
    attrs = [x509.NameAttribute(oid, v) for name, oid in subject._SUBJECT_ATTRS.items() for v in role.get(name, [])]
    serial = d.get("serial_number")
    if serial:
        if not any(_glob(p, serial) for p in role.get("allowed_serial_numbers", [])):
            raise InvalidRequest(f"serial_number {serial} not allowed by this role")
        attrs.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, serial))
    return attrs


async def sign_handler(b: PkiBackend, req: Request, d: FieldData) -> Response:
    role = await _role(b, req, d.get("role"))
    if not d.get("csr"):
        raise InvalidRequest("the 'csr' field must be set")
    csr = crypto.load_csr(d.get("csr"))
    pub = crypto.public_key_of(csr)
    check_csr_key(role, pub)
    names = names_from_request(d, role, csr)
    check_names(role, names)
    issued = await sign_leaf(b, req, issuer_ref=_issuer_ref(d, role), pub=pub, names=names,
                             ttl=d.get("ttl") or role["ttl"], max_ttl=role["max_ttl"], key_usage=role["key_usage"],
                             ext_key_usage=ext_usages(role), ext_key_usage_oids=role["ext_key_usage_oids"],
                             signature_bits=role["signature_bits"], no_store=role["no_store"],
                             extra=_role_subject(role, d), backdate=role["not_before_duration"],
                             not_after_text=d.get("not_after"), role=role)
    return _respond(b, role, issued, leaf_body(issued, d.get("format"), d.get("remove_roots_from_chain")))


def verbatim_names(csr: x509.CertificateSigningRequest) -> Names:
    dns, emails, ips, uris = crypto.csr_names(csr)
    return Names(crypto.common_name_of(csr.subject), list(dns), list(emails), list(ips), list(uris))


async def sign_verbatim_handler(b: PkiBackend, req: Request, d: FieldData) -> Response:
    if not d.get("csr"):
        raise InvalidRequest("the 'csr' field must be set")
    csr = crypto.load_csr(d.get("csr"))
    pub = crypto.public_key_of(csr)
    check_csr_key({"key_type": "any"}, pub)
    crypto.check_usages(d.get("key_usage"), d.get("ext_key_usage"))
    for oid in d.get("ext_key_usage_oids"):
        crypto.check_oid(oid)
    role: dict[str, Any] = {"ttl": 0, "max_ttl": 0, "no_store": False, "issuer_ref": "default"}
    if d.get("role"):
        role = await _role(b, req, d.get("role"))
    issued = await sign_leaf(b, req, issuer_ref=_issuer_ref(d, role), pub=pub, names=verbatim_names(csr),
                             ttl=d.get("ttl") or role["ttl"], max_ttl=role["max_ttl"], key_usage=d.get("key_usage"),
                             ext_key_usage=[u.lower().replace("extkeyusage", "") for u in d.get("ext_key_usage")],
                             ext_key_usage_oids=d.get("ext_key_usage_oids"), signature_bits=d.get("signature_bits"),
                             no_store=role["no_store"], subject_override=csr.subject,
                             not_after_text=d.get("not_after"))
    return Response(data=leaf_body(issued, d.get("format"), d.get("remove_roots_from_chain")),
                    warnings=issued.warnings)
