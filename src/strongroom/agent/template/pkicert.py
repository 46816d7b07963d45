"""PEM handling for ``pkiCert``: consul-template's pemsCert (sort PEM blocks into key, certificate and CA) and
whether a certificate already on disk is still good enough not to be issued again."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from typing import TYPE_CHECKING

from strongroom.agent.template.errors import FetchError
from strongroom.agent.template.values import PemEncoded

if TYPE_CHECKING:  # imported when a pkiCert is parsed: it costs the agent ~9 MiB of RSS otherwise
    from cryptography import x509

_PEM = re.compile(r"-----BEGIN ([^-]*)-----(.*?)-----END [^-]*-----", re.DOTALL)


def _pem_encode(typ: str, der: bytes) -> str:
    b64 = base64.b64encode(der).decode()
    lines = "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))
    return f"-----BEGIN {typ}-----\n{lines}\n-----END {typ}-----\n"


def pems_cert(raw: str) -> tuple[PemEncoded, x509.Certificate | None]:
    """consul-template's pemsCert: sort PEM blocks into key, certificate, CA and CA chain."""
    from cryptography import x509

    enc = PemEncoded()

    cert: x509.Certificate | None = None
    for m in _PEM.finditer(raw):
        typ = m.group(1)
        body = "".join(ln.strip() for ln in m.group(2).splitlines() if ln.strip() and ":" not in ln)
        try:
            der = base64.b64decode(body)
        except (binascii.Error, ValueError):
            break
        block = _pem_encode(typ, der)
        if typ.endswith("PRIVATE KEY"):
            enc.Key = block
            continue
        try:
            c = x509.load_der_x509_certificate(der)
        except ValueError as e:
            raise FetchError(f"x509: {e}") from None
        try:
            is_ca = c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if is_ca:
            if not enc.CA:
                enc.CA = block
        else:
            cert = c
            enc.Cert = block
    return enc, cert


RENEWAL_THRESHOLD = 0.9


def good_for(cert: x509.Certificate | None) -> bool:
    if cert is None:
        return False
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    now = dt.datetime.now(dt.UTC)
    if end <= now:
        return False
    return now < start + (end - start) * RENEWAL_THRESHOLD
