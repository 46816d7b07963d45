"""The ssh secrets engine: an SSH CA that signs user and host keys, and one-time passwords.

Paths (the table of contents; handlers live in the sibling modules)::

    config/ca, public_key                     CA keys, the default issuer       ca.py
    issuers, issuers/import, issuer/<ref>     several issuers, as OpenBao       ca.py
    config/issuers                            the default issuer                ca.py
    roles/, roles/<name>                      key_type "ca" or "otp"            roles.py
    sign/<role>                               sign a public key                 sign.py
    creds/<role>, verify, lookup              one-time passwords                otp.py

Certificates are built in OpenSSH's wire format (wire.py) and signed with ``cryptography``.
Storage layout: store.py.
"""

from __future__ import annotations

import asyncio

from strongroom.engines.ssh import ca, otp, roles, sign, wire
from strongroom.engines.ssh.store import SALT_KEY, Issuer, SSHStore

from strongroom.framework import Backend, BackendConfig, Path, Request, Salt, StripedLocks, storage_of


def paths() -> list[Path[SSHBackend]]:
    return [*ca.paths(), *roles.paths(), *sign.paths(), *otp.paths()]


class SSHBackend(Backend):
    help = ("The SSH secrets engine signs SSH keys with a CA (user and host certificates) and issues\n"
            "one-time passwords for hosts running an OTP helper.")

    def __init__(self, config: BackendConfig) -> None:
        super().__init__(config, paths(), [otp.OTP])
        self.salt = Salt(SALT_KEY, encoding="hex")
        self.locks = StripedLocks()
        # Serialises changes of issuers (names unique, the default never dangling).
        self.issuers_lock = asyncio.Lock()
        # Parsed CA keys by issuer id, with the PEM they were parsed from (a re-import under the
        # same id would not match and is parsed again). As many entries as issuers.
        self._ca_keys: dict[str, tuple[str, wire.CAKey]] = {}

    def store(self, req: Request) -> SSHStore:
        return SSHStore(storage_of(req))

    async def otp_id(self, req: Request, otp_value: str) -> str:
        """The storage id of an OTP: its HMAC under the mount's salt (the OTP is never stored)."""
        await self.salt.load(storage_of(req))
        return self.salt.hmac(otp_value)

    def ca_key(self, issuer: Issuer) -> wire.CAKey:
        """The issuer's private key, parsed once."""
        hit = self._ca_keys.get(issuer.id)
        if hit is not None and hit[0] == issuer.private_key:
            return hit[1]
        key = wire.load_private_key(issuer.private_key)
        if len(self._ca_keys) > 1024:
            self._ca_keys.clear()
        self._ca_keys[issuer.id] = (issuer.private_key, key)
        return key

    async def setup(self) -> None:
        await self.salt.load(self.system.storage)

    async def deactivate(self) -> None:
        self.salt.forget()
        self._ca_keys.clear()
        await super().deactivate()


__all__ = ["SSHBackend", "paths"]
