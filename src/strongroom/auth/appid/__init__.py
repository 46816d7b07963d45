"""App ID (legacy, deprecated in favour of AppRole): machines log in with an app id and a user id.

Paths (the table of contents; handlers live in the sibling modules)::

    map/app-id/           LIST the (HMAC'd) app ids                                    maps.py
    map/app-id/<id>       value (policies, comma-separated), display_name              maps.py
    map/user-id/          LIST the (HMAC'd) user ids                                   maps.py
    map/user-id/<id>      value (app ids, comma-separated), cidr_block                 maps.py
    login                 app_id + user_id -> a token with the app's policies          login.py
    login/<app_id>        the same, the app id in the path                             login.py

Vault's builtin/credential/app-id (removed from Vault in 1.14). Never mounted by default: only an
explicit ``sys/auth/<path>`` with type ``app-id`` makes one, and that answer carries a
deprecation warning. Storage layout and the salt: maps.py. docs/appid.md.
"""

from __future__ import annotations

from strongroom.auth.appid import login, maps
from strongroom.auth.appid.maps import SALT_KEY

from strongroom.framework import Backend, BackendConfig, Path, Request, Salt, storage_of
from strongroom.logical import Auth, Storage


def paths() -> list[Path[AppIdBackend]]:
    return [*maps.paths(), *login.paths()]


class AppIdBackend(Backend):
    backend_type = "credential"
    #: Read by core when the method is mounted (a warning on the answer) and listed.
    deprecation_status = "deprecated"
    help = ("The App ID auth method (deprecated: use AppRole) lets machines log in by pairing an app id\n"
            "(map/app-id/<app-id>, mapped to policies) with a user id (map/user-id/<user-id>, mapped to\n"
            "app ids and optionally a CIDR block) at login.")

    def __init__(self, config: BackendConfig) -> None:
        super().__init__(config, paths())
        self.salt = Salt(SALT_KEY)

    async def salted(self, req: Request) -> Salt:
        await self.salt.load(storage_of(req))
        return self.salt

    async def setup(self) -> None:
        await self.salt.load(self.system.storage)

    async def invalidate(self, key: str) -> None:
        if key == SALT_KEY:
            self.salt.forget()

    async def deactivate(self) -> None:
        self.salt.forget()
        await super().deactivate()

    async def renew_auth(self, storage: Storage, auth: Auth) -> None:
        """Core asks before renewing a token this mount issued; raises to refuse (see login.py)."""
        await self.salt.load(storage)
        await login.renew_auth(self.salt, storage, auth)


__all__ = ["AppIdBackend", "paths"]
