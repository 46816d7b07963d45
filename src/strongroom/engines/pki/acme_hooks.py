"""What the pki backend hands the ACME server (strongroom.engines.pki.acme) when it signs an order."""

from __future__ import annotations

from typing import NamedTuple


class AcmeIssued(NamedTuple):
    certificate_pem: str  # the leaf
    chain_pem: list[str]  # issuer first, up to the root
    serial_number: str  # "xx:xx:..." as pki reports serials
