"""login: a GitHub personal token in, a token out, once GitHub says whose it is and that the user
belongs to the configured organization.

Order (Vault's): the config exists; the caller's address is within token_bound_cidrs; ``GET user``;
``GET user/orgs`` (every page) holds the organization by id (else "user is not part of required
org"); ``GET user/teams`` (every page) gives the teams of that organization, by name and slug. The
token gets the config's token_policies plus the policies mapped to those teams and to the user
(and to the ``default`` entries), metadata ``{org, username}``.

Renewal (:func:`renew_auth`, asked by core before a token from this mount is renewed) repeats the
whole check with the GitHub token of the login: a user who left the organization, or whose
policies changed, cannot renew ("policies do not match"). As in Vault, that GitHub token is kept
in the token's internal data (stored with the token entry through the barrier, never shown).

Failures: GitHub refusing the token (401/403/404) answers 400 with GitHub's message; GitHub
unreachable, failing, or slower than ``login_timeout`` answers 500 naming the URL.
SECURITY: the GitHub token never reaches a message, a log, or storage in the clear.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any


from strongroom.auth.github.api import GitHub, Refused, Unavailable
from strongroom.auth.github.config import Config, load_config, put_config, storage
from strongroom.auth.github.mapping import TEAMS, USERS, policies
from strongroom.errors import Internal, InvalidRequest
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response
from strongroom.logical import Alias, Auth, Storage

if TYPE_CHECKING:
    from strongroom.auth.github import GitHubBackend



def paths() -> list[Path[GitHubBackend]]:
    return [Path("login", fields={"token": Field(FieldType.STRING, "GitHub personal API token", sensitive=True)},
                 operations={Op.UPDATE: login}, unauthenticated=True,
                 synopsis="Log in with a GitHub personal API token.")]


@dataclass(slots=True)
class Verified:
    username: str
    org: str
    policies: list[str]  # team- and user-mapped (not the config's token_policies)
    teams: list[str]
    config: Config
    warnings: list[str] = field(default_factory=list)


def _id(obj: Any) -> int:
    value = obj.get("id") if isinstance(obj, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


async def _verify(b: GitHubBackend, st: Storage, token: str, remote_addr: str | None) -> Verified:
    config = await load_config(st)
    if config is None:
        raise InvalidRequest("configuration has not been set")
    if remote_addr is not None:
        config.token.check_source(remote_addr)
    if not token:
        raise InvalidRequest("missing token")
    if not token.isascii() or not token.isprintable() or any(c.isspace() for c in token):
        raise InvalidRequest("invalid token: a GitHub token is printable ASCII without spaces")
    api = GitHub(b.client(), config.api_url, token, b.api_timeout)
    try:
        async with asyncio.timeout(b.login_timeout):
            if config.organization_id == 0:  # trust on first use, as Vault does for old configs
                config.organization_id = _id(await api.organization(config.organization))
                if not config.organization_id:
                    raise Unavailable(f"organization_id not found for {config.organization}")
                await put_config(st, config)
            user = await api.user()
            orgs = await api.orgs()
            org = next((o for o in orgs if _id(o) == config.organization_id), None)
            if org is None:
                raise InvalidRequest("user is not part of required org")
            teams = await api.teams()
    except TimeoutError:
        raise Internal(f"GitHub ({config.api_url}) did not answer within {b.login_timeout:g}s") from None
    except Refused as e:
        raise InvalidRequest(str(e)) from None
    except Unavailable as e:
        b.system.logger.warning("github login: %s", e)
        raise Internal(str(e)) from None
    username, org_login = user.get("login"), org.get("login")
    if not isinstance(username, str) or not username or not isinstance(org_login, str):
        raise Internal(f"GET {config.api_url}user: unexpected answer")
    warnings: list[str] = []
    if org_login != config.organization:
        warnings.append(f'the organization name has changed to "{org_login}". It is recommended to verify and '
                        f"update the organization name in the config: organization_id={config.organization_id}")
    names: list[str] = []
    for t in teams:
        if _id(t.get("organization")) != config.organization_id:
            continue
        name, slug = t.get("name"), t.get("slug")
        names += [n for n in (name, slug) if isinstance(n, str) and n and n not in names]
    mapped = [*await policies(st, TEAMS, names), *await policies(st, USERS, [username])]
    return Verified(username=username, org=org_login, policies=list(dict.fromkeys(mapped)), teams=names,
                    config=config, warnings=warnings)








async def login(b: GitHubBackend, req: Request, d: FieldData) -> Response | None:
    token: str = (d.get("token") or "").strip()
    st = storage(req)
    addr = req.connection.remote_addr
    v = await _verify(b, st, token, addr)
    metadata = {"org": v.org, "username": v.username}
    auth = v.config.token.fill_auth(Auth(metadata=metadata, display_name=v.username,
                                         internal_data={"token": token}, alias=Alias(name=v.username)), addr)
    auth.policies = list(dict.fromkeys([*auth.policies, *v.policies]))
    # As Vault: the user's team names (and slugs, where they differ) in the organization are the
    # entity's external groups on this mount (identity groups with a group alias of that name).
    auth.group_aliases = list(v.teams)
    return Response(auth=auth, warnings=v.warnings)


async def renew_auth(b: GitHubBackend, st: Storage, auth: Auth) -> None:
    token = auth.internal_data.get("token")
    if not isinstance(token, str) or not token:
        raise InvalidRequest("token created in previous version of Vault cannot be validated properly at "
                             "renewal time")
    v = await _verify(b, st, token, None)
    want = {*v.config.token.token_policies, *v.policies} - {"default"}
    if want != set(auth.policies) - {"default"}:
        raise InvalidRequest("policies do not match")
