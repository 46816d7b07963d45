"""Revocation and the certificate store: revoke, cert/<serial>, LIST certs, the CRLs (DER and
PEM, per issuer, rebuilt on every revocation and by the periodic pass before they expire),
config/crl, config/urls and config/cluster."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from strongroom.durations import parse_duration
from strongroom.engines.pki import crypto
from strongroom.engines.pki.store import (
    CERT_PREFIX,
    CLUSTER_CONFIG,
    CRL_CONFIG,
    REVOKED_PREFIX,
    URLS_CONFIG,
    CRLConfig,
    URLConfig,
    get_json,
    list_all,
    put_json,
    serial_key,
)
from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response

if TYPE_CHECKING:
    from strongroom.engines.pki import PkiBackend

_S = Field(FieldType.STRING)
_REF = r"issuer/(?P<issuer_ref>\w(?:[\w\-.]*\w)?)/"
_CRL_FIELDS = {
    "expiry": Field(FieldType.STRING, "How long a CRL is valid."),
    "disable": Field(FieldType.BOOL, "Serve an empty CRL."),
    "ocsp_disable": Field(FieldType.BOOL, "Disable the OCSP responder."),
    "ocsp_expiry": Field(FieldType.STRING, "How long an OCSP answer is valid."),
    "auto_rebuild": Field(FieldType.BOOL, "Rebuild CRLs before they expire."),
    "auto_rebuild_grace_period": Field(FieldType.STRING, "How long before expiry to rebuild."),
    "enable_delta": Field(FieldType.BOOL, "Delta CRLs (not supported)."),
    "delta_rebuild_interval": Field(FieldType.STRING, "Delta CRL interval."),
    "allow_expired_cert_revocation": Field(FieldType.BOOL, "Allow revoking expired certificates."),
}
_URL_FIELDS = {
    "issuing_certificates": Field(FieldType.COMMA_STRING_SLICE, "URLs of the issuing certificate."),
    "crl_distribution_points": Field(FieldType.COMMA_STRING_SLICE, "URLs of the CRL."),
    "ocsp_servers": Field(FieldType.COMMA_STRING_SLICE, "URLs of the OCSP responder."),
    "enable_templating": Field(FieldType.BOOL, "Whether the URLs are templates ({{cluster_path}}, {{issuer_id}})."),
}


def paths() -> list[Path[PkiBackend]]:
    return [
        Path("revoke", fields={"serial_number": _S, "certificate": _S}, operations={Op.UPDATE: revoke},
             synopsis="Revoke a certificate by serial number or PEM."),
        Path(r"certs/?", operations={Op.LIST: list_certs}, synopsis="List issued certificates by serial."),
        Path(r"certs/revoked/?", operations={Op.LIST: list_revoked}, synopsis="List revoked certificates."),
        Path(r"cert/(?P<which>crl|delta-crl)", fields={"which": _S}, operations={Op.READ: read_cert_crl},
             unauthenticated=True, synopsis="The CRL or delta CRL (JSON)."),
        Path(r"cert/ca", operations={Op.READ: read_cert_ca}, unauthenticated=True,
             synopsis="The default issuer's certificate (JSON)."),
        Path(r"cert/(?P<serial>[0-9A-Fa-f:\-]+)(?P<raw>/raw(?:/pem)?)?", fields={"serial": _S, "raw": _S},
             operations={Op.READ: read_cert}, unauthenticated=True, synopsis="A certificate by serial."),
        Path(r"(?:(?:" + _REF + r")?crl(?P<delta>/delta)?(?P<pem>/pem|/der)?)",
             fields={"pem": _S, "issuer_ref": _S, "delta": _S},
             operations={Op.READ: read_crl}, unauthenticated=True, synopsis="The CRL, DER or PEM."),
        Path(r"crl/rotate(?:-delta)?", operations={Op.READ: rotate_crl}, synopsis="Rebuild the CRLs now."),
        Path("config/crl", fields=_CRL_FIELDS, operations={Op.READ: read_crl_config, Op.UPDATE: write_crl_config},
             synopsis="CRL settings."),
        Path("config/urls", fields=_URL_FIELDS, operations={Op.READ: read_urls, Op.UPDATE: write_urls},
             synopsis="AIA URLs put into issued certificates."),
        Path("config/cluster", fields={"path": _S, "aia_path": _S},
             operations={Op.READ: read_cluster, Op.UPDATE: write_cluster}, synopsis="This mount's URL."),
    ]


# -- revocation --------------------------------------------------------------------------------

async def revoke(b: PkiBackend, req: Request, d: FieldData) -> Response:
    serial_in, pem = d.get("serial_number"), d.get("certificate")
    if serial_in and pem:
        raise InvalidRequest("Must provide either the certificate or the serial to revoke; not both.")
    if not serial_in and not pem:
        raise InvalidRequest("The serial number or certificate to revoke must be provided.")
    snap = await b.snapshot(req)
    st = b.storage(req)
    if pem:
        cert = crypto.load_cert(pem)
        serial = crypto.format_serial(cert.serial_number)
        entry = await get_json(st, CERT_PREFIX + serial_key(serial))
        if entry is None:
            issuer = next((i for i in snap.issuers.values() if crypto.verify_signed_by(cert, i.cert)), None)
            if issuer is None:
                raise InvalidRequest("unable to verify signature on presented cert from any present issuer "
                                     "in this mount; certificates from previous CAs will need to have their "
                                     "issuing CA and key re-imported if revocation is necessary")
            entry = {"certificate": crypto.cert_pem(cert), "issuer_id": issuer.id}
            await put_json(st, CERT_PREFIX + serial_key(serial), entry)
    else:
        serial = crypto.parse_serial(serial_in)
        entry = await get_json(st, CERT_PREFIX + serial_key(serial))
        if entry is None:
            raise InvalidRequest(f"certificate with serial {serial} not found.")
    return Response(data=await revoke_entry(b, req, serial, entry))


async def revoke_entry(b: PkiBackend, req: Request, serial: str, entry: dict[str, Any]) -> dict[str, Any]:
    """Revoke the stored certificate ``entry`` (idempotent) and rebuild its issuer's CRL."""
    snap = await b.snapshot(req)
    for iss in snap.issuers.values():
        if iss.entry.serial_number == serial and iss.cert.issuer == iss.cert.subject:
            raise InvalidRequest(f"adding issuer (id: {iss.id}) to its own CRL is not allowed")
    st = b.storage(req)
    async with b.revoke_lock:
        existing = await get_json(st, REVOKED_PREFIX + serial_key(serial))
        if existing is not None:
            t = float(existing["revocation_time"])
            return {"revocation_time": int(t), "revocation_time_rfc3339": crypto.rfc3339(t), "state": "revoked"}
        cert = crypto.load_cert(entry["certificate"])
        now = b.system.now()
        crl_cfg = snap.crl
        if cert.not_valid_after_utc.timestamp() < now and not crl_cfg.allow_expired_cert_revocation:
            return {"revocation_time": 0, "revocation_time_rfc3339": "", "state": "expired"}
        issuer_id = str(entry.get("issuer_id", ""))
        rec = {"serial_number": serial, "revocation_time": now, "issuer_id": issuer_id,
               "certificate": entry["certificate"]}
        await put_json(st, REVOKED_PREFIX + serial_key(serial), rec)
        b.revoked_forget()
    if issuer_id in snap.issuers:
        await b.rebuild_crl(req, issuer_id)
    return {"revocation_time": int(now), "revocation_time_rfc3339": crypto.rfc3339(now), "state": "revoked"}


# -- certificate store --------------------------------------------------------------------------

async def list_certs(b: PkiBackend, req: Request, d: FieldData) -> Response:
    keys = sorted(k.replace("-", ":") for k in await list_all(b.storage(req), CERT_PREFIX))
    if not keys:
        raise NotFound()  # an empty LIST is a 404, as in OpenBao
    return Response(data={"keys": keys})


async def list_revoked(b: PkiBackend, req: Request, d: FieldData) -> Response:
    keys = sorted(k.replace("-", ":") for k in await list_all(b.storage(req), REVOKED_PREFIX))
    if not keys:
        raise NotFound()  # an empty LIST is a 404, as in OpenBao
    return Response(data={"keys": keys})


async def read_cert(b: PkiBackend, req: Request, d: FieldData) -> Response:
    serial = crypto.parse_serial(d.get("serial"))
    st = b.storage(req)
    entry = await get_json(st, CERT_PREFIX + serial_key(serial))
    if entry is None:
        raise NotFound()
    pem = str(entry["certificate"]).strip()
    raw = d.get("raw")
    if raw == "/raw":
        der = crypto.load_cert(pem).public_bytes(serialization.Encoding.DER)
        return Response(raw_body=der, raw_content_type="application/pkix-cert", raw_status=200)
    if raw == "/raw/pem":
        return Response(raw_body=pem.encode() + b"\n", raw_content_type="application/pem-certificate-chain",
                        raw_status=200)
    data: dict[str, Any] = {"certificate": pem, "revocation_time": 0, "revocation_time_rfc3339": ""}
    revoked = await get_json(st, REVOKED_PREFIX + serial_key(serial))
    if revoked is not None:
        t = float(revoked["revocation_time"])
        data.update(issuer_id=revoked.get("issuer_id", ""), revocation_time=int(t),
                    revocation_time_rfc3339=crypto.rfc3339(t))
    return Response(data=data)


# -- CRLs ---------------------------------------------------------------------------------------

async def read_crl(b: PkiBackend, req: Request, d: FieldData) -> Response:
    snap = await b.snapshot(req)
    if not snap.issuers:
        return Response(raw_body=b"", raw_content_type="application/pkix-crl", raw_status=204)
    iss = snap.issuer(d.get("issuer_ref") or "default")
    der = await b.crl_der(req, iss.id, delta=bool(d.get("delta")))
    if d.get("issuer_ref") and not d.get("pem"):  # issuer/REF/crl is JSON, as in OpenBao
        pem_text = x509.load_der_x509_crl(der).public_bytes(serialization.Encoding.PEM).decode()
        return Response(data={"crl": pem_text})
    if d.get("pem") == "/pem":
        pem = x509.load_der_x509_crl(der).public_bytes(serialization.Encoding.PEM)
        return Response(raw_body=pem.strip(), raw_content_type="application/x-pem-file", raw_status=200)
    return Response(raw_body=der, raw_content_type="application/pkix-crl", raw_status=200)


async def read_cert_crl(b: PkiBackend, req: Request, d: FieldData) -> Response:
    snap = await b.snapshot(req)
    der = await b.crl_der(req, snap.issuer("default").id, delta=d.get("which") == "delta-crl")
    pem = x509.load_der_x509_crl(der).public_bytes(serialization.Encoding.PEM).decode().strip()
    return Response(data={"certificate": pem, "revocation_time": 0, "revocation_time_rfc3339": ""})


async def read_cert_ca(b: PkiBackend, req: Request, d: FieldData) -> Response:
    iss = (await b.snapshot(req)).issuer("default")
    return Response(data={"certificate": iss.pem_stripped, "revocation_time": 0, "revocation_time_rfc3339": ""})


async def rotate_crl(b: PkiBackend, req: Request, d: FieldData) -> Response:
    snap = await b.snapshot(req)
    for iid, iss in snap.issuers.items():
        if iss.key is not None:
            await b.rebuild_crl(req, iid)
    return Response(data={"success": True})


def crl_config_body(cfg: CRLConfig) -> dict[str, Any]:
    return {"allow_expired_cert_revocation": cfg.allow_expired_cert_revocation, "auto_rebuild": cfg.auto_rebuild,
            "auto_rebuild_grace_period": cfg.auto_rebuild_grace_period,
            "delta_rebuild_interval": cfg.delta_rebuild_interval, "disable": cfg.disable,
            "enable_delta": cfg.enable_delta, "expiry": cfg.expiry, "ocsp_disable": cfg.ocsp_disable,
            "ocsp_expiry": cfg.ocsp_expiry}


async def read_crl_config(b: PkiBackend, req: Request, d: FieldData) -> Response:
    return Response(data=crl_config_body((await b.snapshot(req)).crl))


async def write_crl_config(b: PkiBackend, req: Request, d: FieldData) -> Response:
    cfg = CRLConfig.from_json((await b.snapshot(req)).crl.to_json())
    for name in _CRL_FIELDS:
        if d.has(name):
            value = d.get(name)
            if name in ("expiry", "ocsp_expiry", "auto_rebuild_grace_period", "delta_rebuild_interval"):
                try:
                    parse_duration(value)
                except (ValueError, InvalidRequest):
                    raise InvalidRequest(f"given {name} could not be decoded: {value}") from None
            setattr(cfg, name, value)
    if parse_duration(cfg.auto_rebuild_grace_period) >= parse_duration(cfg.expiry) and cfg.auto_rebuild:
        raise InvalidRequest("CRL auto-rebuilding grace period must be less than the CRL expiry")
    await b.storage(req).put(CRL_CONFIG, cfg.to_json())
    b.forget()
    await rotate_crl(b, req, d)
    return Response(data=crl_config_body(cfg))


async def read_urls(b: PkiBackend, req: Request, d: FieldData) -> Response:
    u = (await b.snapshot(req)).urls
    return Response(data={"crl_distribution_points": u.crl_distribution_points, "delta_crl_distribution_points": [],
                          "enable_templating": u.enable_templating, "issuing_certificates": u.issuing_certificates,
                          "ocsp_servers": u.ocsp_servers})


async def write_urls(b: PkiBackend, req: Request, d: FieldData) -> Response:
    u = URLConfig.from_json((await b.snapshot(req)).urls.to_json())
    for name in _URL_FIELDS:
        if d.has(name):
            setattr(u, name, d.get(name))
    for url in [*u.issuing_certificates, *u.crl_distribution_points, *u.ocsp_servers]:
        if "{{" in url and not u.enable_templating:
            raise InvalidRequest(f"invalid URL: {url}: templating is disabled (enable_templating=false)")
        if "://" not in url and "{{" not in url:
            raise InvalidRequest(f"invalid URL: {url}")
    await b.storage(req).put(URLS_CONFIG, u.to_json())
    b.forget()
    return await read_urls(b, req, d)


async def read_cluster(b: PkiBackend, req: Request, d: FieldData) -> Response:
    snap = await b.snapshot(req)
    return Response(data={"aia_path": snap.cluster_aia_path, "path": snap.cluster_path})


async def write_cluster(b: PkiBackend, req: Request, d: FieldData) -> Response:
    snap = await b.snapshot(req)
    path = d.get("path") if d.has("path") else snap.cluster_path
    aia = d.get("aia_path") if d.has("aia_path") else snap.cluster_aia_path
    for url in (path, aia):
        if url and "://" not in url:
            raise InvalidRequest(f"invalid URL: {url}")
    await put_json(b.storage(req), CLUSTER_CONFIG, {"path": path, "aia_path": aia})
    b.forget()
    return Response(data={"aia_path": aia, "path": path})
