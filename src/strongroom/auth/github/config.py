"""config: the organization users must belong to, the API to ask, and the token_* of every login
(Vault's auth/github/config). Writes merge into the stored config.

When ``organization_id`` is not given (nor stored), the write asks GitHub for it
(``GET {base_url}orgs/{organization}``, with the VAULT_AUTH_CONFIG_GITHUB_TOKEN environment token if
set) and fails with Vault's "unable to fetch the organization_id" message when it cannot. Logins
check membership by that id, so a renamed organization still matches.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit


from strongroom.auth.github.api import DEFAULT_BASE_URL, GitHub, Refused, Unavailable
from strongroom.errors import Internal, InvalidRequest, NotFound
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response, TokenParams, storage_of, token_fields
from strongroom.framework.records import load_record, save_record
from strongroom.logical import Storage

if TYPE_CHECKING:
    from strongroom.auth.github import GitHubBackend

CONFIG_KEY = "config"

_FIELDS: dict[str, Field] = {
    "organization": Field(FieldType.STRING, "The organization users must be part of"),
    "organization_id": Field(FieldType.INT, "The ID of the organization users must be part of"),
    "base_url": Field(FieldType.STRING, "The API endpoint to use. Useful if you are running GitHub Enterprise "
                      "or an API-compatible authentication server."),
    **token_fields(legacy=("ttl", "max_ttl")),
}


@dataclass(slots=True)
class Config:
    organization: str = ""
    organization_id: int = 0
    base_url: str = ""
    token: TokenParams = field(default_factory=TokenParams)

    @property
    def api_url(self) -> str:
        return self.base_url or DEFAULT_BASE_URL

    def to_json(self) -> dict[str, Any]:
        return {"organization": self.organization, "organization_id": self.organization_id,
                "base_url": self.base_url, "token": self.token.to_json()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Config:
        return cls(organization=str(d.get("organization", "")), organization_id=int(d.get("organization_id", 0)),
                   base_url=str(d.get("base_url", "")), token=TokenParams.from_json(d.get("token") or {}))

    def to_response(self) -> dict[str, Any]:
        data = self.token.to_response()
        data.update(organization=self.organization, organization_id=self.organization_id, base_url=self.base_url)
        return dict(sorted(data.items()))


def paths() -> list[Path[GitHubBackend]]:
    return [Path("config", fields=_FIELDS,
                 operations={Op.READ: read_config, Op.CREATE: write_config, Op.UPDATE: write_config},
                 synopsis="Configures the GitHub organization and API the logins are checked against.")]


storage = storage_of  # the mount's storage view


async def load_config(s: Storage) -> Config | None:
    return await load_record(s, CONFIG_KEY, Config.from_json)


async def put_config(s: Storage, config: Config) -> None:
    await save_record(s, CONFIG_KEY, config)


def check_base_url(url: str) -> str:
    url = url.strip()
    if not url.endswith("/"):
        url += "/"
    parts = urlsplit(url)
    try:
        _ = parts.port
    except ValueError:
        raise InvalidRequest(f"error parsing given base_url: invalid port in {url!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise InvalidRequest(f"error parsing given base_url: {url!r} is not an http(s) URL")
    return url


async def read_config(b: GitHubBackend, req: Request, d: FieldData) -> Response | None:
    config = await load_config(storage(req))
    if config is None:
        raise NotFound()
    return Response(data=config.to_response())


async def write_config(b: GitHubBackend, req: Request, d: FieldData) -> Response | None:
    s = storage(req)
    config = await load_config(s) or Config()
    if d.has("organization"):
        config.organization = d.get("organization").strip()
    if not config.organization:
        raise InvalidRequest("organization is a required parameter")
    if d.has("organization_id"):
        config.organization_id = d.get("organization_id")
        if config.organization_id < 0:
            raise InvalidRequest("organization_id cannot be negative")
    if d.has("base_url"):
        config.base_url = check_base_url(d.get("base_url")) if d.get("base_url").strip() else ""
    config.token.update(d)
    if config.organization_id == 0:
        api = GitHub(b.client(), config.api_url, os.environ.get("VAULT_AUTH_CONFIG_GITHUB_TOKEN", ""), b.api_timeout)
        try:
            org = await api.organization(config.organization)
        except (Refused, Unavailable) as e:
            raise Internal(f"unable to fetch the organization_id, you must manually set it in the config: {e}") \
                from None
        org_id = org.get("id")
        if not isinstance(org_id, int) or isinstance(org_id, bool) or org_id <= 0:
            raise Internal("unable to fetch the organization_id, you must manually set it in the config: "
                           f"organization_id not found for {config.organization}")
        config.organization_id = org_id
    await put_config(s, config)
    return None
