"""consul-template's functions for secret templates: the render context and the functions with effects.

``build_functions(ctx)`` gives one execution its functions: those that read through the render context
(secret, secrets, pkiCert, file, env, mustEnv, envOrDefault, timestamp; defined here) and the functions
without side effects, ``PURE_FUNCTIONS``, gathered from their families: funcs_strings (strings, regular
expressions), funcs_encoding (JSON, YAML, base64, hashes), funcs_numbers (arithmetic, strconv parsers) and
funcs_collections (membership). What a function depends on, and how that is fetched, is in
dependencies.py. ``redact`` keeps the secrets' values out of error messages.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from strongroom.agent.template import gotime
from strongroom.agent.template.dependencies import Dependency
from strongroom.agent.template.funcs_collections import COLLECTION_FUNCTIONS
from strongroom.agent.template.funcs_encoding import ENCODING_FUNCTIONS
from strongroom.agent.template.funcs_numbers import NUMBER_FUNCTIONS
from strongroom.agent.template.funcs_strings import STRING_FUNCTIONS
from strongroom.agent.template.gofmt import fmt_value
from strongroom.agent.template.gofunc import FuncError, GoFunc
from strongroom.agent.template.values import MISSING, GoStrings, Secret


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
PURE_FUNCTIONS: dict[str, GoFunc] = {
    **NUMBER_FUNCTIONS, **STRING_FUNCTIONS, **ENCODING_FUNCTIONS, **COLLECTION_FUNCTIONS,
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
