"""AppRole: machines log in with a role id and a secret id.

Paths (the table of contents; handlers live in the sibling modules)::

    role/                                   LIST roles                      roles.py
    role/<name>                             role CRUD (token_* fields too)  roles.py
    role/<name>/role-id                     read or set the role id         roles.py
    role/<name>/<property>                  one property at a time          roles.py
    role/<name>/secret-id                   issue; LIST accessors           secret_id.py
    role/<name>/custom-secret-id            register a chosen secret id     secret_id.py
    role/<name>/secret-id/lookup|destroy    by secret id                    secret_id.py
    role/<name>/secret-id-accessor/...      by accessor                     secret_id.py
    tidy/secret-id                          drop expired secret ids         secret_id.py
    login                                   role_id + secret_id -> token    login.py

Storage layout and the HMAC rule for secret ids: see store.py. Wrapped secret-id delivery is
core's generic response wrapping (X-Vault-Wrap-TTL on role/<name>/secret-id).
"""

from __future__ import annotations

from strongroom.auth.approle import login, roles, secret_id
from strongroom.auth.approle.store import SALT_KEY, AppRoleStore

from strongroom.framework import Backend, BackendConfig, Path, Request, Salt, StripedLocks, storage_of


def paths() -> list[Path[AppRoleBackend]]:
    return [*roles.paths(), *secret_id.paths(), *login.paths()]


class AppRoleBackend(Backend):
    backend_type = "credential"
    help = ("The AppRole auth method lets machines and services log in with a role id and a secret id.\n"
            "Operators define roles at role/<name> and issue secret ids at role/<name>/secret-id.")

    def __init__(self, config: BackendConfig) -> None:
        super().__init__(config, paths())
        # The mount's HMAC key (stored as hex, see store.py) and the locks that serialise every
        # read-modify-write of a secret id entry (login consumption, destroy, tidy).
        self.salt = Salt(SALT_KEY, encoding="hex")
        self.locks = StripedLocks()

    async def store(self, req: Request) -> AppRoleStore:
        st = storage_of(req)
        await self.salt.load(st)
        return AppRoleStore(st, self.salt)

    async def login_alias(self, req: Request) -> str:
        return await login.login_alias(req)

    async def setup(self) -> None:
        await self.salt.load(self.system.storage)  # make (or load) the mount's HMAC salt now

    async def deactivate(self) -> None:
        self.salt.forget()
        await super().deactivate()


__all__ = ["AppRoleBackend", "paths"]
