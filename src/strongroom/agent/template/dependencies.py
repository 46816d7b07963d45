"""The dependencies a secret template uses (Vault reads, lists, writes, PKI certificates, files) and how
each is resolved.

A dependency is resolved through a fetcher by a small generator of requests (``resolve``), so one piece of
logic serves the blocking and the async fetcher: KV v2 mounts are detected as consul-template does
(``sys/internal/ui/mounts/PATH``) and their paths shimmed (``data/``, ``metadata/``), writes to KV v2 are
wrapped in ``{"data": ...}``, a deleted KV v2 version or an absent secret is an error.
``secret_from_response`` turns Vault's answer into the template's ``Secret``; ``lease_of`` reads its lease
back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import posixpath
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strongroom.agent.template.errors import FetchError
from strongroom.agent.template.pkicert import good_for, pems_cert
from strongroom.agent.template.values import (
    GoStrings,
    JSONNumber,
    Secret,
    SecretAuth,
    SecretWrapInfo,
    TypedNil,
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


def _resolve_pki(dep: Dependency) -> Resolution:
    if dep.destination:
        try:
            existing = Path(dep.destination).read_text("utf-8", "surrogateescape")
        except OSError:
            existing = ""
        if existing:
            enc, cert = pems_cert(existing)
            if good_for(cert):
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
