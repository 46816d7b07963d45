"""What the ACME server needs from the CA it fronts: the seam between ``acme`` and the pki backend.

The pki backend implements :class:`AcmeCA`; ACME handlers receive it as their first argument. ACME
never touches issuers, roles or the certificate store itself: it verifies the client (JWS, account,
authorizations) and hands the CA a CSR whose names it has validated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

from strongroom.logical import Request


class AcmeIssued(NamedTuple):
    """A certificate the CA issued for an ACME order."""

    certificate_pem: str  # the leaf
    chain_pem: list[str]  # issuer first, up to the root
    serial_number: str


class AcmeCA(Protocol):
    """The CA behind an ACME directory (the pki backend).

    ``acme_issue`` signs ``csr_der`` for exactly ``identifiers`` (DNS names or IP addresses, already
    validated by ACME) with the issuer ``issuer_ref`` under the role ``role_name`` ("" = sign-verbatim
    policy); it raises a StrongroomError (InvalidRequest, PermissionDenied) when the role or issuer
    refuses, with a message ACME passes to the client. ``acme_revoke`` revokes an issued certificate
    (DER). ``cluster_path`` is the mount's ``config/cluster`` path ("" when unset): ACME URLs are
    built from it."""

    async def acme_issue(self, req: Request, csr_der: bytes, identifiers: Sequence[str], *,
                         issuer_ref: str = "default", role_name: str = "") -> AcmeIssued: ...

    async def acme_revoke(self, req: Request, cert_der: bytes) -> None: ...

    async def cluster_path(self, req: Request) -> str: ...
