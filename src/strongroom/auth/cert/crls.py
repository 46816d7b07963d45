"""crls/<name>: certificate revocation lists checked at every login (Vault's path_crls.go).

A CRL is registered from its bytes (``crl``: PEM or DER) or from a distribution point (``url``,
fetched now and again by the periodic task once the CRL's nextUpdate has passed). Only the revoked
serial numbers are kept. A login whose verified chain holds a serial any registered CRL revokes
matches no role (Vault's rule: serials, whichever CRL lists them; the CRL's signature and dates are
not judged, as in Vault; an outdated CRL is the operator's to delete).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import urllib.parse
from typing import TYPE_CHECKING

import httpx
from cryptography import x509

from strongroom.auth.cert.store import CRL_PREFIX, CrlEntry, get_crl, put_crl, storage
from strongroom.errors import InvalidRequest
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response, name_regex
from strongroom.logical import Storage

if TYPE_CHECKING:
    from strongroom.auth.cert import CertBackend

FETCH_TIMEOUT = 30.0
MAX_CRL_BYTES = 64 * 1024 * 1024


class CrlFetchError(Exception):
    pass


def paths() -> list[Path[CertBackend]]:
    return [
        Path("crls/?", fields={"after": Field(FieldType.STRING, "Optional entry to list begin listing after."),
                               "limit": Field(FieldType.INT, "Optional number of entries to return.")},
             operations={Op.LIST: list_crls}, synopsis="Manage Certificate Revocation Lists checked during "
             "authentication."),
        Path(f"crls/{name_regex('name')}", fields={
            "name": Field(FieldType.STRING, "The name of the certificate"),
            "crl": Field(FieldType.STRING, "The public CRL that should be trusted to attest to certificates' "
                         "validity statuses. May be DER or PEM encoded."),
            "url": Field(FieldType.STRING, "The URL of a CRL distribution point. Only one of 'crl' or 'url' "
                         "parameters should be specified."),
        }, operations={Op.READ: read_crl, Op.UPDATE: write_crl, Op.CREATE: write_crl, Op.DELETE: delete_crl},
             synopsis="Manage Certificate Revocation Lists checked during authentication."),
    ]


def parse_crl(raw: bytes) -> x509.CertificateRevocationList:
    """A CRL from PEM or DER; ValueError when it is neither."""
    if b"-----BEGIN" in raw:
        return x509.load_pem_x509_crl(raw.strip())
    return x509.load_der_x509_crl(raw)


def _crl_field(text: str) -> x509.CertificateRevocationList:
    """The ``crl`` field: PEM; or DER, as the raw bytes in the string or base64."""
    if "-----BEGIN" in text:
        return parse_crl(text.encode())
    try:
        return parse_crl(text.encode("latin-1"))
    except (ValueError, UnicodeEncodeError):
        pass
    try:
        return parse_crl(base64.b64decode(text.strip(), validate=True))
    except (ValueError, binascii.Error):
        raise ValueError("neither a PEM nor a DER CRL") from None


def serials_of(crl: x509.CertificateRevocationList) -> list[str]:
    return [str(r.serial_number) for r in crl]


def _valid_until(crl: x509.CertificateRevocationList) -> str:
    nxt = crl.next_update_utc
    return nxt.isoformat() if nxt is not None else ""


async def fetch_crl(url: str) -> x509.CertificateRevocationList:
    try:
        async with httpx.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=True, trust_env=False) as c:
            r = await c.get(url)
    except httpx.HTTPError as e:
        raise CrlFetchError(f"error fetching CRL from {url}: {str(e) or type(e).__name__}") from None
    if r.status_code != 200:
        raise CrlFetchError(f"unexpected response code {r.status_code} fetching CRL from {url}")
    if len(r.content) > MAX_CRL_BYTES:
        raise CrlFetchError(f"CRL fetched from {url} is too large")
    try:
        return parse_crl(r.content)
    except ValueError as e:
        raise CrlFetchError(f"failed to parse CRL fetched from {url}: {e}") from None


async def list_crls(b: CertBackend, req: Request, d: FieldData) -> Response | None:
    keys = sorted(await storage(req).list(CRL_PREFIX))
    after, limit = d.get("after") or "", d.get("limit") or 0
    if after:
        keys = [k for k in keys if k > after]
    if limit and limit > 0:
        keys = keys[:limit]
    return Response(data={"keys": keys})


async def read_crl(b: CertBackend, req: Request, d: FieldData) -> Response | None:
    name = d.get("name").lower()
    entry = await get_crl(storage(req), name)
    if entry is None:
        raise InvalidRequest(f"no such CRL {name}")
    data: dict[str, object] = {}
    if entry.serials:
        data["serials"] = {s: {} for s in entry.serials}
    if entry.url:
        data["cdp"] = {"url": entry.url, "valid_until": entry.valid_until or "0001-01-01T00:00:00Z"}
    return Response(data=data)


async def write_crl(b: CertBackend, req: Request, d: FieldData) -> Response | None:
    name = d.get("name").lower()
    if not name:
        raise InvalidRequest("'name' parameter cannot be empty")
    if d.has("crl"):
        try:
            crl = _crl_field(d.get("crl"))
        except ValueError as e:
            raise InvalidRequest(f"failed to parse CRL: {e}") from None
        entry = CrlEntry(serials=serials_of(crl))
    elif d.has("url"):
        url: str = d.get("url")
        if not url:
            raise InvalidRequest("empty CRL url")
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise InvalidRequest(f"invalid CRL url: {url}")
        try:
            crl = await fetch_crl(url)
        except CrlFetchError as e:
            raise InvalidRequest(str(e)) from None
        entry = CrlEntry(serials=serials_of(crl), url=url, valid_until=_valid_until(crl))
    else:
        raise InvalidRequest("one of 'crl' or 'url' must be provided")
    await put_crl(storage(req), name, entry)
    b.forget_crls()
    return None


async def delete_crl(b: CertBackend, req: Request, d: FieldData) -> Response | None:
    name = d.get("name").lower()
    s = storage(req)
    if await get_crl(s, name) is None:
        raise InvalidRequest(f"no such CRL {name}")
    await s.delete(CRL_PREFIX + name)
    b.forget_crls()
    return None


async def refresh_due(b: CertBackend, s: Storage, now: datetime.datetime) -> None:
    """Refetch every URL-registered CRL whose nextUpdate has passed (Vault's periodic updateCRLs).
    A failed fetch keeps the old serials and is logged; the next run tries again."""
    for name in await s.list(CRL_PREFIX):
        entry = await get_crl(s, name)
        if entry is None or not entry.url or not entry.valid_until:
            continue
        if datetime.datetime.fromisoformat(entry.valid_until) > now:
            continue
        try:
            crl = await fetch_crl(entry.url)
        except CrlFetchError as e:
            b.system.logger.warning("cert auth: refreshing CRL %s failed: %s", name, e)
            continue
        await put_crl(s, name, CrlEntry(serials=serials_of(crl), url=entry.url, valid_until=_valid_until(crl)))
        b.forget_crls()
