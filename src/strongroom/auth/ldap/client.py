"""The LDAP conversation of a login, synchronous (ldap3), run by the backend in a worker thread.

Steps, as Vault's ldaputil does them:

1. connect to the first reachable URL of ``url`` (comma-separated; ldap:// or ldaps://), StartTLS
   when ``starttls`` is set, every socket operation bounded by ``connection_timeout`` /
   ``request_timeout``;
2. find the DN to bind as: with ``discoverdn`` or a ``binddn``, search ``userdn`` with
   ``userfilter`` (bound as ``binddn``, or anonymously) and require exactly one entry; else
   ``<username>@<upndomain>`` when ``upndomain`` is set; else ``<userattr>=<username>,<userdn>``;
3. bind as that DN with the user's password — the only password check, done by the LDAP server;
4. rebind as ``binddn`` (or anonymously with ``anonymous_group_search``) and search ``groupdn``
   with ``groupfilter``; the group names are the ``groupattr`` values of the entries found (the CN
   when a value is a DN, which is how ``memberOf`` is read).

SECURITY: the username reaches filters only escaped per RFC 4515 and DNs only escaped per RFC 4514,
so ``*)(uid=*`` matches nothing but a user literally called that. An empty password is refused
before any bind (an RFC 4513 unauthenticated bind would "succeed" without proving anything).
"""

from __future__ import annotations

import re
import socket
import ssl
from dataclasses import dataclass
from typing import Any, Literal

import ldap3
from ldap3.core import exceptions as ldap_exc
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn, parse_dn

TEMPLATE = re.compile(r"\{\{\s*\.(\w+)\s*\}\}")
TLS_VERSIONS: dict[str, ssl.TLSVersion] = {
    "tls10": ssl.TLSVersion.TLSv1, "tls11": ssl.TLSVersion.TLSv1_1,
    "tls12": ssl.TLSVersion.TLSv1_2, "tls13": ssl.TLSVersion.TLSv1_3,
}
# Vault's dereference_aliases values -> the LDAP derefAliases of every search.
DerefMode = Literal["NEVER", "SEARCH", "FINDING_BASE", "ALWAYS"]
DEREF: dict[str, DerefMode] = {"never": ldap3.DEREF_NEVER, "searching": ldap3.DEREF_SEARCH,
                         "finding": ldap3.DEREF_BASE, "always": ldap3.DEREF_ALWAYS}
BIND_FAILED = "ldap operation failed: failed to bind as user"
NULL_BIND = "password cannot be of zero length when passwordless binds are being denied"


class LdapError(Exception):
    """A login-refusing answer (wrong credentials, unknown user, directory unreachable)."""

    def __init__(self, message: str, *, credentials: bool = False) -> None:
        super().__init__(message)
        self.credentials = credentials  # the user's fault (400), not the directory's


DEFAULT_GROUPFILTER = "(|(memberUid={{.Username}})(member={{.UserDN}})(uniqueMember={{.UserDN}}))"
DEFAULT_USERFILTER = "({{.UserAttr}}={{.Username}})"


@dataclass(slots=True)
class Settings:
    """The directory part of the config, in its field order: the stored config (LdapConfig) extends
    it, and a login gets a plain copy of it, safe to hand to a thread."""

    url: str = "ldap://127.0.0.1"
    binddn: str = ""
    bindpass: str = ""
    userdn: str = ""
    userattr: str = "cn"
    userfilter: str = DEFAULT_USERFILTER
    upndomain: str = ""
    discoverdn: bool = False
    groupdn: str = ""
    groupfilter: str = DEFAULT_GROUPFILTER
    groupattr: str = "cn"
    anonymous_group_search: bool = False
    starttls: bool = False
    insecure_tls: bool = False
    certificate: str = ""
    tls_min_version: str = "tls12"
    tls_max_version: str = "tls12"
    deny_null_bind: bool = True
    case_sensitive_names: bool = False
    username_as_alias: bool = False
    connection_timeout: int = 30
    request_timeout: int = 90
    dereference_aliases: str = "never"

    @property
    def urls(self) -> list[str]:
        """``url``'s comma-separated URLs, tried in order."""
        return [u.strip() for u in self.url.split(",") if u.strip()]


def render(template: str, values: dict[str, str]) -> str:
    """A Go-template-style ``{{.Name}}`` substitution; values are already escaped."""
    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in values:
            raise ValueError(f"unknown template field {name!r}")
        return values[name]
    return TEMPLATE.sub(sub, template)


def check_template(template: str, allowed: tuple[str, ...], what: str) -> str | None:
    """An error message when ``template`` names a field other than ``allowed`` or is no filter."""
    for m in TEMPLATE.finditer(template):
        if m.group(1) not in allowed:
            return f"invalid {what}: unknown template field {m.group(1)!r}"
    rendered = render(template, {k: "x" for k in allowed})
    if "{{" in rendered or "}}" in rendered:
        return f"invalid {what}: only {{{{.Field}}}} substitutions are supported"
    if rendered.count("(") != rendered.count(")") or not rendered.startswith("("):
        return f"invalid {what}: not an LDAP filter"
    return None


def user_bind_dn_direct(s: Settings, username: str) -> str:
    """The DN to bind as without a search: UPN, or ``userattr=username,userdn``."""
    if s.upndomain:
        return f"{escape_filter_chars(username)}@{s.upndomain}"
    return f"{s.userattr}={escape_rdn(username)},{s.userdn}"


def group_name(value: str) -> str:
    """The CN of a group DN (memberOf values), or the value itself when it is not a DN."""
    try:
        for attr, val, _ in parse_dn(value, escape=False):
            if attr.lower() == "cn":
                return str(val)
    except ldap_exc.LDAPException:
        pass
    return value


class _Tls(ldap3.Tls):
    """ldap3's TLS with our own context: the config's CA (or the system's), its version range,
    and the server's name checked during the handshake unless ``insecure_tls``."""

    def __init__(self, s: Settings) -> None:
        super().__init__(validate=ssl.CERT_NONE if s.insecure_tls else ssl.CERT_REQUIRED)
        self._settings = s

    def wrap_socket(self, connection: Any, do_handshake: bool = False) -> None:
        s = self._settings
        ctx = ssl.create_default_context(cadata=s.certificate or None)
        ctx.minimum_version = TLS_VERSIONS.get(s.tls_min_version, ssl.TLSVersion.TLSv1_2)
        ctx.maximum_version = TLS_VERSIONS.get(s.tls_max_version, ssl.TLSVersion.TLSv1_3)
        if s.insecure_tls:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        connection.socket = ctx.wrap_socket(connection.socket, server_side=False,
                                            do_handshake_on_connect=do_handshake,
                                            server_hostname=connection.server.host)


def _server(s: Settings, url: str) -> ldap3.Server:
    use_ssl = url.lower().startswith("ldaps://")
    tls = _Tls(s) if use_ssl or s.starttls else None
    return ldap3.Server(url, use_ssl=use_ssl, tls=tls, connect_timeout=s.connection_timeout, get_info=ldap3.NONE)


def _connection(s: Settings, server: ldap3.Server, user: str | None, password: str | None) -> ldap3.Connection:
    return ldap3.Connection(server, user=user, password=password, auto_bind=ldap3.AUTO_BIND_NONE,
                            receive_timeout=s.request_timeout, raise_exceptions=False, read_only=True)


def connect(s: Settings) -> ldap3.Connection:
    """An open (unbound) connection to the first URL that answers."""
    errors: list[str] = []
    for url in s.urls:
        conn = _connection(s, _server(s, url), None, None)
        try:
            conn.open()
            if s.starttls and not url.lower().startswith("ldaps://"):
                if not conn.start_tls():
                    raise ldap_exc.LDAPStartTLSError(conn.result.get("description", "StartTLS refused"))
            return conn
        except (ldap_exc.LDAPException, OSError, socket.timeout) as e:
            errors.append(f'error connecting to host "{url}": {_describe(e)}')
            try:
                conn.unbind()
            except Exception:  # noqa: BLE001 - closing a half-open socket; nothing to report
                pass
    raise LdapError("; ".join(errors) or "no LDAP URL configured")


def _describe(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text.splitlines()[0][:300]


def _bind(conn: ldap3.Connection, dn: str, password: str) -> bool:
    conn.user, conn.password = dn, password
    conn.authentication = ldap3.SIMPLE if dn or password else ldap3.ANONYMOUS
    try:
        return bool(conn.bind())
    except ldap_exc.LDAPException as e:
        raise LdapError(f"ldap operation failed: {_describe(e)}") from None


def _search(s: Settings, conn: ldap3.Connection, base: str, flt: str, attrs: list[str]) -> list[dict[str, Any]]:
    try:
        ok = conn.search(base, flt, search_scope=ldap3.SUBTREE, attributes=attrs, time_limit=0,
                         dereference_aliases=DEREF.get(s.dereference_aliases, ldap3.DEREF_NEVER))
    except ldap_exc.LDAPException as e:
        raise LdapError(f"LDAP search failed: {_describe(e)}") from None
    if not ok and conn.result.get("result") not in (0, 32):  # 32: no such object = nothing found
        raise LdapError(f"LDAP search failed: {conn.result.get('description', '')}")
    return [r for r in (conn.response or []) if r.get("type") == "searchResEntry"]


def _unbind(conn: ldap3.Connection) -> None:
    try:
        conn.unbind()
    except Exception:  # noqa: BLE001 - the answer is already decided
        pass


def user_bind_dn(s: Settings, conn: ldap3.Connection, username: str) -> str:
    if s.discoverdn or (s.binddn and s.bindpass):
        if not _bind(conn, s.binddn, s.bindpass):
            raise LdapError("LDAP bind (service) failed")
        values = {"UserAttr": s.userattr, "Username": escape_filter_chars(username)}
        entries = _search(s, conn, s.userdn, render(s.userfilter, values), [])
        if len(entries) != 1:
            raise LdapError(BIND_FAILED, credentials=True)
        return str(entries[0]["dn"])
    return user_bind_dn_direct(s, username)


def user_dn(s: Settings, conn: ldap3.Connection, bind_dn: str, username: str) -> str:
    if not s.upndomain or s.discoverdn:
        return bind_dn
    flt = f"(userPrincipalName={escape_filter_chars(username)}@{escape_filter_chars(s.upndomain)})"
    entries = _search(s, conn, s.userdn, flt, [])
    if len(entries) != 1:
        raise LdapError("LDAP search failed for detecting user")
    return str(entries[0]["dn"])


def groups_of(s: Settings, conn: ldap3.Connection, dn: str, username: str) -> list[str]:
    if not s.groupdn or not s.groupfilter:
        return []
    values = {"UserDN": escape_filter_chars(dn), "Username": escape_filter_chars(username)}
    entries = _search(s, conn, s.groupdn, render(s.groupfilter, values), [s.groupattr])
    out: list[str] = []
    want = s.groupattr.lower()
    for e in entries:
        for attr, vals in (e.get("attributes") or {}).items():
            if attr.lower() != want:
                continue
            for v in vals if isinstance(vals, list) else [vals]:
                name = group_name(str(v))
                if name and name not in out:
                    out.append(name)
    return out


@dataclass(slots=True)
class LoginResult:
    dn: str
    groups: list[str]


def login(s: Settings, username: str, password: str) -> LoginResult:
    """Authenticate ``username`` with ``password`` against the directory; its DN and LDAP groups."""
    if not password and s.deny_null_bind:
        raise LdapError(NULL_BIND, credentials=True)
    conn = connect(s)
    try:
        bind_dn = user_bind_dn(s, conn, username)
        if not _bind(conn, bind_dn, password):
            raise LdapError(BIND_FAILED, credentials=True)
        dn = user_dn(s, conn, bind_dn, username)
        if s.anonymous_group_search:
            _bind(conn, "", "")
        elif s.binddn and s.bindpass and not _bind(conn, s.binddn, s.bindpass):
            raise LdapError("LDAP bind (service) failed")
        return LoginResult(dn=dn, groups=groups_of(s, conn, dn, username))
    finally:
        _unbind(conn)


def lookup(s: Settings, username: str) -> LoginResult | None:
    """Renewal: ``username``'s DN and groups as the directory has them now, found without the user's
    password (which is never kept): searched as binddn (or anonymously with discoverdn), or in
    bind-directly mode a base-object read of the user's DN. None when the user is gone."""
    conn = connect(s)
    try:
        if s.discoverdn or (s.binddn and s.bindpass):
            try:
                dn = user_bind_dn(s, conn, username)
            except LdapError as e:
                if e.credentials:
                    return None
                raise
        else:
            dn = user_bind_dn_direct(s, username)
            try:
                found = conn.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=[])
            except ldap_exc.LDAPException as e:
                raise LdapError(f"LDAP search failed: {_describe(e)}") from None
            if not found:
                if conn.result.get("result") == 32:  # noSuchObject: the user is gone
                    return None
                raise LdapError(f"LDAP search failed: {conn.result.get('description', '')}")
        if s.anonymous_group_search:
            _bind(conn, "", "")
        return LoginResult(dn=dn, groups=groups_of(s, conn, dn, username))
    finally:
        _unbind(conn)
