"""TLS certificates: clients log in with the client certificate they present on the connection.

Paths (the table of contents; handlers live in the sibling modules)::

    certs/          LIST trusted certificates                                        certs.py
    certs/<name>    a CA or client certificate, allowed names/SANs/OUs, token_*     certs.py
    config          disable_binding (renewal re-checks the certificate unless set)   certs.py
    login           the presented certificate (optional ``name``) -> token           login.py

Which role a certificate logs in as: verify.py. Storage layout: store.py. The TLS listener takes
any certificate a client presents without judging it (strongroom/http/tls.py, the default
``request`` mode); this method is what judges it.
"""

from __future__ import annotations

from strongroom.auth.cert import certs, login
from strongroom.auth.cert.store import CERT_PREFIX, get_role
from strongroom.auth.cert.verify import Trusted
from strongroom.framework import Backend, BackendConfig, Path
from strongroom.logical import Auth, Storage


def paths() -> list[Path[CertBackend]]:
    return [*certs.paths(), *login.paths()]


class CertBackend(Backend):
    backend_type = "credential"
    help = ("The cert auth method lets clients log in with the TLS client certificate they present.\n"
            "Register trusted CAs or client certificates at certs/<name>; clients log in at login.")

    def __init__(self, cfg: BackendConfig) -> None:
        super().__init__(cfg, paths())
        self._trusted: Trusted | None = None

    async def trusted(self, s: Storage) -> Trusted:
        """Every role's certificates, parsed once per change of the roles (not on every login)."""
        trusted = self._trusted
        if trusted is None:
            roles = [r for r in [await get_role(s, n) for n in await s.list(CERT_PREFIX)] if r is not None]
            trusted = Trusted.build(roles)
            self._trusted = trusted
        return trusted

    def forget_trusted(self) -> None:
        self._trusted = None

    async def invalidate(self, key: str) -> None:
        if key.startswith(CERT_PREFIX):
            self.forget_trusted()

    async def deactivate(self) -> None:
        self.forget_trusted()
        await super().deactivate()

    async def renew_auth(self, storage: Storage, auth: Auth) -> None:
        """Core asks before renewing a token this mount issued; raises to refuse (see login.py)."""
        await login.renew_auth(self, storage, auth)


__all__ = ["CertBackend", "paths"]
