"""The CA certificate endpoints (ca, ca/pem, ca_chain, cert/ca_chain: no token needed, as in
OpenBao) and DELETE root (every issuer and key)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization

from strongroom.engines.pki.store import ISSUER_PREFIX, ISSUERS_CONFIG, KEY_PREFIX, KEYS_CONFIG
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response

if TYPE_CHECKING:
    from strongroom.engines.pki import PkiBackend

_S = Field(FieldType.STRING)


def paths() -> list[Path[PkiBackend]]:
    return [
        Path(r"ca(?P<pem>/pem)?", fields={"pem": _S}, operations={Op.READ: read_ca}, unauthenticated=True,
             synopsis="The default issuer's certificate (DER or PEM)."),
        Path(r"ca_chain", operations={Op.READ: read_ca_chain}, unauthenticated=True, synopsis="The CA chain."),
        Path(r"cert/ca_chain", operations={Op.READ: read_cert_ca_chain}, unauthenticated=True,
             synopsis="The CA chain (JSON)."),
        Path("root", operations={Op.DELETE: delete_root}, synopsis="Delete every issuer and key."),
    ]


# -- CA certificate endpoints ------------------------------------------------------------------

async def read_ca(b: PkiBackend, req: Request, d: FieldData) -> Response:
    snap = await b.snapshot(req)
    if not snap.default_issuer:
        return Response(raw_body=b"", raw_content_type="application/pkix-cert", raw_status=204)
    iss = snap.issuer("default")
    if d.get("pem"):
        return Response(raw_body=iss.pem.strip().encode(), raw_content_type="application/pem-certificate-chain",
                        raw_status=200)
    return Response(raw_body=iss.cert.public_bytes(serialization.Encoding.DER),
                    raw_content_type="application/pkix-cert", raw_status=200)


async def read_ca_chain(b: PkiBackend, req: Request, d: FieldData) -> Response:
    snap = await b.snapshot(req)
    if not snap.default_issuer:
        return Response(raw_body=b"", raw_content_type="application/pkix-cert", raw_status=204)
    chain = "\n".join(c.strip() for c in snap.issuer("default").chain)
    return Response(raw_body=chain.encode(), raw_content_type="application/pkix-cert", raw_status=200)


async def read_cert_ca_chain(b: PkiBackend, req: Request, d: FieldData) -> Response:
    snap = await b.snapshot(req)
    iss = snap.issuer("default")
    return Response(data={"ca_chain": "\n".join(c.strip() for c in iss.chain), "certificate": iss.pem.strip(),
                          "revocation_time": 0, "revocation_time_rfc3339": ""})


async def delete_root(b: PkiBackend, req: Request, d: FieldData) -> Response | None:
    async with b.write_lock:
        snap = await b.snapshot(req)
        st = b.storage(req)
        for iid in snap.issuers:
            await st.delete(ISSUER_PREFIX + iid)
            await b.delete_crl(req, iid)
        for kid in snap.keys:
            await st.delete(KEY_PREFIX + kid)
        await st.delete(ISSUERS_CONFIG)
        await st.delete(KEYS_CONFIG)
        b.forget()
    return None
