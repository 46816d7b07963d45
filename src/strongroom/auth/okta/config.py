"""config: the Okta organization, the API token for group lookups, MFA bypass, token_* of every
login (Vault's auth/okta/config). Writes merge; ``org_name`` is required when the config is created.

The org URL is ``https://{org_name}.{base_url}`` (base_url defaults to okta.com, or oktapreview.com
with the legacy ``production=false``). Strongroom extension: a ``base_url`` that starts with
``http://`` or ``https://`` is the org URL itself (a local or proxied Okta API).
``api_token`` is stored through the barrier and never read back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit


from strongroom.errors import InvalidRequest, NotFound
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response, TokenParams, storage_of, token_fields
from strongroom.framework.records import load_record, save_record
from strongroom.logical import Storage

if TYPE_CHECKING:
    from strongroom.auth.okta import OktaBackend

CONFIG_KEY = "config"
BYPASS_WARNING = ("Okta MFA bypass is configured. In addition to ignoring Okta MFA requests, certain other account "
                  "statuses will not be seen, such as PASSWORD_EXPIRED. Authentication will succeed in these cases.")
_HOST = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-."

_FIELDS: dict[str, Field] = {
    "org_name": Field(FieldType.STRING, "Name of the organization to be used in the Okta API."),
    "organization": Field(FieldType.STRING, "Use org_name instead."),
    "api_token": Field(FieldType.STRING, "Okta API key.", sensitive=True),
    "token": Field(FieldType.STRING, "Use api_token instead.", sensitive=True),
    "base_url": Field(FieldType.STRING, 'The base domain to use for the Okta API. When not specified in the '
                      'configuration, "okta.com" is used.'),
    "production": Field(FieldType.BOOL, "Use base_url instead."),
    "bypass_okta_mfa": Field(FieldType.BOOL, "When set true, requests by Okta for a MFA check will be bypassed. "
                             "This also disallows certain status checks on the account, such as whether the "
                             "password is expired."),
    **token_fields(legacy=("ttl", "max_ttl")),
}


@dataclass(slots=True)
class Config:
    org_name: str = ""
    api_token: str = ""
    base_url: str = ""
    production: bool | None = None
    bypass_okta_mfa: bool = False
    token: TokenParams = field(default_factory=TokenParams)

    @property
    def org_url(self) -> str:
        if self.base_url.startswith(("http://", "https://")):
            return self.base_url.rstrip("/")
        domain = self.base_url or ("oktapreview.com" if self.production is False else "okta.com")
        return f"https://{self.org_name}.{domain}"

    def to_json(self) -> dict[str, Any]:
        return {"org_name": self.org_name, "api_token": self.api_token, "base_url": self.base_url,
                "production": self.production, "bypass_okta_mfa": self.bypass_okta_mfa, "token": self.token.to_json()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Config:
        prod = d.get("production")
        return cls(org_name=str(d.get("org_name", "")), api_token=str(d.get("api_token", "")),
                   base_url=str(d.get("base_url", "")), production=None if prod is None else bool(prod),
                   bypass_okta_mfa=bool(d.get("bypass_okta_mfa", False)),
                   token=TokenParams.from_json(d.get("token") or {}))

    def to_response(self) -> dict[str, Any]:
        data = self.token.to_response()
        data.update(organization=self.org_name, org_name=self.org_name, bypass_okta_mfa=self.bypass_okta_mfa)
        if self.base_url:
            data["base_url"] = self.base_url
        if self.production is not None:
            data["production"] = self.production
        return dict(sorted(data.items()))


def paths() -> list[Path[OktaBackend]]:
    return [Path("config", fields=_FIELDS,
                 operations={Op.READ: read_config, Op.CREATE: write_config, Op.UPDATE: write_config},
                 exists=config_exists, synopsis="This endpoint allows you to configure the Okta and its "
                 "configuration options.")]


storage = storage_of  # the mount's storage view


async def load_config(s: Storage) -> Config | None:
    return await load_record(s, CONFIG_KEY, Config.from_json)


async def config_exists(b: OktaBackend, req: Request, d: FieldData) -> bool:
    return await load_config(storage(req)) is not None


def _check_base_url(value: str) -> str:
    value = value.strip()
    if value.startswith(("http://", "https://")):
        parts = urlsplit(value)
        try:
            _ = parts.port
        except ValueError:
            raise InvalidRequest(f"Error parsing given base_url: invalid port in {value!r}") from None
        if not parts.hostname or parts.query or parts.fragment:
            raise InvalidRequest(f"Error parsing given base_url: {value!r}")
    elif value and (not all(c in _HOST for c in value) or value.startswith((".", "-"))):
        raise InvalidRequest(f"Error parsing given base_url: {value!r} is not a domain")
    return value


async def read_config(b: OktaBackend, req: Request, d: FieldData) -> Response | None:
    cfg = await load_config(storage(req))
    if cfg is None:
        raise NotFound()
    return Response(data=cfg.to_response(), warnings=[BYPASS_WARNING] if cfg.bypass_okta_mfa else [])


async def write_config(b: OktaBackend, req: Request, d: FieldData) -> Response | None:
    s = storage(req)
    cfg = await load_config(s) or Config()
    if d.has("org_name"):
        cfg.org_name = d.get("org_name").strip()
    if not cfg.org_name and d.has("organization"):
        cfg.org_name = d.get("organization").strip()
    if not cfg.org_name:
        raise InvalidRequest("org_name is missing")
    if not all(c in _HOST for c in cfg.org_name):
        raise InvalidRequest(f"invalid org_name {cfg.org_name!r}")
    if d.has("api_token"):
        cfg.api_token = d.get("api_token").strip()
    elif d.has("token"):
        cfg.api_token = d.get("token").strip()
    if not cfg.api_token.isascii() or not cfg.api_token.isprintable() or " " in cfg.api_token:
        raise InvalidRequest("invalid api_token: an Okta API token is printable ASCII without spaces")
    if d.has("base_url"):
        cfg.base_url = _check_base_url(d.get("base_url"))
    if cfg.base_url:
        cfg.production = None
    elif d.has("production"):
        cfg.production = d.get("production")
    if d.has("bypass_okta_mfa"):
        cfg.bypass_okta_mfa = d.get("bypass_okta_mfa")
    cfg.token.update(d)
    await save_record(s, CONFIG_KEY, cfg)
    return Response(warnings=[BYPASS_WARNING]) if cfg.bypass_okta_mfa else None
