"""Issuers: root generation, intermediate CSRs and their signing, importing signed certificates,
the issuer listing, settings and default (keys.py has the keys, ca.py the CA certificate endpoints).

Every write here goes under ``config/`` and drops the mount's decoded cache (state.py).
"""

from __future__ import annotations

import asyncio
import base64
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from strongroom.engines.pki import crypto, subject
from strongroom.engines.pki.roles import load_role
from strongroom.engines.pki.state import LoadedIssuer, Snapshot
from strongroom.engines.pki.store import (
    ISSUER_PREFIX,
    ISSUERS_CONFIG,
    KEY_PREFIX,
    KEYS_CONFIG,
    REVOKED_PREFIX,
    ROLE_PREFIX,
    IssuerEntry,
    KeyEntry,
    list_all,
    new_id,
    put_json,
    serial_key,
)
from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response

if TYPE_CHECKING:
    from strongroom.engines.pki import PkiBackend

AIA_WARNING = ("This mount hasn't configured any authority information access (AIA) fields; this may make it "
               "harder for systems to find missing certificates in the chain or to validate revocation status "
               "of certificates. Consider updating /config/urls or the newly generated issuer with this "
               "information.")
_REF = r"(?P<issuer_ref>\w(?:[\w\-.]*\w)?)"
_ISSUER_UPDATE = {
    "issuer_ref": Field(FieldType.STRING, "Reference to an issuer: its id, its name or default."),
    "issuer_name": Field(FieldType.STRING, "The issuer's name."),
    "leaf_not_after_behavior": Field(FieldType.STRING, "err, truncate or permit.",
                                     allowed_values=("err", "truncate", "permit")),
    "usage": Field(FieldType.COMMA_STRING_SLICE, "Allowed usages of the issuer."),
    "manual_chain": Field(FieldType.COMMA_STRING_SLICE, "Issuer references forming this issuer's chain."),
    "revocation_signature_algorithm": Field(FieldType.STRING, "Signature algorithm of CRLs and OCSP answers."),
    "issuing_certificates": Field(FieldType.COMMA_STRING_SLICE, "AIA issuing certificate URLs."),
    "crl_distribution_points": Field(FieldType.COMMA_STRING_SLICE, "AIA CRL distribution point URLs."),
    "ocsp_servers": Field(FieldType.COMMA_STRING_SLICE, "AIA OCSP server URLs."),
    "enable_aia_url_templating": Field(FieldType.BOOL, "Whether the AIA URLs are templates."),
}
_USAGES = ("read-only", "issuing-certificates", "crl-signing", "ocsp-signing")


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
        Path(r"issuers/?", operations={Op.LIST: list_issuers}, unauthenticated=True, synopsis="List issuers."),
        Path(f"issuer/{_REF}", fields=_ISSUER_UPDATE,
             operations={Op.READ: read_issuer, Op.UPDATE: update_issuer, Op.PATCH: update_issuer,
                         Op.DELETE: delete_issuer}, synopsis="An issuer: read, update, delete."),
        Path(f"issuer/{_REF}/revoke", fields={"issuer_ref": _S}, operations={Op.UPDATE: revoke_issuer},
             synopsis="Revoke an issuer: it stops issuing and goes on its parent's CRL."),
        Path(f"issuer/{_REF}/(?P<fmt>pem|der|json)", fields={"issuer_ref": _S, "fmt": _S},
             operations={Op.READ: read_issuer_cert}, unauthenticated=True, synopsis="An issuer's certificate."),
        Path("root/replace", fields={"default": Field(FieldType.STRING, "The new default issuer.", default="next")},
             operations={Op.UPDATE: replace_root}, synopsis="Make another issuer the default."),
        Path("config/issuers", fields={"default": Field(FieldType.STRING, "The default issuer."),
                                       "default_follows_latest_issuer": Field(FieldType.BOOL, "Follow new issuers.")},
             operations={Op.READ: read_issuers_config, Op.UPDATE: write_issuers_config},
             synopsis="The default issuer."),
    ]


_S = Field(FieldType.STRING)

# -- helpers ------------------------------------------------------------------------------------

def ttl_for(b: PkiBackend, d: FieldData, warnings: list[str]) -> int:
    default, maximum = b.system.lease_ttls()
    ttl = d.get("ttl") or default
    if maximum and ttl > maximum:
        warnings.append(f"TTL \"{crypto.go_duration(ttl)}\" is longer than permitted maxTTL "
                        f"\"{crypto.go_duration(maximum)}\", so maxTTL is being used")
        ttl = maximum
    return int(ttl)


def _check_names(snap: Snapshot, issuer_name: str, key_name: str, exclude: str = "") -> None:
    if issuer_name:
        if issuer_name == "default":
            raise InvalidRequest("reserved name: default")
        if any(i.entry.name == issuer_name and i.id != exclude for i in snap.issuers.values()):
            raise InvalidRequest("issuer name already in use")
    if key_name:
        if key_name == "default":
            raise InvalidRequest("reserved name: default")
        if any(k.entry.name == key_name for k in snap.keys.values()):
            raise InvalidRequest("key name already in use")


async def _new_key(b: PkiBackend, d: FieldData, snap: Snapshot, mode: str) -> tuple[crypto.PrivateKey, str, bool]:
    """(key, key id, is new): the key a generate call uses."""
    if mode == "existing":
        lk = snap.key(d.get("key_ref") or "default")
        return lk.key, lk.entry.id, False
    if mode == "kms":
        raise InvalidRequest("kms managed keys are not supported")
    key_type = d.get("key_type")
    crypto.validate_key(key_type, d.get("key_bits"))
    key = await asyncio.to_thread(crypto.generate_key, key_type, d.get("key_bits"))
    return key, new_id(), True


async def _store_key(b: PkiBackend, req: Request, snap: Snapshot, key: crypto.PrivateKey, key_id: str,
                     name: str) -> None:
    st = b.storage(req)
    entry = KeyEntry(key_id, name, crypto.key_type_of(key), crypto.key_to_pem(key, "pkcs8"))
    await st.put(KEY_PREFIX + key_id, entry.to_json())
    if not snap.default_key or snap.default_key not in snap.keys:
        await put_json(st, KEYS_CONFIG, {"default": key_id})


async def _store_issuer(b: PkiBackend, req: Request, snap: Snapshot, cert: x509.Certificate, key_id: str,
                        name: str, key: crypto.PrivateKey | None) -> IssuerEntry:
    st = b.storage(req)
    entry = IssuerEntry(new_id(), name, key_id, crypto.cert_pem(cert) + "\n",
                        serial_number=crypto.format_serial(cert.serial_number))
    if key is not None:
        entry.revocation_signature_algorithm = crypto.sig_alg_name(key)
    await st.put(ISSUER_PREFIX + entry.id, entry.to_json())
    if (not snap.default_issuer or snap.default_issuer not in snap.issuers
            or snap.default_follows_latest_issuer) and key is not None:
        await put_json(st, ISSUERS_CONFIG, {"default": entry.id,
                                            "default_follows_latest_issuer": snap.default_follows_latest_issuer})
    return entry


# -- root and intermediate --------------------------------------------------------------------

async def generate_root(b: PkiBackend, req: Request, d: FieldData) -> Response:
    mode = d.get("exported")
    async with b.write_lock:
        snap = await b.snapshot(req)
        _check_names(snap, d.get("issuer_name"), d.get("key_name") if mode != "existing" else "")
        if not d.get("common_name"):
            raise InvalidRequest("the 'common_name' field must be set")
        warnings: list[str] = []
        now = b.system.now()
        spec = subject.ca_spec(d, now, ttl_for(b, d, warnings))
        key, key_id, is_new = await _new_key(b, d, snap, mode)
        cert = crypto.build_certificate(spec, crypto.public_key_of_key(key), key, None, crypto.new_serial(),
                                        d.get("signature_bits"))
        if is_new:
            await _store_key(b, req, snap, key, key_id, d.get("key_name"))
        entry = await _store_issuer(b, req, snap, cert, key_id, d.get("issuer_name"), key)
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
        _check_names(snap, "", d.get("key_name") if mode != "existing" else "")
        key, key_id, is_new = await _new_key(b, d, snap, mode)
        spec = subject.ca_spec(d, b.system.now(), 0)
        csr = crypto.build_csr(spec, key)
        if is_new:
            await _store_key(b, req, snap, key, key_id, d.get("key_name"))
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
    blocks = crypto.split_pem(text)
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
            await _store_key(b, req, snap, key, kid, "")
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
            entry = await _store_issuer(b, req, snap, cert, lk.entry.id if lk else "", "", lk.key if lk else None)
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


# -- issuers ------------------------------------------------------------------------------------

async def list_issuers(b: PkiBackend, req: Request, d: FieldData) -> Response:
    snap = await b.snapshot(req)
    ids = sorted(snap.issuers)
    info = {i: {"is_default": i == snap.default_issuer, "issuer_name": snap.issuers[i].entry.name,
                "key_id": snap.issuers[i].entry.key_id, "serial_number": snap.issuers[i].entry.serial_number}
            for i in ids}
    if not ids:
        raise NotFound()  # an empty LIST is a 404, as in OpenBao
    return Response(data={"keys": ids, "key_info": info})


def issuer_body(snap: Snapshot, iss: LoadedIssuer, revoked: bool) -> dict[str, Any]:
    e = iss.entry
    extra: dict[str, Any] = {}
    if e.revoked:
        revoked = True
        extra = {"revocation_time": int(e.revocation_time),
                 "revocation_time_rfc3339": crypto.rfc3339(e.revocation_time)}
    return {**extra,
        "ca_chain": iss.chain, "certificate": iss.pem, "crl_distribution_points": e.crl_distribution_points,
        "delta_crl_distribution_points": [], "issuer_id": e.id, "issuer_name": e.name,
        "issuing_certificates": e.issuing_certificates, "key_id": e.key_id,
        "leaf_not_after_behavior": e.leaf_not_after_behavior, "manual_chain": e.manual_chain or None,
        "ocsp_servers": e.ocsp_servers, "revocation_signature_algorithm": e.revocation_signature_algorithm,
        "revoked": revoked, "usage": e.usage,
    }


async def read_issuer(b: PkiBackend, req: Request, d: FieldData) -> Response:
    snap = await b.snapshot(req)
    iss = snap.issuer(d.get("issuer_ref"))
    return Response(data=issuer_body(snap, iss, await b.is_revoked(req, iss.entry.serial_number)))


async def update_issuer(b: PkiBackend, req: Request, d: FieldData) -> Response:
    async with b.write_lock:
        snap = await b.snapshot(req)
        iss = snap.issuer(d.get("issuer_ref"))
        e = IssuerEntry.from_json(iss.entry.to_json())
        if d.has("issuer_name"):
            _check_names(snap, d.get("issuer_name"), "", exclude=e.id)
            e.name = d.get("issuer_name")
        if d.has("leaf_not_after_behavior"):
            e.leaf_not_after_behavior = d.get("leaf_not_after_behavior")
        if d.has("usage"):
            usage = d.get("usage")
            bad = [u for u in usage if u not in _USAGES]
            if bad:
                raise InvalidRequest(f"unknown usage: {bad[0]}")
            e.usage = ",".join(sorted(usage))
        if d.has("manual_chain"):
            refs = [r for r in d.get("manual_chain") if r]
            e.manual_chain = [e.id if r == "self" else snap.issuer(r).id for r in refs]
            if e.manual_chain and e.manual_chain[0] != e.id:
                raise InvalidRequest("manual_chain must start with the issuer itself (self)")
        if d.has("revocation_signature_algorithm"):
            e.revocation_signature_algorithm = d.get("revocation_signature_algorithm")
        for name in ("issuing_certificates", "crl_distribution_points", "ocsp_servers"):
            if d.has(name):
                setattr(e, name, d.get(name))
        if d.has("enable_aia_url_templating"):
            e.enable_aia_url_templating = d.get("enable_aia_url_templating")
        await b.storage(req).put(ISSUER_PREFIX + e.id, e.to_json())
        b.forget()
    snap = await b.snapshot(req)
    return Response(data=issuer_body(snap, snap.issuers[e.id], await b.is_revoked(req, e.serial_number)))


async def revoke_issuer(b: PkiBackend, req: Request, d: FieldData) -> Response:
    warnings: list[str] = []
    async with b.write_lock:
        snap = await b.snapshot(req)
        iss = snap.issuer(d.get("issuer_ref"))
        if iss.entry.revoked:
            return Response(data=issuer_body(snap, iss, True))
        e = IssuerEntry.from_json(iss.entry.to_json())
        e.revoked, e.revocation_time = True, b.system.now()
        e.usage = ",".join(u for u in e.usage.split(",") if u != "issuing-certificates")
        await b.storage(req).put(ISSUER_PREFIX + e.id, e.to_json())
        b.forget()
        parent = next((p for p in snap.issuers.values()
                       if p.id != iss.id and crypto.verify_signed_by(iss.cert, p.cert)), None)
        if iss.cert.issuer == iss.cert.subject:
            warnings.append("This issuer is a self-signed (potentially root) certificate. This means it may not be "
                            "considered revoked if there is not an external, cross-signed variant of this "
                            "certificate. This issuer's serial number will not appear on its own CRL.")
        if parent is None:
            warnings.append("This issuer lacks another parent issuer within the mount. This means it will not "
                            "appear on any other CRLs and may not be considered revoked by clients. Consider "
                            "adding this issuer to its issuer's CRL as well if it is not self-signed.")
        if snap.default_issuer == iss.id:
            warnings.append("This issuer is currently configured as the default issuer for this mount; operations "
                            "such as certificate issuance may not work until a new default issuer is selected.")
    if parent is not None:  # on the parent's CRL, like any certificate the parent signed
        await put_json(b.storage(req), REVOKED_PREFIX + serial_key(e.serial_number), {
            "serial_number": e.serial_number, "revocation_time": e.revocation_time, "issuer_id": parent.id,
            "certificate": iss.pem_stripped})
        b.revoked_forget()
        await b.rebuild_crl(req, parent.id)
    snap = await b.snapshot(req)
    return Response(data=issuer_body(snap, snap.issuers[e.id], True), warnings=warnings)


async def delete_issuer(b: PkiBackend, req: Request, d: FieldData) -> Response | None:
    async with b.write_lock:
        snap = await b.snapshot(req)
        try:
            iss = snap.issuer(d.get("issuer_ref"))
        except InvalidRequest:
            return None  # deleting what is not there succeeds, as in OpenBao
        st = b.storage(req)
        await st.delete(ISSUER_PREFIX + iss.id)
        warnings = []
        if snap.default_issuer == iss.id:
            await put_json(st, ISSUERS_CONFIG, {"default": "", "default_follows_latest_issuer":
                                                snap.default_follows_latest_issuer})
            warnings.append(f"Deleted issuer {iss.id} (via issuer_ref {d.get('issuer_ref')}); this was configured as "
                            "the default issuer. Operations without an explicit issuer will not work until a new "
                            "default is configured.")
        await b.delete_crl(req, iss.id)
        b.forget()
        # OpenBao's count of roles left pointing at what was deleted (an admin operation: listing
        # the roles here is fine).
        refs = [r for r in (iss.entry.name, iss.id) if r] + (["default"] if snap.default_issuer == iss.id else [])
        counts = dict.fromkeys(refs, 0)
        for name in await list_all(st, ROLE_PREFIX):
            role = await load_role(b, req, name)
            if role is not None and role["issuer_ref"] in counts:
                counts[role["issuer_ref"]] += 1
        warnings += [f"{n} roles reference {ref}" for ref, n in counts.items() if n]
    return Response(warnings=warnings) if warnings else None


async def read_issuer_cert(b: PkiBackend, req: Request, d: FieldData) -> Response:
    snap = await b.snapshot(req)
    iss = snap.issuer(d.get("issuer_ref"))
    fmt = d.get("fmt")
    if fmt == "der":
        return Response(raw_body=iss.cert.public_bytes(serialization.Encoding.DER),
                        raw_content_type="application/pkix-cert", raw_status=200)
    if fmt == "pem":
        return Response(raw_body=iss.pem.encode(), raw_content_type="application/pem-certificate-chain",
                        raw_status=200)
    return Response(data={"ca_chain": iss.chain, "certificate": iss.pem, "issuer_id": iss.id,
                          "issuer_name": iss.entry.name})


async def read_issuers_config(b: PkiBackend, req: Request, d: FieldData) -> Response:
    snap = await b.snapshot(req)
    return Response(data={"default": snap.default_issuer,
                          "default_follows_latest_issuer": snap.default_follows_latest_issuer})


async def write_issuers_config(b: PkiBackend, req: Request, d: FieldData) -> Response:
    follows = d.get("default_follows_latest_issuer") if d.has("default_follows_latest_issuer") else None
    return await _set_default(b, req, d.get("default"), follows)


async def replace_root(b: PkiBackend, req: Request, d: FieldData) -> Response:
    return await _set_default(b, req, d.get("default"), None)


async def _set_default(b: PkiBackend, req: Request, ref: str | None, follows_in: bool | None) -> Response:
    async with b.write_lock:
        snap = await b.snapshot(req)
        default = snap.default_issuer
        if ref is not None:
            if ref in ("", "default"):
                raise InvalidRequest("Invalid issuer specification; must be non-empty and can't be 'default'.")
            default = snap.issuer(ref).id
        follows = snap.default_follows_latest_issuer if follows_in is None else follows_in
        await put_json(b.storage(req), ISSUERS_CONFIG, {"default": default, "default_follows_latest_issuer": follows})
        b.forget()
    return Response(data={"default": default, "default_follows_latest_issuer": follows})
