"""config: where the directory is and how users and groups are found in it (Vault's field names).

A write merges into the stored config (fields not sent keep their value); a read shows every field
except ``bindpass``, which is write-only.
"""

from __future__ import annotations

import ssl
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any


from strongroom.auth.ldap.client import (
    DEFAULT_GROUPFILTER,
    DEFAULT_USERFILTER,
    DEREF,
    TLS_VERSIONS,
    Settings,
    check_template,
)
from strongroom.errors import InvalidRequest
from strongroom.framework import Field, FieldData, FieldType, Op, Path, Request, Response, TokenParams, storage_of, token_fields
from strongroom.framework.records import load_record, save_record
from strongroom.logical import Storage

if TYPE_CHECKING:
    from strongroom.auth.ldap import LdapBackend

CONFIG_KEY = "config"


@dataclass(slots=True)
class LdapConfig(Settings):
    token: TokenParams = field(default_factory=TokenParams)

    def to_json(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "token"}
        d["token"] = self.token.to_json()
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> LdapConfig:
        known = {f.name for f in fields(cls)} - {"token"}
        cfg = cls(**{k: v for k, v in d.items() if k in known})
        cfg.token = TokenParams.from_json(d.get("token") or {})
        return cfg

    def settings(self) -> Settings:
        return Settings(**{f.name: getattr(self, f.name) for f in fields(Settings)})

    def to_response(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("token", "bindpass")}
        data.update(self.token.to_response())
        return dict(sorted(data.items()))


_STR = FieldType.STRING
_BOOL = FieldType.BOOL
CONFIG_FIELDS: dict[str, Field] = {
    "url": Field(_STR, "LDAP URL to connect to; several may be given, comma-separated, tried in order.",
                 default="ldap://127.0.0.1"),
    "binddn": Field(_STR, "LDAP DN for searching for the user DN (optional)."),
    "bindpass": Field(_STR, "LDAP password for searching for the user DN (optional).", sensitive=True),
    "userdn": Field(_STR, "LDAP domain to use for users (eg: ou=People,dc=example,dc=org)."),
    "userattr": Field(_STR, 'Attribute used for users (default: "cn").', default="cn"),
    "userfilter": Field(_STR, "Go template for the user search filter ({{.UserAttr}}, {{.Username}}).",
                        default=DEFAULT_USERFILTER),
    "upndomain": Field(_STR, "Enables userPrincipalDomain login with [username]@UPNDomain (optional)."),
    "discoverdn": Field(_BOOL, "Use anonymous bind to discover the bind DN of a user (optional)."),
    "groupdn": Field(_STR, "LDAP search base to use for group membership search (eg: ou=Groups,dc=example,dc=org)."),
    "groupfilter": Field(_STR, "Go template for querying group membership of the user ({{.UserDN}}, "
                         "{{.Username}}).", default=DEFAULT_GROUPFILTER),
    "groupattr": Field(_STR, 'LDAP attribute to follow on objects returned by groupfilter to enumerate user '
                       'group membership. Examples: "cn" or "memberOf".', default="cn"),
    "anonymous_group_search": Field(_BOOL, "Use anonymous binds when performing LDAP group searches."),
    "starttls": Field(_BOOL, "Issue a StartTLS command after establishing an unencrypted connection (optional)."),
    "insecure_tls": Field(_BOOL, "Skip LDAP server SSL Certificate verification - insecure and not "
                          "recommended for production use."),
    "certificate": Field(_STR, "CA certificate to use when verifying LDAP server certificate, must be "
                         "x509 PEM encoded (optional)."),
    "tls_min_version": Field(_STR, "Minimum TLS version to use. Accepted values are 'tls10', 'tls11', "
                             "'tls12' or 'tls13'. Defaults to 'tls12'.", default="tls12"),
    "tls_max_version": Field(_STR, "Maximum TLS version to use. Accepted values are 'tls10', 'tls11', "
                             "'tls12' or 'tls13'. Defaults to 'tls12'.", default="tls12"),
    "deny_null_bind": Field(_BOOL, "Denies an unauthenticated LDAP bind request if the user's password is "
                            "empty; defaults to true.", default=True),
    "case_sensitive_names": Field(_BOOL, "If true, case sensitivity will be used when comparing usernames "
                                  "and groups for matching policies."),
    "username_as_alias": Field(_BOOL, "If true, sets the alias name to the username."),
    "connection_timeout": Field(FieldType.DURATION, "Timeout, in seconds, when attempting to connect to the "
                                "LDAP server before trying the next URL in the configuration.", default=30),
    "request_timeout": Field(FieldType.DURATION, "Timeout, in seconds, for the connection when making "
                             "requests against the server before returning back an error.", default=90),
    "dereference_aliases": Field(_STR, "When aliases should be dereferenced on search operations. Accepted "
                                 "values are 'never', 'finding', 'searching', 'always'. Defaults to 'never'.",
                                 default="never"),
}


def paths() -> list[Path[LdapBackend]]:
    return [
        Path("config", fields={**CONFIG_FIELDS, **token_fields()},
             operations={Op.READ: read_config, Op.UPDATE: write_config},
             synopsis="Configure the LDAP server to connect to, along with its options.",
             description="bindpass is write-only: a read never shows it."),
    ]


storage = storage_of  # the mount's storage view


async def get_config(req: Request) -> LdapConfig | None:
    return await load_config(storage(req))


async def load_config(st: Storage) -> LdapConfig | None:
    return await load_record(st, CONFIG_KEY, LdapConfig.from_json)


async def read_config(b: LdapBackend, req: Request, d: FieldData) -> Response | None:
    cfg = await get_config(req) or LdapConfig()
    return Response(data=cfg.to_response())


def _validate(cfg: LdapConfig) -> None:
    for name in ("tls_min_version", "tls_max_version"):
        if getattr(cfg, name) not in TLS_VERSIONS:
            raise InvalidRequest(f"invalid '{name}' in config")
    if TLS_VERSIONS[cfg.tls_min_version] > TLS_VERSIONS[cfg.tls_max_version]:
        raise InvalidRequest("'tls_max_version' must be greater than or equal to 'tls_min_version'")
    if cfg.dereference_aliases not in DEREF:
        raise InvalidRequest(f"invalid 'dereference_aliases' value \"{cfg.dereference_aliases}\"")
    if not cfg.urls:
        raise InvalidRequest("url is required")
    for u in cfg.urls:
        if not u.lower().startswith(("ldap://", "ldaps://")):
            raise InvalidRequest(f'invalid url "{u}": the scheme must be ldap or ldaps')
    if cfg.certificate and "-----BEGIN CERTIFICATE-----" not in cfg.certificate:
        raise InvalidRequest("failed to parse certificate: not PEM")
    for template, allowed, what in ((cfg.userfilter, ("UserAttr", "Username"), "userfilter"),
                                    (cfg.groupfilter, ("UserDN", "Username"), "groupfilter")):
        err = check_template(template, allowed, what)
        if err:
            raise InvalidRequest(err)
    if cfg.connection_timeout <= 0 or cfg.request_timeout <= 0:
        raise InvalidRequest("connection_timeout and request_timeout must be positive")


async def write_config(b: LdapBackend, req: Request, d: FieldData) -> Response | None:
    cfg = await get_config(req) or LdapConfig()
    values = asdict(cfg)
    for name in CONFIG_FIELDS:
        if d.has(name):
            values[name] = d.get(name)
    values.pop("token")
    new = LdapConfig(**values, token=TokenParams.from_json(cfg.token.to_json()))
    new.token.update(d)
    if new.certificate:
        try:
            ssl.create_default_context(cadata=new.certificate)
        except (ssl.SSLError, ValueError):
            raise InvalidRequest("failed to parse certificate: not a PEM-encoded CA certificate") from None
    _validate(new)
    await save_record(storage(req), CONFIG_KEY, new)
    return None
