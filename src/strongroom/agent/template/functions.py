"""consul-template's functions for secret templates, and the dependencies (secrets, lists, files) they use.

A dependency is resolved through a fetcher by a small generator of requests (``resolve``), so one piece of
logic serves the blocking and the async fetcher: KV v2 mounts are detected as consul-template does
(``sys/internal/ui/mounts/PATH``) and their paths shimmed (``data/``, ``metadata/``), writes to KV v2 are
wrapped in ``{"data": ...}``, a deleted KV v2 version or an absent secret is an error.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import math
import os
import posixpath
import re
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:  # imported when a pkiCert is parsed: it costs the agent ~9 MiB of RSS otherwise
    from cryptography import x509

from strongroom.agent.template import gotime
from strongroom.agent.template.encoding import EncodeError, to_json, to_yaml
from strongroom.agent.template.errors import FetchError
from strongroom.agent.template.executor import FuncError, GoFunc
from strongroom.agent.template.gofmt import fmt_value, go_quote, sprintf
from strongroom.agent.template.values import (
    MISSING,
    GoStrings,
    JSONNumber,
    PemEncoded,
    Secret,
    SecretAuth,
    SecretWrapInfo,
    TypedNil,
    go_type,
)


@dataclass(frozen=True, slots=True)
class Dependency:
    """Something a template used: ``kind`` is vault.read, vault.list, vault.write, vault.pki or file."""

    kind: str
    path: str
    query: tuple[tuple[str, str], ...] = ()  # a read's ?version=, a write's or pkiCert's k=v data
    destination: str = ""

    def __str__(self) -> str:
        if self.kind == "vault.read":
            version = [v for k, v in self.query if k == "version"]
            return f"vault.read({self.path}.v{version[0]})" if version else f"vault.read({self.path})"
        if self.kind == "vault.write":
            h = hashlib.sha1(b"".join(f'{k}="{v}"'.encode() for k, v in sorted(self.query))).hexdigest()[:8]
            return f"vault.write({self.path} -> {h})"
        if self.kind == "vault.pki":
            return f"vault.pki({self.path}->{self.destination})"
        if self.kind == "vault.list":
            return f"vault.list({self.path})"
        return f"{self.kind}({self.path})"


Request = tuple[str, str, Any]  # ("read" | "list" | "write", path, params or data)
Resolution = Generator[Request, Any, Any]


# -- secrets from responses ------------------------------------------------------------------------
def _int(v: Any) -> int:
    try:
        return int(v) if v is not None else 0
    except (TypeError, ValueError):
        return 0


def secret_from_response(resp: Mapping[str, Any]) -> Secret:
    """consul-template's transformSecret of Vault's response."""
    s = Secret()
    s.RequestID = str(resp.get("request_id") or "")
    s.LeaseID = str(resp.get("lease_id") or "")
    s.LeaseDuration = _int(resp.get("lease_duration"))
    s.Renewable = bool(resp.get("renewable"))
    data = resp.get("data")
    if isinstance(data, dict) and data:
        s.Data = data
    warnings = resp.get("warnings")
    if isinstance(warnings, list) and warnings:
        s.Warnings = GoStrings(str(w) for w in warnings)
    auth = resp.get("auth")
    if isinstance(auth, dict):
        policies = auth.get("policies")
        metadata = auth.get("metadata")
        s.Auth = SecretAuth(
            ClientToken=str(auth.get("client_token") or ""), Accessor=str(auth.get("accessor") or ""),
            Policies=GoStrings(str(p) for p in policies) if isinstance(policies, list) and policies else None,
            Metadata=metadata if isinstance(metadata, dict) and metadata else None,
            LeaseDuration=_int(auth.get("lease_duration")), Renewable=bool(auth.get("renewable")))
    wrap = resp.get("wrap_info")
    if isinstance(wrap, dict):
        s.WrapInfo = SecretWrapInfo(Token=str(wrap.get("token") or ""), TTL=_int(wrap.get("ttl")),
                                    CreationTime=str(wrap.get("creation_time") or ""),
                                    WrappedAccessor=str(wrap.get("wrapped_accessor") or ""))
    return s


def _deleted_kv2(resp: Mapping[str, Any]) -> bool:
    data = resp.get("data")
    if not isinstance(data, dict):
        return False
    md = data.get("metadata")
    if not isinstance(md, dict):
        return False
    when = md.get("deletion_time")
    if not isinstance(when, str) or not when:
        return False
    try:
        t = dt.datetime.fromisoformat(when)
    except ValueError:
        return False
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return dt.datetime.now(dt.UTC) > t


# -- KV v2 detection and path shims ------------------------------------------------------------------
def _kv2_mount(path: str) -> Resolution:
    """(mount path, is KV v2) as consul-template's isKVv2; any failure means 'not v2'."""
    try:
        resp = yield ("read", "sys/internal/ui/mounts/" + path, None)
    except FetchError:
        return "", False
    if not isinstance(resp, dict) or not isinstance(resp.get("data"), dict):
        return "", False
    data = resp["data"]
    mount = str(data.get("path") or "")
    options = data.get("options")
    if not isinstance(options, dict):
        return mount, False
    version = options.get("version")
    if version == "2":
        return mount, data.get("type") == "kv"
    return mount, False


def shim_kv2_path(raw: str, mount: str) -> str:
    if raw == mount or raw == mount.rstrip("/"):
        return posixpath.join(mount, "data")
    p = raw.removeprefix(mount)
    if p.startswith(("data/", "metadata/", "subkeys/")):
        return raw
    return posixpath.join(mount, "data", p)


def shim_kv2_list_path(raw: str, mount: str) -> str:
    mount = mount.rstrip("/")
    if raw.startswith(posixpath.join(mount, "metadata")):
        return raw
    if raw == mount:
        return posixpath.join(mount, "metadata")
    return posixpath.join(mount, "metadata", raw[len(mount):].lstrip("/")) if raw.startswith(mount) else raw


# -- resolving dependencies --------------------------------------------------------------------------
def resolve(dep: Dependency) -> Resolution:
    """The requests that fetch one dependency's value (a generator: send responses, get its value)."""
    if dep.kind == "vault.read":
        mount, v2 = yield from _kv2_mount(dep.path)
        path = shim_kv2_path(dep.path, mount) if v2 else dep.path
        params: dict[str, list[str]] = {}
        for k, v in dep.query:
            params.setdefault(k, []).append(v)
        resp = yield ("read", path, params or None)
        if resp is None or _deleted_kv2(resp):
            raise FetchError(f"no secret exists at {path}")
        return secret_from_response(resp)
    if dep.kind == "vault.list":
        mount, v2 = yield from _kv2_mount(dep.path)
        path = shim_kv2_list_path(dep.path, mount) if v2 else dep.path
        resp = yield ("list", path, None)
        data = resp.get("data") if isinstance(resp, dict) else None
        if not isinstance(data, dict) or "keys" not in data:
            return GoStrings()
        keys = data["keys"]
        if not isinstance(keys, list):
            raise FetchError(f"{dep}: unexpected response")
        if any(not isinstance(k, str) for k in keys):
            raise FetchError(f"{dep}: non-string in list")
        return GoStrings(sorted(keys, key=lambda k: k.encode("utf-8", "surrogateescape")))
    if dep.kind == "vault.write":
        mount, v2 = yield from _kv2_mount(dep.path)
        path, data = dep.path, dict(dep.query)
        body: dict[str, Any] = dict(data)
        if v2:
            path = shim_kv2_path(dep.path, mount)
            body = {"data": data}
        resp = yield ("write", path, body)
        if resp is None:
            if v2:
                raise FetchError(f"no secret exists at {dep.path}")
            return TypedNil("*dependency.Secret")
        return secret_from_response(resp)
    if dep.kind == "vault.pki":
        return (yield from _resolve_pki(dep))
    if dep.kind == "file":
        try:
            return Path(dep.path).read_bytes().decode("utf-8", "surrogateescape")
        except OSError as e:
            raise FetchError(f"file({dep.path}): {e.strerror or e}") from None
    raise FetchError(f"unknown dependency {dep}")


_PEM = re.compile(r"-----BEGIN ([^-]*)-----(.*?)-----END [^-]*-----", re.DOTALL)


def _pem_encode(typ: str, der: bytes) -> str:
    b64 = base64.b64encode(der).decode()
    lines = "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))
    return f"-----BEGIN {typ}-----\n{lines}\n-----END {typ}-----\n"


def pems_cert(raw: str) -> tuple[PemEncoded, x509.Certificate | None]:
    """consul-template's pemsCert: sort PEM blocks into key, certificate, CA and CA chain."""
    from cryptography import x509

    enc = PemEncoded()
    cert: x509.Certificate | None = None
    for m in _PEM.finditer(raw):
        typ = m.group(1)
        body = "".join(ln.strip() for ln in m.group(2).splitlines() if ln.strip() and ":" not in ln)
        try:
            der = base64.b64decode(body)
        except (binascii.Error, ValueError):
            break
        block = _pem_encode(typ, der)
        if typ.endswith("PRIVATE KEY"):
            enc.Key = block
            continue
        try:
            c = x509.load_der_x509_certificate(der)
        except ValueError as e:
            raise FetchError(f"x509: {e}") from None
        try:
            is_ca = c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if is_ca:
            if not enc.CA:
                enc.CA = block
        else:
            cert = c
            enc.Cert = block
    return enc, cert


RENEWAL_THRESHOLD = 0.9


def _good_for(cert: x509.Certificate | None) -> bool:
    if cert is None:
        return False
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    now = dt.datetime.now(dt.UTC)
    if end <= now:
        return False
    return now < start + (end - start) * RENEWAL_THRESHOLD


def _resolve_pki(dep: Dependency) -> Resolution:
    if dep.destination:
        try:
            existing = Path(dep.destination).read_text("utf-8", "surrogateescape")
        except OSError:
            existing = ""
        if existing:
            enc, cert = pems_cert(existing)
            if _good_for(cert):
                return enc
    resp = yield ("write", dep.path, dict(dep.query))
    if resp is None:
        raise FetchError(f"no secret exists at {dep.path}")
    data = resp.get("data") or {}
    parts: list[str] = []
    for k in ("certificate", "issuing_ca", "ca_chain", "private_key"):
        v = data.get(k)
        if isinstance(v, str) and not isinstance(v, JSONNumber):
            parts.append(v + "\n")
        elif isinstance(v, list) and k == "ca_chain":
            parts.extend(x + "\n" for x in v if isinstance(x, str))
    enc, _ = pems_cert("".join(parts))
    return enc


def lease_of(value: Any) -> tuple[str, int, bool]:
    if isinstance(value, Secret):
        if value.Auth is not None:
            return value.LeaseID, value.Auth.LeaseDuration or value.LeaseDuration, value.Auth.Renewable
        return value.LeaseID, value.LeaseDuration, value.Renewable
    return "", 0, False


# -- the render context ------------------------------------------------------------------------------
@dataclass
class RenderContext:
    """What one execution of a template sees: the values fetched so far (``brain``), what it used, what it
    still needs (when there is no blocking fetcher), the environment, the sandbox and the destination."""

    brain: dict[Dependency, Any]
    resolve_now: Callable[[Dependency], Any] | None = None
    env: Mapping[str, str] | None = None
    sandbox_path: str | None = None
    destination: str = ""
    now: Callable[[], dt.datetime] | None = None
    used: list[Dependency] = field(default_factory=list)
    missing: list[Dependency] = field(default_factory=list)

    def recall(self, dep: Dependency) -> Any:
        if dep not in self.used:
            self.used.append(dep)
        if dep in self.brain:
            return self.brain[dep]
        if self.resolve_now is not None:
            value = self.resolve_now(dep)
            self.brain[dep] = value
            return value
        if dep not in self.missing:
            self.missing.append(dep)
        return MISSING


def _kv_pairs(rest: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    data: dict[str, str] = {}
    for s in rest:
        if not s:
            continue
        parts = s.split("=", 1)
        if len(parts) != 2:
            raise FuncError(f'not k=v pair "{s}"')
        data[parts[0].strip()] = parts[1].strip()
    return tuple(sorted(data.items()))


def _clean_path(kind: str, s: str) -> str:
    s = s.strip().strip("/")
    if not s:
        raise FuncError(f'{kind}: invalid format: "{s}"')
    return s


def build_functions(ctx: RenderContext) -> dict[str, GoFunc]:
    def secret(*s: str) -> Any:
        if not s:
            return None
        path, rest = s[0], s[1:]
        if not rest:
            raw = _clean_path("vault.read", path)
            parts = urlsplit(raw)
            query = tuple((k, v) for k, vs in sorted(parse_qs(parts.query, keep_blank_values=True).items())
                          for v in vs)
            dep = Dependency("vault.read", parts.path, query)
        else:
            dep = Dependency("vault.write", _clean_path("vault.write", path), _kv_pairs(rest))
        v = ctx.recall(dep)
        return None if v is MISSING else v

    def secrets(s: str) -> Any:
        if not s:
            return GoStrings()
        v = ctx.recall(Dependency("vault.list", _clean_path("vault.list", s)))
        return GoStrings() if v is MISSING else v

    def pki_cert(*s: str) -> Any:
        if not s:
            return None
        dep = Dependency("vault.pki", _clean_path("vault.pki", s[0]), _kv_pairs(s[1:]), ctx.destination)
        v = ctx.recall(dep)
        return None if v is MISSING else v

    def file(s: str) -> str:
        if not s:
            return ""
        p = s.strip()
        if ctx.sandbox_path:
            resolved = os.path.realpath(os.path.join(ctx.sandbox_path, p) if not os.path.isabs(p) else p)
            sandbox = os.path.realpath(ctx.sandbox_path)
            if os.path.commonpath([resolved, sandbox]) != sandbox:
                raise FuncError(f"'{p}' is outside of allowed sandbox")
            p = resolved
        v = ctx.recall(Dependency("file", p))
        return "" if v is MISSING else str(v)

    def env(s: str) -> str:
        if ctx.env is not None and s in ctx.env:
            return ctx.env[s]
        return os.environ.get(s, "")

    def must_env(s: str) -> str:
        val = ctx.env.get(s, "") if ctx.env is not None else ""
        if val == "":
            val = os.environ.get(s, "")
        if val == "":
            raise FuncError(f"required environment variable {s} is empty")
        return val

    def env_or_default(s: str, default: str) -> str:
        if ctx.env is not None and s in ctx.env:
            return ctx.env[s]
        return os.environ.get(s, default)

    def timestamp(*s: str) -> str:
        now = ctx.now() if ctx.now is not None else dt.datetime.now().astimezone()
        if len(s) == 0:
            return gotime.go_format(now, gotime.RFC3339)
        if len(s) == 1:
            if s[0] == "unix":
                return str(int(now.timestamp()))
            return gotime.go_format(now, s[0])
        raise FuncError(f"timestamp: wrong number of arguments, expected 0 or 1, but got {len(s)}")

    return {
        "secret": GoFunc(secret, (), "string"),
        "secrets": GoFunc(secrets, ("string",)),
        "pkiCert": GoFunc(pki_cert, (), "string"),
        "file": GoFunc(file, ("string",)),
        "env": GoFunc(env, ("string",)),
        "mustEnv": GoFunc(must_env, ("string",)),
        "envOrDefault": GoFunc(env_or_default, ("string", "string")),
        "timestamp": GoFunc(timestamp, (), "string"),
        **PURE_FUNCTIONS,
    }


# -- functions without side effects -----------------------------------------------------------------
def _to_json(v: Any) -> str:
    try:
        return to_json(v).strip()
    except EncodeError as e:
        raise FuncError(f"toJSON: {e}") from None


def _to_json_pretty(v: Any) -> str:
    try:
        return to_json(v, "  ").strip()
    except EncodeError as e:
        raise FuncError(f"toJSONPretty: {e}") from None


def _to_yaml(v: Any) -> str:
    try:
        return to_yaml(v).strip(" \t\r\n\v\f")
    except EncodeError as e:
        raise FuncError(f"toYAML: {e}") from None


def _b64encode(s: str) -> str:
    return base64.b64encode(s.encode("utf-8", "surrogateescape")).decode()


def _b64decode(s: str) -> str:
    try:  # Go's decoder skips line breaks
        raw = base64.b64decode(_bytes(s).replace(b"\r", b"").replace(b"\n", b""), validate=True)
    except (binascii.Error, ValueError):
        # Go names the first bad byte's offset: find it for the message
        raise FuncError(f"base64Decode: illegal base64 data at input byte {_bad_b64_offset(s)}") from None
    return raw.decode("utf-8", "surrogateescape")


def _bad_b64_offset(s: str, extra: str = "+/") -> int:
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789" + extra)
    b = s.encode("utf-8", "surrogateescape")
    for i, c in enumerate(b):
        if chr(c) == "=":
            return i if (i % 4) < 2 else min(i + 1, len(b)) - (0 if i + 1 < len(b) else 1)
        if chr(c) not in alphabet and c not in (10, 13):
            return i
    return max(len(b) - len(b) % 4, 0)


_GO_SPACE = " \t\n\v\f\r\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
            "\u2028\u2029\u202f\u205f\u3000"


def _split(sep: str, s: str) -> GoStrings:
    s = s.strip(_GO_SPACE)
    if s == "":
        return GoStrings()
    if sep == "":
        return GoStrings(list(s))
    return GoStrings(s.split(sep))


def _join(sep: str, a: GoStrings) -> str:
    return sep.join(a)


def _trim_space(s: str) -> str:
    return s.strip(_GO_SPACE)


def _replace_all(f: str, t: str, s: str) -> str:
    if f == "":
        chars = list(s)
        return t + "".join(c + t for c in chars)
    return s.replace(f, t)


def _contains(v: Any, lst: Any) -> bool:
    """consul-template's ``in(l, v)``."""
    if isinstance(lst, list):
        for x in lst:
            if isinstance(x, bool) or isinstance(v, bool):
                continue
            if isinstance(x, int) and isinstance(v, int) or isinstance(x, float) and isinstance(v, float):
                if x == v:
                    return True
            elif isinstance(x, str) and isinstance(v, str) and type(x) is type(v) and x == v:
                return True
        return False
    if isinstance(lst, str) and isinstance(v, str):
        return type(lst) is type(v) and v in lst
    return False


def _to_lower(s: str) -> str:
    """strings.ToLower: rune by rune (U+0130 becomes a plain 'i', as in Go)."""
    if s.isascii():
        return s.lower()
    return "".join(c.lower()[0] for c in s)


def _to_upper(s: str) -> str:
    """strings.ToUpper: rune by rune; a rune without a one-rune upper case ('ß') stays as it is."""
    if s.isascii():
        return s.upper()
    return "".join(u if len(u := c.upper()) == 1 else c for c in s)


def _go_float_json(text: str) -> float:
    return float(text)


def _parse_json(s: str) -> Any:
    import json

    if s == "":
        return {}
    try:
        return json.loads(s, parse_int=_go_float_json, parse_constant=_reject)
    except ValueError as e:
        raise FuncError(str(e)) from None


def _reject(name: str) -> Any:
    raise ValueError(f"invalid character '{name[0]}' looking for beginning of value")


def _indent(spaces: int, s: str) -> str:
    if spaces < 0:
        raise FuncError("indent value must be a positive integer")
    prefix = " " * spaces
    out: list[str] = []
    at_line_start = True
    for c in s:
        if at_line_start and c != "\n":
            out.append(prefix)
        out.append(c)
        at_line_start = c == "\n"
    return "".join(out)


def _trim(cutset: str, s: str) -> str:
    return s.strip(cutset) if cutset else s


def _trim_prefix(prefix: str, s: str) -> str:
    return s.removeprefix(prefix)


def _trim_suffix(suffix: str, s: str) -> str:
    return s.removesuffix(suffix)


def _bytes(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def _sha256_hex(s: str) -> str:
    return hashlib.sha256(_bytes(s)).hexdigest()


def _md5sum(s: str) -> str:
    return hashlib.md5(_bytes(s), usedforsecurity=False).hexdigest()


def _b64url_encode(s: str) -> str:
    return base64.urlsafe_b64encode(_bytes(s)).decode()


def _b64url_decode(s: str) -> str:
    try:
        b = _bytes(s).replace(b"\r", b"").replace(b"\n", b"")
        if b"+" in b or b"/" in b:
            raise ValueError("not in the URL alphabet")
        raw = base64.b64decode(b, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise FuncError(f"base64URLDecode: illegal base64 data at input byte {_bad_b64_offset(s, '-_')}") from None
    return raw.decode("utf-8", "surrogateescape")


_GO_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
             "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}


def _parse_bool(s: str) -> bool:
    if s == "":
        return False
    if s not in _GO_BOOLS:
        raise FuncError(f'parseBool: strconv.ParseBool: parsing "{s}": invalid syntax')
    return _GO_BOOLS[s]


def _parse_int(s: str) -> int:
    if s == "":
        return 0
    if not re.fullmatch(r"[+-]?[0-9]+", s):
        raise FuncError(f'parseInt: strconv.ParseInt: parsing "{s}": invalid syntax')
    v = int(s)
    if not -(2**63) <= v < 2**63:
        raise FuncError(f'parseInt: strconv.ParseInt: parsing "{s}": value out of range')
    return v


def _parse_uint(s: str) -> int:
    if s == "":
        return 0
    if not re.fullmatch(r"[+]?[0-9]+", s):
        raise FuncError(f'parseUint: strconv.ParseUint: parsing "{s}": invalid syntax')
    v = int(s)
    if v >= 2**64:
        raise FuncError(f'parseUint: strconv.ParseUint: parsing "{s}": value out of range')
    return v


_DIGITS = r"[0-9](?:_?[0-9])*"
_GO_FLOAT = re.compile(rf"[+-]?(({_DIGITS}\.?(?:{_DIGITS})?|\.{_DIGITS})([eE][+-]?{_DIGITS})?|inf|infinity|nan)",
                       re.IGNORECASE)


def _parse_float(s: str) -> float:
    if s == "":
        return 0.0
    if not _GO_FLOAT.fullmatch(s):
        raise FuncError(f'parseFloat: strconv.ParseFloat: parsing "{s}": invalid syntax')
    v = float(s)
    if v in (float("inf"), float("-inf")) and "inf" not in s.lower():
        raise FuncError(f'parseFloat: strconv.ParseFloat: parsing "{s}": value out of range')
    return v


def _contains_some(ret_true: bool, invert: bool) -> Callable[[list[Any], Any], bool]:
    def fn(values: list[Any], lst: Any) -> bool:
        for v in values:
            if _contains(v, lst) != invert:
                return not ret_true
        return ret_true
    return fn


def _in(lst: Any, v: Any) -> bool:
    return _contains(v, lst)


def _to_unescaped_json(v: Any) -> str:
    try:
        return to_json(v, escape_html=False).rstrip("\r\n")
    except EncodeError as e:
        raise FuncError(f"toUnescapedJSON: {e}") from None


def _to_unescaped_json_pretty(v: Any) -> str:
    try:
        return to_json(v, "  ", escape_html=False).rstrip("\r\n")
    except EncodeError as e:
        raise FuncError(f"toUnescapedJSONPretty: {e}") from None


def _go_regexp(pattern: str) -> re.Pattern[str]:
    """A Go (RE2) pattern in Python's re: the common syntax is shared; \\z is \\Z here."""
    try:
        return re.compile(pattern.replace("\\z", "\\Z"))
    except re.error as e:
        raise FuncError(f"error parsing regexp: {e}: `{pattern}`") from None


_TEMPLATE_REF = re.compile(r"\$(?:\$|\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))")


def _go_expand(template: str, m: re.Match[str]) -> str:
    """regexp.Expand: $1, ${1}, $name, ${name}; $$ is a dollar; an unknown group is empty."""
    def ref(r: re.Match[str]) -> str:
        name = r.group(1) or r.group(2)
        if name is None:
            return "$"
        try:
            got = m.group(int(name)) if name.isdigit() else m.group(name)
        except (IndexError, re.error):
            return ""
        return got or ""
    return _TEMPLATE_REF.sub(ref, template)



def _regex_replace_all(pattern: str, repl: str, s: str) -> str:
    compiled = _go_regexp(pattern)
    out: list[str] = []
    pos = 0
    last_end = -1
    for m in compiled.finditer(s):
        if m.start() == m.end() and m.start() == last_end:
            continue  # Go ignores an empty match right after the previous match
        out.append(s[pos:m.start()])
        out.append(_go_expand(repl, m))
        pos = m.end()
        last_end = m.end()
    out.append(s[pos:])
    return "".join(out)


def _regex_match(pattern: str, s: str) -> bool:
    return _go_regexp(pattern).search(s) is not None


def _num_kind(v: Any) -> str | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    return None


def _unknown(name: str, v: Any) -> FuncError:
    shown = go_quote(v) if isinstance(v, str) else sprintf("%q", [v])
    return FuncError(f"{name}: unknown type for {shown} ({go_type(v)})")


def _arith(name: str, op: Callable[[Any, Any], Any], ints_only: bool = False) -> Callable[[Any, Any], Any]:
    """consul-template's add/subtract/multiply/divide/modulo(b, a): a OP b, ints stay ints."""
    def fn(b: Any, a: Any) -> Any:
        ka = _num_kind(a)
        if ka is None or (ints_only and ka == "float"):
            raise _unknown(name, a)
        kb = _num_kind(b)
        if kb is None or (ints_only and kb == "float"):
            raise _unknown(name, b)
        if ka == "int" and kb == "int":
            return ((op(a, b) + 2**63) % 2**64) - 2**63  # int64 arithmetic wraps around
        return op(float(a), float(b))
    return fn


def _go_div(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int):
        if b == 0:
            raise FuncError("runtime error: integer divide by zero")
        q = abs(a) // abs(b)
        return q if (a >= 0) == (b >= 0) else -q
    if b == 0:
        return math.copysign(math.inf, a) * math.copysign(1, b) if a != 0 else math.nan
    return a / b


def _go_mod(a: int, b: int) -> int:
    if b == 0:
        raise FuncError("runtime error: integer divide by zero")
    r = abs(a) % abs(b)
    return r if a >= 0 else -r


def _extremum(name: str, smaller: bool) -> Callable[[Any, Any], Any]:
    def fn(b: Any, a: Any) -> Any:
        if _num_kind(a) is None:
            raise _unknown(name, a)
        if _num_kind(b) is None:
            raise _unknown(name, b)
        a_wins = float(a) < float(b) if smaller else float(a) > float(b)
        return a if a_wins else b
    return fn


PURE_FUNCTIONS: dict[str, GoFunc] = {
    "add": GoFunc(_arith("add", lambda a, b: a + b), ("any", "any")),
    "subtract": GoFunc(_arith("subtract", lambda a, b: a - b), ("any", "any")),
    "multiply": GoFunc(_arith("multiply", lambda a, b: a * b), ("any", "any")),
    "divide": GoFunc(_arith("divide", _go_div), ("any", "any")),
    "modulo": GoFunc(_arith("modulo", _go_mod, ints_only=True), ("any", "any")),
    "minimum": GoFunc(_extremum("minimum", True), ("any", "any")),
    "maximum": GoFunc(_extremum("maximum", False), ("any", "any")),
    "regexReplaceAll": GoFunc(_regex_replace_all, ("string", "string", "string")),
    "regexMatch": GoFunc(_regex_match, ("string", "string")),
    "indent": GoFunc(_indent, ("int", "string")),
    "trim": GoFunc(_trim, ("string", "string")),
    "trimPrefix": GoFunc(_trim_prefix, ("string", "string")),
    "trimSuffix": GoFunc(_trim_suffix, ("string", "string")),
    "sha256Hex": GoFunc(_sha256_hex, ("string",)),
    "md5sum": GoFunc(_md5sum, ("string",)),
    "base64URLEncode": GoFunc(_b64url_encode, ("string",)),
    "base64URLDecode": GoFunc(_b64url_decode, ("string",)),
    "parseBool": GoFunc(_parse_bool, ("string",)),
    "parseInt": GoFunc(_parse_int, ("string",)),
    "parseUint": GoFunc(_parse_uint, ("string",)),
    "parseFloat": GoFunc(_parse_float, ("string",)),
    "in": GoFunc(_in, ("any", "any")),
    "containsAll": GoFunc(_contains_some(True, True), ("[]any", "any")),
    "containsAny": GoFunc(_contains_some(False, False), ("[]any", "any")),
    "containsNone": GoFunc(_contains_some(True, False), ("[]any", "any")),
    "containsNotAll": GoFunc(_contains_some(False, True), ("[]any", "any")),
    "toUnescapedJSON": GoFunc(_to_unescaped_json, ("any",)),
    "toUnescapedJSONPretty": GoFunc(_to_unescaped_json_pretty, ("any",)),
    "toJSON": GoFunc(_to_json, ("any",)),
    "toJSONPretty": GoFunc(_to_json_pretty, ("any",)),
    "toYAML": GoFunc(_to_yaml, ("any",)),
    "base64Encode": GoFunc(_b64encode, ("string",)),
    "base64Decode": GoFunc(_b64decode, ("string",)),
    "split": GoFunc(_split, ("string", "string")),
    "join": GoFunc(_join, ("string", "[]string")),
    "trimSpace": GoFunc(_trim_space, ("string",)),
    "replaceAll": GoFunc(_replace_all, ("string", "string", "string")),
    "contains": GoFunc(_contains, ("any", "any")),
    "toLower": GoFunc(_to_lower, ("string",)),
    "toUpper": GoFunc(_to_upper, ("string",)),
    "parseJSON": GoFunc(_parse_json, ("string",)),
}

FUNCTION_NAMES = frozenset({"secret", "secrets", "pkiCert", "file", "env", "mustEnv", "envOrDefault", "timestamp",
                            *PURE_FUNCTIONS})


def redact(message: str, ctx: RenderContext) -> str:
    """consul-template's redactinator: the printed top-level values of the secrets' Data never appear in an
    error (for KV v2 that is the whole ``data`` map printed, as in consul-template, not each field)."""
    pairs: list[str] = []
    for dep in ctx.used:
        v = ctx.brain.get(dep)
        if isinstance(v, Secret) and v.Data:
            for x in v.Data.values():
                text = x if isinstance(x, str) else fmt_value(x)
                if text:
                    pairs.append(text)
    if not pairs:
        return message
    pattern = re.compile("|".join(re.escape(p) for p in sorted(set(pairs), key=len, reverse=True)))
    return pattern.sub("[redacted]", message)
