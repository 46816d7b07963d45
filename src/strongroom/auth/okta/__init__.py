"""Okta: people log in with their Okta username and password (Okta's Authentication API, with its
MFA push or TOTP); Okta groups (read with an API token) and users map to policies.

Paths (the table of contents; handlers in the sibling modules)::

    config                  org_name, base_url, api_token (never read back), bypass_okta_mfa, token_*  config.py
    groups/, groups/<name>  Okta group -> policies; LIST                                               mapping.py
    users/, users/<name>    user -> policies and extra local groups; LIST                              mapping.py
    login/<username>        password (+ totp) -> token; renewal re-checks                             login.py

Storage (the mount's barrier-encrypted view): ``config``, ``group/<name>``, ``user/<name>``.
The password a renewal logs in again with is kept in the Strongroom token's internal data. The Okta calls (api.py) share one pooled httpx client per mount.
"""

from __future__ import annotations

from strongroom.auth.okta import config, login, mapping
from strongroom.framework import BackendConfig, Path
from strongroom.framework.http_client import APIBackend
from strongroom.logical import Auth, Storage


def paths() -> list[Path[OktaBackend]]:
    return [*config.paths(), *mapping.paths(), *login.paths()]


class OktaBackend(APIBackend):
    backend_type = "credential"
    help = ("The Okta credential provider allows authentication querying, checking username and password,\n"
            "and associating policies. If an api token is configured groups are pulled down from Okta.")

    #: Seconds a whole login may take (MFA push included; one call: ``api_timeout``); between push polls.
    login_timeout: float = 60.0
    poll_interval: float = 1.0

    def __init__(self, cfg: BackendConfig) -> None:
        super().__init__(cfg, paths())

    async def renew_auth(self, storage: Storage, auth: Auth) -> None:
        """Core asks before renewing a token this mount issued; raises to refuse (see login.py)."""
        await login.renew_auth(self, storage, auth)


__all__ = ["OktaBackend", "paths"]
