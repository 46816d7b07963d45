"""ACME (RFC 8555) server of the pki engine: Vault's ACME directories under a pki mount.

    acme_paths()            the path table the pki backend appends to its own
    AcmeCA, AcmeIssued      what pki implements for ACME (ca.py)
    acme_deactivate(b)      stop background validations (pki's deactivate calls it)
    acme_tidy(storage, now) delete ended orders (pki's tidy calls it, as Vault's tidy_acme)

Layout: ca.py (the seam), config.py (``config/acme``), jws.py (JWS/JWK), problems.py (problem
documents), eab.py (external account binding), state.py (nonces, background tasks), store.py
(storage layout), validate.py and dns.py (http-01, dns-01), tidy.py, endpoint.py (what every
endpoint shares, directory, new-nonce), accounts.py, orders.py, handlers.py (the path table).
docs/acme.md describes it for users.
"""

from __future__ import annotations

from strongroom.engines.pki.acme.ca import AcmeCA, AcmeIssued
from strongroom.engines.pki.acme.config import config_paths
from strongroom.engines.pki.acme.eab import eab_paths
from strongroom.engines.pki.acme.handlers import acme_endpoint_paths
from strongroom.engines.pki.acme.state import acme_deactivate, state_of
from strongroom.engines.pki.acme.tidy import acme_tidy
from strongroom.framework import Path


def acme_paths() -> list[Path[AcmeCA]]:
    """``config/acme``, the EAB paths and every ACME endpoint, in the four directory flavours."""
    return [*config_paths(), *eab_paths(), *acme_endpoint_paths()]


__all__ = ["AcmeCA", "AcmeIssued", "acme_deactivate", "acme_paths", "acme_tidy", "state_of"]
