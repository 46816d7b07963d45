"""Tidy: drop certificates (and revocations) expired for longer than a safety buffer, on request
(``tidy``), or by the periodic pass when ``config/auto-tidy`` enables it; ``tidy-status`` reports
the last run. Storage: ``config/auto-tidy`` (the settings), ``tidy/last-auto`` (when auto-tidy last
finished, so a restart does not tidy again early)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from strongroom.engines.pki import crypto
from strongroom.engines.pki.acme import acme_tidy
from strongroom.engines.pki.store import CERT_PREFIX, REVOKED_PREFIX, get_json, list_all, put_json
from strongroom.errors import InvalidRequest
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response
from strongroom.logical import Storage

if TYPE_CHECKING:
    from strongroom.engines.pki import PkiBackend

AUTO_TIDY_CONFIG = "config/auto-tidy"
AUTO_TIDY_LAST = "tidy/last-auto"
TIDY_STARTED = ("Tidy operation successfully started. Any information from the operation will be printed to "
                "OpenBao's server logs.")
TIDY_NOTHING = ("Manual tidy requested but no tidy operations were set. Enable at least one tidy operation to be "
                "run (tidy_cert_store / tidy_revoked_certs / tidy_invalid_certs / "
                "tidy_revoked_cert_issuer_associations / tidy_expired_issuers / tidy_move_legacy_ca_bundle / "
                "tidy_acme).")
_B, _D = FieldType.BOOL, FieldType.DURATION
_TIDY_FIELDS: dict[str, Field] = {
    "tidy_cert_store": Field(_B, "Remove expired certificates from the store."),
    "tidy_revoked_certs": Field(_B, "Remove expired certificates from the CRLs."),
    "tidy_revoked_cert_issuer_associations": Field(_B, "Associate revoked certs with issuers (a no-op here)."),
    "safety_buffer": Field(_D, "How long past expiry before removal.", default=259200),
    "tidy_acme": Field(_B, "Remove ACME orders that ended (acme/tidy.py)."),
    "acme_account_safety_buffer": Field(_D, "How long past its end an ACME order is kept.", default=2592000),
}
# config/auto-tidy as OpenBao reads it back: name -> default. What acts here: enabled, interval_duration,
# tidy_cert_store, tidy_revoked_certs, safety_buffer, tidy_acme and acme_account_safety_buffer.
AUTO_TIDY_DEFAULTS: dict[str, Any] = {
    "enabled": False, "interval_duration": 43200, "tidy_cert_store": False, "tidy_revoked_certs": False,
    "safety_buffer": 259200, "acme_account_safety_buffer": 2592000, "issuer_safety_buffer": 31536000,
    "maintain_stored_certificate_counts": False, "page_size": 1000, "pause_duration": "0s",
    "publish_stored_certificate_count_metrics": False, "revoked_safety_buffer": 259200, "tidy_acme": False,
    "tidy_expired_issuers": False, "tidy_invalid_certs": False, "tidy_move_legacy_ca_bundle": False,
    "tidy_revoked_cert_issuer_associations": False,
}
_AUTO_FIELDS: dict[str, Field] = {
    name: Field(_D if name in ("interval_duration", "safety_buffer", "acme_account_safety_buffer",
                               "issuer_safety_buffer", "revoked_safety_buffer")
                else FieldType.INT if name == "page_size" else FieldType.STRING if name == "pause_duration"
                else _B, name.replace("_", " ") + ".")
    for name in AUTO_TIDY_DEFAULTS
}


def paths() -> list[Path[PkiBackend]]:
    return [
        Path("tidy", fields=_TIDY_FIELDS, operations={Op.UPDATE: tidy_handler}, synopsis="Remove expired certificates."),
        Path("tidy-status", operations={Op.READ: tidy_status}, synopsis="The last tidy's outcome."),
        Path("config/auto-tidy", fields=_AUTO_FIELDS,
             operations={Op.READ: read_auto_tidy, Op.UPDATE: write_auto_tidy}, synopsis="Periodic tidy."),
    ]


def initial_status() -> dict[str, Any]:
    return {"state": "Inactive", "error": None, "message": None, "time_started": None, "time_finished": None,
            "tidy_cert_store": False, "tidy_revoked_certs": False, "safety_buffer": 259200,
            "cert_store_deleted_count": 0, "revoked_cert_deleted_count": 0, "last_auto_tidy_finished": None,
            "tidy_acme": False, "acme_orders_deleted_count": 0,
            "current_cert_store_count": None, "current_revoked_cert_count": None}


async def tidy_handler(b: PkiBackend, req: Request, d: FieldData) -> Response:
    if not (d.get("tidy_cert_store") or d.get("tidy_revoked_certs") or d.get("tidy_acme")
            or d.get("tidy_revoked_cert_issuer_associations")):
        return Response(warnings=[TIDY_NOTHING], status=202)
    await run(b, req, cert_store=d.get("tidy_cert_store"), revoked=d.get("tidy_revoked_certs"),
              safety_buffer=d.get("safety_buffer"),
              acme_buffer=d.get("acme_account_safety_buffer") if d.get("tidy_acme") else None)
    return Response(warnings=[TIDY_STARTED], status=202)


async def tidy_status(b: PkiBackend, req: Request, d: FieldData) -> Response:
    return Response(data=dict(b.tidy_status))


async def run(b: PkiBackend, req: Request | None, *, cert_store: bool, revoked: bool, safety_buffer: int,
              acme_buffer: int | None = None) -> None:
    """One tidy pass (inline: OpenBao answers 202 and works in the background). ``acme_buffer``:
    also delete ACME orders that ended that long ago (tidy_acme)."""
    storage: Storage = b.storage(req)
    now = b.system.now()
    status = b.tidy_status
    status.update(state="Running", tidy_cert_store=cert_store, tidy_revoked_certs=revoked,
                  safety_buffer=safety_buffer, time_started=crypto.rfc3339(now), time_finished=None,
                  cert_store_deleted_count=0, revoked_cert_deleted_count=0, error=None,
                  tidy_acme=acme_buffer is not None, acme_orders_deleted_count=0)
    touched: set[str] = set()

    def expired(pem: str) -> bool:
        return crypto.load_cert(pem).not_valid_after_utc.timestamp() + safety_buffer < now

    try:
        if cert_store:
            for name in await list_all(storage, CERT_PREFIX):
                rec = await get_json(storage, CERT_PREFIX + name)
                if rec is None or not expired(str(rec["certificate"])):
                    continue
                if not revoked and await storage.get(REVOKED_PREFIX + name) is not None:
                    continue  # its revocation stays, and so does the certificate it names
                await storage.delete(CERT_PREFIX + name)
                status["cert_store_deleted_count"] += 1
        if revoked:
            for name in await list_all(storage, REVOKED_PREFIX):
                rec = await get_json(storage, REVOKED_PREFIX + name)
                if rec is None or not expired(str(rec["certificate"])):
                    continue
                await storage.delete(REVOKED_PREFIX + name)
                touched.add(str(rec.get("issuer_id", "")))
                status["revoked_cert_deleted_count"] += 1
        if acme_buffer is not None:
            status["acme_orders_deleted_count"] = await acme_tidy(storage, now, acme_buffer)
    except Exception as e:
        status.update(state="Error", error=str(e), time_finished=crypto.rfc3339(b.system.now()))
        raise
    finally:
        if touched:
            b.revoked_forget()
            for iid in touched:
                await b.rebuild_crl(req, iid)
    status.update(state="Finished", time_finished=crypto.rfc3339(b.system.now()))


async def _auto_config(storage: Storage) -> dict[str, Any]:
    return {**AUTO_TIDY_DEFAULTS, **(await get_json(storage, AUTO_TIDY_CONFIG) or {})}


async def read_auto_tidy(b: PkiBackend, req: Request, d: FieldData) -> Response:
    return Response(data=await _auto_config(b.storage(req)))


async def write_auto_tidy(b: PkiBackend, req: Request, d: FieldData) -> Response:
    cfg = await _auto_config(b.storage(req))
    for name in AUTO_TIDY_DEFAULTS:
        if d.has(name):
            cfg[name] = d.get(name)
    if cfg["enabled"] and not (cfg["tidy_cert_store"] or cfg["tidy_revoked_certs"] or cfg["tidy_acme"]):
        raise InvalidRequest("Auto-tidy enabled but no tidy operations were requested. Enable at least one tidy "
                             "operation to be run (tidy_cert_store / tidy_revoked_certs).")
    if cfg["interval_duration"] <= 0:
        raise InvalidRequest("interval_duration must be positive")
    await put_json(b.storage(req), AUTO_TIDY_CONFIG, cfg)
    return Response(data=cfg)


async def auto_tidy(b: PkiBackend, now: float) -> None:
    """From the mount's periodic function: tidy when auto-tidy is on and its interval has passed."""
    storage = b.system.storage
    raw = await storage.get(AUTO_TIDY_CONFIG)
    if raw is None:
        return
    cfg = await _auto_config(storage)
    if not cfg["enabled"]:
        return
    last = await get_json(storage, AUTO_TIDY_LAST) or {}
    if now - float(last.get("finished", 0)) < cfg["interval_duration"]:
        return
    await run(b, None, cert_store=cfg["tidy_cert_store"], revoked=cfg["tidy_revoked_certs"],
              safety_buffer=cfg["safety_buffer"],
              acme_buffer=cfg["acme_account_safety_buffer"] if cfg["tidy_acme"] else None)
    finished = b.system.now()
    await put_json(storage, AUTO_TIDY_LAST, {"finished": finished})
    b.tidy_status["last_auto_tidy_finished"] = crypto.rfc3339(finished)
