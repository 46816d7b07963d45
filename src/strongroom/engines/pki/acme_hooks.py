"""What the pki backend hands the ACME server when it signs an order: ``AcmeIssued``, declared
with the rest of the seam in :mod:`strongroom.engines.pki.acme.ca` and re-exported here."""

from __future__ import annotations

from strongroom.engines.pki.acme.ca import AcmeIssued

__all__ = ["AcmeIssued"]
