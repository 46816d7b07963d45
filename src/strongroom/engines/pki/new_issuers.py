"""How issuers come to be: root generation, intermediate CSRs and their signing, importing signed
certificates and keys from a PEM bundle (issuers.py reads, updates and deletes them; keys.py has the keys,
ca.py the CA certificate endpoints).

Every write here goes under ``config/`` and drops the mount's decoded cache (state.py).
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from strongroom.engines.pki import crypto, subject
from strongroom.engines.pki.provision import check_names, new_key, store_issuer, store_key
from strongroom.engines.pki.store import new_id
from strongroom.errors import InvalidRequest
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response

if TYPE_CHECKING:
    from strongroom.engines.pki import PkiBackend

AIA_WARNING = ("This mount hasn't configured any authority information access (AIA) fields; this may make it "
               "harder for systems to find missing certificates in the chain or to validate revocation status "
               "of certificates. Consider updating /config/urls or the newly generated issuer with this "
               "information.")
_REF = r"(?P<issuer_ref>\w(?:[\w\-.]*\w)?)"


def paths() -> list[Path[PkiBackend]]:
    gen = subject.CA_FIELDS
    return [
        # root/rotate is root/generate (neither moves an existing default; root/replace does).
        Path(r"(?:root/generate|root/rotate|issuers/generate/root)/(?P<exported>internal|exported|existing|kms)",
             fields={**gen, "exported": _S},
             operations={Op.UPDATE: generate_root}, synopsis="Generate a new CA certificate and private key."),
        Path(r"(?:intermediate/generate|issuers/generate/intermediate)/(?P<exported>internal|exported|existing|kms)",
             fields={**gen, "exported": _S, "add_basic_constraints": Field(FieldType.BOOL, "Add basic constraints.")},
             operations={Op.UPDATE: generate_intermediate}, synopsis="Generate an intermediate CSR and key."),
        Path(r"(?:root|issuer/" + _REF + r")/sign-intermediate",
             fields={**gen, "csr": Field(FieldType.STRING, "PEM-format CSR to be signed."),
                     "use_csr_values": Field(FieldType.BOOL, "Use the CSR's subject and SANs."),
                     "issuer_ref": Field(FieldType.STRING, "The issuer to sign with.", default="default")},
             operations={Op.UPDATE: sign_intermediate}, synopsis="Issue an intermediate CA certificate."),
        Path(r"intermediate/set-signed|config/ca|issuers/import/(?:cert|bundle)",
             fields={"certificate": Field(FieldType.STRING, "PEM certificates (the signed intermediate first)."),
                     "pem_bundle": Field(FieldType.STRING, "PEM bundle of certificates and keys.")},
             operations={Op.UPDATE: import_bundle}, synopsis="Import issuers (and keys) from a PEM bundle."),
    ]


_S = Field(FieldType.STRING)


def ttl_for(b: PkiBackend, d: FieldData, warnings: list[str]) -> int:
    default, maximum = b.system.lease_ttls()
    ttl = d.get("ttl") or default
    if maximum and ttl > maximum:
        warnings.append(f"TTL \"{crypto.go_duration(ttl)}\" is longer than permitted maxTTL "
                        f"\"{crypto.go_duration(maximum)}\", so maxTTL is being used")
        ttl = maximum
    return int(ttl)



# -- root and intermediate --------------------------------------------------------------------

async def generate_root(b: PkiBackend, req: Request, d: FieldData) -> Response:
    mode = d.get("exported")
    async with b.write_lock:
        snap = await b.snapshot(req)
        check_names(snap, d.get("issuer_name"), d.get("key_name") if mode != "existing" else "")
        if not d.get("common_name"):
            raise InvalidRequest("the 'common_name' field must be set")
        warnings: list[str] = []
        now = b.system.now()
        spec = subject.ca_spec(d, now, ttl_for(b, d, warnings))
        key, key_id, is_new = await new_key(b, d, snap, mode)
        cert = crypto.build_certificate(spec, crypto.public_key_of_key(key), key, None, crypto.new_serial(),
                                        d.get("signature_bits"))
        if is_new:
            await store_key(b, req, snap, key, key_id, d.get("key_name"))
        entry = await store_issuer(b, req, snap, cert, key_id, d.get("issuer_name"), key)
        await b.store_cert(req, cert, entry.id)
        b.forget()
    fmt = d.get("format")
    pem = subject.cert_output(cert, fmt)
    data: dict[str, Any] = {
        "certificate": pem, "expiration": int(cert.not_valid_after_utc.timestamp()), "issuer_id": entry.id,
        "issuer_name": entry.name, "issuing_ca": pem, "key_id": key_id,
        "key_name": snap.keys[key_id].entry.name if not is_new else d.get("key_name"),
        "serial_number": entry.serial_number,
    }
    if mode == "exported":
        data["private_key"] = subject.key_output(key, fmt, d.get("private_key_format"))
        data["private_key_type"] = crypto.key_type_of(key)
        if fmt == "pem_bundle":
            data["certificate"] = data["private_key"] + "\n" + pem
    snap2 = await b.snapshot(req)
    if not (snap2.urls.issuing_certificates or snap2.urls.crl_distribution_points or snap2.urls.ocsp_servers):
        warnings.append(AIA_WARNING)
    await b.rebuild_crl(req, entry.id)
    return Response(data=data, warnings=warnings)


async def generate_intermediate(b: PkiBackend, req: Request, d: FieldData) -> Response:
    mode = d.get("exported")
    async with b.write_lock:
        snap = await b.snapshot(req)
        check_names(snap, "", d.get("key_name") if mode != "existing" else "")
        key, key_id, is_new = await new_key(b, d, snap, mode)
        spec = subject.ca_spec(d, b.system.now(), 0)
        csr = crypto.build_csr(spec, key)
        if is_new:
            await store_key(b, req, snap, key, key_id, d.get("key_name"))
        b.forget()
    fmt = d.get("format")
    csr_out = (base64.b64encode(csr.public_bytes(serialization.Encoding.DER)).decode() if fmt == "der"
               else csr.public_bytes(serialization.Encoding.PEM).decode().strip())
    data: dict[str, Any] = {"csr": csr_out, "key_id": key_id}
    if mode == "exported":
        data["private_key"] = subject.key_output(key, fmt, d.get("private_key_format"))
        data["private_key_type"] = crypto.key_type_of(key)
    return Response(data=data)


async def sign_intermediate(b: PkiBackend, req: Request, d: FieldData) -> Response:
    if not d.get("csr"):
        raise InvalidRequest("the 'csr' field must be set")
    csr = crypto.load_csr(d.get("csr"))
    snap = await b.snapshot(req)
    issuer = snap.signing_issuer(d.get("issuer_ref"))
    warnings: list[str] = []
    now = b.system.now()
    spec = subject.ca_spec(d, now, ttl_for(b, d, warnings))
    if d.get("use_csr_values"):
        spec.subject = csr.subject
        dns, emails, ips, uris = crypto.csr_names(csr)
        spec.dns_names, spec.emails, spec.ips, spec.uris = dns, emails, ips, uris
    elif not d.get("common_name"):
        raise InvalidRequest("the 'common_name' field must be set")
    b.apply_aia(snap, issuer, spec)
    spec.not_after = b.bound_not_after(issuer, spec.not_after)
    assert issuer.key is not None
    cert = crypto.build_certificate(spec, crypto.public_key_of(csr), issuer.key, issuer.cert,
                                    crypto.new_serial(), d.get("signature_bits"))
    await b.store_cert(req, cert, issuer.id)
    fmt = d.get("format")
    pem = subject.cert_output(cert, fmt)
    chain = [crypto.cert_pem(cert), *(c.strip() for c in issuer.chain)]  # the new CA first, as OpenBao
    data = {"certificate": pem, "expiration": int(cert.not_valid_after_utc.timestamp()),
            "issuing_ca": subject.cert_output(issuer.cert, fmt), "ca_chain": subject.chain_output(chain, fmt),
            "serial_number": crypto.format_serial(cert.serial_number)}
    if fmt == "pem_bundle":
        data["certificate"] = "\n".join(chain)
    if not (spec.issuing_certificates or spec.crl_distribution_points or spec.ocsp_servers):
        warnings.append(AIA_WARNING)
    return Response(data=data, warnings=warnings)


async def import_bundle(b: PkiBackend, req: Request, d: FieldData) -> Response:
    text = d.get("certificate") or d.get("pem_bundle")
    if not text:
        raise InvalidRequest("'pem_bundle' parameter was empty")
    blocks = split_pem(text)
    if not blocks:
        raise InvalidRequest("provided data for import was too short; perhaps a path was passed to the API "
                             "rather than the contents of a PEM file")
    certs: list[x509.Certificate] = []
    keys: list[crypto.PrivateKey] = []
    for block in blocks:
        if "CERTIFICATE-----" in block.splitlines()[0]:
            certs.append(crypto.load_cert(block))
        elif "PRIVATE KEY-----" in block.splitlines()[0]:
            keys.append(crypto.load_key(block))
        else:
            raise InvalidRequest("unsupported PEM block in bundle")
    for cert in certs:
        try:
            bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            bc = None
        if bc is None or not bc.ca:
            raise InvalidRequest("refusing to import non-CA certificate")
    imported_issuers: list[str] = []
    imported_keys: list[str] = []
    existing_issuers: list[str] = []
    existing_keys: list[str] = []
    mapping: dict[str, str] = {}
    async with b.write_lock:
        snap = await b.snapshot(req)
        for key in keys:
            pub = crypto.public_key_of_key(key)
            found = next((k for k in snap.keys.values() if crypto.same_public_key(
                crypto.public_key_of_key(k.key), pub)), None)
            if found is not None:
                existing_keys.append(found.entry.id)
                continue
            kid = new_id()
            await store_key(b, req, snap, key, kid, "")
            imported_keys.append(kid)
            b.forget()
            snap = await b.snapshot(req)
        for cert in certs:
            pem = crypto.cert_pem(cert) + "\n"
            same = next((i for i in snap.issuers.values() if i.pem == pem), None)
            if same is not None:
                existing_issuers.append(same.id)
                mapping[same.id] = same.entry.key_id
                continue
            pub = crypto.public_key_of(cert)
            lk = next((k for k in snap.keys.values()
                       if crypto.same_public_key(crypto.public_key_of_key(k.key), pub)), None)
            entry = await store_issuer(b, req, snap, cert, lk.entry.id if lk else "", "", lk.key if lk else None)
            imported_issuers.append(entry.id)
            mapping[entry.id] = entry.key_id
            b.forget()
            snap = await b.snapshot(req)
    for iid in imported_issuers:
        if snap.issuers[iid].key is not None:
            await b.rebuild_crl(req, iid)
    warnings = [] if (snap.urls.issuing_certificates or snap.urls.crl_distribution_points
                      or snap.urls.ocsp_servers) else [AIA_WARNING]
    return Response(data={"existing_issuers": existing_issuers or None, "existing_keys": existing_keys or None,
                          "imported_issuers": imported_issuers or None, "imported_keys": imported_keys or None,
                          "mapping": mapping}, warnings=warnings)


def split_pem(bundle: str) -> list[str]:
    """The PEM blocks of a bundle, in order, each stripped."""
    out, cur = [], []
    for line in bundle.replace("\r\n", "\n").split("\n"):
        line = line.strip()
        if line.startswith("-----BEGIN"):
            cur = [line]
        elif line.startswith("-----END") and cur:
            cur.append(line)
            out.append("\n".join(cur))
            cur = []
        elif cur:
            cur.append(line)
    return out
