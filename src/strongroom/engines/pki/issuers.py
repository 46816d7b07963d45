"""Issuers once they exist: the listing, an issuer's settings, certificate, revocation and deletion, and the
default issuer (config/issuers, root/replace). new_issuers.py generates, signs and imports them.

Every write here goes under ``config/`` and drops the mount's decoded cache (state.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization

from strongroom.engines.pki import crypto
from strongroom.engines.pki.provision import check_names
from strongroom.engines.pki.roles import load_role
from strongroom.engines.pki.state import LoadedIssuer, Snapshot
from strongroom.engines.pki.store import (
    ISSUER_PREFIX,
    ISSUERS_CONFIG,
    REVOKED_PREFIX,
    ROLE_PREFIX,
    IssuerEntry,
    list_all,
    put_json,
    serial_key,
)
from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response

if TYPE_CHECKING:
    from strongroom.engines.pki import PkiBackend

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
    return [
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
            check_names(snap, d.get("issuer_name"), "", exclude=e.id)
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
