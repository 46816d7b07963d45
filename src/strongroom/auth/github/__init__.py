"""GitHub: people log in with a GitHub personal token; membership of the configured organization
admits them, their teams and user name map to policies.

Paths (the table of contents; handlers in the sibling modules)::

    config                          organization (+ id), base_url, token_*               config.py
    map/teams/, map/teams/<team>    team name or slug -> comma-separated policies; LIST   mapping.py
    map/users/, map/users/<user>    GitHub login -> comma-separated policies; LIST        mapping.py
    login                           token -> Strongroom token (renewal re-checks)         login.py

Storage (the mount's barrier-encrypted view): ``config``, ``map/teams/<key>``, ``map/users/<key>``.
The GitHub token a renewal re-checks with is kept in the Strongroom token's internal data. The GitHub calls (api.py) share one pooled httpx client per mount.
"""

from __future__ import annotations

from strongroom.auth.github import config, login, mapping
from strongroom.framework import BackendConfig, Path
from strongroom.framework.http_client import APIBackend
from strongroom.logical import Auth, Storage


def paths() -> list[Path[GitHubBackend]]:
    return [*config.paths(), *mapping.paths(), *login.paths()]


class GitHubBackend(APIBackend):
    backend_type = "credential"
    help = ("The GitHub auth method lets users log in with a GitHub personal access token. Configure the\n"
            "organization at config; map teams and users to policies at map/teams/<team> and map/users/<user>.")

    #: Seconds a whole login may take (several calls, all pages; one call: ``api_timeout``).
    login_timeout: float = 30.0

    def __init__(self, cfg: BackendConfig) -> None:
        super().__init__(cfg, paths())

    async def renew_auth(self, storage: Storage, auth: Auth) -> None:
        """Core asks before renewing a token this mount issued; raises to refuse (see login.py)."""
        await login.renew_auth(self, storage, auth)


__all__ = ["GitHubBackend", "paths"]
