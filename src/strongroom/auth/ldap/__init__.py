"""LDAP: people log in with their directory username and password.

Paths (the table of contents; handlers in the sibling modules)::

    config                  the directory and how to search it (bindpass never read back)   config.py
    groups/, groups/<name>  LDAP group -> policies; LIST                                      mapping.py
    users/, users/<name>    user -> policies and extra (local) groups; LIST                   mapping.py
    login/<username>        password -> token with the union of the policies                  login.py

Storage (the mount's barrier-encrypted view): ``config``, ``group/<name>``, ``user/<name>``.
The LDAP conversation itself (client.py) is blocking ldap3 run in a worker thread with connect and
response timeouts, so the event loop never waits on the directory.
"""

from __future__ import annotations

from strongroom.auth.ldap import config, login, mapping
from strongroom.framework import Backend, BackendConfig, Path
from strongroom.logical import Auth, Request, Storage


def paths() -> list[Path[LdapBackend]]:
    return [*config.paths(), *mapping.paths(), *login.paths()]


class LdapBackend(Backend):
    backend_type = "credential"
    help = ("The LDAP auth method lets users log in with their directory username and password.\n"
            "Configure the directory at config; map LDAP groups and users to policies at groups/<name>\n"
            "and users/<name>; users log in at login/<username>.")

    def __init__(self, backend_config: BackendConfig) -> None:
        super().__init__(backend_config, paths())

    async def renew_auth(self, storage: Storage, auth: Auth) -> None:
        """Core asks before renewing a token this mount issued; raises to refuse (see login.py)."""
        await login.renew_auth(storage, auth)

    async def login_alias(self, req: Request) -> str:
        """The user a login request names, for core's user lockout (see login.py)."""
        return await login.login_alias(req)


__all__ = ["LdapBackend", "paths"]
