"""TLS certificates: clients log in with the client certificate they present on the connection.

Paths (the table of contents; handlers live in the sibling modules)::

    certs/          LIST trusted certificates                                        certs.py
    certs/<name>    a CA or client certificate, allowed names/SANs/OUs, token_*     certs.py
    config          disable_binding (renewal re-checks the certificate unless set),  certs.py
                    ocsp_cache_size
    crls/           LIST registered CRLs                                             crls.py
    crls/<name>     a CRL (PEM/DER, or a URL refetched after its nextUpdate)         crls.py
    login           the presented certificate (optional ``name``) -> token           login.py

Which role a certificate logs in as: verify.py; revocation: crls.py and ocsp.py. Storage layout: store.py. The TLS listener takes
any certificate a client presents without judging it (strongroom/http/tls.py, the default
``request`` mode); this method is what judges it.
"""

from __future__ import annotations

import datetime

from strongroom.auth.cert import certs, crls, login
from strongroom.auth.cert.ocsp import OcspClient
from strongroom.auth.cert.store import CERT_PREFIX, CONFIG_KEY, CRL_PREFIX, get_config, get_crl, get_role
from strongroom.auth.cert.verify import Trusted
from strongroom.framework import Backend, BackendConfig, Path
from strongroom.logical import Auth, Storage


def paths() -> list[Path[CertBackend]]:
    return [*certs.paths(), *crls.paths(), *login.paths()]


class CertBackend(Backend):
    backend_type = "credential"
    help = ("The cert auth method lets clients log in with the TLS client certificate they present.\n"
            "Register trusted CAs or client certificates at certs/<name>; clients log in at login.")

    def __init__(self, cfg: BackendConfig) -> None:
        super().__init__(cfg, paths())
        self._trusted: Trusted | None = None
        self._crl_serials: frozenset[str] | None = None
        self._ocsp: OcspClient | None = None

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
        if self._ocsp is not None:  # a role's OCSP settings may have changed: ask again
            self._ocsp.clear()

    async def crl_serials(self, s: Storage) -> frozenset[str]:
        """Every serial (decimal) a registered CRL revokes, loaded once per change of the CRLs."""
        serials = self._crl_serials
        if serials is None:
            found: set[str] = set()
            for name in await s.list(CRL_PREFIX):
                entry = await get_crl(s, name)
                if entry is not None:
                    found.update(entry.serials)
            serials = self._crl_serials = frozenset(found)
        return serials

    def forget_crls(self) -> None:
        self._crl_serials = None

    async def ocsp_client(self, s: Storage) -> OcspClient:
        """The mount's OCSP client (answer cache sized by config.ocsp_cache_size)."""
        client = self._ocsp
        if client is None:
            client = self._ocsp = OcspClient((await get_config(s)).ocsp_cache_size)
        return client

    async def resize_ocsp_cache(self, size: int) -> None:
        if self._ocsp is not None:
            self._ocsp.resize(size)

    async def invalidate(self, key: str) -> None:
        if key.startswith(CERT_PREFIX):
            self.forget_trusted()
        elif key.startswith(CRL_PREFIX):
            self.forget_crls()
        elif key == CONFIG_KEY:
            await self.resize_ocsp_cache((await get_config(self.system.storage)).ocsp_cache_size)

    async def periodic(self, now: float) -> None:
        await super().periodic(now)
        await crls.refresh_due(self, self.system.storage, datetime.datetime.fromtimestamp(now, datetime.UTC))

    async def deactivate(self) -> None:
        self.forget_trusted()
        self.forget_crls()
        client, self._ocsp = self._ocsp, None
        if client is not None:
            await client.close()
        await super().deactivate()

    async def renew_auth(self, storage: Storage, auth: Auth) -> None:
        """Core asks before renewing a token this mount issued; raises to refuse (see login.py)."""
        await login.renew_auth(self, storage, auth)


__all__ = ["CertBackend", "paths"]
